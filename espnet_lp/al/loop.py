"""The active-learning loop: train, decode, score, select, annotate, round after round.

Round 0 (the seeded initial set) is the same for every strategy: it is trained and decoded
once (``<al_dir>/initial/round0``) and shared. Then, for round r = 0..R and each strategy:
``train`` (r > 0) on the labeled set, ``decode`` the evaluation sets (r > 0), and, for r < R,
``score`` the pool (sharded), ``select`` within the round's budget and ``annotate`` (the
oracle's transcripts make round r + 1's labeled set). Rounds go round-major (every strategy
finishes round r before any starts r + 1), so partial results are comparable.

Each stage is marked done in ``<strategy>/state.json`` only after its outputs exist; a rerun
skips what is done, and ESPnet's own ``--resume true`` continues a killed training. With the
human oracle, ``annotate`` stops a strategy until people's transcripts are imported
(:class:`~espnet_lp.al.oracle.AnnotationPending`); the others go on as far as they can.
"""

import json
import logging
import os
import shutil
import signal
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from espnet_lp.al import config_check, report, selection
from espnet_lp.al.annotation.layout import INITIAL
from espnet_lp.al.commands import decode_sets, decode_wavs, lp_refit_command, score_pool
from espnet_lp.al.commands import train_command
from espnet_lp.al.jobs import run_jobs
from espnet_lp.al.oracle import AbsOracle, AnnotationPending, HumanOracle, Selection
from espnet_lp.al.oracle import SimulatedOracle
from espnet_lp.al.score_files import merge_shards, write_shard
from espnet_lp.al.scoring import STRATEGIES, PoolBatch, Scorer, get_strategy
from espnet_lp.al.scoring import random_scores
from espnet_lp.al.state import ExpDirLock, RunState, StateError, check_partition, read_ids
from espnet_lp.al.state import write_round
from espnet_lp.al.run_config import NOT_HASHED, ALConfig, ALRunError
from espnet_lp.asr.ctc_alignment import geometry_from_config
from espnet_lp.data.asr_inputs import write_shape_files
from espnet_lp.data.datadir import DataDir
from espnet_lp.utils.fileio import atomic_write_text, file_sha1, read_yaml

logger = logging.getLogger(__name__)

__all__ = ["ALConfig", "ALRun", "ALRunError"]


def _stage_key(r: int, stage: str) -> str:
    return f"round{r}/{stage}"


