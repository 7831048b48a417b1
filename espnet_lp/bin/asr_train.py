#!/usr/bin/env python3
r"""ESPnet's ``asr_train``, with ``model: lp_espnet`` registered (quiet imports).

Once espnet-lp is installed, stock ``python -m espnet2.bin.asr_train`` does the same: this
entry point exists for source checkouts that were not installed (no ``espnet_lp.pth``).
Loss prediction and distillation are options of ``model_conf`` (see the README).

Usage:
    python -m espnet_lp.bin.asr_train --config conf/tuning/train_lp_tiny.yaml \
        --train_data_path_and_name_and_type dump/raw/train/wav.scp,speech,sound ...
    python -m espnet_lp.bin.asr_train --print_config --model lp_espnet
"""

from typing import Optional, Sequence

import espnet_lp  # noqa: F401  (registers lp_espnet when ESPnet's ASR task is imported)
from espnet_lp.utils.cli import run_cli


def get_parser():
    """ESPnet's ASR training parser."""
    from espnet2.tasks.asr import ASRTask

    return ASRTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run ESPnet's ASR training main (a bad model option is one line, not a traceback)."""
    from espnet2.tasks.asr import ASRTask

    run_cli(lambda: ASRTask.main(cmd=cmd))


if __name__ == "__main__":
    main()
