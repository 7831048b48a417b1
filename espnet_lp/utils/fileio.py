"""Atomic file and directory writes, and file problems described for users.

Every write in espnet-lp goes through these helpers (or :mod:`espnet_lp.utils.outputs` for
several outputs written together), so that

- a killed process (even ``SIGKILL``) never leaves a half-written file or data directory: content
  is built in a temporary sibling and moved into place with ``rename`` (atomic on POSIX within
  one filesystem);
- temporary leftovers of a killed run are removed by the next run (:func:`remove_stale`);
- two runs writing the same directory do not corrupt it: the second is refused with a message
  (:func:`espnet_lp.utils.outputs.output_lock`);
- files and directories get the modes the user's umask allows, like any ``open``/``mkdir``
  (no ``mkstemp``/``mkdtemp``, which make them private).
"""

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import stat
import uuid
from pathlib import Path
from typing import Iterator, List, Optional, Union

Pathlike = Union[str, Path]


# ---- temporary names, stale leftovers --------------------------------------------------------
HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
_TEMP = re.compile(r"^(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+)\.[0-9a-f]+\.(?:tmp|old)$")


def file_sha1(path: Pathlike) -> str:
    """SHA-1 of a file's bytes (hex): the fingerprint a run records of its inputs."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def temp_sibling(path: Pathlike, kind: str = "tmp") -> Path:
    """A fresh name ``.<name>.<pid>@<host>.<random>.<kind>`` beside ``path`` (not created)."""
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}@{HOST}.{uuid.uuid4().hex[:12]}.{kind}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (one of another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(path: Path, only_dead: bool) -> List[Path]:
    prefix = f".{path.name}."
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            if not entry.name.startswith(prefix):
                continue
            m = _TEMP.match(entry.name[len(prefix):])
            if m is None:
                continue
            if only_dead and (m["host"] != HOST or pid_alive(int(m["pid"]))):
                continue
            found.append(path.parent / entry.name)
    return found


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def remove_stale(path: Pathlike, locked: bool = False) -> None:
    """Remove the temporary siblings of ``path`` that killed runs left.

    Args:
        path: An output file or directory.
        locked: The caller holds :func:`output_lock` of ``path``, so every temporary sibling
            is stale; otherwise only those of processes of this host that no longer exist.
    """
    for leftover in _leftovers(Path(path), only_dead=not locked):
        remove_path(leftover)


# ---- atomic single files ---------------------------------------------------------------------
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
def atomic_file(path: Pathlike, clean: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write (e.g. with ``torch.save``); it is moved
    to ``path`` when the body succeeds and removed when it raises.

    Args:
        path: Destination file; concurrent writers each write their own temporary file, and
            the last to finish wins with a complete file.
        clean: Also remove temporary siblings that dead processes left (one directory
            listing; pass False when writing many files into a large directory, and call
            :func:`remove_stale_in` once instead).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_stale(path)
    tmp = temp_sibling(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_in(directory: Pathlike) -> None:
    """:func:`remove_stale` for every file of ``directory`` at once (one listing)."""
    directory = Path(directory)
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            parts = entry.name.split(".")
            if entry.name.startswith(".") and len(parts) >= 4 and parts[-1] in ("tmp", "old"):
                m = _TEMP.match(".".join(parts[-3:]))
                if m and m["host"] == HOST and not pid_alive(int(m["pid"])):
                    remove_path(directory / entry.name)


@contextlib.contextmanager
def atomic_directory(path: Pathlike) -> Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``path`` on success.

    If the body raises, the temporary directory is removed and an existing ``path`` is left
    untouched. An existing ``path`` is replaced only after the new one is complete. A second
    process writing ``path`` at the same time is refused (:class:`ConcurrentWriteError`).

    Args:
        path: Final directory.

    Yields:
        The temporary directory to fill.
    """
    from espnet_lp.utils.outputs import atomic_outputs

    path = Path(path)
    with atomic_outputs(dirs=[path]) as staged:
        yield staged[path]


# ---- reading ---------------------------------------------------------------------------------
def path_problem(path: Pathlike, kind: str = "file") -> Optional[str]:
    """Why ``path`` cannot be read as a ``kind`` (``file`` or ``dir``), or None if it can.

    Distinguishes what ``Path.is_file`` lumps together as "not found": a symlink loop, a
    dangling symlink, a permission problem, a directory where a file is expected.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"dangling symlink (to {os.readlink(path)}, which does not exist)"
        return "not found"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop"
        if e.errno == errno.EACCES:
            return "permission denied"
        if e.errno == errno.ENOTDIR:
            return "not found (a parent is not a directory)"
        return e.strerror or str(e)
    if kind == "file" and stat.S_ISDIR(st.st_mode):
        return "is a directory, not a file"
    if kind == "dir" and not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if not os.access(path, os.R_OK):
        return "not readable (permission denied)"
    return None


def read_yaml(path: Pathlike, error: type, what: str):
    """Load a yaml file; a missing file or bad yaml raises ``error`` naming the file.

    Args:
        path: The file.
        error: Exception class to raise (a subclass of ``EspnetLPError``).
        what: What the file is and how to get it, for the missing-file message.
    """
    import yaml

    path = Path(path)
    problem = path_problem(path)
    if problem == "not found":
        raise error(f"{path}: {what} not found")
    if problem is not None:
        raise error(f"{path}: {what}: {problem}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid yaml ({_one_line(e)})") from None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
