#!/usr/bin/env bash
# Active learning with loss prediction on AISHELL-1 (Mandarin, character tokens).
#
# Usage:
#   ./run.sh                                   # demo on a generated corpus in the real layout
#   ./run.sh --aishell_dir /data/corpus      # the real corpus
#   ./run.sh --stage 1 --stop_stage 1          # only data preparation
#
# Stages:
#   1: data preparation (local/data.sh): Kaldi-style data dirs in data/
#   2: ASR inputs: character token list and shape files in exp/asr_inputs/
#   3: KD teacher: train it on its own labeled set, or take --teacher_model; writes
#      exp/kd/teacher.yaml, the teacher of every AL round that distils (kd_weight > 0)
#   4: KD teacher cache: its top-k posteriors over the AL training and validation sets
#
# Knowledge distillation (demo): a teacher on extra synthetic speakers, disjoint from the pool:
#   ./run.sh --synth_opts "--extra_train_utts 1200"
# (real data: --teacher_speakers FILE lists the speakers set aside for the teacher)
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

# shellcheck disable=SC1091
. ./db.sh
# shellcheck disable=SC1091
. ./path.sh
# shellcheck disable=SC1091
. ./cmd.sh

# ---- defaults ------------------------------------------------------------------------------
stage=1                 # first stage to run
stop_stage=4            # last stage to run
aishell_dir=${AISHELL}   # corpus location; empty: generate the synthetic demo corpus
allow_download=false    # download the official corpus when aishell_dir does not exist
synth_opts=""           # extra synthetic-corpus flags, e.g. "--train_utts 2000 --other_fraction 0.5"
nj=2                    # parallel jobs
teacher_speakers=""     # file of speaker ids set aside for a KD teacher; synthetic demo: automatic
train_set=train             # the active-learning pool
valid_set=dev
asr_config=${MAIN_ROOT}/conf/tuning/train_lp_tiny.yaml      # model of every AL round
teacher_config=${MAIN_ROOT}/conf/tuning/train_asr_teacher_cpu.yaml  # KD teacher model
teacher_opts=""         # extra asr_train options of the teacher, e.g. "--max_epoch 30"
teacher_model=""        # a trained teacher instead: espnet_model_zoo zip, or ESPnet exp dir
teacher_checkpoint=valid.acc.best.pth   # the teacher's model file in its exp dir
teacher_cache=true      # cache the teacher's posteriors once (stage 4) instead of every round
kd_topk=8               # teacher posteriors kept per frame in the cache
ngpu=0                  # GPUs for training

help_message=$(cat <<EOF2
Usage: $0 [options]
  --stage N               First stage (${stage})
  --stop_stage N          Last stage (${stop_stage})
  --aishell_dir DIR       Corpus location (default: '${aishell_dir}'; empty: synthetic demo)
  --allow_download BOOL   Download the official corpus if absent (${allow_download})
  --synth_opts STR        Extra flags for the synthetic corpus generator ('${synth_opts}')
  --nj N                  Parallel jobs (${nj})
  --teacher_speakers FILE Speakers set aside for a KD teacher ('${teacher_speakers}')
  --asr_config FILE       Model config of the AL rounds (${asr_config})
  --teacher_config FILE   KD teacher config (${teacher_config})
  --teacher_opts STR      Extra asr_train options of the teacher ('${teacher_opts}')
  --teacher_model PATH    Trained teacher: zoo zip or exp dir ('${teacher_model}')
  --teacher_checkpoint F  Teacher model file in its exp dir (${teacher_checkpoint})
  --teacher_cache BOOL    Cache the teacher's top-k posteriors once (${teacher_cache})
  --kd_topk N             Posteriors per frame in the cache (${kd_topk})
  --ngpu N                GPUs for training (${ngpu})
Stages:
  1: data preparation
  2: token list and shape files
  3: KD teacher (trained on a teacher set, or given) -> exp/kd/teacher.yaml
  4: KD teacher posterior cache (exp/kd/cache)
EOF2
)
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/parse_options.sh"

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: data preparation"
    local/data.sh --aishell_dir "${aishell_dir}" --allow_download "${allow_download}" \
        --nj "${nj}" --synth_opts "${synth_opts}" --teacher_speakers "${teacher_speakers}"
fi
teacher_set=""
if [ -d data/train_teacher ]; then
    teacher_set=train_teacher
fi

inputs=exp/asr_inputs
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "Stage 2: token list and shape files in ${inputs}"
    # The teacher and every student share one token list (KD compares their posteriors).
    token_dirs="data/${train_set}"
    shape_dirs="data/${train_set} data/${valid_set}"
    if [ -n "${teacher_set}" ]; then
        token_dirs+=" data/${teacher_set}"
        shape_dirs+=" data/${teacher_set}"
    fi
    # shellcheck disable=SC2086
    python -m espnet_lp.bin.make_asr_inputs --token_list_from ${token_dirs} \
        --output_dir "${inputs}" ${shape_dirs}
