"""The lp_mlp heads."""

import pytest
import torch

import math

from espnet_lp.asr.loss_predictor import (
    NUM_ATT_STATS,
    NUM_CTC_STATS,
    LPMLPDecoder,
    ctc_posterior_stats,
    decoder_posterior_stats,
    masked_mean,
)


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [0.0], [0.0]]])
    assert masked_mean(x, torch.tensor([2, 1])).squeeze(-1).tolist() == [2.0, 2.0]


def make(**kw):
    kw.setdefault("features", ["hidden"])
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


def test_ctc_posterior_stats_by_hand():
    # utterance 0: 2 valid frames, certain blank then certain token 1; frame 3 is padding
    p = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    logp = torch.log(p.clamp(min=1e-30))
    stats = ctc_posterior_stats(logp, torch.tensor([2]), [[1]])[0]
    assert stats[0].item() == pytest.approx(0.0, abs=1e-6)  # no uncertainty
    assert stats[1].item() == pytest.approx(0.0, abs=1e-6)
    assert stats[2].item() == pytest.approx(0.0, abs=1e-6)
    assert stats[3].item() == pytest.approx(0.5)  # blank mass over the 2 valid frames
    assert stats[4].item() == pytest.approx(0.0)  # no frame below probability 0.5
    assert stats[5].item() == pytest.approx(0.0, abs=1e-6)  # best path per token
    assert stats[6].item() == pytest.approx(0.5)  # 1 token / 2 frames
    assert stats[7].item() == pytest.approx(math.log(2) / 5)
    assert stats.numel() == NUM_CTC_STATS
    uniform = torch.full((1, 4, 3), math.log(1 / 3))
    s2 = ctc_posterior_stats(uniform, torch.tensor([4]), [[]])[0]
    assert s2[0].item() == pytest.approx(math.log(3))
    assert s2[1].item() == pytest.approx(math.log(1 / 3))
    assert s2[4].item() == pytest.approx(1.0)
    assert s2[5].item() == pytest.approx(4 * math.log(1 / 3) / 5)  # empty: per 1 token
    assert s2[6].item() == 0.0  # no tokens


def test_decoder_posterior_stats_is_hypothesis_nll():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1, 1, 1.0]]]))
    next_tokens = torch.tensor([[0, 1, -1]])
    stats = decoder_posterior_stats(logits, torch.tensor([2]), next_tokens)[0]
    assert stats[0].item() == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2, rel=1e-5)
    assert stats[2].item() == pytest.approx((math.log(0.5) + math.log(0.8)) / 2, rel=1e-5)
    assert stats[3].item() == 0.0  # the decoder agrees with the hypothesis at both steps
    other = decoder_posterior_stats(logits, torch.tensor([2]), torch.tensor([[1, 1, -1]]))[0]
    assert other[3].item() == pytest.approx(0.5)


def test_posterior_features_need_stats_and_are_used():
    torch.manual_seed(0)
    lp = make(features=["hidden", "posteriors"])
    enc, lens = [torch.randn(2, 5, 8) for _ in range(2)], torch.tensor([5, 4])
    dec, dlens = torch.randn(2, 3, 6), torch.tensor([3, 2])
    with pytest.raises(ValueError, match="pass ctc_stats"):
        lp(enc, lens, dec, dlens)
    cs, ats = torch.randn(2, NUM_CTC_STATS), torch.randn(2, NUM_ATT_STATS)
    out = lp(enc, lens, dec, dlens, ctc_stats=cs, att_stats=ats)
    out2 = lp(enc, lens, dec, dlens, ctc_stats=cs + 1, att_stats=ats + 1)
    assert not torch.allclose(out["ctc"], out2["ctc"])
    assert not torch.allclose(out["att"], out2["att"])
    only = make(features=["posteriors"])
    assert set(only([], lens, None, None, ctc_stats=cs, att_stats=ats)) == {"ctc", "att"}


@pytest.mark.parametrize("kw,match", [
    (dict(features=["words"]), "features must be"),
    (dict(targets=["wer"]), "subset"),
    (dict(encoder_layers=[0]), "1-based"),
    (dict(loss="hinge"), "margin_ranking"),
])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        LPMLPDecoder(encoder_output_size=8, decoder_output_size=6, **kw)


def test_ctc_only_needs_no_decoder():
    lp = LPMLPDecoder(encoder_output_size=8, decoder_output_size=None, targets=["ctc"],
                      encoder_layers=[1], features=["hidden"])
    out = lp([torch.randn(2, 3, 8)], torch.tensor([3, 2]))
    assert set(out) == {"ctc"}
