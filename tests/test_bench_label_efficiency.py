"""tools/bench/label_efficiency.py: the learning-curve plots of the reported sets.

The benchmark itself takes hours; these check what it writes from a finished run's rounds.
"""

from pathlib import Path

import pytest

from tests.al.test_report import LOSS_PREDICTION, PNG_MAGIC, RANDOM, write_round

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """The script's module, writing under tmp_path, never into the repository."""
    monkeypatch.syspath_prepend(str(ROOT / "tools" / "bench"))
    import label_efficiency

    monkeypatch.setattr(label_efficiency, "ROOT", tmp_path / "repo")
    (tmp_path / "repo" / "tools" / "bench" / "results").mkdir(parents=True)
    return label_efficiency


def test_one_plot_per_reported_set_the_headline_first(bench, tmp_path):
    al_dir = tmp_path / "al"
    for strategy, per_seed in (("random", RANDOM), ("loss_prediction", LOSS_PREDICTION)):
        for seed, wers in enumerate(per_seed):
            for rnd, wer in enumerate(wers):
                write_round(al_dir, strategy, seed, rnd, wer)
    pngs = bench.plot_sets(al_dir, ["test_clean", "dev_clean"], "wer", "label_efficiency_en")
    # the headline set is the one under the result's own name (the README shows it)
    assert pngs == {"test_clean": "label_efficiency_en.png",
                    "dev_clean": "label_efficiency_en_dev_clean.png"}
    results = tmp_path / "repo" / "tools" / "bench" / "results"
    images = {name: (results / name).read_bytes() for name in pngs.values()}
    assert all(data.startswith(PNG_MAGIC) for data in images.values())
    assert len(set(images.values())) == 2  # two sets, two different curves
    assert sorted(p.name for p in results.iterdir()) == sorted(pngs.values())


def test_a_set_without_results_is_a_clear_error(bench, tmp_path):
    from espnet_lp.al.report import ReportError

    write_round(tmp_path / "al", "random", 0, 0, 0.5)
    with pytest.raises(ReportError, match="test_other"):
        bench.plot_sets(tmp_path / "al", ["test_other"], "wer", "label_efficiency_en")
    assert not any((tmp_path / "repo" / "tools" / "bench" / "results").iterdir())
