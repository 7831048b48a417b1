"""Active-learning reports: error rates, curve numbers, tables, plot and CLI.

Every expected number is worked out by hand in the test.
"""

import json
import sys

import pytest

from espnet_lp.al.report import (
    ReportError,
    area_under_curve,
    collect,
    error_rates,
    hours_to_reach,
    paired_diff,
    plot_learning_curves,
    read_text_file,
    results_table,
    summary,
    write_report,
)
from espnet_lp.bin.al_report import main as report_main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# hours per round: 1, 2, 3; dev_clean WER per seed (seed 0, seed 1)
RANDOM = ([0.50, 0.40, 0.30], [0.52, 0.42, 0.32])
LOSS_PREDICTION = ([0.50, 0.35, 0.25], [0.52, 0.37, 0.27])


def write_round(al_dir, strategy, seed, rnd, wer, simulation_only=False, sub=None):
    """One metrics.json at <al_dir>/seed<k>/<strategy>/round<r>/ (or ``sub``)."""
    d = al_dir / (sub or f"seed{seed}/{strategy}/round{rnd}")
    d.mkdir(parents=True, exist_ok=True)
    metrics = {"strategy": strategy, "seed": seed, "round": rnd,
               "labeled_utterances": 40 * (rnd + 1), "labeled_hours": float(rnd + 1),
               "simulation_only": simulation_only,
               "decode": {"dev_clean": {"wer": wer, "cer": wer / 2, "utterances": 50},
                          "test_clean": {"wer": wer + 0.01, "cer": wer / 2, "utterances": 50}}}
    (d / "metrics.json").write_text(json.dumps(metrics))
    return d / "metrics.json"


@pytest.fixture
def al_dir(tmp_path):
    """random and loss_prediction, 2 seeds x 3 rounds each."""
    root = tmp_path / "al"
    for strategy, per_seed in (("random", RANDOM), ("loss_prediction", LOSS_PREDICTION)):
        for seed, wers in enumerate(per_seed):
            for rnd, wer in enumerate(wers):
                write_round(root, strategy, seed, rnd, wer)
    return root


# --------------------------------------------------------------------------- error rates
def test_error_rates_by_hand():
    refs = {"u1": "the cat sat", "u2": "on the mat"}
    hyps = {"u1": "the dog sat", "u2": "on mat"}
    r = error_rates(refs, hyps)
    # words: 1 substitution + 1 deletion over 3 + 3 reference words
    assert r["wer"] == pytest.approx(2 / 6)
    # chars: cat->dog 3 substitutions; "the " 4 deletions; 11 + 10 reference chars
    assert r["cer"] == pytest.approx(7 / 21)
    assert r["utterances"] == 2


def test_empty_hypothesis_is_all_deletions():
    r = error_rates({"a": "a b", "b": "c d"}, {"a": "a b", "b": ""})
    assert r["wer"] == pytest.approx(2 / 4)
    assert r["cer"] == pytest.approx(3 / 6)  # "c d": 3 characters deleted
    assert error_rates({"a": "x y"}, {"a": "  "}) == {"wer": 1.0, "cer": 1.0, "utterances": 1}


def test_mandarin_cer_without_spaces():
    refs = {"m1": "今天 天气 很好"}
    assert error_rates(refs, {"m1": "今天天气很好"}, remove_spaces=True)["cer"] == 0.0
    assert error_rates(refs, {"m1": "今天天汽很好"}, remove_spaces=True)["cer"] == (
        pytest.approx(1 / 6))
    # with spaces kept, the two reference spaces are deleted: 2 / 8 characters
    assert error_rates(refs, {"m1": "今天天气很好"})["cer"] == pytest.approx(2 / 8)


