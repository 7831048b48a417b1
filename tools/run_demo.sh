#!/usr/bin/env bash
# The main job, from a fresh clone: install everything, generate a demo corpus in the real
# LibriSpeech layout, and run the LibriSpeech recipe end to end with the tiny config:
# random, ctc_confidence and loss_prediction, 3 rounds each, then the results table, the
# learning-curve PNG and the espnet_model_zoo export. Progress is logged throughout.
# Outputs stay in the recipe dir (egs/<recipe>/al1/{downloads,data,exp}, git-ignored).
#
# Usage:
#   bash tools/run_demo.sh                 # LibriSpeech recipe (about 14 min on 2 CPU cores)
#   bash tools/run_demo.sh --aishell       # the AISHELL-1 recipe the same way
#   bash tools/run_demo.sh --seeds "0 1"   # other options go to run.sh
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
recipe=librispeech_100
if [ "${1:-}" = --aishell ]; then
    recipe=aishell
    shift
fi
start=$(date +%s)
bash "${repo_root}/tools/install.sh"
# A corpus the tiny model learns something from in minutes: 400 pool utterances (half clean,
# half noisy), 60 per dev/test subset.
synth="--train_utts 400 --dev_utts 60 --test_utts 60 --other_fraction 0.5"
cd "${repo_root}/egs/${recipe}/al1"
# Settings that learn something in minutes on 2 CPU cores (a few hundred utterances):
# characters rather than BPE (CTC CER 0.55 vs 0.75 on 240 utterances, 12 epochs), batches
# of 8, warm-started rounds (conf/al/demo.yaml), and only the test sets decoded per round.
./run.sh --local_data_opts "--synth_opts '${synth}'" \
    --al_config "${repo_root}/conf/al/demo.yaml" --token_type char --asr_opts "--batch_size 8" \
    --test_sets "test_clean test_other" --metric cer --export_verify_num 1 "$@"
echo "Demo finished in $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s:"
echo "  results:        $(pwd)/exp/al/RESULTS.md"
echo "  learning curve: $(pwd)/exp/al/learning_curve.png"
echo "  zoo export:     $(pwd)/exp/export/"
