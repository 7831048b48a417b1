#!/usr/bin/env bash
# Prepare the LibriSpeech-100 data directories:
#   data/train_clean_100 (the active-learning pool), data/dev_clean, data/dev_other,
#   data/dev (= dev_clean + dev_other), data/test_clean, data/test_other
#
# Usage:
#   local/data.sh --corpus_dir /data/LibriSpeech            # existing corpus
#   local/data.sh --corpus_dir downloads --allow_download true
#                                                                # fetch + verify official archives
#   local/data.sh                                                # demo: synthetic corpus
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
corpus_dir=${LIBRISPEECH}  # corpus (LibriSpeech/ or its parent); empty: synthetic demo
allow_download=false            # download official archives when corpus_dir is absent
synth_dir=downloads/synth       # where the synthetic demo corpus is generated
synth_opts=""                   # extra generator flags, e.g. "--train_utts 2000 --other_fraction 0.5"
seed=0                          # seed of the synthetic corpus
on_bad=fail                     # fail | skip: bad audio or transcripts
on_unmatched=fail               # fail | skip: transcripts without audio, audio without transcripts
audio_check=full                # full | header
nj=2                            # processes for audio checks and synthesis
train_sets="train-clean-100"
teacher_subset=""               # also prepare this subset for a KD teacher (e.g. train-clean-360)
eval_sets="dev-clean dev-other test-clean test-other"

help_message=$(cat <<EOF2
Usage: $0 [options]
  --corpus_dir DIR   LibriSpeech corpus (default: '${corpus_dir}'; empty: synthetic demo)
  --allow_download BOOL   Download official archives into corpus_dir if absent (${allow_download})
  --synth_dir DIR         Synthetic demo corpus location (${synth_dir})
  --synth_opts STR        Extra flags for the corpus generator ('${synth_opts}')
  --seed N                Seed of the synthetic corpus (${seed})
  --on_bad fail|skip      Bad audio/transcripts (${on_bad})
  --on_unmatched fail|skip  Unpaired audio/transcripts (${on_unmatched})
  --audio_check full|header (${audio_check})
  --nj N                  Parallel processes (${nj})
  --teacher_subset NAME   Also prepare this subset for a KD teacher ('${teacher_subset}')
EOF2
)
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/parse_options.sh"

if [ -z "${corpus_dir}" ]; then
    log "No corpus given: generating the synthetic LibriSpeech-layout demo corpus in ${synth_dir}"
    # shellcheck disable=SC2086
    python -m espnet_lp.bin.make_synth_corpus --out "${synth_dir}" --seed "${seed}" \
        --languages en --num_jobs "${nj}" ${synth_opts}
    corpus_dir=${synth_dir}
elif [ ! -e "${corpus_dir}" ] && [ "${allow_download}" != true ]; then
    log "Error: ${corpus_dir} does not exist (pass --allow_download true to download it)"
    exit 1
fi

if [ -n "${teacher_subset}" ]; then
    train_sets="${train_sets} ${teacher_subset}"
fi

log "Data preparation from ${corpus_dir}"
# shellcheck disable=SC2086
python -m espnet_lp.bin.prepare_data --corpus librispeech --corpus_dir "${corpus_dir}" \
    --subsets ${train_sets} ${eval_sets} --output_dir data --download "${allow_download}" \
    --on_bad "${on_bad}" --on_unmatched "${on_unmatched}" --audio_check "${audio_check}" \
    --num_jobs "${nj}"
python -m espnet_lp.bin.combine_data_dirs data/dev data/dev_clean data/dev_other
python -m espnet_lp.bin.validate_data_dir data/dev
log "Successfully finished data preparation"