@pytest.mark.parametrize("refs,hyps,match", [
    ({"a": "x", "b": "y"}, {"a": "x"}, r"missing 1 \(b\), extra 0"),
    ({"a": "x"}, {"a": "x", "zz": "y"}, r"extra 1 \(zz\)"),
    ({"a": "x", "e": "  "}, {"a": "x", "e": "y"}, "empty reference transcript for e"),
    ({}, {}, "no utterances"),
])
def test_error_rates_bad_input(refs, hyps, match):
    with pytest.raises(ReportError, match=match):
        error_rates(refs, hyps)


def test_read_text_file(tmp_path):
    text = tmp_path / "text"
    text.write_text("u1 hello  world\nu2\nu3 x\n", encoding="utf-8")
    assert read_text_file(text) == {"u1": "hello  world", "u2": "", "u3": "x"}
    text.write_text("u1 a\n\nu2 b\n")
    with pytest.raises(ReportError, match="text:2: empty line"):
        read_text_file(text)
    text.write_text("u1 a\nu1 b\n")
    with pytest.raises(ReportError, match="text:2: duplicate utterance id u1"):
        read_text_file(text)


# --------------------------------------------------------------------------- curves
def test_area_under_curve_by_hand():
    # trapezoids: 1 h * (0.5 + 0.4) / 2 + 2 h * (0.4 + 0.2) / 2 = 1.05, over a 3 h span
    assert area_under_curve([1, 2, 4], [0.5, 0.4, 0.2]) == pytest.approx(0.35)
    assert area_under_curve([2.0], [0.3]) == 0.3


@pytest.mark.parametrize("target,expected", [
    (0.3, 3.0),  # between (2 h, 0.4) and (4 h, 0.2): 2 + (0.1 / 0.2) * 2
    (0.4, 2.0),  # exactly a round
    (0.6, 1.0),  # already at the first round
    (0.1, None),  # never
])
def test_hours_to_reach(target, expected):
    assert hours_to_reach([1, 2, 4], [0.5, 0.4, 0.2], target) == (
        None if expected is None else pytest.approx(expected))


def test_curve_checks():
    with pytest.raises(ReportError, match="must not decrease"):
        area_under_curve([2, 1], [0.3, 0.2])
    with pytest.raises(ReportError, match="as many hours as values"):
        hours_to_reach([1, 2], [0.3], 0.2)


# --------------------------------------------------------------------------- collect
def test_collect_any_layout_in_report_order(al_dir):
    write_round(al_dir, "true_loss", 0, 0, 0.45, simulation_only=True, sub="true_loss/r0")
    write_round(al_dir, "entropy", 0, 0, 0.47, sub="x/y/z/entropy0")
    write_round(al_dir, "random", 0, 9, 0.1, sub=".round9.tmp")  # half-written: skipped
    records = collect(al_dir)
    assert len(records) == 14
    order = list(dict.fromkeys(r.strategy for r in records))
    assert order == ["random", "entropy", "loss_prediction", "true_loss"]
    assert records[-1].strategy == "true_loss" and records[-1].simulation_only
    assert (records[0].seed, records[0].round, records[0].labeled_hours) == (0, 0, 1.0)


def test_malformed_metrics_names_the_file(al_dir):
    bad = al_dir / "seed0" / "random" / "round1" / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match=rf"{bad}: not readable JSON"):
        collect(al_dir)
    bad.write_text(json.dumps({"strategy": "random", "round": 1, "labeled_utterances": 4,
                               "decode": {}}))
    with pytest.raises(ReportError, match=rf"{bad}: 'labeled_hours' is None, expected float"):
        collect(al_dir)


def test_duplicate_round_is_an_error(al_dir):
    dup = write_round(al_dir, "random", 1, 2, 0.3, sub="copy/of/round2")
    with pytest.raises(ReportError, match="strategy random, seed 1, round 2") as e:
        collect(al_dir)
    assert str(dup) in str(e.value)
    assert str(al_dir / "seed1" / "random" / "round2" / "metrics.json") in str(e.value)


