"""Refitting the LP heads on held-out utterances: the fit itself, the CLI, its errors."""

import json
import subprocess
import sys

import pytest
import torch

from espnet_lp.asr.loss_predictor import NUM_ATT_STATS, NUM_CTC_STATS, LPMLPDecoder
from espnet_lp.asr.lp_losses import spearman
from espnet_lp.asr.lp_refit import HeldOutSet, combined, refit_heads


def synthetic_held_out(n=200, seed=0):
    """Pooled statistics where the true loss is a noisy function of two of them."""
    gen = torch.Generator().manual_seed(seed)
    noise = 0.1 * torch.randn(n, generator=gen)
    att_stats = torch.randn(n, NUM_ATT_STATS, generator=gen)
    ctc_stats = torch.randn(n, NUM_CTC_STATS, generator=gen)
    targets = {"ctc": torch.exp(ctc_stats[:, 6]) + noise,
               "att": torch.exp(att_stats[:, 0] - ctc_stats[:, 0]) + noise}
    return HeldOutSet([f"utt{i:03d}" for i in range(n)],
                      {"ctc_stats": ctc_stats, "att_stats": att_stats}, targets)


@pytest.mark.parametrize("loss", ["margin_ranking", "mse_log"])
def test_refit_learns_the_held_out_ranking(loss):
    torch.manual_seed(0)
    lp = LPMLPDecoder(8, 8, features=["posteriors"], hidden=32, loss=loss)
    fit, test = synthetic_held_out(seed=0), synthetic_held_out(seed=1)

    def rho():
        lp.eval()
        with torch.no_grad():
            return float(spearman(combined(lp.predict_pooled(test.pooled), 0.3),
                                  combined(test.targets, 0.3)))

    before = rho()
    report = refit_heads(lp, fit, ctc_weight=0.3, steps=300, seed=0)
    after = rho()
    assert after > 0.7 and after > before + 0.3, (before, after)
    assert report["valid_utterances"] > 0 and report["fit_utterances"] + \
        report["valid_utterances"] == 200
    assert report["spearman_after"] >= report["spearman_before"]


def test_refit_is_deterministic_and_order_independent():
    data = synthetic_held_out()
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(3))
    states = []
    for d in (data, data, data.subset(perm)):
        torch.manual_seed(0)
        lp = LPMLPDecoder(8, 8, features=["posteriors"], hidden=16)
        report = refit_heads(lp, d, 0.3, steps=40, seed=0)
        states.append((report["spearman_after"], lp.state_dict()))
    assert states[0][0] == states[1][0]
    assert all(torch.equal(states[0][1][k], states[1][1][k]) for k in states[0][1])
    # the kept-aside utterances are chosen by id, so the same whatever the order
    assert states[2][0] == pytest.approx(states[0][0], abs=0.05)


def test_tiny_held_out_sets_fit_on_everything(caplog):
    lp = LPMLPDecoder(8, 8, features=["posteriors"], hidden=16)
    report = refit_heads(lp, synthetic_held_out(n=12), 0.3, steps=20)
    assert report["valid_utterances"] == 0 and report["best_step"] == 20
    assert "too few to keep" in caplog.text


def test_pool_then_predict_equals_forward():
    torch.manual_seed(0)
    lp = LPMLPDecoder(8, 6, encoder_layers=[1, 2], hidden=4).eval()
    layers = [torch.randn(3, 7, 8), torch.randn(3, 7, 8)]
    lens = torch.tensor([7, 5, 2])
    dec, dec_lens = torch.randn(3, 4, 6), torch.tensor([4, 3, 1])
    ctc, att = torch.randn(3, NUM_CTC_STATS), torch.randn(3, NUM_ATT_STATS)
    direct = lp(layers, lens, dec, dec_lens, ctc, att)
    pooled = lp.pool(layers, lens, dec, dec_lens, ctc, att)
    assert sorted(pooled) == ["att_hidden", "att_stats", "ctc_layer1", "ctc_layer2",
                              "ctc_stats"]
    again = lp.predict_pooled(pooled)
    assert all(torch.equal(direct[t], again[t]) for t in ("ctc", "att"))


def refit_cmd(trained, data_dir, out):
    return [sys.executable, "-m", "espnet_lp.bin.lp_refit",
            "--asr_train_config", str(trained / "config.yaml"),
            "--asr_model_file", str(trained / "valid.acc.best.pth"),
            "--data_dir", str(data_dir), "--output_file", str(out), "--steps", "30"]


@pytest.mark.slow
def test_cli_writes_a_checkpoint_stock_espnet_loads(trained, en_inputs, tmp_path):
    out = tmp_path / "lp_refit.pth"
    proc = subprocess.run(refit_cmd(trained, en_inputs / "data" / "dev_clean", out),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["fit_utterances"] + report["valid_utterances"] == 12
    before = torch.load(trained / "valid.acc.best.pth")
    after = torch.load(out)
    assert before.keys() == after.keys()
    # the ASR is untouched, only the heads change
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("lp_"))
    assert any(not torch.equal(before[k], after[k]) for k in before
               if k.startswith("lp_decoder."))
    # a fresh stock interpreter loads it as any checkpoint
    check = ("from espnet2.tasks.asr import ASRTask; "
             f"m, _ = ASRTask.build_model_from_file('{trained / 'config.yaml'}', '{out}', 'cpu');"
             " print(type(m.lp_decoder).__name__)")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    # (stock ESPnet prints a flash-attention notice on stdout first)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "LPMLPDecoder", proc.stdout


@pytest.mark.slow
def test_cli_errors_are_one_line_and_write_nothing(trained, en_inputs, tmp_path):
    bad = tmp_path / "no_text"
    bad.mkdir()
    (bad / "wav.scp").write_text((en_inputs / "data/dev_clean/wav.scp").read_text())
    out = tmp_path / "out.pth"
    proc = subprocess.run(refit_cmd(trained, bad, out), capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{bad / 'text'}: not found" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
