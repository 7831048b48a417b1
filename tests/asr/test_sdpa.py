"""The fused-attention switch of the LP heads' decoder pass."""

import torch
from espnet2.asr.decoder.transformer_decoder import TransformerDecoder

from espnet_lp.asr.sdpa import fused_attention


def _decoder():
    torch.manual_seed(0)
    return TransformerDecoder(vocab_size=12, encoder_output_size=16, attention_heads=2,
                              linear_units=32, num_blocks=2)


def _run(decoder):
    torch.manual_seed(1)
    enc = torch.randn(3, 20, 16)
    enc_lens = torch.tensor([20, 13, 5])
    ys = torch.randint(1, 11, (3, 7))
    ys_lens = torch.tensor([7, 4, 1])
    return decoder(enc, enc_lens, ys, ys_lens)[0]


def test_fused_attention_gives_the_same_outputs_and_is_undone_afterwards():
    decoder = _decoder().eval()
    with torch.no_grad():
        plain = _run(decoder)
        with fused_attention(decoder):
            switched = [m for m in decoder.modules() if getattr(m, "use_sdpa", False)]
            fused = _run(decoder)
    assert len(switched) == 4  # self and source attention of both blocks
    assert torch.allclose(plain, fused, atol=1e-5)
    assert not any(getattr(m, "use_sdpa", False) for m in decoder.modules())


def test_fused_attention_leaves_training_mode_alone():
    decoder = _decoder().train()
    with fused_attention(decoder):
        assert not any(getattr(m, "use_sdpa", False) for m in decoder.modules())
