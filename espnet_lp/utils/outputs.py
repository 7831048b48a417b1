"""Outputs written together: locks, journaled commits, recovery after a kill.

- :func:`output_lock`: an exclusive ``flock`` per output (``.<name>.lock`` beside it, removed
  on release); a second writer is refused with a message; the kernel releases the lock when its
  holder dies, so a killed run never blocks the next.
- :func:`commit`: staged files/directories moved onto their final paths through a journal
  (``.<name>.commit`` beside each); every output is replaced atomically (an existing directory
  by an atomic exchange where Linux offers one), and a run killed half way is finished by the
  next writer of any of them (:func:`recover`, called by :func:`output_lock`), which also
  removes what the killed run left (temporary siblings, its lock files).
- :func:`atomic_outputs`: the two together, for commands that write several outputs.
"""

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import functools
import json
import os
import time
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple, Union

from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.fileio import (
    HOST,
    Pathlike,
    atomic_write_text,
    remove_path,
    remove_stale,
    temp_sibling,
)


class ConcurrentWriteError(EspnetLPError):
    """Another live process is writing the same output."""


# ---- locks -----------------------------------------------------------------------------------
_held: Dict[str, List] = {}  # lock file -> [fd, depth, dirs made]: re-entrant in a process


def _forget_locks() -> None:
    """In a forked child: the parent's locks are not the child's (closing the inherited
    descriptors leaves them held by the parent)."""
    for fd, *_ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_forget_locks)


def _lock_file(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _acquire(path: Path, wait: float = 0.0) -> bool:
    """Take the lock of ``path``, waiting up to ``wait`` seconds for another holder; True if
    this process did not hold it yet."""
    lock = _lock_file(path)
    key = str(lock.absolute())
    if key in _held:
        _held[key][1] += 1
        return False
    created = _make_parents(lock.parent)
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            _remove_dirs(created)
            raise ConcurrentWriteError(f"{path}: another process{_holder(lock)} is writing "
                                       "it; wait until it has finished, or write elsewhere") \
                from None
        # The holder before us may have removed the file it locked: lock what is there now.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {HOST}\n".encode())
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
        _remove_dirs(entry[2])  # a refused or failed run leaves no new empty directory


def _remove_dirs(created: List[Path]) -> None:
    for d in created:  # deepest first; only if still empty
        with contextlib.suppress(OSError):
            os.rmdir(d)


def _holder(lock: Path) -> str:
    """`` (pid N)`` or `` (pid N on HOST)`` of a lock's holder, as it wrote it."""
    try:
        pid, host = lock.read_text().split()[:2]
    except (OSError, ValueError):
        return ""
    return f" (pid {pid})" if host == HOST else f" (pid {pid} on {host})"


class OutputPathError(EspnetLPError):
    """An output path that names the wrong kind of thing (a directory for a file, a path
    under a file, or an input of the same command)."""


def _check_parents(path: Path) -> None:
    """Refuse ``path`` when one of its parents is a file (nothing can be created there)."""
    for parent in Path(path).parents:
        if parent.is_dir():
            return
        if os.path.lexists(parent):
            raise OutputPathError(f"{path}: cannot write there, {parent} is a file")


def check_output_kinds(dirs: Sequence[Pathlike] = (), files: Sequence[Pathlike] = ()) -> None:
    """Refuse outputs that would replace the other kind of thing, before anything is written.

    A committed output replaces what is at its path; a directory in the place of an output
    file (or a file in the place of an output directory) is almost always a mistyped argument,
    and replacing it would delete the user's data.

    Raises:
        OutputPathError: Naming the path and what is there.
    """
    for path in map(Path, dirs):
        _check_parents(path)
        if os.path.lexists(path) and not path.is_dir():
            raise OutputPathError(f"{path}: exists and is not a directory (an output "
                                  "directory is wanted here; remove it or name another)")
    for path in map(Path, files):
        _check_parents(path)
        if path.is_dir():
            raise OutputPathError(f"{path}: is a directory (an output file is wanted here; "
                                  "name a file)")


def check_not_an_input(outputs: Sequence[Pathlike], inputs: Sequence[Pathlike]) -> None:
    """Refuse an output that is one of the command's inputs (or holds one): the commit would
    replace the input while it is the source of what replaces it.

    Raises:
        OutputPathError: Naming the output and the input.
    """
    for out in map(Path, outputs):
        target = out.resolve()
        for inp in map(Path, inputs):
            source = inp.resolve()
            if source == target or target in source.parents:
                raise OutputPathError(f"{out}: is also an input of this command ({inp}); "
                                      "write the result elsewhere")


def _make_parents(directory: Path) -> List[Path]:
    """``mkdir -p``; returns the directories it created, deepest first."""
    _check_parents(directory / "x")
    created = []
    while not directory.is_dir():
        created.append(directory)
        directory = directory.parent
    for d in reversed(created):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d)
    return created


