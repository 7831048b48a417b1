"""Loss-prediction (LP) "decoders": modules that predict the ASR's per-utterance losses.

Following Luo et al. (2021), one head predicts the CTC loss from several intermediate encoder
layers and one predicts the attention loss from the attention decoder's states. At scoring
time no transcript exists, so the decoder states come from a teacher-forced pass over the CTC
greedy hypothesis; :class:`espnet_lp.asr.espnet_model.ESPnetLPASRModel` trains the head the
same way so that training and scoring see the same inputs.
"""

import math
from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence

import torch
from typeguard import typechecked

from espnet_lp.asr.lp_losses import get_lp_loss

TARGETS = ("ctc", "att")
FEATURES = ("hidden", "posteriors")
NUM_CTC_STATS = 8
NUM_ATT_STATS = 4


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


def ctc_posterior_stats(logp: torch.Tensor, lens: torch.Tensor,
                        hyps: Sequence[Sequence[int]], blank: int = 0) -> torch.Tensor:
    """Confidence statistics of CTC posteriors and of the greedy hypothesis, order one.

    Args:
        logp: CTC log-posteriors (B, T, V).
        lens: Valid frames (B,).
        hyps: CTC greedy hypotheses (token ids, blanks removed).
        blank: Blank index.

    Returns:
        (B, NUM_CTC_STATS): per frame: mean entropy, mean and minimum best-path
        log-probability (clamped at -10), share of blank-probability mass, share of frames
        whose best token has probability < 0.5; per hypothesis token: best-path
        log-probability (what ``ctc_confidence`` ranks by) / 5; hypothesis tokens per frame
        and log(frames) / 5. The CTC loss of the hypothesis (the CTC half of
        ``estimated_loss``) was a feature until the ablation in
        ``tools/bench/results/lp_quality.md`` showed the refit heads rank no worse without
        it (tune half 0.613 vs 0.604), while its CPU kernel cost 2.5% of an encoder pass.
    """
    logp = logp.detach().float()
    mask = torch.arange(logp.size(1), device=logp.device)[None, :] < lens[:, None]
    n = mask.sum(1).clamp(min=1).float()
    prob = logp.exp()
    entropy = -(prob * logp).sum(-1)
    best = logp.max(-1).values
    hyp_lens = torch.tensor([len(h) for h in hyps], device=logp.device)
    tokens = hyp_lens.clamp(min=1).float()

    def mean(x):
        return (x * mask).sum(1) / n

    return torch.stack([
        mean(entropy), mean(best.clamp(min=-10.0)),
        best.clamp(min=-10.0).masked_fill(~mask, 0.0).min(1).values,
        mean(prob[..., blank]), mean((best < math.log(0.5)).float()),
        ((best * mask).sum(1) / tokens).clamp(min=-50.0) / 5.0,
        hyp_lens.float() / n, torch.log(n) / 5.0,
    ], dim=1)