def test_missing_set_names_the_file(al_dir):
    with pytest.raises(ReportError, match=r"metrics.json: no results for set 'dev_other' "
                                          r"\(has: dev_clean, test_clean\)"):
        results_table(collect(al_dir), ["dev_other"], "wer")


# --------------------------------------------------------------------------- tables
def test_table_mean_std_and_order(al_dir):
    table = results_table(collect(al_dir), ["dev_clean", "test_clean"], "wer")
    lines = table.splitlines()
    assert lines[0] == ("| Strategy | Round | Labeled utts | Labeled hours | "
                        "dev_clean WER (%) | test_clean WER (%) |")
    # random first; round 0: mean(50, 52) = 51, sample std = |52 - 50| / sqrt(2) = 1.41
    assert lines[2] == ("| random | 0 | 40 | 1.000 | 51.00 ± 1.41 (2 seeds) | "
                        "52.00 ± 1.41 (2 seeds) |")
    assert lines[5].startswith("| loss_prediction | 0 |")
    assert "| loss_prediction | 2 | 120 | 3.000 | 26.00 ± 1.41 (2 seeds) |" in table


def test_summary_by_hand(al_dir):
    target, rows = summary(collect(al_dir), "dev_clean", "wer")
    assert target == pytest.approx(0.31)  # random's final, mean of 0.30 and 0.32
    rnd, lp = rows
    assert (rnd.strategy, lp.strategy) == ("random", "loss_prediction")
    assert rnd.hours_to_reach == pytest.approx(3.0) and rnd.hours_ratio == pytest.approx(1.0)
    # seed-mean curve 0.51, 0.36, 0.26: 0.31 is reached half way from 2 h to 3 h
    assert lp.hours_to_reach == pytest.approx(2.5)
    assert lp.hours_ratio == pytest.approx(2.5 / 3.0)
    # of the hours acquired after the shared 1 h of round 0: 1.5 h against random's 2 h
    assert rnd.acquired_ratio == pytest.approx(1.0)
    assert lp.acquired_ratio == pytest.approx(1.5 / 2.0)
    # AUC per seed over 2 h: (0.50+0.35)/2 + (0.35+0.25)/2 = 0.725 -> 0.3625; seed 1 0.3825
    assert lp.auc == pytest.approx(0.3725)
    assert rnd.auc == pytest.approx(0.41)
    assert lp.final == pytest.approx(0.26) and lp.final_std == pytest.approx(0.02 / 2 ** 0.5)
    # paired by seed: LP's AUC less random's in each seed both ran
    assert (lp.auc_diff_seeds, rnd.auc_diff_seeds) == (2, 2)
    assert lp.auc_diff == pytest.approx(0.3725 - 0.41)
    assert rnd.auc_diff == 0.0 and rnd.auc_lower_seeds == 0
    # both seeds 3.75 points lower: no spread once paired, though the AUCs' own sd is 1.41
    assert lp.auc_diff_std == pytest.approx(0.0, abs=1e-12) and lp.auc_lower_seeds == 2
    assert lp.auc_std == pytest.approx(0.02 / 2 ** 0.5)
    assert paired_diff(lp) == "-3.75 ± 0.00 (2/2)"


def test_paired_difference_uses_only_the_seeds_both_ran(al_dir):
    for rnd, wer in enumerate([0.20, 0.10, 0.05]):  # LP's seed 2: random has none
        write_round(al_dir, "loss_prediction", 2, rnd, wer)
    _, (rnd, lp) = summary(collect(al_dir), "dev_clean", "wer")
    assert lp.seeds == 3 and lp.auc_diff_seeds == 2
    assert lp.auc_diff == pytest.approx(-0.0375)


def test_unfinished_seed(al_dir, caplog):
    (al_dir / "seed1" / "random" / "round2" / "metrics.json").unlink()
    records = collect(al_dir)
    assert "| random | 2 | 120 | 3.000 | 30.00 (1 seed) |" in results_table(
        records, ["dev_clean"], "wer")
    target, _ = summary(records, "dev_clean", "wer")
    assert target == pytest.approx(0.41)  # rounds 0-1, the ones both seeds finished
    assert "only rounds [0, 1] are finished by all 2 seeds" in caplog.text