@contextlib.contextmanager
def output_lock(paths: Union[Pathlike, Sequence[Pathlike]], wait: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on each output in ``paths`` (re-entrant within a process).

    ``wait``: seconds to wait for another holder (for short critical sections that parallel
    jobs enter together) before giving up.

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
            if _acquire(path, wait):
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
    one killed before leaves the old outputs as they were. Each output is replaced atomically
    (a file by ``rename``, an existing directory by an atomic exchange where the kernel and
    filesystem offer one: Linux ``renameat2``), so at every moment each is wholly old or
    wholly new. The caller holds :func:`output_lock` of every final path.

    Args:
        pairs: ``(staged, final)``; both on one filesystem.
        cleanup: Removed once the moves are done (e.g. the staging directory).
    """
    moves = [{"staged": str(Path(s).absolute()), "final": str(Path(f).absolute()),
              "old": str(temp_sibling(f, "old").absolute()), "inode": _inode(s)}
             for s, f in pairs]
    cleanup = [str(Path(c).absolute()) for c in cleanup]
    record = json.dumps({"moves": moves, "cleanup": cleanup})
    for move in moves:
        atomic_write_text(_journal(Path(move["final"])), record)
    _roll_forward(moves, cleanup)


def _inode(path: Pathlike) -> List[int]:
    st = os.lstat(path)
    return [st.st_dev, st.st_ino]


def _roll_forward(moves: List[Dict], cleanup: List[str]) -> None:
    """Do the moves of a journal that are not done yet (each step can be repeated)."""
    for move in moves:
        staged, final, old = move["staged"], move["final"], move["old"]
        if not os.path.lexists(staged):
            continue  # moved
        if _inode(staged) != move["inode"]:
            remove_path(Path(staged))  # exchanged: it holds the old output
        elif os.path.isdir(staged) and os.path.isdir(final) and not os.path.islink(final) \
                and _exchange(staged, final):
            remove_path(Path(staged))
        else:
            if os.path.isdir(final) and not os.path.islink(final):
                if not os.path.lexists(old):
                    os.rename(final, old)  # no atomic exchange here: a short gap
            os.replace(staged, final)
    for move in moves:
        remove_path(Path(move["old"]))
    for path in cleanup:
        remove_path(Path(path))
    for move in moves:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_journal(Path(move["final"])))


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    kernel, C library or filesystem does not offer it."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), a, None, b)


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def can_exchange(directory: Pathlike) -> bool:
    """Whether directories under ``directory`` are replaced without any gap (for tests)."""
    a, b = temp_sibling(Path(directory) / "x"), temp_sibling(Path(directory) / "y")
    os.mkdir(a)
    os.mkdir(b)
    try:
        return _exchange(str(a), str(b))
    finally:
        os.rmdir(a)
        os.rmdir(b)


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
            if not all({"staged", "final", "old", "inode"} <= set(m) for m in moves):
                raise ValueError("unknown journal format")
        except (ValueError, KeyError, TypeError):
            raise EspnetLPError(f"{journal}: unreadable commit journal of an interrupted "
                                f"write; remove it and rewrite {path}") from None
        others = [Path(m["final"]) for m in moves
                  if Path(m["final"]).absolute() != path.absolute()]
        with output_lock(others) if others else contextlib.nullcontext():
            _roll_forward(moves, cleanup)
    remove_stale(path, locked=True)
    _remove_dead_locks(path.parent)


def _remove_dead_locks(directory: Path) -> None:
    """Remove the lock files killed runs left in ``directory`` (those nobody holds; see the
    inode check of :func:`_acquire`, which makes removing them safe)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if not (entry.name.startswith(".") and entry.name.endswith(".lock")):
                continue
            lock = directory / entry.name
            if str(lock.absolute()) in _held:
                continue
            try:
                fd = os.open(lock, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
            except OSError:
                pass  # held: a live writer
            finally:
                os.close(fd)


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
    check_output_kinds(dirs, files)
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
                remove_path(tmp)
            raise
        commit([(staged[f], f) for f in finals if os.path.lexists(staged[f])],
               [p for p in remove if os.path.lexists(p)])
