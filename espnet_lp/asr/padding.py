"""Keep padded frames from leaking into an utterance's outputs (batch-invariant encoding).

In a zero-padded batch, ESPnet's encoders let padding reach valid frames in two places:

- the STFT frontend (``center=True``): the last frames of a short utterance see the zeros
  that follow it instead of the reflection padding it gets alone;
- convolutions over time inside the encoder layers (the conformer's depthwise convolution,
  the branchformer's gating convolution): their receptive field reaches the padded frames,
  which hold whatever the feed-forward and residual paths made of them, not zeros.

- the frame mask after the subsampling front: ESPnet subsamples the input mask by slicing
  (``mask[:, :, :-2:2][:, :, :-2:2]``), which keeps one or two frames more than the
  convolutions give the utterance alone; those frames, computed from padding, are then
  attended to and counted in ``encoder_out_lens`` (and so in the CTC loss).

Attention and layer norm do not leak by themselves. The cures here: features are extracted
per utterance (:func:`per_utterance_feats`); within :func:`masked_time_convolutions`, the
mask after the subsampling front is cut to the length the front's convolutions give each
utterance alone, and the input of every time convolution with a kernel wider than one frame
is zeroed at padded frames, which is what the convolution's own zero padding gives an
utterance alone. Together they make an utterance's encoder output, its length, and so its
scores and losses the same in any batch.
"""

import contextlib
from typing import Callable, Iterator, List, Tuple

import torch


def per_utterance_feats(extract: Callable, speech: torch.Tensor, lengths: torch.Tensor
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run a feature extractor on each utterance alone and pad the results with zeros.

    Args:
        extract: ``(speech (1, L), lengths (1,)) -> (feats (1, T, D), feats_lengths (1,))``.
        speech: (B, L).
        lengths: (B,).

    Returns:
        feats (B, T_max, D) and feats_lengths (B,).
    """
    feats, feats_lens = [], []
    for b in range(speech.size(0)):
        f, n = extract(speech[b:b + 1, : lengths[b]], lengths[b:b + 1])
        feats.append(f[0, : n[0]])
        feats_lens.append(n)
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), torch.cat(feats_lens)


def standalone_lengths(embed: torch.nn.Module, lengths: torch.Tensor) -> torch.Tensor:
    """Output lengths of a subsampling front's time convolutions for inputs of ``lengths``
    (what each utterance gets alone), from the ``Conv2d`` layers it holds (time = dim 0)."""
    out = lengths.clone()
    for conv in embed.modules():
        if isinstance(conv, torch.nn.Conv2d):
            k, s = conv.kernel_size[0], conv.stride[0]
            p, d = conv.padding[0], conv.dilation[0]
            out = torch.div(out + 2 * p - d * (k - 1) - 1, s, rounding_mode="floor") + 1
    return out


def _time_convolutions(encoder) -> List[torch.nn.Conv1d]:
    layers = getattr(encoder, "encoders", None)
    if layers is None:
        return []
    return [m for m in layers.modules()
            if isinstance(m, torch.nn.Conv1d) and m.kernel_size[0] > 1]


@contextlib.contextmanager
def masked_time_convolutions(encoder) -> Iterator[None]:
    """While active, zero the padded frames of every time-convolution input of ``encoder``.

    Also cuts the mask returned by the encoder's subsampling front (``encoder.embed``, which
    returns ``(x, mask)`` with mask (B, 1, T)) to each utterance's standalone length.
    """
    convs = _time_convolutions(encoder)
    embed = getattr(encoder, "embed", None)
    if embed is None:
        yield
        return
    state = {}

    def fix_mask(module, inputs, output):
        if not (isinstance(output, tuple) and len(output) == 2 and output[1] is not None
                and len(inputs) > 1 and inputs[1] is not None):
            return None
        x, mask = output
        alone = standalone_lengths(module, inputs[1].sum(-1).reshape(-1))
        frames = torch.arange(mask.size(-1), device=mask.device)
        state["mask"] = (frames[None, :] < alone[:, None]).unsqueeze(1) & mask
        return x, state["mask"]

    def zero_padding(module, inputs):
        mask = state.get("mask")
        x = inputs[0]
        if mask is None or mask.size(-1) != x.size(-1):
            return None  # no usable mask (e.g. a streaming or chunked call): leave as is
        return (x * mask.to(x.dtype),) + tuple(inputs[1:])

    handles = [embed.register_forward_hook(fix_mask)]
    handles += [conv.register_forward_pre_hook(zero_padding) for conv in convs]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
