"""ESPnet's losses before their batch reduction: one value per utterance (or token)."""

import torch


def label_smoothing_per_token(criterion, logits: torch.Tensor, target: torch.Tensor):
    """ESPnet's ``LabelSmoothingLoss`` before reduction: one value per token.

    Same arithmetic as ``criterion(logits, target)``, whose value equals
    ``result.sum() / denominator`` (tokens if ``normalize_length`` else batch size).

    Args:
        criterion: The model's ``criterion_att``.
        logits: Decoder output (B, L, V).
        target: Token ids with ``criterion.padding_idx`` as padding (B, L).

    Returns:
        (B, L) with zeros at padding.
    """
    b, n, v = logits.shape
    x = logits.reshape(-1, v)
    t = target.reshape(-1)
    ignore = t == criterion.padding_idx
    with torch.no_grad():
        true_dist = torch.full_like(x, criterion.smoothing / (v - 1))
        true_dist.scatter_(1, t.masked_fill(ignore, 0).unsqueeze(1), criterion.confidence)
    kl = criterion.criterion(torch.log_softmax(x, dim=1), true_dist)
    return kl.masked_fill(ignore.unsqueeze(1), 0.0).sum(1).view(b, n)
