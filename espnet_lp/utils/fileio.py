"""Atomic, locked file and directory writes, and file problems described for users.

Every write in espnet-lp goes through these helpers, so that

- a killed process (even ``SIGKILL``) never leaves a half-written file or data directory: content
  is built in a temporary sibling and moved into place with ``rename`` (atomic on POSIX within
  one filesystem); several outputs that belong together (the subsets of one ``prepare_data``
  run, a corpus and its metadata) are moved through a journal (:func:`commit`), and the next
  writer of any of them finishes the move a killed run had started;
- temporary leftovers of a killed run are removed by the next run (:func:`remove_stale`);
- two runs writing the same directory do not corrupt it: the second is refused with a message
  (:func:`output_lock`, a ``flock`` that the kernel releases when its holder dies);
- files and directories get the modes the user's umask allows, like any ``open``/``mkdir``.
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import stat
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from espnet_lp.errors import EspnetLPError

Pathlike = Union[str, Path]


class ConcurrentWriteError(EspnetLPError):
    """Another live process is writing the same output."""


# ---- modes ----------------------------------------------------------------------------------
def umask() -> int:
    """The process umask, read without changing it where the kernel tells it (Linux >= 4.7)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _chmod_default(path: Path, directory: bool) -> None:
    """Give a ``mkstemp``/``mkdtemp`` product (0600/0700) the mode ``open``/``mkdir`` would."""
    os.chmod(path, (0o777 if directory else 0o666) & ~umask())


# ---- temporary names, stale leftovers --------------------------------------------------------
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
_TEMP = re.compile(r"^(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+)\.[0-9a-f]+\.(?:tmp|old)$")


def temp_sibling(path: Pathlike, kind: str = "tmp") -> Path:
    """A fresh name ``.<name>.<pid>@<host>.<random>.<kind>`` beside ``path`` (not created)."""
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}@{_HOST}.{uuid.uuid4().hex[:12]}.{kind}"


def _pid_alive(pid: int) -> bool:
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
            if only_dead and (m["host"] != _HOST or _pid_alive(int(m["pid"]))):
                continue
            found.append(path.parent / entry.name)
    return found


def _remove(path: Path) -> None:
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
        _remove(leftover)


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
                if m and m["host"] == _HOST and not _pid_alive(int(m["pid"])):
                    _remove(directory / entry.name)


# ---- locks -----------------------------------------------------------------------------------
_held: Dict[str, List] = {}  # lock file -> [fd, depth, dirs made]: re-entrant in a process


def _lock_file(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _acquire(path: Path) -> bool:
    """Take the lock of ``path``; True if this process did not hold it yet."""
    lock = _lock_file(path)
    key = str(lock.absolute())
    if key in _held:
        _held[key][1] += 1
        return False
    created = _make_parents(lock.parent)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            with contextlib.suppress(OSError, ValueError, IndexError):
                holder = Path(lock).read_text().split()[0]
                raise ConcurrentWriteError(
                    f"{path}: another process (pid {holder}) is writing it; wait until it "
                    "has finished, or write elsewhere") from None
            raise ConcurrentWriteError(f"{path}: another process is writing it; wait until it "
                                       "has finished, or write elsewhere") from None
        # The holder before us may have removed the file it locked: lock what is there now.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {_HOST}\n".encode())
    _held[key] = [fd, 1, created]
    return True


def _release(path: Path) -> None:
    lock = _lock_file(path)
    key = str(lock.absolute())
    entry = _held[key]
    entry[1] -= 1
    if entry[1] == 0:
        del _held[key]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)  # while still holding it: see the check in _acquire
        os.close(entry[0])
        for d in entry[2]:  # a refused or failed run leaves no new empty directory behind
            with contextlib.suppress(OSError):
                os.rmdir(d)


def _make_parents(directory: Path) -> List[Path]:
    """``mkdir -p``; returns the directories it created, deepest first."""
    created = []
    while not directory.is_dir():
        created.append(directory)
        directory = directory.parent
    for d in reversed(created):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d)
    return created


@contextlib.contextmanager
def output_lock(paths: Union[Pathlike, Sequence[Pathlike]]) -> Iterator[None]:
    """Hold an exclusive lock on each output in ``paths`` (re-entrant within a process).

    The lock is ``.<name>.lock`` beside the output, removed on release; the kernel releases it
    when the holder dies, so a killed run never blocks the next. Holding it, a run also
    finishes any commit a killed run left half done (:func:`recover`).

    Raises:
        ConcurrentWriteError: Another live process holds one of the locks.
    """
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    paths = sorted(set(paths), key=lambda p: str(p.absolute()))
    taken: List[Path] = []
    try:
        new = []
        for path in paths:
            if _acquire(path):
                new.append(path)
            taken.append(path)
        for path in new:
            recover(path)
        yield
    finally:
        for path in reversed(taken):
            _release(path)


