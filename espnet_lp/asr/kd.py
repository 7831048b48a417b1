"""Knowledge-distillation criteria (``model_conf.kd`` of ``model: lp_espnet``).

``ctc_kl``: frame-level KL(teacher || student) between CTC posteriors at temperature T,
scaled by T^2 (Hinton et al.), averaged over valid frames. The model combines it as
``(1 - kd_weight) * asr_loss + kd_weight * kd_loss``; the KL term needs no transcript.
"""

import math
import numbers
from abc import ABC, abstractmethod
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from typeguard import typechecked

from espnet_lp.asr.teacher import (
    AbsTeacher,
    TeacherError,
    TeacherPosteriors,
    build_teacher,
    check_teacher_spec,
)
from espnet_lp.errors import ModelConfigError

FRAME_SELECT = ("all", "teacher_nonblank")
UNLABELED = ("kl_only",)
#: ``kd_conf`` options of ``ctc_kl`` a user sets (the teacher aside; the model passes blank_id).
CTC_KL_OPTIONS = ("temperature", "frame_select", "unlabeled")


def check_ctc_kl_options(conf: Mapping, where: str = "model_conf.kd_conf") -> None:
    """Check ``ctc_kl`` options (all but the teacher) without building a teacher.

    Args:
        conf: Some of :data:`CTC_KL_OPTIONS` (a ``teacher`` key is left to the teacher's own
            checks).
        where: What to name in messages (``model_conf.kd_conf``, ``--kd_opts``).

    Raises:
        ModelConfigError: An unknown option or a bad value, named with the valid ones.
    """
    unknown = sorted(k for k in conf if k not in CTC_KL_OPTIONS + ("teacher",))
    if unknown:
        raise ModelConfigError(f"{where}: unknown ctc_kl option {unknown[0]!r}; valid: "
                               f"{', '.join(CTC_KL_OPTIONS)}")
    frame_select = conf.get("frame_select", "all")
    if frame_select not in FRAME_SELECT:
        raise ModelConfigError(f"{where}: frame_select must be one of {FRAME_SELECT}: "
                               f"{frame_select!r}")
    unlabeled = conf.get("unlabeled", "kl_only")
    if unlabeled not in UNLABELED:
        raise ModelConfigError(f"{where}: unlabeled must be one of {UNLABELED}: {unlabeled!r}")
    temperature = conf.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
            or not 0 < temperature < math.inf:
        raise ModelConfigError(f"{where}: temperature must be a positive number: "
                               f"{temperature!r}")


class AbsKDCriterion(torch.nn.Module, ABC):
    """A distillation loss between a teacher's and the student's output distributions."""

    @abstractmethod
    def check_student(self, token_list: Sequence[str], subsampling: int) -> None:
        """Raise :class:`TeacherError` if the teacher cannot teach this student."""

    @abstractmethod
    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        student_logits: torch.Tensor,
        student_lens: torch.Tensor,
        utt_ids: Optional[Sequence[str]],
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Return the KD loss (scalar) and statistics for the training log.

        Args:
            speech: Input audio (B, L), for an online teacher.
            speech_lengths: (B,).
            student_logits: Student CTC logits (B, T, V).
            student_lens: (B,).
            utt_ids: Utterance ids (keys of a cached teacher).
        """


class CTCKLCriterion(AbsKDCriterion):
    """``kd: ctc_kl``.

    Args:
        teacher: ``{asr_train_config, asr_model_file}``, ``{zoo_zip}`` or
            ``{cache_dir, topk, verify_audio}`` (see :mod:`espnet_lp.asr.teacher`).
        temperature: Softmax temperature of both distributions.
        frame_select: ``all`` valid frames, or ``teacher_nonblank`` (frames whose teacher
            argmax is not blank: CTC posteriors are dominated by blank frames).
        unlabeled: How utterances without transcript are used: ``kl_only``.
        blank_id: Index of the CTC blank (the student model passes its own).

    Raises:
        ModelConfigError: A bad option (:func:`check_ctc_kl_options`), naming it.
    """

    @typechecked
    def __init__(self, teacher: Union[Dict, AbsTeacher], temperature: float = 1.0,
                 frame_select: str = "all", unlabeled: str = "kl_only", blank_id: int = 0):
        super().__init__()
        check_ctc_kl_options({"temperature": temperature, "frame_select": frame_select,
                              "unlabeled": unlabeled}, "model_conf.kd_conf")
        # An AbsTeacher is not a Module: never in the state dict, optimizer or DDP wrapper.
        # A teacher spec is only checked here and loaded on first use (training), so that a
        # distilled student loads for decoding or scoring where its teacher does not exist.
        if isinstance(teacher, AbsTeacher):
            self._teacher: Optional[AbsTeacher] = teacher
            self.teacher_spec: Dict = {}
        else:
            self._teacher = None
            self.teacher_spec = check_teacher_spec(teacher, "kd_conf.teacher")
        self.temperature = temperature
        self.frame_select = frame_select
        self.unlabeled = unlabeled
        self.blank_id = blank_id
        self.pool = 1

    @property
    def teacher(self) -> AbsTeacher:
        """The teacher, loaded from :attr:`teacher_spec` the first time it is needed."""
        if self._teacher is None:
            self._teacher = build_teacher(**self.teacher_spec)
        return self._teacher

    def check_student(self, token_list, subsampling):
        if list(token_list) != list(self.teacher.token_list):
            diff = _first_difference(list(self.teacher.token_list), list(token_list))
            raise TeacherError(f"teacher and student token lists differ ({diff}); KD needs the "
                               "same token list")
        ratio = subsampling / self.teacher.subsampling
        if ratio < 1 or not float(ratio).is_integer():
            raise TeacherError(f"teacher subsampling {self.teacher.subsampling}, student "
                               f"{subsampling}: the frame-rate ratio {ratio:g} is not an integer "
                               ">= 1, so teacher frames cannot be pooled to the student's rate")
        if ratio > 1 and getattr(self.teacher, "meta", None) is not None:
            raise TeacherError("a cached teacher must be built at the student's frame rate "
                               f"(espnet_lp.bin.kd_cache --pool {int(ratio)})")
        self.pool = int(ratio)

    def forward(self, speech, speech_lengths, student_logits, student_lens, utt_ids):
        teacher = self.teacher.posteriors(speech, speech_lengths, utt_ids, self.temperature)
        if self.pool > 1:
            teacher = pool_posteriors(teacher, self.pool)
        valid = frame_mask(teacher.lens, student_lens, student_logits.size(1), utt_ids)
        t_logp = teacher.logp[:, : student_logits.size(1)]
        t_index = None if teacher.index is None else teacher.index[:, : student_logits.size(1)]
        t_logp, t_index = _pad_time(t_logp, t_index, student_logits.size(1))
        t_best = t_logp.argmax(-1) if t_index is None else t_index[..., 0]
        valid_all = valid
        if self.frame_select == "teacher_nonblank":
            valid = valid & (t_best != self.blank_id)
        s_logp = torch.log_softmax(student_logits.float() / self.temperature, dim=-1)
        kl = kl_per_frame(t_logp.float(), t_index, s_logp) * self.temperature ** 2
        n = valid.sum()
        loss = (kl * valid).sum() / n.clamp(min=1)
        agree = ((s_logp.argmax(-1) == t_best) & valid).sum() / n.clamp(min=1)
        used = n.float() / valid_all.sum().clamp(min=1)
        # ESPnet's <metric>_<branch> names; the reporter averages them over batches (weighted
        # by batch size), so report rates, not counts.
        return loss, {"loss_kd": loss.detach(), "acc_kd": agree.detach().float(),
                      "frames_kd": used.detach()}


def kl_per_frame(t_logp: torch.Tensor, t_index: Optional[torch.Tensor],
                 s_logp: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per frame (B, T).

    Dense teacher (``t_index`` None): the usual sum over the vocabulary. Top-k teacher: the
    k cached tokens plus one bucket holding the rest of the mass on both sides, so both are
    proper distributions over k + 1 outcomes (the student's log-probabilities are gathered at
    the teacher's indices; its "rest" is ``1 - sum``).
    """
    if t_index is None:
        return (t_logp.exp() * (t_logp - s_logp)).sum(-1)
    s_k = s_logp.gather(-1, t_index)
    t_p = t_logp.exp()
    kl = (t_p * (t_logp - s_k)).sum(-1)
    t_rest = (1.0 - t_p.sum(-1)).clamp(min=0.0)
    s_rest = (1.0 - s_k.exp().sum(-1)).clamp(min=1e-10)
    return kl + t_rest * (torch.log(t_rest.clamp(min=1e-10)) - torch.log(s_rest))


