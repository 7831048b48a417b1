#!/usr/bin/env python3
"""Generate the synthetic LibriSpeech/AISHELL-1 corpora (see espnet_lp.bin.make_synth_corpus).

Usage:
    python tools/make_synth_corpus.py --out DIR --seed N
    python tools/make_synth_corpus.py --help
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from espnet_lp.bin.make_synth_corpus import main  # noqa: E402

if __name__ == "__main__":
    main()
