"""Worker processes that never outlive the process that started them.

A :class:`concurrent.futures.ProcessPoolExecutor` worker waits for work on a pipe that the
worker itself also holds open, so when its parent is killed (``SIGKILL``, the OOM killer, a
cluster scheduler) it waits forever, possibly in the middle of writing files. Workers started
here ask the kernel to kill them when their parent dies (Linux ``PR_SET_PDEATHSIG``), and
elsewhere watch the parent from a thread; they also ignore ``SIGINT``, which a terminal sends to
the whole process group: the parent handles Ctrl-C and stops them.
"""

import ctypes
import ctypes.util
import logging
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, List

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this process die when ``parent_pid`` (its parent) dies. Call it first thing in a
    child process (a pool ``initializer``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _set_pdeathsig(signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _load_prctl():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()  # bound once: a forked child only calls it


def _set_pdeathsig(sig: int) -> bool:
    return _prctl is not None and _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def child_dies_with_parent() -> None:
    """``preexec_fn`` of :mod:`subprocess`: the child program is killed when this process
    dies (Linux; elsewhere nothing happens)."""
    _set_pdeathsig(signal.SIGKILL)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def process_pool(num_jobs: int) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process and ignore Ctrl-C."""
    return ProcessPoolExecutor(num_jobs, initializer=die_with_parent, initargs=(os.getpid(),))


def parallel_map(fn: Callable, *iterables: Iterable, num_jobs: int = 1,
                 chunksize: int = 1) -> List:
    """``list(map(fn, *iterables))`` in ``num_jobs`` worker processes (in this process when 1).

    On an error or Ctrl-C here, pending work is cancelled instead of being waited for.
    """
    if num_jobs <= 1:
        return list(map(fn, *iterables))
    pool = process_pool(num_jobs)
    try:
        return list(pool.map(fn, *iterables, chunksize=chunksize))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
