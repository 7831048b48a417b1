"""Kaldi-style data directories in Python: read, write, validate, subset, and corpus preparation."""

from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError

__all__ = ["DataDir", "DataPrepError"]
