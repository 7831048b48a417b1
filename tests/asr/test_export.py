"""Export helpers: stock config and weights, self-contained staging, clear errors."""

import pytest
import torch
import yaml

from espnet_lp.asr.export import (
    ExportError,
    find_checkpoint,
    full_config,
    read_config,
    stage,
    stock_config,
    stock_state_dict,
)

CONFIG = {
    "model": "lp_espnet", "required": ["output_dir"], "distributed": False, "version": "x",
    "model_conf": {"ctc_weight": 0.3, "lsm_weight": 0.1, "lp_decoder": "lp_mlp",
                   "lp_decoder_conf": {"hidden": 8}, "lp_weight": 1.0, "kd": "ctc_kl",
                   "kd_weight": 0.5, "kd_conf": {"teacher": {"cache_dir": "/c"}}},
    "token_list": ["<blank>", "a", "<sos/eos>"],
}


def test_stock_and_full_configs():
    stock = stock_config(CONFIG)
    assert stock["model"] == "espnet"
    assert stock["model_conf"] == {"ctc_weight": 0.3, "lsm_weight": 0.1}
    assert not {"required", "distributed", "version"} & set(stock)
    full = full_config(CONFIG)
    assert full["model"] == "lp_espnet" and full["model_conf"]["kd_weight"] == 0.0
    assert "kd_conf" not in full["model_conf"] and full["model_conf"]["lp_decoder"] == "lp_mlp"
    assert CONFIG["model_conf"]["kd"] == "ctc_kl"  # the input is not changed
    with pytest.raises(ExportError, match=r"model_conf keys \['mystery'\]"):
        stock_config({**CONFIG, "model_conf": {"mystery": 1}})


def test_stock_state_dict_drops_only_plugin_tensors():
    state = {"encoder.w": torch.ones(1), "lp_decoder.ctc_out.weight": torch.ones(1),
             "lp_epoch": torch.tensor(3), "decoder.lp_decoder_like": torch.ones(1)}
    assert set(stock_state_dict(state)) == {"encoder.w", "decoder.lp_decoder_like"}


def test_staging_copies_referenced_files_and_rewrites_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # configs hold paths relative to the recipe root
    (tmp_path / "data").mkdir()
    (tmp_path / "data/bpe.model").write_bytes(b"bpe")
    (tmp_path / "stats.npz").write_bytes(b"stats")
    (tmp_path / "a").write_text("a file named like a token")
    config = {**CONFIG, "bpemodel": "data/bpe.model",
              "normalize_conf": {"stats_file": str(tmp_path / "stats.npz")},
              "train_data_path_and_name_and_type": [["data/bpe.model", "x", "text"]]}
    extra = stage(config, {"w": torch.ones(1)}, tmp_path / "staging")
    assert sorted(extra) == ["exp/files/bpe.model", "exp/files/stats.npz"]
    written = yaml.safe_load((tmp_path / "staging/exp/config.yaml").read_text())
    assert written["bpemodel"] == "exp/files/bpe.model"
    assert written["normalize_conf"]["stats_file"] == "exp/files/stats.npz"
    assert written["token_list"] == CONFIG["token_list"]  # tokens are not paths
    assert written["train_data_path_and_name_and_type"][0][0] == "data/bpe.model"
    assert (tmp_path / "staging/exp/files/stats.npz").read_bytes() == b"stats"
    assert torch.load(tmp_path / "staging/exp/model.pth")["w"].item() == 1.0


def test_exp_dir_errors(tmp_path):
    with pytest.raises(ExportError, match="config.yaml .not an ESPnet exp dir.. not found"):
        read_config(tmp_path)
    (tmp_path / "config.yaml").write_text("a: [1\n")
    with pytest.raises(ExportError, match="not valid yaml"):
        read_config(tmp_path)
    (tmp_path / "config.yaml").write_text("a: 1\n")
    with pytest.raises(ExportError, match="no 'model'"):
        read_config(tmp_path)
    with pytest.raises(ExportError, match="no checkpoint valid.acc.ave.pth or"):
        find_checkpoint(tmp_path)
    (tmp_path / "latest.pth").write_bytes(b"")
    assert find_checkpoint(tmp_path).name == "latest.pth"
    with pytest.raises(ExportError, match="no checkpoint 3epoch.pth"):
        find_checkpoint(tmp_path, "3epoch.pth")


def test_checkpoint_of_the_configured_criterion_comes_first(tmp_path):
    # what the run selects by (here CTC CER) decides, then ESPnet's usual names
    for name in ("valid.acc.best.pth", "valid.cer_ctc.best.pth", "latest.pth"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "config.yaml").write_text(
        "model: lp_espnet\nbest_model_criterion:\n- [valid, cer_ctc, min]\n"
        "- [valid, acc, max]\n")
    assert find_checkpoint(tmp_path).name == "valid.cer_ctc.best.pth"
    (tmp_path / "valid.cer_ctc.ave.pth").write_bytes(b"")
    assert find_checkpoint(tmp_path).name == "valid.cer_ctc.ave.pth"
    assert find_checkpoint(tmp_path, "latest.pth").name == "latest.pth"
    (tmp_path / "config.yaml").write_text("model: lp_espnet\nbest_model_criterion: 3\n")
    assert find_checkpoint(tmp_path).name == "valid.acc.best.pth"


def test_cli_reports_a_bad_exp_dir_in_one_line(tmp_path, caplog):
    from espnet_lp.bin.export_model import main

    with pytest.raises(SystemExit) as e:
        main(["--exp_dir", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "out"),
              "--verify_wav_scp", "none"])
    assert e.value.code == 1
    assert "config.yaml (not an ESPnet exp dir?) not found" in caplog.text
    assert not (tmp_path / "out").exists()
