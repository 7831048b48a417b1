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
stop_stage=1            # last stage to run
librispeech_dir=${LIBRISPEECH}   # corpus location; empty: generate the synthetic demo corpus
allow_download=false    # download the official corpus when librispeech_dir does not exist
synth_opts=""           # extra synthetic-corpus flags, e.g. "--train_utts 2000 --other_fraction 0.5"
nj=2                    # parallel jobs

help_message=$(cat <<EOF2
Usage: $0 [options]
  --stage N               First stage (${stage})
  --stop_stage N          Last stage (${stop_stage})
  --librispeech_dir DIR   Corpus location (default: '${librispeech_dir}'; empty: synthetic demo)
  --allow_download BOOL   Download the official corpus if absent (${allow_download})
  --synth_opts STR        Extra flags for the synthetic corpus generator ('${synth_opts}')
  --nj N                  Parallel jobs (${nj})
Stages:
  1: data preparation
EOF2
)
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/parse_options.sh"

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: data preparation"
    local/data.sh --librispeech_dir "${librispeech_dir}" --allow_download "${allow_download}" \
        --nj "${nj}" --synth_opts "${synth_opts}"
fi
log "Successfully finished"
