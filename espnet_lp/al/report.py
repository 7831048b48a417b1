"""Results of active-learning runs: error rates, learning-curve tables, summaries and plots.

The rounds' ``metrics.json`` files are read and checked by :mod:`espnet_lp.al.records`.
"""

import contextlib
import json
import logging
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_lp.al.error_rates import ReportError, error_rates, read_text_file  # noqa: F401
from espnet_lp.al.records import (  # noqa: F401 (the report's public names)
    FIRST_STRATEGIES,
    METRICS,
    SIMULATION_ONLY_STRATEGIES,
    RoundRecord,
    collect,
    read_metrics,
    strategy_label,
    strategy_order,
)
from espnet_lp.utils.fileio import Pathlike, atomic_file, path_problem
from espnet_lp.utils.outputs import atomic_outputs

logger = logging.getLogger(__name__)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ReportError(f"unknown metric {metric!r} (valid: {', '.join(METRICS)})")


# --------------------------------------------------------------------------- curves
def area_under_curve(hours: Sequence[float], values: Sequence[float]) -> float:
    """Mean of a learning curve over its labeled-hours range (trapezoid area / hours span).

    A single point (or a zero span) gives the mean value. Lower is better for error rates.
    """
    _check_curve(hours, values)
    span = hours[-1] - hours[0]
    if span == 0:
        return float(statistics.mean(values))
    area = sum((h1 - h0) * (v0 + v1) / 2
               for h0, h1, v0, v1 in zip(hours, hours[1:], values, values[1:]))
    return area / span


def hours_to_reach(hours: Sequence[float], values: Sequence[float],
                   target: float) -> Optional[float]:
    """Labeled hours at which the curve first gets to ``<= target`` (linear between rounds).

    Returns:
        The hours, or None if the curve never gets there.
    """
    _check_curve(hours, values)
    for i, v in enumerate(values):
        if v <= target:
            if i == 0:
                return float(hours[0])
            h0, h1, v0 = hours[i - 1], hours[i], values[i - 1]
            return h0 + (v0 - target) / (v0 - v) * (h1 - h0)
    return None


def _check_curve(hours: Sequence[float], values: Sequence[float]) -> None:
    if not hours or len(hours) != len(values):
        raise ReportError(f"a curve needs as many hours as values, at least one "
                          f"(got {len(hours)} and {len(values)})")
    if any(h1 < h0 for h0, h1 in zip(hours, hours[1:])):
        raise ReportError(f"labeled hours must not decrease along a curve: {list(hours)}")


@dataclass(frozen=True)
class Curve:
    """One strategy's curve on one set: per round, hours (mean over seeds) and per-seed values."""

    strategy: str
    label: str
    simulation_only: bool
    rounds: List[int]
    hours: List[float]
    per_seed: Dict[int, List[float]]

    @property
    def mean(self) -> List[float]:
        """Mean over seeds per round."""
        return [statistics.mean(vs) for vs in zip(*self.per_seed.values())]


def curves(records: Sequence[RoundRecord], set_name: str, metric: str) -> List[Curve]:
    """Per strategy, the rounds that every seed finished (others are left out with a warning)."""
    _check_metric(metric)
    out = []
    for strategy in strategy_order(records):
        mine = [r for r in records if r.strategy == strategy]
        by_seed: Dict[int, Dict[int, RoundRecord]] = {}
        for r in mine:
            by_seed.setdefault(r.seed, {})[r.round] = r
        rounds = sorted(set.intersection(*(set(d) for d in by_seed.values())))
        if not rounds:
            raise ReportError(f"{strategy}: no round is finished by all of its seeds "
                              f"{sorted(by_seed)}")
        if len(rounds) < max(len(d) for d in by_seed.values()):
            logger.warning("%s: only rounds %s are finished by all %d seeds; curves and "
                           "summary use those", strategy, rounds, len(by_seed))
        hours = [statistics.mean(d[n].labeled_hours for d in by_seed.values()) for n in rounds]
        per_seed = {s: [d[n].value(set_name, metric) for n in rounds]
                    for s, d in sorted(by_seed.items())}
        out.append(Curve(strategy, strategy_label(strategy, records),
                         any(r.simulation_only for r in mine), rounds, hours, per_seed))
    return out