class ALRun:
    """Runs :class:`ALConfig` in ``al_dir`` (resumable; one run at a time per dir)."""

    def __init__(self, config: ALConfig, al_dir: Path, oracle: Optional[AbsOracle] = None):
        config.check()
        self.cfg = config
        self.dir = Path(al_dir)
        self.pool = DataDir.read(config.train_set)
        if self.pool.utt2dur is None:
            raise ALRunError(f"{config.train_set}: no utt2dur (prepare_data writes it)")
        # the digest every state of this dir carries (see _run_digest)
        self.digest, self._started_with = self._run_digest()
        self.oracle = oracle or self._default_oracle()
        self.durations = self.pool.utt2dur
        # how many encoder frames the model makes of an utterance: transcripts that CTC
        # cannot align to theirs are warned about when a training set is written
        self.geometry = geometry_from_config(
            read_yaml(config.train_config, ALRunError, "training config") or {})
        self._start = time.perf_counter()
        # for the time-left estimate: seconds taken by each kind of stage, and how many of
        # each kind are left (round 0: annotate, train, decode once; per strategy: share,
        # then R x score, select, annotate, train, decode)
        self._stage_seconds: Dict[str, List[float]] = {}
        n, r = len(config.strategies_to_run()), config.rounds
        self._stages_left = {"share": n, "score": n * r, "select": n * r,
                             "annotate": 1 + n * r, "train": 1 + n * r, "decode": 1 + n * r}

    def _default_oracle(self) -> AbsOracle:
        if self.cfg.oracle == "simulated":
            return SimulatedOracle(self.pool, self.cfg.train_set)
        return HumanOracle(self.dir, self.pool, self.cfg.train_set, self.cfg.token_list,
                           self.digest, self.cfg.seed,
                           lambda model, wavs, out: decode_wavs(self.cfg, model, wavs, out))

    # ---- driver ------------------------------------------------------------------------
    def run(self) -> Path:
        """Run (or resume) every round of every strategy; write the report; return its path.

        Raises:
            AnnotationPending: Selections wait for people's transcripts (human oracle): every
                strategy went as far as it could; rerun after ``al_annotate import``.
        """
        with ExpDirLock(self.dir):
            self._claim()
            self._write_shapes(DataDir.read(self.cfg.valid_set), self.dir / "shapes" / "valid")
            self._initial_round()
            waiting: Dict[str, AnnotationPending] = {}
            for r in range(self.cfg.rounds + 1):
                for strategy in self.cfg.strategies_to_run():
                    if strategy in waiting:
                        continue
                    try:
                        self._round(strategy, r)
                    except AnnotationPending as e:
                        waiting[strategy] = e
            if waiting:
                raise AnnotationPending([p for e in waiting.values() for p in e.pending],
                                        self.dir)
            sets = [Path(s).name for s in self.cfg.test_sets]
            paths = report.write_report(self.dir, sets, self.cfg.metric, self.dir)
        return paths["markdown"]

    def _run_digest(self):
        """This dir's digest, and the training config path the dir was started with when
        that differs from this run's (else None).

        The training config counts by its path (``ALConfig.digest``), so a run continued from
        another checkout (or a moved one) would be refused as "other settings". When the
        stored settings differ only in that path and the file there had the bytes this run's
        has now (the fingerprint ``config.yaml`` recorded), it is the same run: it keeps the
        stored digest, and ``config.yaml`` keeps the path it was started with.

        Strategies may join a run: each has its own dir and shares only round 0, so a list
        that holds every strategy the dir has (in any order) and adds others is the same
        experiment. The dir keeps its digest (every state carries it) and ``config.yaml``
        records the newcomers under ``added_strategies``. A list that drops one is refused
        (``_claim``; ``--only_strategies`` runs a part of the list).
        """
        digest = self.cfg.digest()
        config = self.dir / "config.yaml"
        if not config.is_file():
            return digest, None
        try:
            old = read_yaml(config, StateError, "run config")
        except StateError:
            return digest, None  # _claim reports it
        if not isinstance(old, dict):
            return digest, None
        compared = self._as_recorded(_recorded_strategies(old))
        if compared.digest() == old.get("digest"):
            return old["digest"], None
        started_with = old.get("train_config")
        inputs = old.get("inputs") if isinstance(old.get("inputs"), dict) else {}
        if (not isinstance(started_with, str) or started_with == self.cfg.train_config
                or started_with not in inputs
                or replace(compared, train_config=started_with).digest() != old.get("digest")):
            return digest, None
        try:
            now = file_sha1(self.cfg.train_config)
        except OSError:
            return digest, None  # the config check names the missing file
        if now != inputs[started_with]:
            return digest, None  # another config: refused as other settings
        logger.info("%s: started with the training config %s, the same file as %s now",
                    config, started_with, self.cfg.train_config)
        return old["digest"], started_with

    def _as_recorded(self, recorded) -> ALConfig:
        """This run's settings with the strategy list the dir's digest was made with, when
        this run's list holds every strategy the dir records (``recorded``, from
        :func:`_recorded_strategies`); else this run's own settings."""
        if recorded is not None and set(recorded[0] + recorded[1]) <= set(self.cfg.strategies):
            return replace(self.cfg, strategies=list(recorded[0]))
        return self.cfg

    def _claim(self) -> None:
        config = self.dir / "config.yaml"
        inputs = config_check.input_fingerprints(self.cfg)
        text = yaml.safe_dump({"digest": self.digest, **asdict(self.cfg),
                               "inputs": inputs}, sort_keys=False)
        if os.path.lexists(config):
            old = read_yaml(config, StateError, "run config")
            recorded = _recorded_strategies(old) if isinstance(old, dict) else None
            if isinstance(old, dict) and recorded is None and "strategies" in old:
                raise StateError(f"{config}: strategies / added_strategies are not lists of "
                                 f"strategy names ({old.get('strategies')!r} / "
                                 f"{old.get('added_strategies')!r}); restore them, or remove "
                                 "the dir to start over")
            dropped = [] if recorded is None else [
                s for s in recorded[0] + recorded[1] if s not in self.cfg.strategies]
            if dropped:
                raise StateError(f"{config}: this exp dir's strategies are "
                                 f"{', '.join(recorded[0] + recorded[1])}; --strategies drops "
                                 f"{', '.join(dropped)}: keep them all (add others if you "
                                 "like) and run a part with --only_strategies")
            if not isinstance(old, dict) or old.get("digest") != self.digest:
                raise StateError(f"{config}: this exp dir was made with other settings"
                                 f"{_settings_diff(old, asdict(self._as_recorded(recorded)))}"
                                 "; use another --al_dir, or remove it to start over")
            stored = old.get("inputs")
            if self._started_with is not None:  # compare the same file under its new path
                stored = {(self.cfg.train_config if k == self._started_with else k): v
                          for k, v in stored.items()}
            config_check.check_inputs_unchanged(stored, inputs, config)
            if recorded is not None and (recorded[1]
                                         or list(self.cfg.strategies) != recorded[0]):
                self._add_strategies(config, old, recorded)
                return  # config.yaml keeps the list the digest was made with
            if self._started_with is not None:
                return  # config.yaml keeps the settings the dir was started with
        atomic_write_text(config, text)

    def _add_strategies(self, config: Path, old: Dict, recorded) -> None:
        """Record the strategies this run adds to the dir's (``recorded``) under
        ``added_strategies``, once the shared round 0 is known to serve them."""
        started, added = recorded
        new = [s for s in self.cfg.strategies if s not in started + added]
        if not new:
            return
        lp = [s for s in new if get_strategy(s).uses_lp_heads]
        if (lp and self.cfg.lp_refit
                and not any(get_strategy(s).uses_lp_heads for s in started + added)
                and self._state(INITIAL).is_done(_stage_key(0, "train"))):
            raise StateError(f"{config}: {lp[0]} cannot join this run: its round 0 was trained "
                             f"when none of its strategies ({', '.join(started + added)}) "
                             "scored with the LP heads, so they were not refit (lp_refit); "
                             "use another --al_dir")
        atomic_write_text(config, yaml.safe_dump({**old, "added_strategies": added + new},
                                                 sort_keys=False))
        logger.info("%s: %s join the run's strategies (%s); round 0 is shared", config,
                    ", ".join(new), ", ".join(started + added))

    def _state(self, name: str) -> RunState:
        return RunState(self.dir / name / "state.json", self.digest, self.cfg.seed)

    def _do(self, state: RunState, r: int, stage: str, what: str, fn) -> None:
        key = _stage_key(r, stage)
        self._stages_left[stage] -= 1
        if state.is_done(key):
            return
        start = time.perf_counter()
        fn()
        if os.environ.get("ESPNET_LP_FAULT_AFTER") == f"{what}/{key}":  # fault-injection tests
            os.kill(os.getpid(), signal.SIGKILL)  # outputs written, stage not yet marked done
        state.mark_done(key)
        took = time.perf_counter() - start
        self._stage_seconds.setdefault(stage, []).append(took)
        left = self._time_left()
        logger.info("%s round %d/%d %s: %.0f s (elapsed %.1f min, about %.0f min left)", what,
                    r, self.cfg.rounds, stage, took, (time.perf_counter() - self._start) / 60,
                    left / 60)

    def _time_left(self) -> float:
        """Seconds left: stages to go times the mean time of their kind so far (the mean of
        all kinds for a kind not run yet)."""
        seen = [t for times in self._stage_seconds.values() for t in times]
        overall = sum(seen) / len(seen)
        return sum(left * (sum(self._stage_seconds[k]) / len(self._stage_seconds[k])
                           if k in self._stage_seconds else overall)
                   for k, left in self._stages_left.items())

    # ---- round 0, shared ----------------------------------------------------------------
    def _initial_round(self) -> None:
        state = self._state(INITIAL)
        rdir = self.dir / INITIAL / "round0"
        self._do(state, 0, "annotate", INITIAL, lambda: self._write_initial(rdir))
        # this list holds every strategy the dir has (_claim refuses one that drops some)
        lp = any(get_strategy(s).uses_lp_heads for s in self.cfg.strategies)
        self._do(state, 0, "train", INITIAL, lambda: self._train(rdir, None, lp))
        self._do(state, 0, "decode", INITIAL, lambda: self._decode(rdir, INITIAL, 0))

    def _write_initial(self, rdir: Path) -> None:
        budget = selection.Budget.from_config(self.cfg.initial, "initial")
        labeled = selection.initial_set(self.durations, budget, self.cfg.seed)
        if not labeled:
            raise ALRunError(f"the initial budget ({budget.describe()}) selects nothing")
        self._write_round(Selection(INITIAL, 0, rdir, labeled, rdir))

    def _write_round(self, sel: Selection) -> None:
        """The labeled data dir and lists of ``sel.output_dir``: what was labeled before,
        plus the oracle's transcripts of the selection."""
        before = {} if sel.labeled_before is None else DataDir.read(sel.labeled_before).text
        write_round(sel.output_dir, self.pool, {**before, **self.oracle.transcribe(sel)})

    # ---- one round of one strategy ----------------------------------------------------
    def _round(self, strategy: str, r: int) -> None:
        state = self._state(strategy)
        rdir = self.dir / strategy / f"round{r}"
        if r == 0:
            self._do(state, 0, "share", strategy, lambda: self._share_initial(strategy))
        else:
            prev = self.dir / strategy / f"round{r - 1}" / "model"
            init = prev if self.cfg.retrain == "warm_start" else None
            lp = get_strategy(strategy).uses_lp_heads
            self._do(state, r, "train", strategy, lambda: self._train(rdir, init, lp))
            self._do(state, r, "decode", strategy, lambda: self._decode(rdir, strategy, r))
        if r == self.cfg.rounds:
            return
        self._check_lists(rdir)
        self._do(state, r, "score", strategy, lambda: self._score(rdir, strategy, r))
        self._do(state, r, "select", strategy, lambda: self._select(rdir, strategy, r))
        self._do(state, r, "annotate", strategy, lambda: self._write_round(
            self._selection(strategy, r)))

    def _selection(self, strategy: str, r: int) -> Selection:
        rdir = self.dir / strategy / f"round{r}"
        scores = {}
        for line in (rdir / "selected").read_text(encoding="utf-8").splitlines():
            utt, score, _ = line.split()
            scores[utt] = float(score)
        return Selection(strategy, r, rdir, list(scores), self.dir / strategy / f"round{r + 1}",
                         scores, rdir / "model", rdir / "data" / "labeled")

    def _share_initial(self, strategy: str) -> None:
        """Round 0 of a strategy is the shared one: same lists, model, metrics."""
        src, rdir = self.dir / INITIAL / "round0", self.dir / strategy / "round0"
        shutil.rmtree(rdir, ignore_errors=True)
        rdir.mkdir(parents=True)
        for name in ("labeled", "pool"):
            shutil.copyfile(src / name, rdir / name)
        shutil.copytree(src / "data" / "labeled", rdir / "data" / "labeled")
        (rdir / "model").symlink_to(Path("..", "..", INITIAL, "round0", "model"))
        metrics = json.loads((src / "shared_metrics.json").read_text())
        metrics.update(strategy=strategy,
                       simulation_only=get_strategy(strategy).simulation_only)
        atomic_write_text(rdir / "metrics.json", json.dumps(metrics, indent=1) + "\n")

    def _check_lists(self, rdir: Path) -> None:
        check_partition(read_ids(rdir / "labeled"), read_ids(rdir / "pool"),
                        self.pool.wav_scp, str(rdir))

    # ---- stages ------------------------------------------------------------------------
    def _train(self, rdir: Path, init_from: Optional[Path], scored_by_lp: bool) -> None:
        """Train the round's model (and refit its LP heads if the pool is scored by them)."""
        labeled = DataDir.read(rdir / "data" / "labeled")
        train = labeled
        if self.cfg.kd_pool and self.cfg.kd_weight > 0:
            train = labeled.with_untranscribed(self.pool.subset(read_ids(rdir / "pool")))
        train.write(rdir / "data" / "train")
        self._write_shapes(train, rdir / "shapes" / "train")
        cmd = train_command(self.cfg, rdir / "data" / "train", rdir / "shapes" / "train",
                            self.dir / "shapes" / "valid", rdir / "model", init_from)
        run_jobs([cmd], [rdir / "model" / "train.log"], backend=self.cfg.job_backend(),
                 ngpu=self.cfg.ngpu)
        if self.cfg.lp_refit and scored_by_lp:
            refit = lp_refit_command(self.cfg, rdir / "model")
            if refit is not None:
                run_jobs([refit], [rdir / "model" / "lp_refit.log"],
                         backend=self.cfg.job_backend(), ngpu=min(self.cfg.ngpu, 1))

    def _write_shapes(self, data: DataDir, out_dir: Path) -> None:
        write_shape_files(data, out_dir, self.cfg.token_list, self.cfg.token_type,
                          self.cfg.bpemodel, geometry=self.geometry)

    def _decode(self, rdir: Path, strategy: str, r: int) -> None:
        labeled = read_ids(rdir / "labeled")
        results = decode_sets(self.cfg, rdir / "model", rdir / "decode")
        metrics = {"strategy": strategy, "seed": self.cfg.seed, "round": r,
                   "labeled_utterances": len(labeled),
                   "labeled_hours": selection.total_hours(labeled, self.durations),
                   "simulation_only": strategy != INITIAL and get_strategy(strategy)
                   .simulation_only, "decode": results}
        # round 0's figures become each strategy's round0/metrics.json (see _share_initial)
        name = "shared_metrics.json" if strategy == INITIAL else "metrics.json"
        atomic_write_text(rdir / name, json.dumps(metrics, indent=1) + "\n")

    def _score(self, rdir: Path, strategy: str, r: int) -> None:
        pool_ids = read_ids(rdir / "pool")
        if not pool_ids:  # everything is labeled: nothing to score
            for job in range(1, self.cfg.nj + 1):
                atomic_write_text(rdir / "scores" / f"score.{job}", "")
        elif not get_strategy(strategy).needs_model:
            # random: the same hash of (seed, round, id) al_score computes, without starting
            # jobs that would load a model and read audio for nothing
            out = random_scores(Scorer(None, self.cfg.seed, r), PoolBatch(pool_ids, None, None))
            (rdir / "scores").mkdir(parents=True, exist_ok=True)
            write_shard(rdir / "scores", 1, pool_ids, out.scores.tolist())
            for job in range(2, self.cfg.nj + 1):
                atomic_write_text(rdir / "scores" / f"score.{job}", "")
        else:
            pool = self.pool.subset(pool_ids)
            if not get_strategy(strategy).simulation_only:
                pool.text = None  # the pool's transcripts are hidden from every real strategy
            pool.write(rdir / "data" / "pool")
            score_pool(self.cfg, strategy, r, rdir / "model", rdir / "data" / "pool",
                       rdir / "scores")
        scores, _ = merge_shards(rdir / "scores", pool_ids, self.cfg.nj)
        atomic_write_text(rdir / "scores.tsv", "".join(f"{u}\t{scores[u]!r}\n"
                                                       for u in sorted(scores)))

    def _select(self, rdir: Path, strategy: str, r: int) -> None:
        pool_ids = read_ids(rdir / "pool")
        scores, embeddings = merge_shards(rdir / "scores", pool_ids, self.cfg.nj)
        spec = get_strategy(strategy)
        diverse = spec.diverse
        acquisition = self.cfg.acquisition
        if acquisition == "typical" and not spec.needs_model:
            acquisition = "topk"  # random, the control, stays a uniform draw (no embeddings)
        chosen = selection.select(
            scores, self.durations,
            selection.Budget.from_config(self.cfg.budget_per_round, "budget_per_round"),
            cost=self.cfg.cost, seed=self.cfg.seed,
            embeddings=embeddings if diverse or acquisition == "typical" else None,
            num_clusters=self.cfg.num_clusters if diverse else 0,
            acquisition=acquisition, beta=self.cfg.acquisition_beta, round_index=r,
            typicality_knn=self.cfg.typicality_knn, typicality_gate=self.cfg.typicality_gate)
        atomic_write_text(rdir / "selected", "".join(
            f"{u} {scores[u]!r} {self.durations[u]:.3f}\n" for u in chosen))
        logger.info("%s: selected %d utterances (%.3f h) of %d", strategy, len(chosen),
                    selection.total_hours(chosen, self.durations), len(pool_ids))


def _recorded_strategies(old: Dict):
    """The strategies a stored ``config.yaml`` holds: the list its digest was made with and
    those added since, or None when it has no list of known strategy names."""
    started, added = old.get("strategies"), old.get("added_strategies", [])
    if not all(isinstance(x, list) and all(isinstance(s, str) and s in STRATEGIES for s in x)
               for x in (started, added)):
        return None
    return list(started), [s for s in added if s not in started]


def _settings_diff(old, new: Dict) -> str:
    """The settings that differ, as ``" (key: old -> new; ...)"`` (empty when unknown).

    Paths count as written; a training config that only moved is the same run
    (``ALRun._run_digest``).
    """
    if not isinstance(old, dict):
        return ""
    changed = [f"{k}: {old[k]!r} -> {v!r}" for k, v in new.items()
               if k in old and old[k] != v and k not in NOT_HASHED]
    return f" ({'; '.join(changed)})" if changed else ""
