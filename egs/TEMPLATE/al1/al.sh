#!/usr/bin/env bash
# Active learning for end-to-end ASR with loss prediction: the stages every recipe shares
# (as egs2/TEMPLATE/asr1/asr.sh is for ESPnet). A recipe's run.sh sets its corpus defaults
# and calls this script; recipe directories hold symlinks to it, to path.sh and to
# parse_options.sh.
#
# Stages:
#   1: data: local/data.sh (the recipe's), then the pool subset (--pool_hours)
#   2: token list (BPE or characters) and shape files, in ESPnet's paths and formats
#   3: KD teacher: trained on --teacher_set, or --teacher_model -> exp/kd/teacher.yaml
#   4: KD teacher cache: its top-k posteriors over the pool and the validation set
#   5: active learning, per seed: the initial set, then per round train (+ LP refit),
#      score, select, annotate, decode (espnet_lp.bin.al_run; resumes where it stopped).
#      --oracle human: people transcribe; stage 5 stops when a selection waits for them
#      (exit 0, no later stage), saying what to do; after `al_annotate import`, the same
#      ./run.sh command resumes at stage 5 (exp/al/annotation_pending marks the stop).
#   6: report: RESULTS.md, results.json, learning_curve.png over strategies and seeds
#   7: export: the last round's model of --export_strategy as espnet_model_zoo zips
# Every stage can be rerun; stage 5 continues a killed run.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
min() { if [ "$1" -le "$2" ]; then echo "$1"; else echo "$2"; fi; }

# ---- general -----------------------------------------------------------------------------
stage=1                 # first stage to run
stop_stage=7            # last stage to run
nj=2                    # parallel jobs (decoding, scoring, teacher cache, data checks)
ngpu=0                  # GPUs for training (ESPnet's --ngpu)
# ---- data --------------------------------------------------------------------------------
corpus_dir=""           # corpus location (local/data.sh --corpus_dir); empty: synthetic demo
local_data_opts=""      # extra options of local/data.sh, e.g. "--synth_opts '--train_utts 600'"
pool_set=""             # the active-learning pool: a data dir under data/
pool_hours=""           # keep a seeded subset of this many hours of the pool (empty: all)
valid_set=""            # validation set (model selection, and the LP heads' refit)
test_sets=""            # evaluation sets decoded after every round
lang=en                 # language tag of the stats dir names
# ---- tokens ------------------------------------------------------------------------------
token_type=bpe          # bpe (sentencepiece) or char
nbpe=100                # BPE vocabulary size
bpemode=unigram         # unigram or bpe
# ---- knowledge distillation ---------------------------------------------------------------
teacher_set=""          # data dir to train a KD teacher on (other speakers than the pool)
teacher_config=""       # its model config (default: conf/tuning/train_asr_teacher_cpu.yaml)
teacher_opts=""         # extra asr_train options of the teacher, e.g. "--max_epoch 30"
teacher_model=""        # a trained teacher instead: espnet_model_zoo zip, or ESPnet exp dir
teacher_checkpoint=valid.acc.best.pth   # the teacher's model file in its exp dir
teacher_cache=true      # cache the teacher's posteriors once (stage 4) instead of every round
kd_topk=8               # teacher posteriors kept per frame in the cache
kd_weight=0.0           # > 0: every AL training distils from the teacher
kd_opts=""              # ctc_kl options, e.g. "frame_select=teacher_nonblank temperature=2.0"
kd_pool=false           # also train on the pool's audio (KL term only)
# ---- active learning ------------------------------------------------------------------------
al_config=""            # AL settings yaml (default: conf/al/default.yaml); flags override it
strategies=""           # e.g. "random ctc_confidence loss_prediction" (default: the yaml's)
only_strategies=""      # run only these of the strategies now, the rest later (same run)
seeds="0"               # one AL run per seed (initial set, random, ties, training)
initial_hours=""        # budget of the seeded initial set (or initial_utts)
initial_utts=""
budget_hours=""         # budget of every round (or budget_utts)
budget_utts=""
rounds=""               # acquisition rounds
asr_config=""           # model of every round (default: conf/tuning/train_lp_tiny.yaml)
asr_opts=""             # extra asr_train options of every round, e.g. "--max_epoch 20"
decode_opts="--beam_size 1 --ctc_weight 1.0"   # asr_inference options of every round
score_opts=""           # al_score options, e.g. "--beam_size 4" (least_confidence)
lp_refit=true           # refit the LP heads on the validation set after every training
metric=wer              # wer or cer: what the report's curves show
oracle=simulated        # who transcribes selections: simulated (the pool's held-back
                        # transcripts) or human (Label Studio or a TSV; stage 5 stops for them)
