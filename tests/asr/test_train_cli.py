"""A short CLI training run on the generated English corpus, reload, scoring and decoding."""

from pathlib import Path

import pytest
import torch

from tests.asr.conftest import TINY


def train_cmd(inputs: Path, out: Path, *extra: str):
    d, s = inputs / "data", inputs / "shapes"
    return [
        "--config", str(TINY), "--output_dir", str(out), "--ngpu", "0",
        "--token_list", str(inputs / "token_list"), "--token_type", "char",
        "--train_data_path_and_name_and_type", f"{d}/train_clean_100/wav.scp,speech,sound",
        "--train_data_path_and_name_and_type", f"{d}/train_clean_100/text,text,text",
        "--valid_data_path_and_name_and_type", f"{d}/dev_clean/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{d}/dev_clean/text,text,text",
        "--train_shape_file", f"{s}/train_clean_100/speech_shape",
        "--train_shape_file", f"{s}/train_clean_100/text_shape.char",
        "--valid_shape_file", f"{s}/dev_clean/speech_shape",
        "--valid_shape_file", f"{s}/dev_clean/text_shape.char",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(en_inputs, tmp_path_factory):
    from espnet_lp.bin.asr_train import main as train_main

    out = tmp_path_factory.mktemp("exp") / "tiny"
    train_main(train_cmd(en_inputs, out, "--max_epoch", "2", "--batch_size", "8"))
    return out


@pytest.mark.slow
def test_training_writes_config_and_checkpoint(trained):
    import yaml

    config = yaml.safe_load((trained / "config.yaml").read_text())
    assert config["model"] == "lp_espnet"
    assert config["lp_decoder"] == "lp_mlp"
    assert config["lp_decoder_conf"]["encoder_layers"] == [1, 2, 3]
    assert "kd" in config
    assert (trained / "2epoch.pth").is_file()
    reporter = torch.load(trained / "checkpoint.pth", weights_only=False)["reporter"]
    train_stats = reporter["stats"][2]["train"]
    assert {"loss_lp", "lp_spearman_ctc", "lp_spearman_att"} <= set(train_stats)


@pytest.mark.slow
def test_reload_restores_every_lp_weight(trained):
    from espnet_lp.tasks.asr import LPASRTask

    model, _ = LPASRTask.build_model_from_file(trained / "config.yaml",
                                               trained / "2epoch.pth", "cpu")
    saved = torch.load(trained / "2epoch.pth", map_location="cpu")
    lp_keys = [k for k in saved if k.startswith("lp_decoder.")]
    assert lp_keys
    state = model.state_dict()
    assert set(state) == set(saved)  # nothing silently dropped or re-initialised
    for k in saved:
        torch.testing.assert_close(state[k], saved[k], msg=k)


@pytest.mark.slow
def test_score_and_decode_after_training(trained, en_inputs, tmp_path):
    import soundfile

    from espnet_lp.bin.asr_inference import main as infer_main
    from espnet_lp.tasks.asr import LPASRTask

    model, _ = LPASRTask.build_model_from_file(trained / "config.yaml",
                                               trained / "2epoch.pth", "cpu")
    model.eval()
    wav = (en_inputs / "data/dev_clean/wav.scp").read_text().split("\n")[0].split()[1]
    x = torch.tensor(soundfile.read(wav, dtype="float32")[0])[None]
    out = model.score_pool(x, torch.tensor([x.shape[1]]))
    assert torch.isfinite(out["lp_score"]).all()

    key_file = tmp_path / "keys"
    key_file.write_text("".join((en_inputs / "data/dev_clean/wav.scp").read_text()
                                .splitlines(keepends=True)[:2]))
    infer_main(["--asr_train_config", str(trained / "config.yaml"),
                "--asr_model_file", str(trained / "2epoch.pth"),
                "--data_path_and_name_and_type", f"{key_file},speech,sound",
                "--output_dir", str(tmp_path / "decode"), "--ngpu", "0", "--batch_size", "1",
                "--beam_size", "1", "--ctc_weight", "1.0", "--nbest", "1"])
    hyps = (tmp_path / "decode/1best_recog/text").read_text().splitlines()
    assert len(hyps) == 2
