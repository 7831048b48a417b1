"""The lp_mlp heads."""

import pytest
import torch

from espnet_lp.asr.loss_predictor import LPMLPDecoder, masked_mean


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [0.0], [0.0]]])
    assert masked_mean(x, torch.tensor([2, 1])).squeeze(-1).tolist() == [2.0, 2.0]


def make(**kw):
    return LPMLPDecoder(encoder_output_size=8, decoder_output_size=6, encoder_layers=[1, 2],
                        hidden=4, **kw)


def test_shapes_and_padding_invariance():
    torch.manual_seed(0)
    lp = make()
    enc = [torch.randn(3, 5, 8) for _ in range(2)]
    dec = torch.randn(3, 4, 6)
    lens, dlens = torch.tensor([5, 3, 2]), torch.tensor([4, 2, 1])
    out = lp(enc, lens, dec, dlens)
    assert set(out) == {"ctc", "att"} and out["ctc"].shape == out["att"].shape == (3,)
    enc_more = [torch.cat([h, torch.randn(3, 2, 8)], 1) for h in enc]  # extra padding
    out2 = lp(enc_more, lens, torch.cat([dec, torch.randn(3, 3, 6)], 1), dlens)
    torch.testing.assert_close(out["ctc"], out2["ctc"])
    torch.testing.assert_close(out["att"], out2["att"])


@pytest.mark.parametrize("loss", ["margin_ranking", "mse_log"])
def test_gradients_reach_both_heads(loss):
    torch.manual_seed(0)
    lp = make(loss=loss)
    enc = [torch.randn(4, 5, 8) for _ in range(2)]
    pred = lp(enc, torch.tensor([5, 4, 3, 2]), torch.randn(4, 3, 6), torch.tensor([3, 3, 2, 1]))
    true = {"ctc": torch.tensor([1.0, 2.0, 3.0, 4.0]), "att": torch.tensor([4.0, 3.0, 2.0, 1.0])}
    lp.loss(pred, true).backward()
    for name, p in lp.named_parameters():
        if loss == "margin_ranking" and name.endswith("_out.bias"):
            # a ranking loss is blind to a shift shared by all predictions
            assert p.grad is None or p.grad.abs().sum() == 0
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kw,match", [
    (dict(targets=["wer"]), "subset"),
    (dict(encoder_layers=[0]), "1-based"),
    (dict(loss="hinge"), "margin_ranking"),
])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        LPMLPDecoder(encoder_output_size=8, decoder_output_size=6, **kw)


def test_ctc_only_needs_no_decoder():
    lp = LPMLPDecoder(encoder_output_size=8, decoder_output_size=None, targets=["ctc"],
                      encoder_layers=[1])
    out = lp([torch.randn(2, 3, 8)], torch.tensor([3, 2]))
    assert set(out) == {"ctc"}
