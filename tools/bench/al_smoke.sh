#!/usr/bin/env bash
# Smoke run of the active-learning loop: 3 strategies x 3 rounds with the tiny config on a
# generated English corpus (600 pool utterances), single seed, 2 CPU cores (~20 min).
# It shows that the loop runs end to end and what it writes; it is not a benchmark (one seed,
# tiny weak models): label-efficiency claims come from tools/bench with several seeds.
#
# Usage:
#   bash tools/bench/al_smoke.sh /tmp/al_smoke      # work dir; results/al_smoke_en.* updated
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=${1:?usage: al_smoke.sh WORK_DIR}
python=${PYTHON:-${repo}/.venv/bin/python}
commit=$(git -C "${repo}" rev-parse --short HEAD)  # the code this run starts with
mkdir -p "${work}" && cd "${work}"

${python} -m espnet_lp.bin.make_synth_corpus --out corpus --languages en --train_utts 600 \
    --other_fraction 0.5 --num_jobs 2
${python} -m espnet_lp.bin.prepare_data --corpus librispeech --corpus_dir corpus \
    --subsets train-clean-100 dev-clean test-clean test-other --output_dir data
${python} -m espnet_lp.bin.make_asr_inputs --token_list_from data/train_clean_100 \
    --token_list_dir inputs
${python} -m espnet_lp.bin.al_run --al_dir al \
    --strategies random ctc_confidence loss_prediction \
    --initial_utts 150 --budget_utts 100 --rounds 3 --seed 0 --metric cer \
    --train_set data/train_clean_100 --valid_set data/dev_clean \
    --test_sets data/dev_clean data/test_clean data/test_other \
    --token_list inputs/tokens.txt --train_config "${repo}/conf/tuning/train_lp_tiny.yaml" \
    --nj 2

out=${repo}/tools/bench/results
{
    echo "# Active-learning smoke run (not a benchmark: one seed, tiny models)"
    echo
    echo "Command: \`bash tools/bench/al_smoke.sh ${work}\` at commit ${commit},"
    echo "$(nproc) CPU cores. 600 generated English pool utterances (half clean, half noisy),"
    echo "initial 150 utterances, 100 per round, 3 rounds, conf/tuning/train_lp_tiny.yaml."
    echo
    sed -e '1d' -e 's|learning_curve.png|al_smoke_en.png|' al/RESULTS.md
} > "${out}/al_smoke_en.md"
cp al/learning_curve.png "${out}/al_smoke_en.png"
cp al/results.json "${out}/al_smoke_en.json"
echo "wrote ${out}/al_smoke_en.{md,png,json}"
