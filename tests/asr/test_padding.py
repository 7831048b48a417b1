"""An utterance's scores and losses do not depend on its batch (mask_padding)."""

import pytest
import torch

from espnet_lp.al.scoring import PoolBatch, Scorer, _pad, get_strategy, score_batch
from espnet_lp.asr.padding import standalone_lengths
from tests.asr.conftest import build_tiny


def batch_of(en_batch, order):
    speech, lens, text, text_lens = en_batch
    return speech[order], lens[order], text[order], text_lens[order]


def alone(en_batch, i):
    speech, lens, text, text_lens = en_batch
    return (speech[i:i + 1, : lens[i]], lens[i:i + 1], text[i:i + 1, : text_lens[i]],
            text_lens[i:i + 1])


@pytest.fixture
def model(en_inputs):
    torch.manual_seed(0)
    return build_tiny(en_inputs / "token_list").eval()


def test_scores_and_losses_are_the_same_in_any_batch(model, en_batch):
    with torch.no_grad():
        batched = model.score_pool(*en_batch[:2])
        losses = model.utterance_losses(*en_batch)
        for i in range(len(en_batch[1])):
            one = model.score_pool(*alone(en_batch, i)[:2])
            for key in ("lp_score", "lp_ctc", "lp_att"):
                torch.testing.assert_close(batched[key][i], one[key][0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(batched["embedding"][i], one["embedding"][0],
                                       atol=1e-5, rtol=1e-5)
            one_loss = model.utterance_losses(*alone(en_batch, i))
            for key in ("ctc", "att"):
                torch.testing.assert_close(losses[key][i], one_loss[key][0], atol=1e-4,
                                           rtol=1e-5)


@pytest.mark.parametrize("strategy", ["ctc_confidence", "estimated_loss", "loss_prediction",
                                      "true_loss"])
def test_every_batched_strategy_is_batch_invariant(model, en_batch, strategy):
    scorer, fn = Scorer(model), get_strategy(strategy)
    ids = [f"u{i}" for i in range(4)]
    batched = score_batch(fn, scorer, PoolBatch(ids, *en_batch)).scores
    reordered = score_batch(fn, scorer, PoolBatch(ids[::-1], *batch_of(en_batch, [3, 2, 1, 0])))
    for i in range(4):
        one = score_batch(fn, scorer, PoolBatch([ids[i]], *alone(en_batch, i))).scores
        torch.testing.assert_close(batched[i], one[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(reordered.scores[3 - i], one[0], atol=1e-5, rtol=1e-5)


def test_without_mask_padding_the_batch_leaks(model, en_batch):
    """The leak this guards against is real: ESPnet's own computation differs."""
    model.mask_padding = False
    shortest = int(en_batch[1].argmin())
    with torch.no_grad():
        batched = model.score_pool(*en_batch[:2])["lp_score"][shortest]
        one = model.score_pool(*alone(en_batch, shortest)[:2])["lp_score"][0]
    assert (batched - one).abs() > 1e-3


def test_standalone_lengths_follow_the_subsampling_convolutions(model):
    lengths = torch.tensor([7, 8, 9, 100, 101])
    # conv2d subsampling: two convolutions of kernel 3, stride 2 over time
    expected = ((lengths - 1) // 2 - 1) // 2
    assert standalone_lengths(model.encoder.embed, lengths).tolist() == expected.tolist()


def test_estimated_loss_encodes_once_and_scores_as_with_two_passes(model, en_batch):
    """The pseudo-label pass's encoder output is reused for the losses: the same scores as
    encoding again, at half the encoder cost."""
    speech, lens = en_batch[:2]
    scorer = Scorer(model)
    with torch.no_grad():
        enc, enc_lens = model.encode(speech, lens)
        padded, text_lens = _pad(model.ctc_greedy(enc, enc_lens))
        again = model.utterance_losses(speech, lens, padded, text_lens)
        weight = model.ctc_weight
        expected = weight * again["ctc"] + (1 - weight) * again["att"]
        calls = []
        hook = model.encoder.register_forward_hook(lambda *_: calls.append(1))
        try:
            out = get_strategy("estimated_loss").fn(scorer, PoolBatch(["a", "b", "c", "d"],
                                                                      speech, lens))
        finally:
            hook.remove()
    assert len(calls) == 1
    torch.testing.assert_close(out.scores, expected.double(), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="not this batch of 4 utterances"):
        model.utterance_losses(speech, lens, padded, text_lens,
                               encoded=(enc[:2], enc_lens[:2]))
    # nothing left behind for the next call
    assert model._reused_encoding is None and model.error_calculator is not None
