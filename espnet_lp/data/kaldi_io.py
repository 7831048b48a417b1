"""Reading and writing Kaldi two-column text files (``wav.scp``, ``text``, ``utt2spk`` ...)."""

from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from espnet_lp.data.errors import DataPrepError
from espnet_lp.utils.fileio import Pathlike, atomic_write_text, path_problem


def read_kaldi_map(path: Pathlike, allow_empty_value: bool = False) -> Dict[str, str]:
    """Read a ``<key> <value>`` file into an insertion-ordered dict.

    Args:
        path: File to read.
        allow_empty_value: Accept lines with a key only (value ``""``).

    Returns:
        Mapping key -> value (value keeps inner whitespace).

    Raises:
        DataPrepError: Non-UTF-8 bytes, malformed line or duplicate key, naming ``file:line``.
    """
    path = Path(path)
    _check_readable(path)
    out: Dict[str, str] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise DataPrepError(f"{where}: not valid UTF-8 ({e.reason})") from None
            if not line.strip():
                raise DataPrepError(f"{where}: empty line")
            parts = line.split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataPrepError(f"{where}: no value for key {key!r}")
            if key in out:
                raise DataPrepError(f"{where}: duplicate key {key!r}")
            out[key] = value
    return out


def read_id_list(path: Pathlike) -> List[str]:
    """The first field of every line (an id list; extra columns such as scores are ignored).

    Raises:
        DataPrepError: Non-UTF-8 bytes or an empty line, naming ``file:line``.
    """
    _check_readable(Path(path))
    ids = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                fields = raw.decode("utf-8").split()
            except UnicodeDecodeError as e:
                raise DataPrepError(f"{path}:{lineno}: not valid UTF-8 ({e.reason})") from None
            if not fields:
                raise DataPrepError(f"{path}:{lineno}: empty line")
            ids.append(fields[0])
    return ids


def _check_readable(path: Path) -> None:
    problem = path_problem(path)
    if problem is not None:
        raise DataPrepError(f"{path}: {problem}")


def format_kaldi_map(items: Iterable[Tuple[str, str]]) -> str:
    """Format key/value pairs as Kaldi text, sorted by key in C-locale (byte) order.

    Python compares ``str`` by code point, which is the byte order of UTF-8, i.e. what
    ``LC_ALL=C sort`` gives.
    """
    return "".join(f"{k} {v}\n" if v != "" else f"{k}\n" for k, v in sorted(items))


def write_kaldi_map(path: Pathlike, mapping: Dict[str, str]) -> None:
    """Write a mapping sorted by key, atomically."""
    atomic_write_text(path, format_kaldi_map(mapping.items()))
