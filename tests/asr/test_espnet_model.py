"""ESPnetLPASRModel: registration, yaml build, losses, gradients, scoring."""

import multiprocessing

import pytest
import torch
from espnet2.asr.espnet_model import ESPnetASRModel

from espnet_lp.asr.espnet_model import ESPnetLPASRModel
from espnet_lp.asr.per_utterance import label_smoothing_per_token
from espnet_lp.asr.loss_predictor import LPMLPDecoder
from tests.asr.conftest import build_tiny


def _registered() -> bool:
    import espnet2.tasks.asr as asr_task

    return "lp_espnet" in asr_task.model_choices.classes


@pytest.mark.slow
def test_registration_survives_spawn():
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        assert pool.apply(_registered) is True


def test_yaml_builds_the_lp_model(tiny_model):
    assert isinstance(tiny_model, ESPnetLPASRModel)
    assert isinstance(tiny_model.lp_decoder, LPMLPDecoder)
    assert tiny_model.lp_decoder.features == ["posteriors"]  # the tiny yaml's choice
    assert tiny_model.ctc_weight == 0.3


@pytest.mark.parametrize("normalize_length", [True, False])
def test_per_token_attention_loss_matches_espnet(normalize_length):
    from espnet.nets.pytorch_backend.transformer.label_smoothing_loss import (
        LabelSmoothingLoss,
    )

    crit = LabelSmoothingLoss(7, -1, 0.1, normalize_length=normalize_length)
    logits = torch.randn(3, 5, 7)
    target = torch.tensor([[1, 2, 3, -1, -1], [4, 5, 6, 1, 2], [3, -1, -1, -1, -1]])
    per_tok = label_smoothing_per_token(crit, logits, target)
    assert torch.all(per_tok[target == -1] == 0)
    denom = (target != -1).sum() if normalize_length else 3
    torch.testing.assert_close(per_tok.sum() / denom, crit(logits, target))


def test_per_utterance_ctc_matches_espnet(tiny_model, en_batch):
    model = tiny_model.eval()
    speech, lens, text, text_lens = en_batch
    with torch.no_grad():
        enc, enc_lens = ESPnetASRModel.encode(model, speech, lens)
        model._stash = {}
        batch_loss, _ = model._calc_ctc_loss(enc, enc_lens, text, text_lens)
        per_utt = model._stash["ctc"]
        model._stash = None
        stock, _ = ESPnetASRModel._calc_ctc_loss(model, enc, enc_lens, text, text_lens)
        torch.testing.assert_close(batch_loss, stock)
        torch.testing.assert_close(per_utt.sum() / len(per_utt), stock)
        for i in range(len(per_utt)):
            single, _ = ESPnetASRModel._calc_ctc_loss(
                model, enc[i:i + 1, : enc_lens[i]], enc_lens[i:i + 1],
                text[i:i + 1, : text_lens[i]], text_lens[i:i + 1])
            torch.testing.assert_close(per_utt[i], single)


def test_forward_keeps_espnet_asr_loss_and_adds_lp(tiny_model, en_batch):
    model = tiny_model.eval()
    with torch.no_grad():
        stock_loss, stock_stats, _ = ESPnetASRModel.forward(model, *en_batch)
        loss, stats, weight = model(*en_batch)
    for key in ("loss_ctc", "loss_att", "acc"):
        torch.testing.assert_close(stats[key], stock_stats[key])
    torch.testing.assert_close(loss, stock_loss + model.lp_weight * stats["loss_lp"])
    assert {"loss_lp", "spearman_lp_ctc", "spearman_lp_att"} <= set(stats)
    assert int(weight) == 4


def _grads(model, batch, lp_weight):
    model.zero_grad()
    model.lp_weight = lp_weight
    loss, _, _ = model(*batch)
    loss.backward()
    return {n: p.grad.clone() if p.grad is not None else None
            for n, p in model.named_parameters()}


def test_lp_gradients_reach_asr_until_detach_epoch(en_inputs, en_batch):
    model = build_tiny(en_inputs / "token_list",
                       "--model_conf", "lp_decoder_conf.detach_after_epoch=2",
                       "--model_conf", "lp_decoder_conf.features=[hidden,posteriors]").eval()
    enc_param = "encoder.encoders.0.feed_forward.w_1.weight"
    dec_param = "decoder.decoders.0.self_attn.linear_q.weight"
    head_param = "lp_decoder.ctc_out.weight"
    for epoch, attached in [(1, True), (2, True), (3, False)]:
        model.set_epoch(epoch)
        assert model.lp_detached() is not attached
        with_lp, without = _grads(model, en_batch, 1.0), _grads(model, en_batch, 0.0)
        assert with_lp[head_param].abs().sum() > 0
        for name in (enc_param, dec_param):
            differs = not torch.allclose(with_lp[name], without[name])
            assert differs is attached, (epoch, name)


def test_score_pool_needs_no_transcript(tiny_model, en_batch):
    model = tiny_model.eval()
    speech, lens, _, _ = en_batch
    out = model.score_pool(speech, lens)
    for key in ("lp_ctc", "lp_att", "lp_score"):
        assert out[key].shape == (4,) and torch.isfinite(out[key]).all()
    w = model.ctc_weight
    torch.testing.assert_close(out["lp_score"], w * out["lp_ctc"] + (1 - w) * out["lp_att"])
    assert out["embedding"].shape == (4, 64)
    assert len(out["hyp"]) == 4 and all(isinstance(h, list) for h in out["hyp"])
    one = model.score_pool(speech[:1, : lens[0]], lens[:1])
    torch.testing.assert_close(one["lp_ctc"], out["lp_ctc"][:1], atol=1e-4, rtol=1e-4)


def test_incompatible_lp_config(en_inputs):
    with pytest.raises(ValueError, match="encoder has 3 layers"):
        build_tiny(en_inputs / "token_list", "--model_conf", "lp_decoder_conf.encoder_layers=[2,9]",
                   "--model_conf", "lp_decoder_conf.features=[hidden]")


def test_ctc_only_model_rejects_att_target(en_inputs):
    with pytest.raises(ValueError, match="needs an attention decoder"):
        build_tiny(en_inputs / "token_list", "--model_conf", "ctc_weight=1.0")
    model = build_tiny(en_inputs / "token_list", "--model_conf", "ctc_weight=1.0",
                       "--model_conf", "lp_decoder_conf.targets=[ctc]")
    assert model.lp_decoder.targets == ["ctc"]


def test_utterance_losses_are_per_token_by_default(tiny_model, en_batch):
    model = tiny_model.eval()
    speech, lens, text, text_lens = en_batch
    per_token = model.utterance_losses(*en_batch)
    model.lp_target_norm = "none"
    raw = model.utterance_losses(*en_batch)
    torch.testing.assert_close(per_token["ctc"], raw["ctc"] / text_lens)
    torch.testing.assert_close(per_token["att"], raw["att"] / (text_lens + 1))
    assert (raw["ctc"] > 0).all() and (raw["att"] > 0).all()
    with torch.no_grad():
        _, stats, _ = ESPnetASRModel.forward(model, *en_batch)
    torch.testing.assert_close(raw["ctc"].mean(), stats["loss_ctc"].reshape(()))
