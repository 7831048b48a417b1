"""Round records of active-learning runs: each finished round's ``metrics.json``, checked.

Every finished round writes a ``metrics.json`` somewhere under the AL directory (the layout
is not assumed; ``**/metrics.json`` is collected, skipping hidden, half-written directories)::

    {"strategy": "loss_prediction", "seed": 0, "round": 2,
     "labeled_utterances": 120, "labeled_hours": 0.31, "simulation_only": false,
     "decode": {"dev_clean": {"wer": 0.41, "cer": 0.2, "utterances": 50}}}

Error rates are fractions (0.41), shown as percentages. ``seed`` may be left out (0) and so
may ``simulation_only`` (false), but ``true_loss`` is always marked simulation only: it
peeks at the hidden transcripts of the pool, so it is an upper bound, not a usable method.
"""

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from espnet_lp.al.error_rates import ReportError
from espnet_lp.utils.fileio import Pathlike

logger = logging.getLogger(__name__)

METRICS = ("wer", "cer")
SIMULATION_ONLY_STRATEGIES = ("true_loss",)
FIRST_STRATEGIES = ("random",)


@dataclass(frozen=True)
class RoundRecord:
    """The result of one AL round, as read from its ``metrics.json``.

    Args:
        strategy: Acquisition strategy name.
        seed: Seed of the run.
        round: Round number (0: the initial labeled set).
        labeled_utterances: Size of the labeled set the model was trained on.
        labeled_hours: Its duration in hours.
        simulation_only: The strategy uses hidden transcripts (an oracle, not a method).
        decode: Set name -> ``{"wer": ..., "cer": ..., "utterances": ...}``.
        path: The ``metrics.json`` it came from.
    """

    strategy: str
    seed: int
    round: int
    labeled_utterances: int
    labeled_hours: float
    simulation_only: bool
    decode: Dict[str, Dict[str, float]] = field(repr=False)
    path: Path

    def value(self, set_name: str, metric: str) -> float:
        """The ``metric`` on ``set_name``; a ReportError names the file if it is missing."""
        scores = self.decode.get(set_name)
        if scores is None:
            raise ReportError(f"{self.path}: no results for set {set_name!r} "
                              f"(has: {', '.join(sorted(self.decode)) or 'none'})")
        v = scores.get(metric)
        if not _is_number(v) or not 0 <= v < math.inf:
            raise ReportError(f"{self.path}: decode.{set_name}.{metric} is {v!r}, "
                              "expected a finite number >= 0")
        return float(v)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _field(data: dict, key: str, kind, path: Path, default=None):
    v = data.get(key, default)
    if kind is float:
        ok = _is_number(v)
    else:
        ok = isinstance(v, kind) and not (kind is int and isinstance(v, bool))
    if not ok:
        raise ReportError(f"{path}: {key!r} is {v!r}, expected {kind.__name__}")
    return v


def read_metrics(path: Pathlike) -> RoundRecord:
    """Read and check one ``metrics.json``; any problem is a ReportError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(data).__name__}")
    decode = _field(data, "decode", dict, path)
    if not all(isinstance(v, dict) for v in decode.values()):
        raise ReportError(f"{path}: 'decode' must map set names to objects of scores")
    strategy = _field(data, "strategy", str, path)
    record = RoundRecord(
        strategy=strategy, seed=_field(data, "seed", int, path, 0),
        round=_field(data, "round", int, path),
        labeled_utterances=_field(data, "labeled_utterances", int, path),
        labeled_hours=float(_field(data, "labeled_hours", float, path)),
        simulation_only=(_field(data, "simulation_only", bool, path, False)
                         or strategy in SIMULATION_ONLY_STRATEGIES),
        decode=decode, path=path)
    if not strategy or record.round < 0 or record.labeled_hours < 0:
        raise ReportError(f"{path}: empty strategy, negative round or negative hours")
    return record


def collect(al_dir: Pathlike) -> List[RoundRecord]:
    """All round records under ``al_dir`` (``**/metrics.json``), in report order.

    Directories whose name starts with ``.`` (half-written, atomic temporaries) are skipped.

    Raises:
        ReportError: No such directory, no results, a malformed file, or two files for the
            same (strategy, seed, round).
    """
    al_dir = Path(al_dir)
    if not al_dir.is_dir():
        raise ReportError(f"{al_dir}: AL directory not found")
    paths = sorted(p for p in al_dir.rglob("metrics.json")
                   if not any(part.startswith(".") for part in p.relative_to(al_dir).parts))
    if not paths:
        raise ReportError(f"{al_dir}: no metrics.json found (has any round finished?)")
    seen: Dict[Tuple[str, int, int], Path] = {}
    records = []
    for path in paths:
        r = read_metrics(path)
        key = (r.strategy, r.seed, r.round)
        if key in seen:
            raise ReportError(f"{path}: duplicate of {seen[key]} (strategy {r.strategy}, "
                              f"seed {r.seed}, round {r.round})")
        seen[key] = path
        records.append(r)
    order = {s: i for i, s in enumerate(strategy_order(records))}
    records.sort(key=lambda r: (order[r.strategy], r.seed, r.round))
    logger.info("%d rounds of %d strategies under %s", len(records), len(order), al_dir)
    return records


def strategy_order(records: Sequence[RoundRecord]) -> List[str]:
    """Random first, then the other methods by name, then simulation-only oracles by name."""
    sim = {r.strategy for r in records if r.simulation_only}
    names = {r.strategy for r in records}
    return sorted(names, key=lambda s: (s not in FIRST_STRATEGIES, s in sim, s))


def strategy_label(strategy: str, records: Sequence[RoundRecord]) -> str:
    """The strategy's name, marked ``(simulation only)`` when it peeks at hidden labels."""
    sim = any(r.simulation_only for r in records if r.strategy == strategy)
    return f"{strategy} (simulation only)" if sim else strategy
