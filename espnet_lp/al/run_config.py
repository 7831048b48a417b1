"""The settings of an active-learning run (:class:`ALConfig`) and their checks.

Everything that defines a run's results is here and hashed (:meth:`ALConfig.digest`): a rerun
with other settings is refused instead of mixing two experiments in one exp dir. The checks
against the data live in :mod:`espnet_lp.al.config_check`.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from espnet_lp.al import config_check, report, selection
from espnet_lp.al.jobs import Backend
from espnet_lp.al.oracle import ORACLES
from espnet_lp.al.scoring import get_strategy
from espnet_lp.asr.export import has_lp_decoder
from espnet_lp.asr.lp_refit import MIN_UTTERANCES
from espnet_lp.data.datadir import DataDir
from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.fileio import read_yaml


# Settings that change where and how fast a run goes, not its results: not in the digest.
NOT_HASHED = ("nj", "ngpu", "backend", "slurm_opts", "only_strategies")


class ALRunError(EspnetLPError):
    """A run that cannot go on as configured."""


@dataclass
class ALConfig:
    """Everything that defines an active-learning run (hashed: a rerun must match it).

    Args:
        strategies: Strategy names (``espnet_lp.al.scoring.STRATEGIES``).
        train_set: The training pool's data dir (with the held-back transcripts when the
            oracle is simulated).
        valid_set: Validation data dir of every training.
        test_sets: Data dirs decoded after every training (WER/CER per round).
        token_list: Token list file (shared by every round, and by the teacher).
        train_config: ESPnet training yaml (``model: lp_espnet`` for LP strategies).
        initial: Budget of the seeded initial set, ``{"utterances": N}`` or ``{"hours": H}``.
        budget_per_round: Budget of every round.
        rounds: Acquisition rounds R (R + 1 trainings per strategy).
        cost: ``duration`` (hours budgets rank by usefulness per second) or ``none``.
        retrain: ``scratch`` or ``warm_start`` (from the previous round's model).
        seed: Seed of the initial set, ``random``, ties, and ESPnet training.
        num_clusters: k-means clusters of ``lp_diverse``.
        acquisition: ``topk`` (the best-scored), ``softrank`` (a sample favouring them;
            :func:`espnet_lp.al.selection.softrank_order`) or ``typical`` (the best-scored
            among the typical utterances of each k-means cluster of the pool's encoder
            embeddings, as many clusters as the round's budget holds utterances;
            :func:`espnet_lp.al.clustering.typical_order`), for every strategy but
            ``random``, the control, which stays a uniform draw.
        acquisition_beta: Softrank's sharpness (probability of rank i ~ i ** -beta).
        typicality_knn: ``typical``: neighbours of the typicality estimate (TypiClust's 20).
        typicality_gate: ``typical``: fraction of each cluster, by typicality, that the score
            chooses from.
        token_type, bpemodel: As ESPnet's options.
        train_opts, decode_opts, score_opts: Extra options of asr_train, asr_inference,
            al_score.
        warm_start_opts: Extra asr_train options of the trainings that start from the
            previous round's model (``retrain: warm_start``), after ``train_opts``: a
            fine-tuning needs fewer epochs than a training from scratch.
        nj: Parallel decoding/scoring jobs; ngpu: ESPnet's ``--ngpu`` for training.
        only_strategies: Run only these of ``strategies`` now (empty: all); the others stay
            as far as they got. Round 0 stays shared, so a run split over sessions or
            machines this way is the same run (not hashed).
        backend, slurm_opts: Where jobs run (``local`` or ``slurm``; ``espnet_lp.al.jobs``)
            and extra ``srun`` options.
        teacher_spec: ``exp/kd/teacher.yaml``; with ``kd_weight > 0`` every training distils.
        kd_weight, kd_conf: KD weight and other ``ctc_kl`` options.
        kd_pool: Also train on the pool's audio with the KL term only.
        cer_remove_spaces: CER without spaces (Mandarin).
        metric: What the report's learning curves show: ``wer`` or ``cer``.
        lp_refit: After every training whose model scores the pool with its LP heads, refit
            them on the validation set (``espnet_lp.bin.lp_refit``) and score with those.
        lp_refit_opts: Extra ``lp_refit`` options.
        oracle: Who transcribes a selection: ``simulated`` (the pool's held-back
            transcripts) or ``human`` (export for annotators, stop until
            ``al_annotate import``; see :mod:`espnet_lp.al.oracle`).
    """

    strategies: List[str]
    train_set: str
    valid_set: str
    test_sets: List[str]
    token_list: str
    train_config: str
    initial: Dict = field(default_factory=lambda: {"utterances": 100})
    budget_per_round: Dict = field(default_factory=lambda: {"utterances": 100})
    rounds: int = 3
    cost: str = "duration"
    retrain: str = "scratch"
    seed: int = 0
    num_clusters: int = 8
    acquisition: str = "topk"
    acquisition_beta: float = 1.0
    typicality_knn: int = 20
    typicality_gate: float = 0.5
    token_type: str = "char"
    bpemodel: Optional[str] = None
    train_opts: List[str] = field(default_factory=list)
    decode_opts: List[str] = field(default_factory=lambda: ["--beam_size", "1",
                                                            "--ctc_weight", "1.0"])
    score_opts: List[str] = field(default_factory=list)
    warm_start_opts: List[str] = field(default_factory=list)
    nj: int = 1
    only_strategies: List[str] = field(default_factory=list)
    ngpu: int = 0
    backend: str = "local"
    slurm_opts: str = ""
    teacher_spec: Optional[str] = None
    kd_weight: float = 0.0
    kd_conf: Dict = field(default_factory=dict)
    kd_pool: bool = False
    cer_remove_spaces: bool = False
    metric: str = "wer"
    lp_refit: bool = True
    lp_refit_opts: List[str] = field(default_factory=list)
    oracle: str = "simulated"

    def check(self) -> None:
        """Clear errors for values that cannot work (before anything is written)."""
        self.check_settings()
        self._check_against_data()

    def check_settings(self) -> None:
        """The checks that need no data: types, names, budgets, choices, combinations."""
        config_check.check_types(self)
        for name in self.strategies:
            get_strategy(name)
        if len(set(self.strategies)) != len(self.strategies) or not self.strategies:
            raise ALRunError(f"strategies must be distinct and not empty: {self.strategies}")
        outside = [s for s in self.only_strategies if s not in self.strategies]
        if outside:
            raise ALRunError(f"only_strategies: {outside[0]!r} is not one of the run's "
                             f"strategies ({', '.join(self.strategies)})")
        selection.Budget.from_config(self.initial, "initial")
        selection.Budget.from_config(self.budget_per_round, "budget_per_round")
        try:
            self.job_backend()
        except EspnetLPError as e:
            raise ALRunError(str(e)) from None
        if self.rounds < 0 or self.nj < 1:
            raise ALRunError(f"rounds must be >= 0 and nj >= 1 (got {self.rounds}, {self.nj})")
        if self.retrain not in ("scratch", "warm_start"):
            raise ALRunError(f"retrain must be scratch or warm_start: {self.retrain!r}")
        if self.metric not in report.METRICS:
            raise ALRunError(f"metric must be one of {report.METRICS}: {self.metric!r}")
        if self.cost not in selection.COSTS:
            raise ALRunError(f"cost must be one of {selection.COSTS}: {self.cost!r}")
        if self.acquisition not in selection.ACQUISITIONS:
            raise ALRunError(f"acquisition must be one of {selection.ACQUISITIONS}: "
                             f"{self.acquisition!r}")
        if self.oracle not in ORACLES:
            raise ALRunError(f"oracle must be one of {ORACLES}: {self.oracle!r}")
        hidden = [s for s in self.strategies if get_strategy(s).simulation_only]
        if self.oracle == "human" and hidden:
            raise ALRunError(f"{hidden[0]} reads the pool's hidden transcripts: simulation "
                             "only, not with --oracle human")
        if self.kd_weight > 0 and self.teacher_spec is None:
            raise ALRunError("kd_weight > 0 needs a teacher spec (the recipe's stage 3 writes "
                             "exp/kd/teacher.yaml)")

    def _check_against_data(self) -> None:
        """The data dirs, token list and training config exist and fit the settings."""
        for path in [self.train_set, self.valid_set, *self.test_sets, self.token_list,
                     self.train_config]:
            if not Path(path).exists():
                raise ALRunError(f"{path}: not found")
        pool = DataDir.read(self.train_set)
        if pool.utt2dur is None:
            raise ALRunError(f"{self.train_set}: no utt2dur (prepare_data writes it)")
        config_check.check_budgets(self, pool.utt2dur)
        config_check.check_held_out_sets(self, pool.utt_ids)
        config_check.check_token_list(self)
        config_check.check_sub_options(self)
        scored_by_lp = any(get_strategy(s).uses_lp_heads for s in self.strategies)
        if self.lp_refit and scored_by_lp and has_lp_decoder(
                read_yaml(self.train_config, ALRunError, "training config") or {}):
            n = len(DataDir.read(self.valid_set).utt_ids)
            if n < MIN_UTTERANCES:
                raise ALRunError(f"{self.valid_set}: {n} utterances; refitting the LP heads "
                                 f"(lp_refit) needs at least {MIN_UTTERANCES}: use a larger "
                                 "validation set or --lp_refit false")

    def strategies_to_run(self) -> List[str]:
        """The strategies this invocation runs, in the run's order."""
        if not self.only_strategies:
            return list(self.strategies)
        return [s for s in self.strategies if s in self.only_strategies]

    def job_backend(self) -> Backend:
        """Where this run's jobs go."""
        return Backend(self.backend, self.slurm_opts)

    def digest(self) -> str:
        """Hash of the settings that change results (not parallelism; the oracle, the
        warm-start options and the acquisition settings only when not the default, so that runs
        made before they existed keep their hash)."""
        keep = {k: v for k, v in asdict(self).items() if k not in NOT_HASHED}
        if keep["oracle"] == "simulated":
            del keep["oracle"]
        if not keep["warm_start_opts"]:
            del keep["warm_start_opts"]
        if keep["acquisition"] != "typical":
            del keep["typicality_knn"], keep["typicality_gate"]
        else:
            keep["typicality_gate"] = float(keep["typicality_gate"])
        if keep["acquisition"] != "softrank":
            del keep["acquisition_beta"]
        elif isinstance(keep["acquisition_beta"], (int, float)):
            keep["acquisition_beta"] = float(keep["acquisition_beta"])  # yaml 2 == flag 2.0
        if keep["acquisition"] == "topk":
            del keep["acquisition"]
        return hashlib.sha1(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]
