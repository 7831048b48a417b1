"""tools/bench/compare_acquisition.py: paired AULC differences and its fixed decision rule."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def label_efficiency_result(path: Path, lp_curves, random_curves=None) -> Path:
    """A label_efficiency JSON as the script writes it (the keys the comparison reads)."""
    hours = [0.1, 0.2, 0.3]
    random_curves = random_curves or {"0": [0.6, 0.5, 0.4], "1": [0.62, 0.52, 0.41]}

    def rounds(per_seed):
        return {str(r): {"hours": hours[r], "per_seed": {s: v[r] for s, v in per_seed.items()}}
                for r in range(len(hours))}

    data = {"lang": "en", "metric": "cer",
            "per_round": {name: {"random": rounds(random_curves),
                                 "loss_prediction": rounds(lp_curves)}
                          for name in ("dev_clean", "dev_other")}}
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def compare(tmp_path, monkeypatch):
    """The script's main, writing its results under tmp_path, never into the repository."""
    monkeypatch.syspath_prepend(str(ROOT / "tools" / "bench"))
    import common
    import compare_acquisition

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")

    def run(base, variant):
        monkeypatch.setattr(sys, "argv", [str(ROOT / "tools/bench/compare_acquisition.py"),
                                          "--base", str(base), "--variant", str(variant),
                                          "--name", "typical"])
        compare_acquisition.main()
        return json.loads((tmp_path / "results/compare_acquisition_en_typical.json")
                          .read_text())
    return run


def test_a_lower_curve_on_every_seed_adopts_the_variant(compare, tmp_path):
    base = label_efficiency_result(tmp_path / "b.json",
                                   {"0": [0.6, 0.55, 0.5], "1": [0.6, 0.56, 0.52]})
    better = label_efficiency_result(tmp_path / "v.json",
                                     {"0": [0.6, 0.50, 0.45], "1": [0.6, 0.52, 0.47]})
    result = compare(base, better)
    diff = result["strategies"]["loss_prediction"]["dev_clean"]["paired_diff"]
    assert diff["mean"] < 0 and set(diff["per_seed"]) == {"0", "1"}
    # trapezoid over 0.1-0.3 h, divided by the range: seed 0 moves by -(0.05/2 + 0.1/2)/2
    assert diff["per_seed"]["0"] == pytest.approx(-0.0375)
    assert result["decision"] == {"strategy": "loss_prediction",
                                  "mean_paired_diff": pytest.approx(diff["mean"]),
                                  "adopt_variant": True}
    assert result["strategies"]["random"]["dev_other"]["paired_diff"]["mean"] == 0
    md = (tmp_path / "results/compare_acquisition_en_typical.md").read_text()
    assert "adopt typical" in md and "WARNING" not in md


def test_a_worse_variant_keeps_topk_and_unpaired_runs_are_flagged(compare, tmp_path):
    base = label_efficiency_result(tmp_path / "b.json",
                                   {"0": [0.6, 0.5, 0.45], "1": [0.6, 0.5, 0.45]})
    worse = label_efficiency_result(tmp_path / "v.json",
                                    {"0": [0.6, 0.55, 0.5], "1": [0.6, 0.55, 0.5]},
                                    random_curves={"0": [0.7, 0.6, 0.5], "1": [0.7, 0.6, 0.5]})
    result = compare(base, worse)
    assert result["decision"]["adopt_variant"] is False
    md = (tmp_path / "results/compare_acquisition_en_typical.md").read_text()
    assert "keep top-k" in md and "WARNING: random differs" in md
