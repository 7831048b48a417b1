#!/usr/bin/env bash
# Active learning with loss prediction on LibriSpeech (English).
#
# Usage:
#   ./run.sh                                   # demo on a generated corpus in the real layout
#   ./run.sh --librispeech_dir /data/corpus      # the real corpus
#   ./run.sh --stage 1 --stop_stage 1          # only data preparation
#
# Stages:
#   1: data preparation (local/data.sh): Kaldi-style data dirs in data/
#   2: ASR inputs: character token list and shape files in exp/asr_inputs/
#   3: KD teacher: train it on its own labeled set (only when a teacher set is given)
#
# Knowledge distillation (demo): a teacher on synthetic train-clean-360 (other speakers):
#   ./run.sh --teacher_subset train-clean-360 --synth_opts "--extra_train_utts 1200"
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
stop_stage=3            # last stage to run
librispeech_dir=${LIBRISPEECH}   # corpus location; empty: generate the synthetic demo corpus
allow_download=false    # download the official corpus when librispeech_dir does not exist
synth_opts=""           # extra synthetic-corpus flags, e.g. "--train_utts 2000 --other_fraction 0.5"
nj=2                    # parallel jobs
teacher_subset=""       # LibriSpeech subset for a KD teacher (e.g. train-clean-360); empty: none
train_set=train_clean_100   # the active-learning pool
valid_set=dev
asr_config=${MAIN_ROOT}/conf/tuning/train_lp_tiny.yaml      # model of every AL round
teacher_config=${MAIN_ROOT}/conf/tuning/train_lp_tiny.yaml  # KD teacher model
teacher_opts=""         # extra asr_train options of the teacher, e.g. "--max_epoch 30"
ngpu=0                  # GPUs for training

help_message=$(cat <<EOF2
Usage: $0 [options]
  --stage N               First stage (${stage})
  --stop_stage N          Last stage (${stop_stage})
  --librispeech_dir DIR   Corpus location (default: '${librispeech_dir}'; empty: synthetic demo)
  --allow_download BOOL   Download the official corpus if absent (${allow_download})
  --synth_opts STR        Extra flags for the synthetic corpus generator ('${synth_opts}')
  --nj N                  Parallel jobs (${nj})
  --teacher_subset NAME   LibriSpeech subset for a KD teacher ('${teacher_subset}')
  --asr_config FILE       Model config of the AL rounds (${asr_config})
  --teacher_config FILE   KD teacher config (${teacher_config})
  --teacher_opts STR      Extra asr_train options of the teacher ('${teacher_opts}')
  --ngpu N                GPUs for training (${ngpu})
Stages:
  1: data preparation
  2: token list and shape files
  3: KD teacher training (when a teacher set is given)
EOF2
)
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/parse_options.sh"

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: data preparation"
    local/data.sh --librispeech_dir "${librispeech_dir}" --allow_download "${allow_download}" \
        --nj "${nj}" --synth_opts "${synth_opts}" --teacher_subset "${teacher_subset}"
fi
teacher_set=${teacher_subset//-/_}
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

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    if [ -z "${teacher_set}" ]; then
        log "Stage 3: no teacher set given, skipping KD teacher training"
    else
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
        log "KD teacher: exp/teacher/config.yaml, exp/teacher/valid.acc.best.pth (use it with" \
            "kd: ctc_kl, kd_conf.teacher.asr_train_config/asr_model_file)"
    fi
fi
log "Successfully finished"
