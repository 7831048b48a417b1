"""LP training losses on hand-made cases."""

import math

import pytest
import torch

from espnet_lp.asr.lp_losses import get_lp_loss, margin_ranking_loss, mse_log_loss, spearman


def test_ranking_loss_by_hand():
    # targets 3 > 1: pair (0,1) has sign +1; pred gap 0.2 < margin 1 -> 0.8
    pred = torch.tensor([0.5, 0.3])
    assert margin_ranking_loss(pred, torch.tensor([3.0, 1.0])).item() == pytest.approx(0.8)
    # wrong order: -(+1)*(0.3-0.5)... preds reversed -> 1 + 0.2
    assert margin_ranking_loss(pred, torch.tensor([1.0, 3.0])).item() == pytest.approx(1.2)
    # well separated, right order -> 0
    assert margin_ranking_loss(torch.tensor([5.0, 0.0]), torch.tensor([2.0, 1.0])).item() == 0.0


def test_ranking_loss_uses_all_pairs_of_odd_batches():
    pred = torch.tensor([0.0, 0.0, 0.0])
    target = torch.tensor([1.0, 2.0, 3.0])
    # 3 pairs, each max(0, 0 + 1) = 1
    assert margin_ranking_loss(pred, target).item() == pytest.approx(1.0)
    pred = torch.tensor([3.0, 2.0, 1.0])  # fully reversed: gaps 1, 2, 1 -> terms 2, 3, 2
    assert margin_ranking_loss(pred, target).item() == pytest.approx(7 / 3)


def test_ranking_loss_ignores_ties_and_handles_batch_of_one():
    pred = torch.tensor([0.2, 0.9, 0.1], requires_grad=True)
    target = torch.tensor([1.0, 1.0, 4.0])  # only pairs (0,2) and (1,2) are informative
    loss = margin_ranking_loss(pred, target, margin=0.5)
    expected = (max(0, (0.2 - 0.1) + 0.5) + max(0, (0.9 - 0.1) + 0.5)) / 2
    assert loss.item() == pytest.approx(expected)
    for p, t in [(torch.tensor([0.3]), torch.tensor([2.0])),
                 (torch.tensor([0.3, 0.4]), torch.tensor([2.0, 2.0]))]:
        p.requires_grad_(True)
        loss = margin_ranking_loss(p, t)
        loss.backward()
        assert loss.item() == 0.0 and torch.all(p.grad == 0)


def test_targets_never_get_gradients():
    pred = torch.tensor([0.1, 0.2], requires_grad=True)
    target = torch.tensor([2.0, 1.0], requires_grad=True)
    for name in ("margin_ranking", "mse_log"):
        get_lp_loss(name)(pred, target).backward()
        assert target.grad is None
    assert pred.grad is not None


def test_mse_log():
    pred = torch.tensor([math.log(2.0), 0.0])
    assert mse_log_loss(pred, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.0, abs=1e-7)
    assert mse_log_loss(torch.zeros(1), torch.tensor([math.e - 1])).item() == pytest.approx(1.0)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="margin_ranking"):
        get_lp_loss("hinge")


def test_spearman():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, a * 10).item() == pytest.approx(1.0)
    assert spearman(a, -a).item() == pytest.approx(-1.0)
    assert spearman(a, torch.tensor([1.0, 1.0, 2.0, 2.0])).item() == pytest.approx(0.894, abs=1e-3)
    assert math.isnan(spearman(a, torch.ones(4)).item())