fi

kd_dir=exp/kd
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    teacher_spec=""
    if [ -n "${teacher_model}" ]; then
        log "Stage 3: KD teacher given: ${teacher_model}"
        if [ -f "${teacher_model}" ]; then     # an espnet_model_zoo zip
            teacher_spec="zoo_zip: $(realpath "${teacher_model}")"
        elif [ -f "${teacher_model}/config.yaml" ]; then   # an ESPnet exp dir
            teacher_spec="asr_train_config: $(realpath "${teacher_model}/config.yaml")
asr_model_file: $(realpath -s "${teacher_model}/${teacher_checkpoint}")"
        else
            log "Error: --teacher_model ${teacher_model}: neither a zoo zip nor an exp dir" \
                "with config.yaml"
            exit 1
        fi
    elif [ -n "${teacher_set}" ]; then
        log "Stage 3: training the KD teacher on data/${teacher_set} -> exp/teacher"
        # shellcheck disable=SC2086
        python -m espnet_lp.bin.asr_train --config "${teacher_config}" --output_dir exp/teacher \
            --ngpu "${ngpu}" --token_list "${inputs}/token_list" --token_type char \
            --train_data_path_and_name_and_type "data/${teacher_set}/wav.scp,speech,sound" \
            --train_data_path_and_name_and_type "data/${teacher_set}/text,text,text" \
            --valid_data_path_and_name_and_type "data/${valid_set}/wav.scp,speech,sound" \
            --valid_data_path_and_name_and_type "data/${valid_set}/text,text,text" \
            --train_shape_file "${inputs}/${teacher_set}/speech_shape" \
            --train_shape_file "${inputs}/${teacher_set}/text_shape.char" \
            --valid_shape_file "${inputs}/${valid_set}/speech_shape" \
            --valid_shape_file "${inputs}/${valid_set}/text_shape.char" \
            ${teacher_opts}
        teacher_spec="asr_train_config: $(realpath exp/teacher/config.yaml)
asr_model_file: $(realpath -s "exp/teacher/${teacher_checkpoint}")"
    else
        log "Stage 3: no teacher set or model given, skipping the KD teacher"
    fi
    if [ -n "${teacher_spec}" ]; then
        # teacher.yaml is the kd_conf.teacher of every AL round with kd_weight > 0;
        # stage 4 points it at a cache of this model's posteriors.
        mkdir -p "${kd_dir}"
        echo "${teacher_spec}" > "${kd_dir}/teacher_model.yaml"
        cp "${kd_dir}/teacher_model.yaml" "${kd_dir}/.teacher.yaml"
        mv "${kd_dir}/.teacher.yaml" "${kd_dir}/teacher.yaml"
        log "KD teacher: ${kd_dir}/teacher.yaml"
    fi
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    if ! "${teacher_cache}" || [ ! -f "${kd_dir}/teacher_model.yaml" ]; then
        log "Stage 4: no KD teacher (or --teacher_cache false), skipping the teacher cache"
    else
        # The teacher is the same in every round and the rounds train on subsets of these
        # utterances, so its posteriors are computed once here rather than in every round.
        log "Stage 4: caching the KD teacher's top-${kd_topk} posteriors in ${kd_dir}/cache"
        for dset in "${train_set}" "${valid_set}"; do
            logdir=${kd_dir}/cache_log/${dset}
            python -m espnet_lp.bin.split_scp --nj "${nj}" "data/${dset}/wav.scp" "${logdir}"
            pids=()
            for n in $(seq "${nj}"); do
                python -m espnet_lp.bin.kd_cache --teacher_spec "${kd_dir}/teacher_model.yaml" \
                    --data_path_and_name_and_type "data/${dset}/wav.scp,speech,sound" \
                    --key_file "${logdir}/keys.${n}" --topk "${kd_topk}" --ngpu "${ngpu}" \
                    --output_dir "${kd_dir}/cache" > "${logdir}/kd_cache.${n}.log" 2>&1 &
                pids+=($!)
            done
            failed=0
            for pid in "${pids[@]}"; do wait "${pid}" || failed=$((failed + 1)); done
            if [ "${failed}" -gt 0 ]; then
                log "Error: ${failed} of ${nj} kd_cache jobs failed; see ${logdir}/kd_cache.*.log"
                exit 1
            fi
        done
        printf 'cache_dir: %s\ntopk: %s\n' "$(realpath "${kd_dir}/cache")" "${kd_topk}" \
            > "${kd_dir}/.teacher.yaml"
        mv "${kd_dir}/.teacher.yaml" "${kd_dir}/teacher.yaml"
        log "KD teacher: ${kd_dir}/teacher.yaml (the cache)"
    fi
fi
log "Successfully finished"