def pool_posteriors(t: TeacherPosteriors, r: int) -> TeacherPosteriors:
    """Average dense teacher probabilities over groups of ``r`` frames (teacher faster)."""
    if t.index is not None:
        raise TeacherError("top-k posteriors cannot be pooled; build the cache pooled")
    b, n, v = t.logp.shape
    pad = (-n) % r
    logp = torch.cat([t.logp, t.logp.new_full((b, pad, v), -math.inf)], 1) if pad else t.logp
    groups = logp.view(b, -1, r, v)
    lens = torch.div(t.lens + r - 1, r, rounding_mode="floor")
    counts = torch.clamp(t.lens[:, None] - torch.arange(0, n + pad, r, device=logp.device)[None],
                         min=1, max=r)  # frames in each group (the last may be partial)
    pooled = torch.logsumexp(groups, dim=2) - torch.log(counts.float())[..., None]
    return TeacherPosteriors(pooled, None, lens)


def frame_mask(t_lens: torch.Tensor, s_lens: torch.Tensor, t_max: int,
               utt_ids: Optional[Sequence[str]]) -> torch.Tensor:
    """Frames valid for both; a length mismatch beyond conv edge effects is an error."""
    t_lens = t_lens.to(s_lens.device)
    bad = (t_lens - s_lens).abs() > 2
    if bad.any():
        b = int(bad.nonzero()[0])
        utt = utt_ids[b] if utt_ids is not None else f"#{b}"
        raise TeacherError(f"utterance {utt}: teacher has {int(t_lens[b])} frames, student "
                           f"{int(s_lens[b])} (different audio or frame rate; stale cache?)")
    lens = torch.minimum(t_lens, s_lens)
    return torch.arange(t_max, device=s_lens.device)[None, :] < lens[:, None]


def _pad_time(logp: torch.Tensor, index: Optional[torch.Tensor], n: int):
    """Pad the teacher's time axis to ``n`` (padded frames are masked out anyway)."""
    short = n - logp.size(1)
    if short <= 0:
        return logp, index
    logp = torch.cat([logp, logp[:, -1:].expand(-1, short, -1)], 1)
    if index is not None:
        index = torch.cat([index, index[:, -1:].expand(-1, short, -1)], 1)
    return logp, index


def _first_difference(a: List[str], b: List[str]) -> str:
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} tokens"
    i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return f"token {i}: teacher {a[i]!r}, student {b[i]!r}"


#: ``model_conf.kd`` name -> class (a new criterion subclasses :class:`AbsKDCriterion`).
KD_CRITERIA = {"ctc_kl": CTCKLCriterion}
