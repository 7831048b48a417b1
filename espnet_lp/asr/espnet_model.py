"""ESPnetLPASRModel: hybrid CTC/attention ASR trained jointly with a loss-prediction module.

The ASR part is ESPnet's own :class:`ESPnetASRModel` (its ``forward`` runs unchanged, so the
ASR loss is exactly ESPnet's); this subclass only

- makes the CTC and attention branches keep their per-utterance losses (the LP targets),
- captures the intermediate encoder layers the LP decoder reads (forward hooks, so any ESPnet
  encoder with an ``encoders`` layer list works, without changing its config),
- adds ``lp_weight * loss_lp`` to the loss, with LP statistics in the training log,
- scores untranscribed audio: :meth:`score_pool` (:mod:`espnet_lp.asr.pool_scoring`).
"""

import contextlib
import inspect
import logging
from typing import Dict, List, Optional, Tuple

import torch
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.torch_utils.device_funcs import force_gatherable
from typeguard import typechecked

from espnet_lp.asr.conf_check import build_checked, choose_class
from espnet_lp.asr.kd import KD_CRITERIA, AbsKDCriterion, CTCKLCriterion
from espnet_lp.asr.loss_predictor import (
    LP_DECODERS,
    TARGETS,
    AbsLPDecoder,
    LPMLPDecoder,
    masked_mean,
)
from espnet_lp.asr.lp_losses import spearman
from espnet_lp.asr.padding import masked_time_convolutions, per_utterance_feats
from espnet_lp.asr.per_utterance import PerUtteranceLossMixin
from espnet_lp.asr.pool_scoring import LPPoolScoringMixin
from espnet_lp.asr.teacher import subsampling_factor
from espnet_lp.errors import ModelConfigError

TARGET_NORMS = ("token", "none")
#: Keys of a checkpoint that only an LP model has (a stock export drops them).
PLUGIN_KEYS = ("lp_decoder.", "lp_epoch")

logger = logging.getLogger(__name__)


def is_plugin_key(key: str) -> bool:
    """Whether a state-dict key belongs to espnet-lp's additions, not to the stock model."""
    return key == "lp_epoch" or key.startswith("lp_decoder.")