# --------------------------------------------------------------------------- tables
def _pct(values: Sequence[float], n_seeds: int) -> str:
    mean = f"{100 * statistics.mean(values):.2f}"
    if n_seeds <= 1:
        return mean
    std = f" ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{mean}{std} ({len(values)} seed{'s' if len(values) > 1 else ''})"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def results_table(records: Sequence[RoundRecord], sets: Sequence[str], metric: str) -> str:
    """Markdown table: per strategy and round, labeled data and the metric (%) per set.

    With several seeds a cell reads ``mean ± std (n seeds)`` (sample standard deviation).
    """
    _check_metric(metric)
    name = metric.upper()
    lines = [_row(["Strategy", "Round", "Labeled utts", "Labeled hours",
                   *(f"{s} {name} (%)" for s in sets)]),
             _row(["---"] * 2 + ["---:"] * (2 + len(sets)))]
    for strategy in strategy_order(records):
        mine = [r for r in records if r.strategy == strategy]
        n_seeds = len({r.seed for r in mine})
        for rnd in sorted({r.round for r in mine}):
            rs = [r for r in mine if r.round == rnd]
            utts = {r.labeled_utterances for r in rs}
            utts_cell = (str(utts.pop()) if len(utts) == 1 else
                         f"{statistics.mean(r.labeled_utterances for r in rs):.1f}")
            hours = f"{statistics.mean(r.labeled_hours for r in rs):.3f}"
            cells = [_pct([r.value(s, metric) for r in rs], n_seeds) for s in sets]
            lines.append(_row([strategy_label(strategy, records), str(rnd), utts_cell, hours,
                               *cells]))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class StrategySummary:
    """One strategy's learning curve in a few numbers (means over seeds, fractions)."""

    strategy: str
    label: str
    simulation_only: bool
    seeds: int
    final: float
    final_std: Optional[float]
    auc: float
    auc_std: Optional[float]
    hours_to_reach: Optional[float]
    hours_ratio: Optional[float]
    acquired_ratio: Optional[float]
    auc_diff: Optional[float] = None
    auc_diff_std: Optional[float] = None
    auc_diff_seeds: int = 0
    auc_lower_seeds: int = 0


def _mean_std(values: List[float]) -> Tuple[float, Optional[float]]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def summary(records: Sequence[RoundRecord], set_name: str, metric: str,
            baseline: str = "random") -> Tuple[Optional[float], List[StrategySummary]]:
    """Final metric, AUC and labeled hours needed to match the baseline's final metric.

    Final value and AUC are means over seeds; hours-to-reach uses the seed-mean curve, and
    ``hours_ratio`` divides it by the baseline's hours (< 1: fewer labels needed).
    ``acquired_ratio`` does the same with the hours acquired after round 0 (the labeled
    hours less the baseline's round-0 hours, which every strategy shares): the part of the
    labeling budget a strategy needed, which the initial set does not dilute. (Round 0 is
    shared, so every curve starts at the baseline's round-0 hours.)

    ``auc_diff`` is the paired difference of AUC to the baseline: per seed that both ran
    (they share that seed's round 0), the strategy's AUC less the baseline's, then mean and
    sd over those seeds, and in how many of them the strategy's AUC was lower. Seeds differ
    far more from each other than strategies do within a seed, so the unpaired sds of the
    AUCs hide differences that every seed agrees on.

    Returns:
        The target (the baseline's final metric; None without baseline) and one summary per
        strategy in report order.
    """
    all_curves = curves(records, set_name, metric)
    base = next((c for c in all_curves if c.strategy == baseline), None)
    target = base_hours = start = None
    if base is None:
        logger.warning("baseline %r not found: no hours-to-reach comparison", baseline)
    else:
        target = base.mean[-1]
        base_hours = hours_to_reach(base.hours, base.mean, target)
        start = base.hours[0]
    out = []
    for c in all_curves:
        final, final_std = _mean_std([v[-1] for v in c.per_seed.values()])
        auc, auc_std = _mean_std([area_under_curve(c.hours, v) for v in c.per_seed.values()])
        reach = None if target is None else hours_to_reach(c.hours, c.mean, target)
        ratio = reach / base_hours if reach is not None and base_hours else None
        acquired = (max(0.0, reach - start) / (base_hours - start)
                    if reach is not None and base_hours is not None and base_hours > start
                    else None)
        diffs = ([] if base is None else
                 [area_under_curve(c.hours, c.per_seed[seed])
                  - area_under_curve(base.hours, base.per_seed[seed])
                  for seed in sorted(set(c.per_seed) & set(base.per_seed))])
        diff, diff_std = _mean_std(diffs) if diffs else (None, None)
        out.append(StrategySummary(c.strategy, c.label, c.simulation_only, len(c.per_seed),
                                   final, final_std, auc, auc_std, reach, ratio, acquired,
                                   diff, diff_std, len(diffs), sum(d < 0 for d in diffs)))
    return target, out


