"""Atomic file and directory writes.

Every write in espnet-lp goes through these helpers so that a killed process never leaves a
half-written file or data directory behind: content goes to a temporary sibling first and is
moved into place with ``os.replace`` (atomic on POSIX within one filesystem).
"""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Union

Pathlike = Union[str, Path]


def atomic_write_text(path: Pathlike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically.

    Args:
        path: Destination file.
        text: Full content.
        encoding: Text encoding.
    """
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding=encoding, newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_file(path: Pathlike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write (e.g. with ``torch.save``); it is moved
    to ``path`` when the body succeeds and removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: Pathlike) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``path`` on success.

    If the body raises, the temporary directory is removed and an existing ``path`` is left
    untouched. An existing ``path`` is replaced only after the new one is complete.

    Args:
        path: Final directory.

    Yields:
        The temporary directory to fill.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old.{os.getpid()}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_yaml(path: Pathlike, error: type, what: str):
    """Load a yaml file; a missing file or bad yaml raises ``error`` naming the file.

    Args:
        path: The file.
        error: Exception class to raise (a subclass of ``EspnetLPError``).
        what: What the file is and how to get it, for the missing-file message.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid yaml ({e})") from None