class ESPnetLPASRModel(LPPoolScoringMixin, PerUtteranceLossMixin, ESPnetASRModel):
    """ESPnet ASR model + loss prediction (+ distillation): ``model: lp_espnet``.

    Everything is configured in ``model_conf``, so stock ``espnet2.bin.asr_train`` builds it
    once ``lp_espnet`` is registered (see :mod:`espnet_lp.registry`), and a stock model's
    ``config.yaml`` never gains keys that mean nothing to it.

    Args:
        lp_decoder: The LP module, a name of :data:`LP_DECODERS` (``lp_mlp``), or None for
            none (the model then behaves exactly like ``ESPnetASRModel``).
        lp_decoder_conf: Options of the LP module (its constructor's keyword arguments;
            the encoder and decoder widths are filled in here).
        lp_weight: Weight of the LP loss added to the ASR loss.
        lp_target_norm: ``token``: LP targets are per-token losses (CTC loss / transcript
            length, attention loss / (length + 1) for <eos>); ``none``: raw sums.
        kd: Knowledge-distillation criterion, a name of :data:`KD_CRITERIA` (``ctc_kl``),
            or None.
        kd_conf: Options of the criterion, including its ``teacher``. The teacher is loaded
            the first time the model trains, never for decoding or scoring.
        kd_weight: The loss is ``(1 - kd_weight) * asr_loss + kd_weight * kd_loss`` (plus
            ``lp_weight * lp_loss``); 0 disables KD.
        mask_padding: Keep padded frames out of every utterance's encoding (features per
            utterance, zeroed padding before time convolutions: :mod:`espnet_lp.asr.padding`),
            so scores, LP targets and losses do not depend on the batch. False: exactly
            ESPnet's computation.
        **kwargs: Everything ``ESPnetASRModel`` takes.
    """

    @typechecked
    def __init__(
        self,
        *args,
        lp_decoder: Optional[str] = "lp_mlp",
        lp_decoder_conf: Optional[Dict] = None,
        lp_weight: float = 1.0,
        lp_target_norm: str = "token",
        kd: Optional[str] = None,
        kd_conf: Optional[Dict] = None,
        kd_weight: float = 0.0,
        mask_padding: bool = True,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.mask_padding = mask_padding
        if lp_target_norm not in TARGET_NORMS:
            raise ModelConfigError(f"model_conf.lp_target_norm must be one of {TARGET_NORMS}: "
                                   f"{lp_target_norm!r}")
        if not lp_weight >= 0.0:  # also NaN: a negative weight would ascend the LP loss
            raise ModelConfigError(f"model_conf.lp_weight must be >= 0: {lp_weight}")
        self.lp_weight = lp_weight
        self.lp_target_norm = lp_target_norm
        if not 0.0 <= kd_weight <= 1.0:
            raise ModelConfigError(f"model_conf.kd_weight must be in [0, 1]: {kd_weight}")
        self.kd_weight = kd_weight
        self.kd: Optional[AbsKDCriterion] = None
        self.lp_decoder: Optional[AbsLPDecoder] = None
        # Epochs the trainer has started (ESPnet's trainer calls model.train() once per
        # epoch); a buffer, so a resumed run (checkpoint.pth) goes on counting.
        self.register_buffer("lp_epoch", torch.zeros((), dtype=torch.long))
        self._stash: Optional[dict] = None
        # An encoder output a caller already has (utterance_losses(encoded=...)), returned by
        # encode() in place of a second identical pass.
        self._reused_encoding: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        self._kd_checked = False
        lp_class = choose_class(LP_DECODERS, lp_decoder, "lp_decoder")
        if lp_class is not None:
            self.set_lp_decoder(build_checked(lp_class, "model_conf.lp_decoder_conf",
                                              lp_decoder_conf or {},
                                              encoder_output_size=self.encoder.output_size(),
                                              decoder_output_size=self._decoder_size()))
        kd_class = choose_class(KD_CRITERIA, kd, "kd")
        if kd_class is not None:
            self.kd = build_checked(kd_class, "model_conf.kd_conf", kd_conf or {},
                                    blank_id=self.blank_id)
            if kd_weight == 0.0:
                logger.warning("model_conf.kd is %s but kd_weight is 0: KD is off", kd)
        elif kd_weight > 0.0:
            raise ModelConfigError(
                f"model_conf.kd_weight={kd_weight} needs a KD criterion "
                f"(model_conf.kd: one of {sorted(KD_CRITERIA)}, with kd_conf.teacher)")
        elif (kd_conf or {}).get("teacher") is not None:
            logger.warning("model_conf.kd_conf names a teacher but model_conf.kd is none: "
                           "KD is off")

    def _decoder_size(self) -> Optional[int]:
        if self.decoder is None:
            return None
        size = getattr(self.decoder, "_output_size_bf_softmax", None)
        return size if size is not None else self.encoder.output_size()

    def set_lp_decoder(self, lp_decoder: AbsLPDecoder) -> None:
        """Attach the LP module after checking it fits this ASR model."""
        targets = lp_decoder.targets
        if self.ctc_weight == 0.0 or self.ctc is None:
            raise ModelConfigError(
                "loss prediction needs the CTC branch (ctc_weight > 0): both heads read the CTC "
                "greedy hypothesis, since no transcript exists at scoring time; set "
                "model_conf.lp_decoder: none otherwise")
        if "att" in targets and (self.ctc_weight == 1.0 or self.decoder is None
                                 or self.use_transducer_decoder):
            raise ModelConfigError("the LP 'att' target needs an attention decoder and "
                                   "ctc_weight < 1")
        if self.ctc.ctc_type != "builtin":
            raise ModelConfigError(f"loss prediction supports ctc_type 'builtin', not "
                                   f"{self.ctc.ctc_type!r} (per-utterance losses)")
        n_layers = len(getattr(self.encoder, "encoders", []))
        wanted = lp_decoder.encoder_layers
        if wanted and (n_layers == 0 or max(wanted) > n_layers):
            raise ModelConfigError(
                f"model_conf.lp_decoder_conf.encoder_layers={lp_decoder.encoder_layers}, but the "
                f"encoder has {n_layers} layers (valid: 1..{n_layers})")
        self.lp_decoder = lp_decoder

    def set_kd(self, kd: AbsKDCriterion) -> None:
        """Attach a KD criterion after checking its teacher can teach this model."""
        kd.check_student(self.token_list, subsampling_factor(self))
        self.kd = kd
        self._kd_checked = True

    def _kd_ready(self) -> AbsKDCriterion:
        """The KD criterion, its teacher loaded and checked against this model (once)."""
        if not self._kd_checked:
            self.kd.check_student(self.token_list, subsampling_factor(self))
            self._kd_checked = True
        return self.kd

    @property
    def epoch(self) -> int:
        """The current training epoch (1-based; 0 before training)."""
        return int(self.lp_epoch)

    def set_epoch(self, epoch: int) -> None:
        """Set the current epoch (for ``detach_after_epoch``) when not using ESPnet's trainer."""
        self.lp_epoch.fill_(epoch)

    def train(self, mode: bool = True):
        """``nn.Module.train``; ESPnet's trainer calls it once at the start of every epoch."""
        if mode:
            self.lp_epoch += 1
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``, warning about LP tensors a lenient load would lose.

        ESPnet loads checkpoints with ``strict=False``; without this, a checkpoint's LP heads
        would be dropped (model built without them) or left random (checkpoint without them)
        in silence.
        """
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        dropped = [k for k in result.unexpected_keys if is_plugin_key(k)]
        if dropped:
            logger.warning("%d loss-prediction tensors of the checkpoint do not fit this model "
                           "(model_conf.lp_decoder: %s) and were dropped: %s", len(dropped),
                           type(self.lp_decoder).__name__ if self.lp_decoder else None,
                           ", ".join(dropped))
        absent = [k for k in result.missing_keys if k.startswith("lp_decoder.")]
        if absent:
            logger.warning("%d loss-prediction tensors are not in the checkpoint and keep their "
                           "initial values: %s", len(absent), ", ".join(absent))
        return result

    def lp_detached(self) -> bool:
        """Whether LP gradients are currently kept out of the ASR."""
        after = getattr(self.lp_decoder, "detach_after_epoch", None)
        return after is not None and self.epoch > after

    # ---- ESPnet hooks: keep per-utterance losses and intermediate layers ----------------
    def _extract_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
        if not self.mask_padding or speech.size(0) == 1 or self.frontend is None:
            return super()._extract_feats(speech, speech_lengths)
        return per_utterance_feats(super()._extract_feats, speech, speech_lengths)

    def encode(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """ESPnet's encode (padding kept out with ``mask_padding``), capturing the LP
        decoder's encoder layers on the way."""
        with contextlib.ExitStack() as stack:
            if self.mask_padding and speech.size(0) > 1:
                stack.enter_context(masked_time_convolutions(self.encoder))
            return self._encode(speech, speech_lengths)

    def _encode(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        if self._reused_encoding is not None:
            out, lens = self._reused_encoding
            if self._stash is not None:  # no layers: only the LP prediction reads them
                self._stash.update(layers=None, enc=out, enc_lens=lens)
            return out, lens
        if self._stash is None:
            return super().encode(speech, speech_lengths)
        wanted = self.lp_decoder.encoder_layers if self.lp_decoder is not None else []
        captured: Dict[int, torch.Tensor] = {}
        handles = [self.encoder.encoders[k - 1].register_forward_hook(_capture(captured, k))
                   for k in wanted]
        try:
            out, lens = super().encode(speech, speech_lengths)
        finally:
            for h in handles:
                h.remove()
        self._stash["layers"] = [captured[k] for k in wanted]
        self._stash["enc"] = out[0] if isinstance(out, tuple) else out
        self._stash["enc_lens"] = lens
        return out, lens

    # ---- training ----------------------------------------------------------------------
    def _asr_forward(self, speech, speech_lengths, text, text_lengths, **kwargs):
        """ESPnet's forward, plus what the overrides stashed (per-utterance losses, layers)."""
        self._stash = {}
        try:
            out = super().forward(speech, speech_lengths, text, text_lengths, **kwargs)
            return out, self._stash
        finally:
            self._stash = None

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """ESPnet's forward, plus the LP and KD losses and their statistics.

        Utterances with an empty transcript (``text_lengths == 0``) are untranscribed: they
        contribute only the KD term (``kd_conf.unlabeled: kl_only``).

        Args:
            speech: (B, L) waveforms or (B, T, D) features.
            speech_lengths: (B,).
            text: (B, N) token ids, padded with -1.
            text_lengths: (B,); 0 for an untranscribed utterance.

        Returns:
            The loss, statistics for the reporter (``loss_lp``, ``spearman_lp_<target>``,
            ``loss_kd``, ``acc_kd``, ``frames_kd`` besides ESPnet's), and the batch weight, all
            made gatherable (1-dim) as ESPnet's are.
        """
        use_kd = self.kd is not None and self.kd_weight > 0
        labeled = text_lengths > 0
        if self.lp_decoder is None and not use_kd:
            _check_labeled(labeled, "without a KD criterion")
            return super().forward(speech, speech_lengths, text, text_lengths, **kwargs)
        (loss, stats, weight), stash = self._asr_forward(
            speech, speech_lengths, text, text_lengths, **kwargs)
        if not bool(labeled.all()):
            if self.interctc_weight != 0.0:
                raise ValueError("untranscribed utterances do not work with interctc_weight")
            loss, parts = self._labeled_asr_loss(stash, labeled, text_lengths, loss)
            stats["loss_asr_labeled"] = loss.detach() if parts else None
            # ESPnet's figures include the empty "transcripts"; report the transcribed ones.
            for name in ("ctc", "att"):
                if f"loss_{name}" in stats:
                    stats[f"loss_{name}"] = parts[name].detach() if parts else None
        if use_kd:
            student_logits = self.ctc.ctc_lo(stash["enc"])
            loss_kd, kd_stats = self._kd_ready()(speech, speech_lengths, student_logits,
                                                 stash["enc_lens"], kwargs.get("utt_id"))
            loss = (1.0 - self.kd_weight) * loss + self.kd_weight * loss_kd
            stats.update(kd_stats)
        if self.lp_decoder is not None and bool(labeled.any()):
            true = self._lp_targets(stash, text_lengths)
            pred, _ = self._predict(stash["layers"], stash["enc"], stash["enc_lens"],
                                    detach=self.lp_detached())
            pred = {t: v[labeled] for t, v in pred.items()}
            true = {t: v[labeled] for t, v in true.items()}
            loss_lp = self.lp_decoder.loss(pred, true)
            loss = loss + self.lp_weight * loss_lp
            stats["loss_lp"] = loss_lp.detach()
            for t in pred:
                stats[f"spearman_lp_{t}"] = spearman(pred[t], true[t]).to(loss.device)
        stats["loss"] = loss.detach()
        return force_gatherable((loss, stats, weight), loss.device)

    def _labeled_asr_loss(self, stash, labeled, text_lengths, espnet_loss):
        """ESPnet's hybrid loss over the transcribed utterances of a mixed batch, and its parts."""
        n = labeled.sum()
        if int(n) == 0:
            return espnet_loss * 0.0, {}  # keeps the graph; nothing to learn from transcripts
        parts = {}
        if "ctc" in stash:
            parts["ctc"] = stash["ctc"][labeled].sum() / n
        if "att" in stash:
            denom = (text_lengths[labeled] + 1).sum() if self.criterion_att.normalize_length else n
            parts["att"] = stash["att"][labeled].sum() / denom
        if len(parts) == 2:
            return self.ctc_weight * parts["ctc"] + (1.0 - self.ctc_weight) * parts["att"], parts
        return next(iter(parts.values())), parts

    @torch.no_grad()
    def utterance_losses(self, speech, speech_lengths, text, text_lengths,
                         with_embedding: bool = False,
                         encoded: Optional[Tuple[torch.Tensor, torch.Tensor]] = None):
        """The ASR's true per-utterance losses (what the LP module learns to predict).

        Normalised as ``lp_target_norm`` says. With ``text`` set to the model's own
        hypotheses this is the "estimated loss" baseline; with the reference, the oracle.

        Args:
            with_embedding: also return the mean-pooled encoder output (B, D) of the same
                pass (what ``score_pool`` returns), so that a caller needing both does not
                encode twice.
            encoded: The encoder output (B, T, D) of this very batch and its lengths (B,),
                as ``encode(speech, speech_lengths)`` gives them (its first element, for an
                encoder that also returns intermediate outputs), when the caller has them
                already (``estimated_loss`` encodes to find its pseudo-labels): used instead
                of encoding again. Any other tensors would give wrong losses.

        Returns:
            ``ctc`` and/or ``att`` (B,), as the LP decoder's targets (all branches the ASR
            computes when there is no LP decoder); with ``with_embedding``, a pair
            (those losses, the embedding).
        """
        # No CER/WER here: not needed, and ESPnet's calculator divides by the reference
        # length, which is 0 for an empty pseudo-label.
        if encoded is not None and (not torch.is_tensor(encoded[0])
                                    or encoded[0].size(0) != speech.size(0)
                                    or encoded[1].shape != speech_lengths.shape):
            raise ValueError(f"encoded: {tuple(getattr(encoded[0], 'shape', ()))} frames and "
                             f"{tuple(encoded[1].shape)} lengths are not this batch of "
                             f"{speech.size(0)} utterances (B, T, D) and (B,)")
        calculator, self.error_calculator = self.error_calculator, None
        self._reused_encoding = encoded
        try:
            _, stash = self._asr_forward(speech, speech_lengths, text, text_lengths)
        finally:
            self.error_calculator = calculator
            self._reused_encoding = None
        losses = self._lp_targets(stash, text_lengths)
        if with_embedding:
            return losses, masked_mean(stash["enc"], stash["enc_lens"])
        return losses

    def _lp_targets(self, stash: dict, text_lengths: torch.Tensor) -> Dict[str, torch.Tensor]:
        true = {}
        targets = self.lp_decoder.targets if self.lp_decoder else [t for t in TARGETS if t in stash]
        for t in targets:
            value = stash[t].detach().float()
            if self.lp_target_norm == "token":
                value = value / (text_lengths.float() + (1.0 if t == "att" else 0.0)).clamp(min=1)
            true[t] = value
        return true

    def _predict(self, layers: List[torch.Tensor], enc: torch.Tensor, enc_lens: torch.Tensor,
                 detach: bool) -> Tuple[Dict[str, torch.Tensor], List[List[int]]]:
        """LP predictions from captured encoder layers and a greedy-hypothesis decoder pass."""
        pooled, hyps = self._lp_pooled(layers, enc, enc_lens, detach)
        return self.lp_decoder.predict_pooled(pooled), hyps


def _check_labeled(labeled: torch.Tensor, why: str) -> None:
    if not bool(labeled.all()):
        raise ValueError(f"{int((~labeled).sum())} utterances of the batch have no transcript; "
                         f"they cannot be used {why}")


def _capture(store: Dict[int, torch.Tensor], index: int):
    def hook(module, inputs, output):
        x = output[0] if isinstance(output, tuple) else output
        store[index] = x[0] if isinstance(x, tuple) else x  # rel-pos layers: (x, pos_emb)
    return hook


def _merged_signature() -> inspect.Signature:
    """ESPnetASRModel's parameters followed by ours, so that ``--print_config`` and the
    ``model_conf`` defaults show every option (ESPnet reads defaults from the signature).

    The displayed defaults of ``lp_decoder_conf`` and ``kd_conf`` are those of ``lp_mlp`` and
    ``ctc_kl`` (the real defaults are None: "the chosen class's defaults").
    """
    parent = inspect.signature(ESPnetASRModel.__init__).parameters.values()
    own = inspect.signature(ESPnetLPASRModel.__init__).parameters.values()
    params = [p for p in parent if p.kind is not p.VAR_KEYWORD]
    names = {p.name for p in params}
    sizes = {"encoder_output_size", "decoder_output_size"}
    shown = {"lp_decoder_conf": _defaults(LPMLPDecoder, sizes),
             "kd_conf": {"teacher": None, **_defaults(CTCKLCriterion, {"teacher", "blank_id"})}}
    params += [p.replace(kind=p.KEYWORD_ONLY, default=shown.get(p.name, p.default))
               for p in own if p.kind is p.KEYWORD_ONLY and p.name not in names]
    return inspect.Signature(params)


def _defaults(cls: type, skip: set) -> Dict:
    return {name: list(p.default) if isinstance(p.default, tuple) else p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in skip and name != "self" and p.default is not p.empty}


ESPnetLPASRModel.__init__.__signature__ = _merged_signature()
