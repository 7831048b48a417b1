#!/usr/bin/env python3
"""Decode with an espnet-lp model: ESPnet's asr_inference, building models with LPASRTask.

Same options as ``python -m espnet2.bin.asr_inference``. Models trained with
``espnet_lp.bin.asr_train`` (``model: lp_espnet`` and an ``lp_decoder``) are rebuilt with their
LP module so every checkpoint weight is restored; decoding itself is ESPnet's.

Usage:
    python -m espnet_lp.bin.asr_inference --asr_train_config exp/asr/config.yaml \
        --asr_model_file exp/asr/valid.acc.ave.pth --output_dir exp/asr/decode \
        --data_path_and_name_and_type data/test/wav.scp,speech,sound --batch_size 1
"""

from typing import Optional, Sequence

import espnet2.bin.asr_inference as stock

from espnet_lp.tasks.asr import LPASRTask


def _use_lp_task() -> None:
    # Speech2Text builds models through the module-level name ASRTask.
    stock.ASRTask = LPASRTask


def get_parser():
    """ESPnet's asr_inference parser."""
    return stock.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run ESPnet's inference main with models built by :class:`LPASRTask`."""
    _use_lp_task()
    stock.main(cmd)


if __name__ == "__main__":
    main()
