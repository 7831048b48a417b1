#!/usr/bin/env python3
"""Train an ASR model with loss prediction (and KD): ESPnet's asr_train plus LP/KD options.

Accepts every option of ``python -m espnet2.bin.asr_train`` plus ``--lp_decoder``,
``--lp_decoder_conf``, ``--kd`` and ``--kd_conf``.

Usage:
    python -m espnet_lp.bin.asr_train --config conf/tuning/train_lp_tiny.yaml \
        --train_data_path_and_name_and_type dump/raw/train/wav.scp,speech,sound ...
    python -m espnet_lp.bin.asr_train --print_config --model lp_espnet --lp_decoder lp_mlp
"""

from typing import Optional, Sequence

from espnet_lp.tasks.asr import LPASRTask


def get_parser():
    """The task's parser (stock ESPnet ASR options + LP/KD options)."""
    return LPASRTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run ESPnet's training main with :class:`LPASRTask`."""
    LPASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
