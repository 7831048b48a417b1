"""Knowledge-distillation criteria (the ``kd`` choice of :class:`LPASRTask`).

This module holds the interface; criteria register in ``espnet_lp.tasks.asr.kd_choices``.
"""

from abc import ABC, abstractmethod
from typing import Dict, Tuple

import torch


class AbsKDCriterion(torch.nn.Module, ABC):
    """A distillation loss between a teacher's and the student's output distributions."""

    @abstractmethod
    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        student_logits: torch.Tensor,
        student_lens: torch.Tensor,
        utt_ids: Tuple[str, ...],
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Return the KD loss (scalar) and statistics for the training log.

        Args:
            speech: Input audio (B, L), for an online teacher.
            speech_lengths: (B,).
            student_logits: Student CTC logits (B, T, V).
            student_lens: (B,).
            utt_ids: Utterance ids (cache keys of a cached teacher).
        """
