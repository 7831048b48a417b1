"""ESPnet's losses before their batch reduction: one value per utterance (or token).

:class:`PerUtteranceLossMixin` overrides ``ESPnetASRModel``'s CTC and attention loss methods
so that, during a forward that collects them (``self._stash`` is a dict), each branch also
keeps its per-utterance losses: the LP module's targets. The batch losses and ESPnet's
statistics are unchanged; outside such a forward, ESPnet's own methods run.
"""

import torch
from espnet.nets.pytorch_backend.nets_utils import th_accuracy
from espnet.nets.pytorch_backend.transformer.add_sos_eos import add_sos_eos


def label_smoothing_per_token(criterion, logits: torch.Tensor, target: torch.Tensor):
    """ESPnet's ``LabelSmoothingLoss`` before reduction: one value per token.

    Same arithmetic as ``criterion(logits, target)``, whose value equals
    ``result.sum() / denominator`` (tokens if ``normalize_length`` else batch size).

    Args:
        criterion: The model's ``criterion_att``.
        logits: Decoder output (B, L, V).
        target: Token ids with ``criterion.padding_idx`` as padding (B, L).

    Returns:
        (B, L) with zeros at padding.
    """
    b, n, v = logits.shape
    x = logits.reshape(-1, v)
    t = target.reshape(-1)
    ignore = t == criterion.padding_idx
    with torch.no_grad():
        true_dist = torch.full_like(x, criterion.smoothing / (v - 1))
        true_dist.scatter_(1, t.masked_fill(ignore, 0).unsqueeze(1), criterion.confidence)
    kl = criterion.criterion(torch.log_softmax(x, dim=1), true_dist)
    return kl.masked_fill(ignore.unsqueeze(1), 0.0).sum(1).view(b, n)


class PerUtteranceLossMixin:
    """ESPnet's ``_calc_ctc_loss``/``_calc_att_loss`` that also stash per-utterance losses.

    Expects ESPnetASRModel's attributes and a ``_stash`` (None: plain ESPnet).
    """

    def _calc_ctc_loss(self, encoder_out, encoder_out_lens, ys_pad, ys_pad_lens):
        if self._stash is None:
            return super()._calc_ctc_loss(encoder_out, encoder_out_lens, ys_pad, ys_pad_lens)
        # ESPnet's builtin CTC returns loss_i / B with reduce=False and sum_i(loss_i) / B with
        # reduce=True: one call gives both the per-utterance losses and ESPnet's batch loss.
        reduce = self.ctc.reduce
        self.ctc.reduce = False
        try:
            scaled = self.ctc(encoder_out, encoder_out_lens, ys_pad, ys_pad_lens)
        finally:
            self.ctc.reduce = reduce
        # The first call is the main CTC branch; later ones are intermediate CTC layers.
        self._stash.setdefault("ctc", scaled * encoder_out.size(0))
        cer_ctc = None
        if not self.training and self.error_calculator is not None:
            ys_hat = self.ctc.argmax(encoder_out).data
            cer_ctc = self.error_calculator(ys_hat.cpu(), ys_pad.cpu(), is_ctc=True)
        return scaled.sum(), cer_ctc

    def _calc_att_loss(self, encoder_out, encoder_out_lens, ys_pad, ys_pad_lens):
        if self._stash is None:
            return super()._calc_att_loss(encoder_out, encoder_out_lens, ys_pad, ys_pad_lens)
        if getattr(self, "lang_token_id", None) is not None:
            raise ValueError("loss prediction does not support lang_token_id")
        ys_in_pad, ys_out_pad = add_sos_eos(ys_pad, self.sos, self.eos, self.ignore_id)
        decoder_out, _ = self.decoder(encoder_out, encoder_out_lens, ys_in_pad, ys_pad_lens + 1)
        per_token = label_smoothing_per_token(self.criterion_att, decoder_out, ys_out_pad)
        per_utt = per_token.sum(1)
        self._stash["att"] = per_utt
        denom = ((ys_out_pad != self.ignore_id).sum() if self.criterion_att.normalize_length
                 else decoder_out.size(0))
        loss_att = per_utt.sum() / denom
        acc_att = th_accuracy(decoder_out.view(-1, self.vocab_size), ys_out_pad,
                              ignore_label=self.ignore_id)
        cer_att, wer_att = None, None
        if not self.training and self.error_calculator is not None:
            ys_hat = decoder_out.argmax(dim=-1)
            cer_att, wer_att = self.error_calculator(ys_hat.cpu(), ys_pad.cpu())
        return loss_att, acc_att, cer_att, wer_att
