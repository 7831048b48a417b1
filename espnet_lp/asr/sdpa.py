"""Run ESPnet's plain multi-head attention through PyTorch's fused kernel while scoring.

ESPnet's ``MultiHeadedAttention`` computes attention as matmul, ``masked_fill``, softmax,
``masked_fill``, matmul; its ``use_sdpa`` branch calls
``torch.nn.functional.scaled_dot_product_attention`` instead, the same function to float
tolerance. The LP heads' teacher-forced decoder pass is small-tensor work where the two
``masked_fill`` copies of every score tensor are a third of its time (tiny conformer, batch 8,
one CPU thread: 0.13 s -> 0.10 s per 200 utterances), so pool scoring switches the decoder's
attention modules over for its pass and back afterwards. Training is untouched.
"""

import contextlib
from typing import Iterator

import torch
from espnet.nets.pytorch_backend.transformer.attention import MultiHeadedAttention


@contextlib.contextmanager
def fused_attention(module: torch.nn.Module) -> Iterator[None]:
    """Within the block, ``module``'s plain ESPnet attention layers use the fused kernel.

    Only layers of exactly ``MultiHeadedAttention`` are switched: subclasses (relative
    positions, ...) override ``forward`` and have no such branch. In training mode nothing
    changes (dropout on attention weights is not what the fused call applies).
    """
    layers = [] if module.training else [
        m for m in module.modules() if type(m) is MultiHeadedAttention
        and not getattr(m, "use_sdpa", False) and not getattr(m, "use_flash_attn", False)]
    for m in layers:
        m.use_sdpa = True
    try:
        yield
    finally:
        for m in layers:
            m.use_sdpa = False
