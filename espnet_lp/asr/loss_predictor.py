"""Loss-prediction (LP) "decoders": modules that predict the ASR's per-utterance losses.

Following Luo et al. (2021), one head predicts the CTC loss from several intermediate encoder
layers and one predicts the attention loss from the attention decoder's states. At scoring
time no transcript exists, so the decoder states come from a teacher-forced pass over the CTC
greedy hypothesis; :class:`espnet_lp.asr.espnet_model.ESPnetLPASRModel` trains the head the
same way so that training and scoring see the same inputs.
"""

from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence

import torch
from typeguard import typechecked

from espnet_lp.asr.lp_losses import get_lp_loss

TARGETS = ("ctc", "att")


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over valid time steps.

    Args:
        x: Padded sequences (B, T, D).
        lengths: Valid lengths (B,).

    Returns:
        (B, D); zeros for empty sequences.
    """
    mask = (torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
    return (x * mask[..., None]).sum(1) / mask.sum(1).clamp(min=1.0)[:, None]


class AbsLPDecoder(torch.nn.Module, ABC):
    """Interface of LP decoders (the ``lp_decoder`` choice of :class:`LPASRTask`)."""

    @property
    @abstractmethod
    def encoder_layers(self) -> List[int]:
        """1-based indices of the encoder layers whose outputs the CTC head reads."""

    @property
    @abstractmethod
    def targets(self) -> List[str]:
        """Which losses are predicted: a subset of ``("ctc", "att")``."""

    @abstractmethod
    def forward(
        self,
        encoder_layer_outs: Sequence[torch.Tensor],
        encoder_lens: torch.Tensor,
        decoder_hs: Optional[torch.Tensor],
        decoder_lens: Optional[torch.Tensor],
    ) -> Dict[str, torch.Tensor]:
        """Predict losses.

        Args:
            encoder_layer_outs: Outputs of :attr:`encoder_layers`, each (B, T, D).
            encoder_lens: (B,).
            decoder_hs: Decoder states before the output layer (B, L, Dd), or None when
                ``att`` is not a target.
            decoder_lens: (B,).

        Returns:
            target name -> predicted loss (B,).
        """

    @abstractmethod
    def loss(self, pred: Dict[str, torch.Tensor], true: Dict[str, torch.Tensor]) -> torch.Tensor:
        """LP training loss given predictions and the ASR's true per-utterance losses."""


class LPMLPDecoder(AbsLPDecoder):
    """MLP heads over pooled hidden states (``lp_decoder: lp_mlp``).

    CTC head: for each chosen encoder layer, masked mean pooling, then linear + ReLU; the
    layer features are concatenated and mapped to one number. Attention head: the same on the
    decoder states.

    Args:
        encoder_output_size: Width of the encoder layers.
        decoder_output_size: Width of the decoder states (needed for the ``att`` target).
        encoder_layers: 1-based encoder layer indices read by the CTC head.
        hidden: Width of each per-layer projection.
        targets: Losses to predict.
        loss: ``margin_ranking`` or ``mse_log``.
        margin: Margin of the ranking loss.
        detach_after_epoch: From this epoch on, LP gradients no longer reach the ASR (the LP
            heads keep learning on detached features); None: never.
    """

    @typechecked
    def __init__(
        self,
        encoder_output_size: int,
        decoder_output_size: Optional[int],
        encoder_layers: Sequence[int] = (2, 4, 6),
        hidden: int = 128,
        targets: Sequence[str] = TARGETS,
        loss: str = "margin_ranking",
        margin: float = 1.0,
        detach_after_epoch: Optional[int] = None,
    ):
        super().__init__()
        bad = [t for t in targets if t not in TARGETS]
        if bad or not targets:
            raise ValueError(f"targets must be a non-empty subset of {TARGETS}, got {targets}")
        if not encoder_layers or min(encoder_layers) < 1:
            raise ValueError(f"encoder_layers are 1-based and non-empty, got {encoder_layers}")
        if "att" in targets and decoder_output_size is None:
            raise ValueError("the LP 'att' target needs an attention decoder "
                             "(decoder_output_size); a CTC-only model (ctc_weight 1.0) can "
                             "use targets: [ctc]")
        self._encoder_layers = list(encoder_layers)
        self._targets = list(targets)
        self.loss_fn = get_lp_loss(loss)
        self.margin = margin
        self.detach_after_epoch = detach_after_epoch
        if "ctc" in targets:
            self.ctc_layer_proj = torch.nn.ModuleList(
                torch.nn.Sequential(torch.nn.Linear(encoder_output_size, hidden), torch.nn.ReLU())
                for _ in self._encoder_layers
            )
            self.ctc_out = torch.nn.Linear(hidden * len(self._encoder_layers), 1)
        if "att" in targets:
            self.att_proj = torch.nn.Sequential(
                torch.nn.Linear(decoder_output_size, hidden), torch.nn.ReLU())
            self.att_out = torch.nn.Linear(hidden, 1)

    @property
    def encoder_layers(self) -> List[int]:
        return self._encoder_layers

    @property
    def targets(self) -> List[str]:
        return self._targets

    def forward(self, encoder_layer_outs, encoder_lens, decoder_hs=None, decoder_lens=None):
        out: Dict[str, torch.Tensor] = {}
        if "ctc" in self._targets:
            if len(encoder_layer_outs) != len(self._encoder_layers):
                raise ValueError(f"expected {len(self._encoder_layers)} encoder layer outputs, "
                                 f"got {len(encoder_layer_outs)}")
            feats = [proj(masked_mean(h, encoder_lens))
                     for proj, h in zip(self.ctc_layer_proj, encoder_layer_outs)]
            out["ctc"] = self.ctc_out(torch.cat(feats, dim=-1)).squeeze(-1)
        if "att" in self._targets:
            if decoder_hs is None or decoder_lens is None:
                raise ValueError("the 'att' head needs decoder states")
            out["att"] = self.att_out(self.att_proj(masked_mean(decoder_hs, decoder_lens)))
            out["att"] = out["att"].squeeze(-1)
        return out

    def loss(self, pred, true):
        return sum(self.loss_fn(pred[t], true[t], margin=self.margin) for t in self._targets)