cer_remove_spaces=false # CER without spaces (Mandarin)
# ---- export ------------------------------------------------------------------------------
export_strategy=loss_prediction   # whose last-round model stage 7 exports
export_seed=""          # from which seed's run (default: the first of --seeds)
export_verify_num=3     # utterances stock Speech2Text must decode as the LP model does

# shellcheck disable=SC2034  # read by parse_options.sh
help_message=$(cat <<EOF2
Usage: $0 [options]   (every option also reads --name=value)
General:   --stage N (${stage}) --stop_stage N (${stop_stage}) --nj N (${nj}) --ngpu N (${ngpu})
Data:      --corpus_dir DIR ('${corpus_dir}'; empty: synthetic demo corpus)
           --local_data_opts STR ('${local_data_opts}')  --pool_set NAME ('${pool_set}')
           --pool_hours H ('${pool_hours}'; empty: whole pool)  --valid_set NAME ('${valid_set}')
           --test_sets "A B" ('${test_sets}')  --lang L (${lang})
Tokens:    --token_type bpe|char (${token_type})  --nbpe N (${nbpe})  --bpemode M (${bpemode})
KD:        --teacher_set NAME  --teacher_config FILE  --teacher_opts STR  --teacher_model PATH
           --teacher_checkpoint F (${teacher_checkpoint})  --teacher_cache BOOL (${teacher_cache})
           --kd_topk N (${kd_topk})  --kd_weight W (${kd_weight})  --kd_opts STR  --kd_pool BOOL
AL:        --al_config FILE  --strategies "S1 S2"  --seeds "0 1 2" (${seeds})
           --only_strategies "S1" (run these now; the others later, in the same run)
           (a --strategies list that keeps a finished run's and adds some: the newcomers join it)
           --initial_hours H | --initial_utts N  --budget_hours H | --budget_utts N  --rounds R
           --asr_config FILE  --asr_opts STR  --decode_opts STR ('${decode_opts}')
           --score_opts STR  --lp_refit BOOL (${lp_refit})  --metric wer|cer (${metric})
           --cer_remove_spaces BOOL (${cer_remove_spaces})  --oracle simulated|human (${oracle})
Export:    --export_strategy S (${export_strategy})  --export_seed N
           --export_verify_num N (${export_verify_num})
Jobs run on cmd.sh's backend: cmd_backend=local|slurm, slurm_opts="..." (environment or cmd.sh).
Stages:
  1: data preparation (+ pool subset)    2: token list and shape files
  3: KD teacher                          4: KD teacher cache
  5: active-learning rounds (per seed)   6: report             7: export
EOF2
)

# shellcheck disable=SC1091
. ./path.sh
# shellcheck disable=SC1091
. ./cmd.sh
# shellcheck disable=SC1091
. ./parse_options.sh
if [ $# -gt 0 ]; then
    log "Error: unexpected argument '$1' (options are --name value; see --help)"
    exit 2
fi
for n in stage stop_stage nj ngpu nbpe kd_topk export_verify_num; do
    if ! [[ ${!n} =~ ^[0-9]+$ ]]; then
        log "Error: --${n} must be a non-negative integer, got '${!n}'"
        exit 2
    fi
done
if [ "${nj}" -lt 1 ]; then
    log "Error: --nj must be at least 1, got ${nj}"
    exit 2
fi
if [ "${stage}" -gt 7 ]; then
    log "Error: --stage ${stage}: the last stage is 7"
    exit 2
fi
if [ "${stop_stage}" -lt "${stage}" ]; then
    log "Error: --stop_stage ${stop_stage} is before --stage ${stage}"
    exit 2
fi
for n in pool_set valid_set test_sets; do
    if [ -z "${!n}" ]; then
        log "Error: --${n} is required (run.sh sets it for its corpus)"
        exit 2
    fi
done
teacher_config=${teacher_config:-${MAIN_ROOT}/conf/tuning/train_asr_teacher_cpu.yaml}
asr_config=${asr_config:-${MAIN_ROOT}/conf/tuning/train_lp_tiny.yaml}
al_config=${al_config:-${MAIN_ROOT}/conf/al/default.yaml}
# Option values that may start with "--" go as --name=value (argparse would take "--x" for an option).
launch=(python -m espnet_lp.bin.launch --backend "${cmd_backend}" --slurm_opts="${slurm_opts}")

# The pool the rounds draw from: the whole pool set, or its --pool_hours subset.
al_pool=${pool_set}
if [ -n "${pool_hours}" ]; then
    al_pool=${pool_set}_${pool_hours}h
fi
if [ "${token_type}" = bpe ]; then
    token_dir=data/token_list/bpe_${bpemode}${nbpe}
    stats_dir=exp/asr_stats_raw_${lang}_bpe${nbpe}
    bpemodel=${token_dir}/bpe.model
else
    token_dir=data/token_list/${token_type}
    stats_dir=exp/asr_stats_raw_${lang}_${token_type}
    bpemodel=none
fi
token_list=${token_dir}/tokens.txt
kd_dir=exp/kd
# Written when stage 5 stops for human annotation: the same command then resumes at stage 5.
pending_marker=exp/al/annotation_pending
if [ "${oracle}" = human ] && [ -f "${pending_marker}" ] && [ "${stage}" -lt 5 ] \
        && [ "${stop_stage}" -ge 5 ]; then
    log "Stages ${stage}-4 ran before stage 5 stopped for annotation (${pending_marker}):" \
        "resuming at stage 5 (remove that file to rerun them)"
    stage=5
fi

# A strategy typo is caught now, not after the data and token stages (minutes to hours).
if [ -n "${strategies}${only_strategies}" ] && [ "${stage}" -le 5 ] \
        && [ "${stop_stage}" -ge 5 ]; then
    # shellcheck disable=SC2086
    python -c 'import sys
from espnet_lp.al.scoring import STRATEGIES
bad = [s for s in sys.argv[1:] if s not in STRATEGIES]
if bad:
    sys.exit(f"Error: --strategies/--only_strategies: unknown strategy {bad[0]!r}; valid: "
             + ", ".join(sorted(STRATEGIES)))' ${strategies} ${only_strategies}
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: data preparation"
    # shellcheck disable=SC2086
    eval local/data.sh --corpus_dir "'${corpus_dir}'" --nj "${nj}" ${local_data_opts}
    if [ -n "${pool_hours}" ]; then
        log "Stage 1: a seeded ${pool_hours} h subset of data/${pool_set} -> data/${al_pool}"
        python -m espnet_lp.bin.subset_data_dir --hours "${pool_hours}" --seed 0 \
            "data/${pool_set}" "data/${al_pool}"
    fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "Stage 2: ${token_type} token list in ${token_dir}, shape files in ${stats_dir}"
    # The teacher and every student share one token list (KD compares their posteriors).
    token_dirs="data/${al_pool}"
    shape_dirs="data/${valid_set}"
    if [ -n "${teacher_set}" ]; then
        token_dirs+=" data/${teacher_set}"
        shape_dirs+=" data/${teacher_set}"
    fi
    # shellcheck disable=SC2086
    python -m espnet_lp.bin.make_asr_inputs --token_type "${token_type}" --nbpe "${nbpe}" \
        --bpemode "${bpemode}" --token_list_from ${token_dirs} --token_list_dir "${token_dir}" \
        --shape_dir "${stats_dir}" ${shape_dirs}
fi

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
        if [ ! -f "data/${teacher_set}/wav.scp" ]; then
            log "Error: --teacher_set ${teacher_set}: data/${teacher_set} was not prepared" \
                "(see local/data.sh's options)"
            exit 1
        fi
        log "Stage 3: training the KD teacher on data/${teacher_set} -> exp/teacher" \
            "(log: exp/teacher/train.log)"
        bpe_opts=()
        if [ "${token_type}" = bpe ]; then bpe_opts=(--bpemodel "${bpemodel}"); fi
        # shellcheck disable=SC2086
        "${launch[@]}" --ngpu "${ngpu}" exp/teacher/train.log -- \
            python -m espnet2.bin.asr_train --config "${teacher_config}" \
            --output_dir exp/teacher --ngpu "${ngpu}" --resume true \
            --token_list "${token_list}" --token_type "${token_type}" "${bpe_opts[@]}" \
            --train_data_path_and_name_and_type "data/${teacher_set}/wav.scp,speech,sound" \
            --train_data_path_and_name_and_type "data/${teacher_set}/text,text,text" \
            --valid_data_path_and_name_and_type "data/${valid_set}/wav.scp,speech,sound" \
            --valid_data_path_and_name_and_type "data/${valid_set}/text,text,text" \
            --train_shape_file "${stats_dir}/${teacher_set}/speech_shape" \
            --train_shape_file "${stats_dir}/${teacher_set}/text_shape.${token_type}" \
            --valid_shape_file "${stats_dir}/${valid_set}/speech_shape" \
            --valid_shape_file "${stats_dir}/${valid_set}/text_shape.${token_type}" \
            ${teacher_opts}
        teacher_spec="asr_train_config: $(realpath exp/teacher/config.yaml)
asr_model_file: $(realpath -s "exp/teacher/${teacher_checkpoint}")"
    else
        log "Stage 3: no --teacher_set or --teacher_model: no KD teacher"
    fi
    if [ -n "${teacher_spec}" ]; then
        # teacher.yaml is the kd_conf.teacher of every AL round with kd_weight > 0;
        # stage 4 points it at a cache of this model's posteriors.
        mkdir -p "${kd_dir}"
        echo "${teacher_spec}" > "${kd_dir}/.teacher_model.yaml"
        mv "${kd_dir}/.teacher_model.yaml" "${kd_dir}/teacher_model.yaml"
        cp "${kd_dir}/teacher_model.yaml" "${kd_dir}/.teacher.yaml"
        mv "${kd_dir}/.teacher.yaml" "${kd_dir}/teacher.yaml"
        log "KD teacher: ${kd_dir}/teacher.yaml"
    fi
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    if ! "${teacher_cache}" || [ ! -f "${kd_dir}/teacher_model.yaml" ]; then
        log "Stage 4: no KD teacher (or --teacher_cache false): no teacher cache"
    else
        # The teacher is the same in every round and the rounds train on subsets of these
        # utterances, so its posteriors are computed once here rather than in every round.
        log "Stage 4: caching the KD teacher's top-${kd_topk} posteriors in ${kd_dir}/cache"
        for dset in "${al_pool}" "${valid_set}"; do
            logdir=${kd_dir}/cache_log/${dset}
            _nj=$(min "${nj}" "$(wc -l < "data/${dset}/wav.scp")")
            python -m espnet_lp.bin.split_scp --nj "${_nj}" "data/${dset}/wav.scp" "${logdir}"
            "${launch[@]}" JOB=1:"${_nj}" "${logdir}/kd_cache.JOB.log" -- \
                python -m espnet_lp.bin.kd_cache --teacher_spec "${kd_dir}/teacher_model.yaml" \
                --data_path_and_name_and_type "data/${dset}/wav.scp,speech,sound" \
                --key_file "${logdir}/keys.JOB" --topk "${kd_topk}" --ngpu 0 \
                --output_dir "${kd_dir}/cache"
        done
        printf 'cache_dir: %s\ntopk: %s\n' "$(realpath "${kd_dir}/cache")" "${kd_topk}" \
            > "${kd_dir}/.teacher.yaml"
        mv "${kd_dir}/.teacher.yaml" "${kd_dir}/teacher.yaml"
        log "KD teacher: ${kd_dir}/teacher.yaml (the cache)"
    fi
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    al_opts=(--al_config "${al_config}" --valid_set "data/${valid_set}"
             --train_set "data/${al_pool}" --token_list "${token_list}"
             --token_type "${token_type}" --bpemodel "${bpemodel}" --train_config "${asr_config}"
             --train_opts="${asr_opts}" --decode_opts="${decode_opts}" --score_opts="${score_opts}"
             --lp_refit "${lp_refit}" --metric "${metric}" --cer_remove_spaces "${cer_remove_spaces}"
             --nj "${nj}" --ngpu "${ngpu}" --backend "${cmd_backend}" --slurm_opts="${slurm_opts}"
             --oracle "${oracle}")
    sets=()
    for s in ${test_sets}; do sets+=("data/${s}"); done
    al_opts+=(--test_sets "${sets[@]}")
    # shellcheck disable=SC2206
    if [ -n "${strategies}" ]; then al_opts+=(--strategies ${strategies}); fi
    # shellcheck disable=SC2206
    if [ -n "${only_strategies}" ]; then al_opts+=(--only_strategies ${only_strategies}); fi
    if [ -n "${initial_hours}" ]; then al_opts+=(--initial_hours "${initial_hours}"); fi
    if [ -n "${initial_utts}" ]; then al_opts+=(--initial_utts "${initial_utts}"); fi
    if [ -n "${budget_hours}" ]; then al_opts+=(--budget_hours "${budget_hours}"); fi
    if [ -n "${budget_utts}" ]; then al_opts+=(--budget_utts "${budget_utts}"); fi
    if [ -n "${rounds}" ]; then al_opts+=(--rounds "${rounds}"); fi
    if [ "${kd_weight}" != 0 ] && [ "${kd_weight}" != 0.0 ]; then
        if [ ! -f "${kd_dir}/teacher.yaml" ]; then
            log "Error: --kd_weight ${kd_weight} needs a KD teacher (stages 3-4:" \
                "--teacher_set or --teacher_model)"
            exit 1
        fi
        al_opts+=(--teacher_spec "${kd_dir}/teacher.yaml" --kd_weight "${kd_weight}"
                  --kd_opts="${kd_opts}" --kd_pool "${kd_pool}")
    fi
    pending=()
    for seed in ${seeds}; do
        log "Stage 5: active learning, seed ${seed} -> exp/al/seed${seed}"
        rc=0
        python -m espnet_lp.bin.al_run --al_dir "exp/al/seed${seed}" --seed "${seed}" \
            "${al_opts[@]}" || rc=$?
        if [ "${rc}" -eq 3 ]; then   # al_run's EXIT_ANNOTATION_PENDING
            pending+=("exp/al/seed${seed}")
        elif [ "${rc}" -ne 0 ]; then
            exit "${rc}"
        fi
    done
    if [ ${#pending[@]} -gt 0 ]; then
        echo 5 > "${pending_marker}.tmp"
        mv "${pending_marker}.tmp" "${pending_marker}"
        log "Stage 5 stopped for annotation: selections in ${pending[*]} wait for" \
            "transcripts. What to do is said above (and in each annotation/README.txt):" \
            "annotate (Label Studio or the TSV), import with espnet_lp.bin.al_annotate," \
            "then rerun this ./run.sh command with the same options: it resumes at stage 5."
        exit 0
    fi
    rm -f "${pending_marker}"
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    log "Stage 6: report over strategies and seeds -> exp/al/RESULTS.md"
    # shellcheck disable=SC2086
    python -m espnet_lp.bin.al_report --al_dir exp/al --sets ${test_sets} --metric "${metric}" \
        --output_dir exp/al
    cat exp/al/RESULTS.md
    log "Learning curve: $(realpath exp/al/learning_curve.png)"
fi

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    seed=${export_seed:-${seeds%% *}}
    run_dir=exp/al/seed${seed}/${export_strategy}
    last=$(find "${run_dir}" -maxdepth 1 -name 'round*' -type d 2>/dev/null \
        | sed 's/.*round//' | sort -n | tail -1)
    if [ -z "${last}" ] || [ ! -e "${run_dir}/round${last}/model/config.yaml" ]; then
        log "Error: stage 7: no trained model under ${run_dir} (run stage 5 with" \
            "${export_strategy} among the strategies, or set --export_strategy)"
        exit 1
    fi
    model_dir=${run_dir}/round${last}/model
    first_test=${test_sets%% *}
    # the LP heads the pool was scored with: refit ones when the run refit them
    ckpt=()
    if [ -f "${model_dir}/lp_refit.pth" ]; then ckpt=(--asr_model_file lp_refit.pth); fi
    log "Stage 7: exporting ${model_dir} -> exp/export"
    python -m espnet_lp.bin.export_model --exp_dir "${model_dir}" --output_dir exp/export \
        --name "${export_strategy}_round${last}" --verify_wav_scp "data/${first_test}/wav.scp" \
        --verify_num "${export_verify_num}" "${ckpt[@]}"
fi
log "Successfully finished"
