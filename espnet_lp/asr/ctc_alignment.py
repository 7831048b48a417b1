"""Whether CTC can align a transcript to an utterance's encoder frames at all.

A CTC alignment of ``L`` tokens, ``R`` of which repeat the token before, needs at least
``L + R`` encoder frames (one per token, a blank between repeats). ESPnet's CTC loss has
``zero_infinity`` on, so an utterance with fewer frames gets a CTC loss of 0 and trains the
CTC branch nothing, silently. Character tokens with 4x subsampling (40 ms per encoder frame)
leave fast speech close to that limit; BPE tokens or less subsampling move it away.

Frames are counted as the model makes them from the audio alone: the STFT frontend's
``1 + samples // hop_length`` (``center=True``), then the subsampling front's time
convolutions (for ESPnet's ``Conv2dSubsampling*`` the same as its mask slicing).
"""

from dataclasses import dataclass
from typing import List, Mapping, NamedTuple, Optional, Sequence

#: Per ``input_layer``: the ``(cut, step)`` of each slicing of ESPnet's subsampling mask,
#: ``x[:-cut:step]`` (espnet/nets/pytorch_backend/transformer/subsampling.py).
SUBSAMPLING_SLICES = {
    "conv2d": ((2, 2), (2, 2)),
    "conv2d1": ((4, 1),),
    "conv2d2": ((2, 2), (2, 1)),
    "conv2d6": ((2, 2), (4, 3)),
    "conv2d8": ((2, 2), (2, 2), (2, 2)),
    "linear": (),
}
#: Encoders whose ``input_layer`` option names the subsampling front (default ``conv2d``).
ENCODERS_WITH_INPUT_LAYER = ("conformer", "transformer", "e_branchformer", "branchformer")
DEFAULT_HOP_LENGTH = 128  # espnet2.asr.frontend.default.DefaultFrontend


@dataclass(frozen=True)
class EncoderGeometry:
    """How many encoder frames an utterance gets: the frontend's hop and the input layer."""

    hop_length: int
    input_layer: str

    def frames(self, samples: int) -> int:
        """Encoder frames of an utterance of ``samples`` audio samples."""
        n = 1 + samples // self.hop_length
        for cut, step in SUBSAMPLING_SLICES[self.input_layer]:
            n = max(0, -(-(n - cut) // step))
        return n


class Unalignable(NamedTuple):
    """An utterance CTC cannot align: its encoder frames and the frames its tokens need."""

    utt_id: str
    frames: int
    needed: int


def geometry_from_config(conf: Mapping) -> Optional[EncoderGeometry]:
    """The encoder geometry of an ESPnet ASR training config, or None where it is not known
    here (another frontend, a pre-encoder, an encoder without ``input_layer``, an unknown
    input layer): then no frame count is claimed."""
    if not isinstance(conf, Mapping):
        return None
    encoder_conf = conf.get("encoder_conf") or {}
    frontend_conf = conf.get("frontend_conf") or {}
    if ((conf.get("frontend") or "default") != "default" or conf.get("preencoder")
            or conf.get("encoder") not in ENCODERS_WITH_INPUT_LAYER
            or not isinstance(encoder_conf, Mapping) or not isinstance(frontend_conf, Mapping)):
        return None
    layer = encoder_conf.get("input_layer", "conv2d")
    hop = frontend_conf.get("hop_length", DEFAULT_HOP_LENGTH)
    if (not isinstance(layer, str) or layer not in SUBSAMPLING_SLICES
            or isinstance(hop, bool) or not isinstance(hop, int) or hop <= 0):
        return None
    return EncoderGeometry(hop, layer)


def frames_needed(tokens: Sequence[str]) -> int:
    """The fewest encoder frames a CTC alignment of ``tokens`` takes."""
    return len(tokens) + sum(a == b for a, b in zip(tokens, tokens[1:]))


def unalignable(samples: Mapping[str, int], tokens: Mapping[str, Sequence[str]],
                geometry: EncoderGeometry) -> List[Unalignable]:
    """The utterances of ``tokens`` (with samples in ``samples``) that CTC cannot align."""
    out = []
    for u, toks in tokens.items():
        frames, needed = geometry.frames(samples[u]), frames_needed(toks)
        if frames < needed:
            out.append(Unalignable(u, frames, needed))
    return out
