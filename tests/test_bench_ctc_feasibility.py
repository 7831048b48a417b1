"""tools/bench/ctc_feasibility.py: the alignment margin as the model sees it, and its report."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def feasibility(tmp_path, monkeypatch):
    """The script's module, writing its results under tmp_path, never into the repository."""
    monkeypatch.syspath_prepend(str(ROOT / "tools" / "bench"))
    import common
    import ctc_feasibility

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", [str(ROOT / "tools/bench/ctc_feasibility.py")])
    return ctc_feasibility


def make_run(tmp_path: Path):
    """A kept run of one seed and two strategies over four utterances, and its data dir:
    ``fast`` has far more characters than a second of audio has encoder frames."""
    texts = {"slow": "A", "mid": "AB CD", "fast": "THE QUICK BROWN FOX JUMPS OVER", "ok": "OK"}
    data = tmp_path / "work" / "data" / "train"
    (tmp_path / "work" / "wav").mkdir(parents=True)
    data.mkdir(parents=True)
    for u in texts:
        soundfile.write(tmp_path / "work" / "wav" / f"{u}.wav", np.zeros(16000, "int16"), 16000)
    (data / "wav.scp").write_text("".join(f"{u} wav/{u}.wav\n" for u in texts))
    (data / "text").write_text("".join(f"{u} {t}\n" for u, t in texts.items()))
    (data / "utt2spk").write_text("".join(f"{u} {u}\n" for u in texts))
    runs = tmp_path / "runs"
    init = runs / "seed0" / "initial" / "round0"
    init.mkdir(parents=True)
    (init / "labeled").write_text("ok\n")
    (init / "pool").write_text("slow\nmid\nfast\n")
    for strategy, pick in (("random", "slow"), ("loss_prediction", "fast")):
        r0 = runs / "seed0" / strategy / "round0"
        r0.mkdir(parents=True)
        (r0 / "selected").write_text(f"{pick} 1.0 1.0\n")
        (r0 / "scores.tsv").write_text("".join(
            f"{u}\t{3.0 if u == pick else 1.0}\n" for u in ("slow", "mid", "fast")))
        (runs / "seed0" / strategy / "unit.json").write_text("{}")
    config = tmp_path / "asr.yaml"
    config.write_text("frontend_conf: {hop_length: 160}\nencoder: conformer\n"
                      "encoder_conf: {input_layer: conv2d}\n")
    return runs, data, config


def test_report_counts_infeasible_pool_and_selections(feasibility, tmp_path):
    runs, data, config = make_run(tmp_path)
    feasibility.main(["--runs", str(runs), "--data_dir", str(data), "--asr_config",
                      str(config), "--tag", "t"])
    result = json.loads((tmp_path / "results" / "ctc_feasibility_t.json").read_text())
    # 1 s = 101 STFT frames = 24 encoder frames; "fast" needs 30 (30 characters, no repeat)
    assert result["conditions"]["all"]["char"]["infeasible"] == 0.25
    assert result["strategies"]["loss_prediction"]["mean"]["selected_infeasible"] == 1.0
    assert result["strategies"]["loss_prediction"]["mean"]["round0_top_tight"] == 1.0
    assert result["strategies"]["random"]["mean"]["selected_infeasible"] == 0.0
    assert "ctc_feasibility_t" in (tmp_path / "results" / "ctc_feasibility_t.md").read_text()


def test_data_dir_of_another_run_is_refused(feasibility, tmp_path):
    runs, data, config = make_run(tmp_path)
    (runs / "seed0" / "initial" / "round0" / "pool").write_text("slow\nmid\nelsewhere\n")
    with pytest.raises(SystemExit, match="1 pool utterances have no text .first elsewhere."):
        feasibility.main(["--runs", str(runs), "--data_dir", str(data), "--asr_config",
                          str(config), "--tag", "t"])
    assert not (tmp_path / "results").exists()


def test_broken_data_dir_is_refused_naming_the_file(feasibility, tmp_path):
    runs, data, config = make_run(tmp_path)
    (data / "text").write_text("ok OK\n")
    with pytest.raises(SystemExit, match="text: no line for utterance"):
        feasibility.main(["--runs", str(runs), "--data_dir", str(data), "--asr_config",
                          str(config), "--tag", "t"])


def test_unknown_input_layer_is_refused(feasibility, tmp_path):
    runs, data, config = make_run(tmp_path)
    config.write_text("encoder: conformer\nencoder_conf: {input_layer: vgg2l}\n")
    with pytest.raises(SystemExit, match="asr.yaml: how many encoder frames"):
        feasibility.main(["--runs", str(runs), "--data_dir", str(data), "--asr_config",
                          str(config), "--tag", "t"])