# ---- commits of several outputs --------------------------------------------------------------
def _journal(path: Path) -> Path:
    return path.parent / f".{path.name}.commit"


def commit(pairs: Sequence[Tuple[Pathlike, Pathlike]], cleanup: Sequence[Pathlike] = ()) -> None:
    """Move staged files/directories onto their final paths as one step, even if killed.

    A journal naming every move is written beside each final path first; a run killed after
    that is finished by the next :func:`output_lock` of any of the paths (roll forward), and
    one killed before leaves the old outputs as they were. An existing output is replaced
    only by a complete new one. The caller holds :func:`output_lock` of every final path.

    Args:
        pairs: ``(staged, final)``; both on one filesystem.
        cleanup: Removed once the moves are done (e.g. the staging directory).
    """
    moves = [[str(Path(s).absolute()), str(Path(f).absolute()),
              str(temp_sibling(f, "old").absolute())] for s, f in pairs]
    record = json.dumps({"moves": moves, "cleanup": [str(Path(c).absolute()) for c in cleanup]})
    for _, final, _ in moves:
        atomic_write_text(_journal(Path(final)), record)
    _roll_forward(moves, [str(Path(c).absolute()) for c in cleanup])


def _roll_forward(moves: List[List[str]], cleanup: List[str]) -> None:
    for staged, final, old in moves:
        if os.path.lexists(staged):
            if os.path.lexists(final) and not os.path.lexists(old):
                os.rename(final, old)
            os.replace(staged, final)
    for _, _, old in moves:
        _remove(Path(old))
    for path in cleanup:
        _remove(Path(path))
    for _, final, _ in moves:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_journal(Path(final)))


def recover(path: Pathlike) -> None:
    """Finish a commit of ``path`` that a killed run left, then remove its leftovers.

    Called by :func:`output_lock`; the caller holds the lock of ``path``.
    """
    path = Path(path)
    journal = _journal(path)
    if journal.is_file():
        try:
            record = json.loads(journal.read_text(encoding="utf-8"))
            moves, cleanup = record["moves"], record["cleanup"]
        except (ValueError, KeyError, TypeError):
            raise EspnetLPError(f"{journal}: unreadable commit journal of an interrupted "
                                f"write; remove it and rewrite {path}") from None
        others = [Path(f) for _, f, _ in moves if Path(f).absolute() != path.absolute()]
        with output_lock(others) if others else contextlib.nullcontext():
            _roll_forward(moves, cleanup)
    remove_stale(path, locked=True)


@contextlib.contextmanager
def atomic_outputs(dirs: Sequence[Pathlike] = (), files: Sequence[Pathlike] = (),
                   remove: Sequence[Pathlike] = ()) -> Iterator[Dict[Path, Path]]:
    """Build directories and files in temporary siblings; move them all into place together.

    Holds :func:`output_lock` of every output throughout. If the body raises, the temporary
    outputs are removed and the existing ones are left untouched.

    Args:
        dirs: Final directories (their staged siblings are created empty).
        files: Final files (their staged siblings are not created).
        remove: Outputs of an earlier run to delete with the same commit (e.g. shards beyond
            the new number of shards).

    Yields:
        final path -> staged path to fill.
    """
    finals = [Path(p) for p in list(dirs) + list(files)]
    if len(set(finals)) != len(finals):
        raise EspnetLPError(f"an output is named twice: {sorted(map(str, finals))}")
    with output_lock(finals + [Path(p) for p in remove]):
        staged: Dict[Path, Path] = {}
        try:
            for d in dirs:
                d = Path(d)
                d.parent.mkdir(parents=True, exist_ok=True)
                staged[d] = temp_sibling(d)
                os.mkdir(staged[d])  # the umask applies
            for f in files:
                Path(f).parent.mkdir(parents=True, exist_ok=True)
                staged[Path(f)] = temp_sibling(f)
            yield staged
        except BaseException:
            for tmp in staged.values():
                _remove(tmp)
            raise
        commit([(staged[f], f) for f in finals if os.path.lexists(staged[f])],
               [p for p in remove if os.path.lexists(p)])


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