def decoder_posterior_stats(logits: torch.Tensor, lens: torch.Tensor,
                            next_tokens: torch.Tensor) -> torch.Tensor:
    """Confidence statistics of the attention decoder on a teacher-forced hypothesis.

    Args:
        logits: Decoder outputs (B, L, V) for ``<sos> + hyp``.
        lens: Valid steps (B,) (hypothesis length + 1).
        next_tokens: Tokens each step predicts, ``hyp + <eos>`` (B, L).

    Returns:
        (B, NUM_ATT_STATS): mean negative log-likelihood of the hypothesis (its own
        "estimated loss"), mean entropy, mean best log-probability, and the share of steps
        where the decoder's best token is not the CTC hypothesis's (CTC/attention
        disagreement).
    """
    logp = torch.log_softmax(logits.detach().float(), dim=-1)
    mask = torch.arange(logp.size(1), device=logp.device)[None, :] < lens[:, None]
    n = mask.sum(1).clamp(min=1).float()
    nll = -logp.gather(-1, next_tokens.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    best, argmax = logp.max(-1)
    disagree = (argmax != next_tokens).float()

    def mean(x):
        return (x * mask).sum(1) / n

    return torch.stack([mean(nll.clamp(max=20.0)), mean(entropy), mean(best), mean(disagree)],
                       dim=1)


class AbsLPDecoder(torch.nn.Module, ABC):
    """Interface of LP decoders (``model_conf.lp_decoder`` of ``model: lp_espnet``)."""

    @property
    @abstractmethod
    def encoder_layers(self) -> List[int]:
        """1-based indices of the encoder layers whose outputs the CTC head reads."""

    @property
    @abstractmethod
    def targets(self) -> List[str]:
        """Which losses are predicted: a subset of ``("ctc", "att")``."""

    @abstractmethod
    def pool(
        self,
        encoder_layer_outs: Sequence[torch.Tensor],
        encoder_lens: torch.Tensor,
        decoder_hs: Optional[torch.Tensor],
        decoder_lens: Optional[torch.Tensor],
        ctc_stats: Optional[torch.Tensor] = None,
        att_stats: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Reduce the model's outputs to fixed-size per-utterance inputs of the heads.

        Args:
            encoder_layer_outs: Outputs of :attr:`encoder_layers`, each (B, T, D).
            encoder_lens: (B,).
            decoder_hs: Decoder states before the output layer (B, L, Dd), or None when
                ``att`` is not a target.
            decoder_lens: (B,).
            ctc_stats: :func:`ctc_posterior_stats` (B, NUM_CTC_STATS).
            att_stats: :func:`decoder_posterior_stats` (B, NUM_ATT_STATS).

        Returns:
            name -> (B, F) tensors, everything :meth:`predict_pooled` needs.
        """

    @abstractmethod
    def predict_pooled(self, pooled: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Predicted losses (target name -> (B,)) from :meth:`pool`'s output."""

    def forward(self, encoder_layer_outs, encoder_lens, decoder_hs=None, decoder_lens=None,
                ctc_stats=None, att_stats=None) -> Dict[str, torch.Tensor]:
        """Predict losses: :meth:`predict_pooled` of :meth:`pool` (same arguments)."""
        return self.predict_pooled(self.pool(encoder_layer_outs, encoder_lens, decoder_hs,
                                             decoder_lens, ctc_stats, att_stats))

    @abstractmethod
    def loss(self, pred: Dict[str, torch.Tensor], true: Dict[str, torch.Tensor]) -> torch.Tensor:
        """LP training loss given predictions and the ASR's true per-utterance losses."""


class LPMLPDecoder(AbsLPDecoder):
    """MLP heads over pooled hidden states and posterior statistics (``lp_decoder: lp_mlp``).

    CTC head: for each chosen encoder layer, masked mean pooling, then linear + ReLU (the
    paper's design); with ``posteriors``, also a linear + ReLU branch over confidence
    statistics of the CTC posteriors (:func:`ctc_posterior_stats`). The branch outputs are
    concatenated and mapped to one number. Attention head: the same over the pooled decoder
    states and the decoder's statistics on the hypothesis (:func:`decoder_posterior_stats`).
    Posterior statistics are detached: the ASR is not pushed to make its confidence
    predictive, only its hidden states are trained through the LP loss.

    Args:
        encoder_output_size: Width of the encoder layers.
        decoder_output_size: Width of the decoder states (needed for the ``att`` target).
        encoder_layers: 1-based encoder layer indices read by the CTC head.
        hidden: Width of each per-layer projection.
        targets: Losses to predict.
        loss: ``margin_ranking`` or ``mse_log``.
        margin: Margin of the ranking loss.
        detach_after_epoch: After this epoch, LP gradients no longer reach the ASR (the LP
            heads keep learning on detached features); None: never.
        features: ``hidden`` (pooled encoder layers / decoder states) and/or ``posteriors``
            (confidence statistics of the CTC / decoder posteriors).
        dropout: Dropout on each branch's output (the heads see few utterances per epoch
            and overfit easily).
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
        features: Sequence[str] = FEATURES,
        dropout: float = 0.0,
    ):
        super().__init__()
        bad_features = [f for f in features if f not in FEATURES]
        if bad_features or not features:
            raise ValueError(f"features must be a non-empty subset of {FEATURES}, got {features}")
        bad = [t for t in targets if t not in TARGETS]
        if bad or not targets:
            raise ValueError(f"targets must be a non-empty subset of {TARGETS}, got {targets}")
        if not margin >= 0.0:  # a negative margin rewards pairs in the wrong order
            raise ValueError(f"margin must be >= 0, got {margin}")
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
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
        self.features = list(features)
        use_hidden, use_post = "hidden" in features, "posteriors" in features

        def branch(size: int) -> torch.nn.Module:
            return torch.nn.Sequential(torch.nn.Linear(size, hidden), torch.nn.ReLU(),
                                       torch.nn.Dropout(dropout))

        if "ctc" in targets:
            n_layers = len(self._encoder_layers) if use_hidden else 0
            self.ctc_layer_proj = torch.nn.ModuleList(
                branch(encoder_output_size) for _ in range(n_layers))
            self.ctc_stats_proj = branch(NUM_CTC_STATS) if use_post else None
            self.ctc_out = torch.nn.Linear(hidden * (n_layers + int(use_post)), 1)
        if "att" in targets:
            self.att_proj = branch(decoder_output_size) if use_hidden else None
            self.att_stats_proj = branch(NUM_ATT_STATS) if use_post else None
            self.att_out = torch.nn.Linear(hidden * (int(use_hidden) + int(use_post)), 1)

    @property
    def encoder_layers(self) -> List[int]:
        # nothing to capture when the CTC head does not read hidden states
        return self._encoder_layers if len(getattr(self, "ctc_layer_proj", [])) else []

    @property
    def targets(self) -> List[str]:
        return self._targets

    @property
    def uses_posteriors(self) -> bool:
        """Whether the caller must pass ``ctc_stats``/``att_stats``."""
        return "posteriors" in self.features

    def pool(self, encoder_layer_outs, encoder_lens, decoder_hs=None, decoder_lens=None,
             ctc_stats=None, att_stats=None) -> Dict[str, torch.Tensor]:
        """The fixed-size per-utterance inputs of the heads (what :meth:`predict_pooled` reads).

        Split from the heads so that a refit of the heads on held-out utterances
        (:mod:`espnet_lp.asr.lp_refit`) runs the ASR once and trains on these vectors.

        Returns:
            ``ctc_layer<k>`` (B, D) per encoder layer, ``ctc_stats`` (B, NUM_CTC_STATS),
            ``att_hidden`` (B, Dd), ``att_stats`` (B, NUM_ATT_STATS): those the heads use.
        """
        pooled: Dict[str, torch.Tensor] = {}
        if "ctc" in self._targets:
            if len(self.ctc_layer_proj):
                if len(encoder_layer_outs) != len(self._encoder_layers):
                    raise ValueError(f"expected {len(self._encoder_layers)} encoder layer "
                                     f"outputs, got {len(encoder_layer_outs)}")
                for k, h in zip(self._encoder_layers, encoder_layer_outs):
                    pooled[f"ctc_layer{k}"] = masked_mean(h, encoder_lens)
            if self.ctc_stats_proj is not None:
                pooled["ctc_stats"] = _required(ctc_stats, "ctc_stats")
        if "att" in self._targets:
            if self.att_proj is not None:
                if decoder_hs is None or decoder_lens is None:
                    raise ValueError("the 'att' head needs decoder states")
                pooled["att_hidden"] = masked_mean(decoder_hs, decoder_lens)
            if self.att_stats_proj is not None:
                pooled["att_stats"] = _required(att_stats, "att_stats")
        return pooled

    def predict_pooled(self, pooled: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Predicted losses from :meth:`pool`'s output: target name -> (B,)."""
        out: Dict[str, torch.Tensor] = {}
        if "ctc" in self._targets:
            feats = [proj(pooled[f"ctc_layer{k}"])
                     for k, proj in zip(self._encoder_layers, self.ctc_layer_proj)]
            if self.ctc_stats_proj is not None:
                feats.append(self.ctc_stats_proj(pooled["ctc_stats"]))
            out["ctc"] = self.ctc_out(torch.cat(feats, dim=-1)).squeeze(-1)
        if "att" in self._targets:
            feats = []
            if self.att_proj is not None:
                feats.append(self.att_proj(pooled["att_hidden"]))
            if self.att_stats_proj is not None:
                feats.append(self.att_stats_proj(pooled["att_stats"]))
            out["att"] = self.att_out(torch.cat(feats, dim=-1)).squeeze(-1)
        return out

    def loss(self, pred, true):
        return sum(self.loss_fn(pred[t], true[t], margin=self.margin) for t in self._targets)


def _required(value: Optional[torch.Tensor], name: str) -> torch.Tensor:
    if value is None:
        raise ValueError(f"features include 'posteriors': pass {name}")
    return value


#: ``model_conf.lp_decoder`` name -> class (a new LP decoder subclasses :class:`AbsLPDecoder`
#: and is added here).
LP_DECODERS = {"lp_mlp": LPMLPDecoder}
