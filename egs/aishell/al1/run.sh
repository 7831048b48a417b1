#!/usr/bin/env bash
# Active learning with loss prediction on AISHELL-1 (Mandarin, character tokens).
# The stages are in al.sh (egs/TEMPLATE/al1/al.sh); ./run.sh --help lists every option.
#
# Usage:
#   ./run.sh                                   # demo: a generated corpus in the real layout
#   ./run.sh --corpus_dir /data/aishell        # the real corpus (or set AISHELL in db.sh)
#   ./run.sh --stage 5 --strategies "random loss_prediction" --seeds "0 1 2" --rounds 5
#   cmd_backend=slurm slurm_opts="--partition=cpu" ./run.sh                # on Slurm
#
# Knowledge distillation: a teacher on speakers set aside from the pool (local/data.sh moves
# them to data/train_teacher; the demo corpus makes them with --extra_train_utts):
#   ./run.sh --local_data_opts "--teacher_speakers conf/teacher_speakers.txt" \
#       --teacher_set train_teacher --kd_weight 0.9
set -euo pipefail
# shellcheck disable=SC1091
. ./db.sh

./al.sh --corpus_dir "${AISHELL}" --lang zh --token_type char \
    --pool_set train --valid_set dev --test_sets "dev test" \
    --metric cer --cer_remove_spaces true "$@"
