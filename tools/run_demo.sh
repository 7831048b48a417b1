#!/usr/bin/env bash
# The main job, from a fresh clone: install everything, then run both recipes on generated
# corpora in the real LibriSpeech and AISHELL-1 layouts (for now: corpus generation, data
# preparation, token list and shape files, i.e. stages 1-2; options go to both run.sh).
#
# Usage:
#   bash tools/run_demo.sh
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "${repo_root}/tools/install.sh"
for recipe in librispeech_100 aishell; do
    (cd "${repo_root}/egs/${recipe}/al1" && ./run.sh "$@")
done