def test_true_loss_is_marked_simulation_only(al_dir):
    for rnd, wer in enumerate([0.45, 0.30, 0.20]):
        # strategy name alone marks it, even if the flag were left out
        write_round(al_dir, "true_loss", 0, rnd, wer, simulation_only=False)
    records = collect(al_dir)
    table = results_table(records, ["dev_clean"], "wer")
    assert "| true_loss (simulation only) | 0 | 40 | 1.000 | 45.00 |" in table
    assert "| true_loss |" not in table
    _, rows = summary(records, "dev_clean", "wer")
    assert rows[-1].label == "true_loss (simulation only)"
    # random's final 0.31 is reached between (1 h, 0.45) and (2 h, 0.30)
    assert rows[-1].hours_to_reach == pytest.approx(1 + (0.45 - 0.31) / (0.45 - 0.30))


def test_plot_is_a_png(al_dir, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    write_round(al_dir, "true_loss", 0, 0, 0.45, simulation_only=True)
    path = plot_learning_curves(collect(al_dir), "dev_clean", "wer", tmp_path / "lc.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_plot_without_matplotlib_is_a_clear_error(al_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ReportError, match="matplotlib is needed"):
        plot_learning_curves(collect(al_dir), "dev_clean", "wer", tmp_path / "lc.png")


# --------------------------------------------------------------------------- report + CLI
def test_write_report_without_plot(al_dir, tmp_path):
    out = tmp_path / "report"
    paths = write_report(al_dir, ["dev_clean"], "wer", output_dir=out, plot=False)
    assert sorted(p.name for p in out.iterdir()) == ["RESULTS.md", "results.json"]
    results = json.loads(paths["json"].read_text())
    lp = results["sets"]["dev_clean"]["strategies"][1]
    assert lp["strategy"] == "loss_prediction"
    assert lp["hours_ratio"] == pytest.approx(2.5 / 3.0)
    md = paths["markdown"].read_text()
    assert ("| loss_prediction | 2 | 26.00 ± 1.41 | 37.25 ± 1.41 | -3.75 ± 0.00 (2/2) | 2.500 | "
            "0.83 | 0.75 |") in md
    assert "learning_curve.png" not in md


def test_cli_writes_the_three_files(al_dir):
    pytest.importorskip("matplotlib")
    report_main(["--al_dir", str(al_dir), "--sets", "dev_clean", "test_clean",
                 "--metric", "wer"])
    assert (al_dir / "learning_curve.png").read_bytes()[:8] == PNG_MAGIC
    md = (al_dir / "RESULTS.md").read_text()
    assert "![learning curve](learning_curve.png)" in md
    assert "## Summary: test_clean" in md
    assert set(json.loads((al_dir / "results.json").read_text())["sets"]) == {
        "dev_clean", "test_clean"}


@pytest.mark.parametrize("args,match", [
    (["--al_dir", "{tmp}/nowhere"], "nowhere: AL directory not found"),
    (["--al_dir", "{tmp}"], "no metrics.json found"),
    (["--al_dir", "{al}", "--sets", "dev_other"], "no results for set 'dev_other'"),
])
def test_cli_bad_input_is_one_line(al_dir, tmp_path, caplog, args, match):
    args = [a.format(tmp=tmp_path / "empty", al=al_dir) for a in args]
    (tmp_path / "empty").mkdir()
    if "--sets" not in args:
        args += ["--sets", "dev_clean"]
    with pytest.raises(SystemExit) as e:
        report_main(args + ["--plot", "false"])
    assert e.value.code == 1
    assert match in caplog.text
    assert not (tmp_path / "empty" / "RESULTS.md").exists()
