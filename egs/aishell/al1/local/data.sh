#!/usr/bin/env bash
# Prepare the AISHELL-1 data directories data/train (the active-learning pool), data/dev and
# data/test, with text normalised for character tokens (no spaces, NFKC).
#
# Usage:
#   local/data.sh --corpus_dir /data/aishell                    # holds data_aishell/, resource_aishell/
#   local/data.sh --corpus_dir downloads --allow_download true   # fetch + verify official archives
#   local/data.sh                                                 # demo: synthetic corpus
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

# shellcheck disable=SC1091
. ./db.sh
# shellcheck disable=SC1091
. ./path.sh

# ---- defaults ------------------------------------------------------------------------------
corpus_dir=${AISHELL}          # corpus; empty: synthetic demo
allow_download=false            # download official archives when corpus_dir is absent
synth_dir=downloads/synth       # where the synthetic demo corpus is generated
synth_opts=""                   # extra generator flags, e.g. "--train_utts 2000 --zh_max_chars 30"
seed=0                          # seed of the synthetic corpus
on_bad=fail                     # fail | skip: bad audio or transcripts
# The official release has audio files without transcripts: skip them (counts are logged).
on_unmatched=skip
audio_check=full                # full | header
nj=2                            # processes for audio checks and synthesis
teacher_speakers=""             # speakers moved from data/train to data/train_teacher (KD)

help_message=$(cat <<EOF2
Usage: $0 [options]
  --corpus_dir DIR       AISHELL-1 corpus (default: '${corpus_dir}'; empty: synthetic demo)
  --allow_download BOOL   Download official archives into corpus_dir if absent (${allow_download})
  --synth_dir DIR         Synthetic demo corpus location (${synth_dir})
  --synth_opts STR        Extra flags for the corpus generator ('${synth_opts}')
  --seed N                Seed of the synthetic corpus (${seed})
  --on_bad fail|skip      Bad audio/transcripts (${on_bad})
  --on_unmatched fail|skip  Unpaired audio/transcripts (${on_unmatched})
  --audio_check full|header (${audio_check})
  --nj N                  Parallel processes (${nj})
  --teacher_speakers FILE Speakers set aside for a KD teacher ('${teacher_speakers}')
EOF2
)
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/parse_options.sh"

if [ -z "${corpus_dir}" ]; then
    log "No corpus given: generating the synthetic AISHELL-1-layout demo corpus in ${synth_dir}"
    # shellcheck disable=SC2086
    python -m espnet_lp.bin.make_synth_corpus --out "${synth_dir}" --seed "${seed}" \
        --languages zh --num_jobs "${nj}" ${synth_opts}
    corpus_dir=${synth_dir}
    # --extra_train_utts in synth_opts adds speakers for a KD teacher; they leave the pool.
    if [ -z "${teacher_speakers}" ] && [ -f "${synth_dir}/synth_meta/aishell_extra_speakers.txt" ]; then
        teacher_speakers=${synth_dir}/synth_meta/aishell_extra_speakers.txt
    fi
elif [ ! -e "${corpus_dir}" ] && [ "${allow_download}" != true ]; then
    log "Error: ${corpus_dir} does not exist (pass --allow_download true to download it)"
    exit 1
fi

log "Data preparation from ${corpus_dir}"
python -m espnet_lp.bin.prepare_data --corpus aishell --corpus_dir "${corpus_dir}" \
    --subsets train dev test --output_dir data --download "${allow_download}" \
    --on_bad "${on_bad}" --on_unmatched "${on_unmatched}" --audio_check "${audio_check}" \
    --num_jobs "${nj}"
if [ -n "${teacher_speakers}" ]; then
    log "Moving the speakers of ${teacher_speakers} from data/train to data/train_teacher"
    python -m espnet_lp.bin.subset_data_dir --spk_list "${teacher_speakers}" data/train \
        data/train_teacher
    # subset_data_dir refuses to overwrite its own input: write beside it, then swap.
    rm -rf data/train.student
    python -m espnet_lp.bin.subset_data_dir --spk_list "${teacher_speakers}" --exclude \
        data/train data/train.student
    rm -rf data/train
    mv data/train.student data/train
fi
log "Successfully finished data preparation"
