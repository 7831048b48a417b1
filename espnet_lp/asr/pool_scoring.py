"""Transcript-free passes of the LP model: scoring untranscribed audio.

:class:`LPPoolScoringMixin` is the half of :class:`~espnet_lp.asr.espnet_model.ESPnetLPASRModel`
that needs no transcript: the CTC greedy hypotheses, a decoder pass teacher-forced on them
(the attention head's input), the LP heads' pooled inputs, and :meth:`score_pool`. Training
uses the same :meth:`_lp_pooled`, so the heads see the same inputs when they learn and when
they score.
"""

from typing import Dict, List, Optional, Tuple

import torch
from espnet.nets.pytorch_backend.nets_utils import pad_list

from espnet_lp.asr.loss_predictor import ctc_posterior_stats, decoder_posterior_stats, masked_mean
from espnet_lp.asr.sdpa import fused_attention


class LPPoolScoringMixin:
    """Scoring methods of an ESPnet hybrid CTC/attention model with an LP decoder.

    Expects ESPnetASRModel's attributes (``ctc``, ``decoder``, ``blank_id``, ``sos``, ``eos``,
    ``ctc_weight``, ``encode``) and ours (``lp_decoder``, and the ``_stash`` that
    ``encode`` fills with the captured encoder layers).
    """

    def _lp_pooled(self, layers: List[torch.Tensor], enc: torch.Tensor, enc_lens: torch.Tensor,
                   detach: bool) -> Tuple[Dict[str, torch.Tensor], List[List[int]]]:
        """The LP heads' pooled inputs, and the CTC greedy hypotheses they were made from."""
        if detach:
            layers = [h.detach() for h in layers]
        ctc_logp = self.ctc.log_softmax(enc)
        hyps = self.ctc_greedy(enc, enc_lens, ctc_logp)
        lp = self.lp_decoder
        post = getattr(lp, "uses_posteriors", False)
        ctc_stats = att_stats = dec_hs = dec_lens = None
        if post and "ctc" in lp.targets:
            ctc_stats = ctc_posterior_stats(ctc_logp, enc_lens, hyps, self.blank_id)
        if "att" in lp.targets:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not detach):
                dec_hs, dec_lens, logits, next_tokens = self._decoder_states(enc, enc_lens, hyps)
            if post:
                att_stats = decoder_posterior_stats(logits, dec_lens, next_tokens)
        return lp.pool(layers, enc_lens, dec_hs, dec_lens, ctc_stats, att_stats), hyps

    def ctc_greedy(self, enc: torch.Tensor, enc_lens: torch.Tensor,
                   ctc_logp: Optional[torch.Tensor] = None) -> List[List[int]]:
        """CTC best-path hypotheses (repeats merged, blanks removed) as token id lists."""
        if ctc_logp is None:
            ctc_logp = self.ctc.log_softmax(enc)
        best = ctc_logp.argmax(-1).detach().cpu()
        hyps = []
        for b, n in enumerate(enc_lens.tolist()):
            ids = torch.unique_consecutive(best[b, :n])
            hyps.append([i for i in ids.tolist() if i != self.blank_id])
        return hyps

    def _decoder_states(self, enc, enc_lens, hyps):
        """Decoder pass teacher-forced on ``<sos> + hypothesis``: no transcript needed.

        Returns:
            states before the output layer (B, L, D), lengths (B,), logits (B, L, V) and the
            tokens each step predicts (``hypothesis + <eos>``, padded with -1) (B, L).
        """
        ys_in = pad_list([torch.tensor([self.sos] + h, dtype=torch.long) for h in hyps],
                         self.eos).to(enc.device)
        ys_next = pad_list([torch.tensor(h + [self.eos], dtype=torch.long) for h in hyps],
                           -1).to(enc.device)
        ys_lens = torch.tensor([len(h) + 1 for h in hyps], device=enc.device)
        with fused_attention(self.decoder):
            out, _ = self.decoder(enc, enc_lens, ys_in, ys_lens, return_hs=True)
        if not isinstance(out, tuple):
            raise ValueError("the LP 'att' head needs a decoder that returns its states "
                             "(return_hs=True), as ESPnet's transformer decoders do")
        logits, states = out
        return states, ys_lens, logits, ys_next

    @torch.no_grad()
    def score_pool(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Dict:
        """Score untranscribed utterances: one encoder pass (+ one decoder pass), no beam.

        Call in eval mode. Args:
            speech: (B, L) waveforms or features, as for ``encode``.
            speech_lengths: (B,).

        Returns:
            ``lp_ctc`` and ``lp_att`` (B,) predicted losses (those predicted), ``lp_score``
            (B,) their combination weighted by ``ctc_weight`` (higher: more informative),
            ``hyp`` list of CTC greedy token-id lists, ``embedding`` (B, D) mean-pooled
            encoder output (for diversity-aware selection).
        """
        pooled, hyps, embedding = self.lp_inputs(speech, speech_lengths)
        pred = self.lp_decoder.predict_pooled(pooled)
        if set(pred) == {"ctc", "att"}:
            score = self.ctc_weight * pred["ctc"] + (1.0 - self.ctc_weight) * pred["att"]
        else:
            score = next(iter(pred.values()))
        out = {f"lp_{t}": v for t, v in pred.items()}
        out.update(lp_score=score, hyp=hyps, embedding=embedding)
        return out

    @torch.no_grad()
    def lp_inputs(self, speech: torch.Tensor, speech_lengths: torch.Tensor
                  ) -> Tuple[Dict[str, torch.Tensor], List[List[int]], torch.Tensor]:
        """What the LP heads read, for scoring or for refitting the heads on held-out data.

        Returns:
            The heads' pooled inputs (``AbsLPDecoder.pool``), the CTC greedy hypotheses and
            the mean-pooled encoder output (B, D).
        """
        if self.lp_decoder is None:
            raise ValueError("loss prediction needs an LP decoder (model has none)")
        self._stash = {}
        try:
            self.encode(speech, speech_lengths)
            stash = self._stash
        finally:
            self._stash = None
        pooled, hyps = self._lp_pooled(stash["layers"], stash["enc"], stash["enc_lens"],
                                       detach=True)
        return pooled, hyps, masked_mean(stash["enc"], stash["enc_lens"])
