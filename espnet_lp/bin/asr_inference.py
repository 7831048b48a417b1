#!/usr/bin/env python3
"""ESPnet's ``asr_inference``, with ``model: lp_espnet`` registered (quiet imports).

Once espnet-lp is installed, stock ``python -m espnet2.bin.asr_inference`` does the same and
restores every LP weight; this entry point exists for source checkouts that were not
installed (no ``espnet_lp.pth``). Decoding itself is ESPnet's.

Usage:
    python -m espnet_lp.bin.asr_inference --asr_train_config exp/asr/config.yaml \
        --asr_model_file exp/asr/valid.acc.ave.pth --output_dir exp/asr/decode \
        --data_path_and_name_and_type data/test/wav.scp,speech,sound --batch_size 1
"""

from typing import Optional, Sequence

import espnet_lp  # noqa: F401  (registers lp_espnet when ESPnet's ASR task is imported)


def get_parser():
    """ESPnet's asr_inference parser."""
    from espnet2.bin.asr_inference import get_parser as stock_parser

    return stock_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run ESPnet's inference main."""
    from espnet2.bin.asr_inference import main as stock_main

    stock_main(cmd)


if __name__ == "__main__":
    main()