def paired_diff(s: StrategySummary) -> str:
    """``-0.41 ± 0.30 (3/3)``: the paired AUC difference in points, lower in k of n seeds."""
    if s.auc_diff is None:
        return "n/a"
    sd = "" if s.auc_diff_std is None else f" ± {100 * s.auc_diff_std:.2f}"
    return f"{100 * s.auc_diff:+.2f}{sd} ({s.auc_lower_seeds}/{s.auc_diff_seeds})"


def summary_table(target: Optional[float], rows: Sequence[StrategySummary], metric: str,
                  baseline: str) -> str:
    """Markdown table of :func:`summary`."""
    name = metric.upper()

    def pct(mean: float, std: Optional[float]) -> str:
        return f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")

    def opt(v: Optional[float], fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    reach = ("n/a" if target is None else f"{100 * target:.2f}%")
    lines = [_row(["Strategy", "Seeds", f"Final {name} (%)", f"AUC {name} (%)",
                   f"AUC - {baseline}'s, paired by seed (lower in)",
                   f"Hours to reach {baseline}'s final {name} ({reach})",
                   f"Hours ratio vs {baseline}", f"Acquired-hours ratio vs {baseline}"]),
             _row(["---"] + ["---:"] * 7)]
    for s in rows:
        lines.append(_row([s.label, str(s.seeds), pct(s.final, s.final_std),
                           pct(s.auc, s.auc_std), paired_diff(s),
                           opt(s.hours_to_reach, ".3f"),
                           opt(s.hours_ratio, ".2f"), opt(s.acquired_ratio, ".2f")]))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plot
def plot_learning_curves(records: Sequence[RoundRecord], set_name: str, metric: str,
                         path: Pathlike, atomic: bool = True) -> Path:
    """Draw the metric (%) against labeled hours, one line per strategy, to a PNG (atomic,
    unless ``atomic`` is false: ``path`` is a staged file already).

    Lines are seed means; with several seeds a shaded band spans min to max over seeds.
    Simulation-only strategies are dashed and labelled so.

    Raises:
        ReportError: matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError("matplotlib is needed to draw learning curves (pip install "
                          "matplotlib); or skip the plot (al_report --plot false)") from None
    fig = Figure(figsize=(7.5, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    all_curves = curves(records, set_name, metric)
    for i, c in enumerate(all_curves):
        color = f"C{i % 10}"
        ax.plot(c.hours, [100 * v for v in c.mean], marker="o", color=color, label=c.label,
                linestyle="--" if c.simulation_only else "-")
        if len(c.per_seed) > 1:
            lo = [100 * min(vs) for vs in zip(*c.per_seed.values())]
            hi = [100 * max(vs) for vs in zip(*c.per_seed.values())]
            ax.fill_between(c.hours, lo, hi, color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel("Labeled data (hours)")
    ax.set_ylabel(f"{metric.upper()} (%)")
    ax.set_title(f"{set_name}: {metric.upper()} vs labeled hours")
    ax.grid(alpha=0.3)
    several = any(len(c.per_seed) > 1 for c in all_curves)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=9,
              title="mean over seeds\nband: min–max" if several else None, title_fontsize=9)
    path = Path(path)
    with atomic_file(path) if atomic else contextlib.nullcontext(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


# --------------------------------------------------------------------------- report
HEADER = """# Active-learning results

Source: `{al_dir}` ({n} rounds). {name} in % (lower is better), scored on each set after
training on the labeled set of each round. With several seeds: mean ± sample standard
deviation (n seeds). Strategies marked *simulation only* read the hidden transcripts of the
pool: they are an upper bound, not a usable method.

AUC is the mean {name} over the labeled-hours range (trapezoid area / hours span). Hours to
reach: labeled hours at which the seed-mean curve first reaches the {baseline} baseline's final
{name} (linear between rounds); the hours ratio divides it by the baseline's own (< 1: fewer
labels); the acquired-hours ratio does the same counting only the hours labeled after the
shared round 0. AUC - {baseline}'s: per seed (the strategies of a seed share its round 0),
the strategy's AUC less the baseline's, mean ± sd over seeds, points; in parentheses the
seeds where it was lower, of those both ran.
"""


def write_report(al_dir: Pathlike, sets: Sequence[str], metric: str,
                 output_dir: Optional[Pathlike] = None, baseline: Optional[str] = None,
                 plot: bool = True) -> Dict[str, Path]:
    """Write ``RESULTS.md``, ``results.json`` and ``learning_curve.png`` (first set).

    The files replace an earlier report together (a killed run leaves the earlier one); a
    second run writing the same report at the same time is refused.

    Args:
        al_dir: Directory searched for ``**/metrics.json``.
        sets: Evaluation sets to report, e.g. ``["dev_clean", "test_clean"]``.
        metric: ``wer`` or ``cer``.
        output_dir: Where to write (default: ``al_dir``).
        baseline: Strategy whose final value is the hours-to-reach target; a name that
            was not run is an error. Default: ``random``, when it was run.
        plot: Draw the learning curve (needs matplotlib).

    Returns:
        File kind (``markdown``, ``json``, ``plot``) -> path written.
    """
    _check_metric(metric)
    if not sets:
        raise ReportError("no evaluation sets given")
    out = Path(output_dir if output_dir is not None else al_dir)
    problem = path_problem(out, "dir")
    if problem not in (None, "not found"):
        raise ReportError(f"{out}: output directory {problem}")
    records = collect(al_dir)
    run = strategy_order(records)
    if baseline is not None and baseline not in run:
        raise ReportError(f"--baseline {baseline!r}: no such strategy under {al_dir} (has: "
                          f"{', '.join(run)})")
    baseline = baseline or "random"
    name = metric.upper()
    parts = [HEADER.format(al_dir=al_dir, n=len(records), name=name, baseline=baseline),
             "## Learning curves\n", results_table(records, sets, metric)]
    results = {"al_dir": str(al_dir), "metric": metric, "baseline": baseline,
               "units": "fractions (0.41 = 41%), hours", "sets": {}}
    for s in sets:
        target, rows = summary(records, s, metric, baseline)
        parts += [f"## Summary: {s}\n", summary_table(target, rows, metric, baseline)]
        base_hours = next((r.hours_to_reach for r in rows if r.strategy == baseline), None)
        results["sets"][s] = {"target": target, "baseline_hours": base_hours,
                              "strategies": [asdict(r) for r in rows]}
    paths = {"markdown": out / "RESULTS.md", "json": out / "results.json"}
    if plot:
        paths["plot"] = out / "learning_curve.png"
        parts.append(f"## Plot: {sets[0]}\n\n![learning curve](learning_curve.png)\n")
    with atomic_outputs(files=list(paths.values())) as staged:
        if plot:
            plot_learning_curves(records, sets[0], metric, staged[paths["plot"]], atomic=False)
        staged[paths["json"]].write_text(json.dumps(results, indent=2, ensure_ascii=False)
                                         + "\n", encoding="utf-8")
        staged[paths["markdown"]].write_text("\n".join(parts), encoding="utf-8")
    logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
