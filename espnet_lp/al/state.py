"""Round state on disk: id lists, stages done, and the lock of an active-learning exp dir.

Layout (``exp/al``)::

    .lock                              pid and host of the run that holds the dir
    config.yaml                        the resolved run config (its hash is in every state;
                                       added_strategies: those that joined it later)
    initial/round0/                    round 0: trained and decoded once, shared
    <strategy>/state.json              stages done, config hash, seed
    <strategy>/round<r>/labeled, pool  sorted utterance id lists (never overlapping)
    <strategy>/round<r>/selected       ids chosen this round, with score and duration

A stage is marked done only after its outputs exist (every file is written atomically), so
a rerun after a crash or SIGKILL redoes the first unfinished stage and skips the others.
Utterances are addressed by id, never by position; state is JSON and text, never pickle.
"""

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Dict, Iterable, List

from espnet_lp.data.datadir import DataDir
from espnet_lp.data.kaldi_io import read_id_list
from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.fileio import Pathlike, atomic_write_text, pid_alive


class StateError(EspnetLPError):
    """An exp dir whose state cannot be trusted or used as asked."""


def write_ids(path: Pathlike, ids: Iterable[str]) -> None:
    """A sorted id list, one per line, atomically."""
    atomic_write_text(path, "".join(f"{u}\n" for u in sorted(ids)))


def read_ids(path: Pathlike) -> List[str]:
    """An id list written by :func:`write_ids` (first column of each line)."""
    path = Path(path)
    if not path.is_file():
        raise StateError(f"{path}: missing")
    return read_id_list(path)


def check_partition(labeled: Iterable[str], pool: Iterable[str], universe: Iterable[str],
                    where: str) -> None:
    """Labeled and pool are disjoint and together hold exactly the universe of ids."""
    labeled, pool, universe = set(labeled), set(pool), set(universe)
    both = sorted(labeled & pool)
    if both:
        raise StateError(f"{where}: {len(both)} utterances are both labeled and in the pool, "
                         f"e.g. {both[0]}")
    lost = sorted(universe - labeled - pool)
    if lost:
        raise StateError(f"{where}: {len(lost)} utterances were lost, e.g. {lost[0]}")
    extra = sorted((labeled | pool) - universe)
    if extra:
        raise StateError(f"{where}: {len(extra)} utterances are not in the training pool, "
                         f"e.g. {extra[0]}")


def write_round(rdir: Pathlike, pool: DataDir, text: Dict[str, str]) -> None:
    """A round's labeled set and lists: ``data/labeled`` (the pool's utterances that have a
    transcript in ``text``, with it), ``labeled`` and ``pool`` (the rest), all atomic.

    Args:
        rdir: The round dir.
        pool: The whole training pool.
        text: Every transcript known at this round (earlier rounds' and the new ones).
    """
    rdir = Path(rdir)
    labeled = pool.subset(text)
    labeled.text = {u: text[u] for u in labeled.utt_ids}
    rest = sorted(set(pool.wav_scp) - set(text))
    check_partition(text, rest, pool.wav_scp, str(rdir))
    labeled.write(rdir / "data" / "labeled")
    write_ids(rdir / "pool", rest)
    write_ids(rdir / "labeled", labeled.utt_ids)


class RunState:
    """Which stages of one strategy's run are done (``<strategy>/state.json``).

    Args:
        path: The state file.
        config_hash: Hash of the resolved run config; a state made under another config is
            refused (results would mix two setups).
        seed: The run's seed (kept for the record and checked too).
    """

    def __init__(self, path: Pathlike, config_hash: str, seed: int):
        self.path = Path(path)
        self.config_hash = config_hash
        self.seed = seed
        self.done: List[str] = []
        if self.path.is_file():
            try:
                self.load_state_dict(json.loads(self.path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError) as e:
                raise StateError(f"{self.path}: unreadable state ({e}); remove the exp dir "
                                 "or choose another") from None

    def state_dict(self) -> Dict:
        return {"config_hash": self.config_hash, "seed": self.seed, "done": list(self.done)}

    def load_state_dict(self, state: Dict) -> None:
        if state["config_hash"] != self.config_hash or state["seed"] != self.seed:
            raise StateError(f"{self.path}: made with another configuration or seed; use "
                             "another --al_dir, or remove this one to start over")
        self.done = list(state["done"])

    def is_done(self, stage: str) -> bool:
        return stage in self.done

    def mark_done(self, stage: str) -> None:
        """Record ``stage`` (e.g. ``round2/score``) as finished, atomically."""
        if stage not in self.done:
            self.done.append(stage)
        atomic_write_text(self.path, json.dumps(self.state_dict(), indent=1) + "\n")


class ExpDirLock:
    """Exclusive use of an exp dir by one run (``<dir>/.lock`` holds pid and host).

    A lock whose process no longer exists on this host is stale: it is taken over with a
    warning. A live one (or one from another host) makes the second run stop with a message.
    """

    def __init__(self, exp_dir: Pathlike):
        self.path = Path(exp_dir) / ".lock"
        self.owner = f"{os.getpid()} {socket.gethostname()}"

    def __enter__(self) -> "ExpDirLock":
        from espnet_lp.utils.fileio import path_problem

        problem = path_problem(self.path.parent, "dir")
        if problem not in (None, "not found"):
            raise StateError(f"{self.path.parent}: exp dir {problem}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self._remove_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(self.owner + "\n")
            return self
        raise StateError(f"{self.path}: could not take the lock")

    def _remove_if_stale(self) -> None:
        import logging

        try:
            pid, host = self.path.read_text().split()
        except (OSError, ValueError):
            pid, host = "0", socket.gethostname()  # unreadable or half-written: stale
        if host != socket.gethostname():
            raise StateError(f"{self.path}: held by process {pid} on {host}; if that run is "
                             "dead, remove the file")
        if pid_alive(int(pid)):
            raise StateError(f"{self.path}: another run (pid {pid}) is using "
                             f"{self.path.parent}; wait for it or stop it")
        logging.getLogger(__name__).warning("%s: stale lock of dead process %s, taking over",
                                            self.path, pid)
        self.path.unlink(missing_ok=True)

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(FileNotFoundError):  # removed by hand meanwhile: fine
            if self.path.read_text().strip() == self.owner:
                self.path.unlink()
