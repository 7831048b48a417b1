#!/usr/bin/env bash
# Active learning with loss prediction on LibriSpeech-100 (English, BPE tokens).
# The stages are in al.sh (egs/TEMPLATE/al1/al.sh); ./run.sh --help lists every option.
#
# Usage:
#   ./run.sh                                   # demo: a generated corpus in the real layout
#   ./run.sh --corpus_dir /data/LibriSpeech    # the real corpus (or set LIBRISPEECH in db.sh)
#   ./run.sh --corpus_dir /data/LibriSpeech --nbpe 5000 \
#       --asr_config ../../../conf/tuning/train_lp_base.yaml --ngpu 1       # real size
#   ./run.sh --stage 5 --strategies "random loss_prediction" --seeds "0 1 2" --rounds 5
#   cmd_backend=slurm slurm_opts="--partition=cpu" ./run.sh                # on Slurm
#
# Knowledge distillation: a teacher on train-clean-360 (other speakers than the pool):
#   ./run.sh --local_data_opts "--teacher_subset train-clean-360" \
#       --teacher_set train_clean_360 --kd_weight 0.9
#   (demo: add --local_data_opts "--teacher_subset train-clean-360 \
#       --synth_opts '--extra_train_utts 1200'")
set -euo pipefail
# shellcheck disable=SC1091
. ./db.sh

./al.sh --corpus_dir "${LIBRISPEECH}" --lang en --token_type bpe --nbpe 100 \
    --pool_set train_clean_100 --valid_set dev \
    --test_sets "dev_clean dev_other test_clean test_other" --metric wer "$@"
