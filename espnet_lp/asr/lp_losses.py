"""Training losses of the loss-prediction module.

Targets (the ASR's true per-utterance losses) are always detached here: the LP module learns
to predict the ASR's loss, it must not push the ASR towards losses that are easy to predict.
"""

from typing import Callable, Dict

import torch


def margin_ranking_loss(pred: torch.Tensor, target: torch.Tensor,
                        margin: float = 1.0) -> torch.Tensor:
    """Pairwise margin ranking loss of Yoo & Kweon (2019), over all pairs of a batch.

    For a pair (i, j): ``max(0, -sign(l_i - l_j) * (p_i - p_j) + margin)``. Yoo & Kweon split a
    mini-batch into halves; ESPnet batches are dynamic and may be odd-sized, so every pair
    i < j is used instead. Tied targets carry no ranking information (their term would be the
    constant ``margin``) and are left out. With fewer than two utterances, or only ties, the
    loss is zero (still connected to ``pred``, so that the backward pass is well defined).

    Args:
        pred: Predicted losses (B,).
        target: True losses (B,).
        margin: Required score gap between a pair in the right order.

    Returns:
        Mean over the informative pairs (scalar).
    """
    target = target.detach()
    i, j = torch.triu_indices(len(pred), len(pred), offset=1, device=pred.device)
    sign = torch.sign(target[i] - target[j])
    informative = sign != 0
    if not bool(informative.any()):
        return pred.sum() * 0.0
    terms = torch.clamp(-sign * (pred[i] - pred[j]) + margin, min=0.0)
    return terms[informative].mean()


def mse_log_loss(pred: torch.Tensor, target: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Regression of ``log(1 + loss)``: the prediction lives on a log scale.

    Losses span orders of magnitude between easy and hard utterances; the log keeps the hard
    ones from dominating. ``margin`` is accepted (and ignored) so that all LP losses share one
    signature.

    Args:
        pred: Predicted ``log(1 + loss)`` (B,).
        target: True losses (B,), non-negative.

    Returns:
        Mean squared error (scalar).
    """
    return torch.mean((pred - torch.log1p(target.detach().clamp(min=0.0))) ** 2)


LP_LOSSES: Dict[str, Callable[..., torch.Tensor]] = {
    "margin_ranking": margin_ranking_loss,
    "mse_log": mse_log_loss,
}


def get_lp_loss(name: str) -> Callable[..., torch.Tensor]:
    """Look an LP loss up by name (the ``loss`` key of ``lp_decoder_conf``)."""
    try:
        return LP_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown LP loss {name!r}; valid: {sorted(LP_LOSSES)}") from None


def spearman(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of two 1-D tensors (ties get their average rank).

    Used as a training-log statistic, so users see the LP module learning to rank.
    Returns NaN when either side is constant or has fewer than two values.
    """
    if len(pred) < 2:
        return torch.tensor(float("nan"))
    rp, rt = _ranks(pred.detach().float()), _ranks(target.detach().float())
    rp, rt = rp - rp.mean(), rt - rt.mean()
    denom = torch.sqrt((rp ** 2).sum() * (rt ** 2).sum())
    if denom == 0:
        return torch.tensor(float("nan"))
    return (rp * rt).sum() / denom


def _ranks(x: torch.Tensor) -> torch.Tensor:
    order = torch.argsort(x)
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(len(x), dtype=x.dtype, device=x.device)
    # average the ranks of tied values
    uniq, inverse = torch.unique(x, return_inverse=True)
    sums = torch.zeros(len(uniq), dtype=x.dtype, device=x.device).index_add_(0, inverse, ranks)
    counts = torch.zeros(len(uniq), dtype=x.dtype, device=x.device).index_add_(
        0, inverse, torch.ones_like(x))
    return (sums / counts)[inverse]
