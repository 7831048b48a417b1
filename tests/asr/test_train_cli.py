"""A short CLI training run on the generated English corpus, reload, scoring and decoding."""

import pytest
import torch


@pytest.mark.slow
def test_training_writes_config_and_checkpoint(trained):
    import yaml

    config = yaml.safe_load((trained / "config.yaml").read_text())
    assert config["model"] == "lp_espnet"
    assert config["model_conf"]["lp_decoder"] == "lp_mlp"
    assert config["model_conf"]["lp_decoder_conf"]["encoder_layers"] == [1, 2, 3]
    assert not {"lp_decoder", "kd"} & set(config)  # nothing outside model_conf
    assert (trained / "2epoch.pth").is_file()
    reporter = torch.load(trained / "checkpoint.pth", weights_only=False)["reporter"]
    train_stats = reporter["stats"][2]["train"]
    assert {"loss_lp", "spearman_lp_ctc", "spearman_lp_att"} <= set(train_stats)


@pytest.mark.slow
def test_reload_restores_every_lp_weight(trained):
    from espnet2.tasks.asr import ASRTask

    model, _ = ASRTask.build_model_from_file(trained / "config.yaml", trained / "2epoch.pth",
                                             "cpu")
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
    from espnet2.tasks.asr import ASRTask

    model, _ = ASRTask.build_model_from_file(trained / "config.yaml", trained / "2epoch.pth",
                                             "cpu")
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
