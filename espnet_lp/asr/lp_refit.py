"""Refit the loss-prediction heads on held-out transcribed utterances, the ASR frozen.

Jointly trained heads (Luo et al., 2021) learn from the ASR's losses on its own training
utterances. The ASR has partly memorised those, so their losses are small and relate to the
model's confidence differently than on unseen audio, which is what the pool is. A refit on
utterances the ASR never trained on (the validation set an ESPnet recipe already has) teaches
the heads the relation that holds on the pool. Measured in ``tools/bench/lp_quality.py``.

The ASR runs once over the held-out set (:meth:`ESPnetLPASRModel.lp_inputs`); the heads then
train on the pooled, fixed-size vectors, which takes seconds. A fifth of the utterances is
kept aside to choose the step (early stopping on Spearman), since held-out sets are small.
"""

import copy
import hashlib
import logging
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import torch

from espnet_lp.asr.loss_predictor import AbsLPDecoder
from espnet_lp.asr.lp_losses import get_lp_loss, spearman

logger = logging.getLogger(__name__)
#: Fewest held-out utterances to refit on, and to keep aside for early stopping.
MIN_UTTERANCES = 10
MIN_CHECK = 5


#: (utt ids, speech, speech lengths, text, text lengths)
Batch = Tuple[List[str], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class HeldOutSet:
    """Per-utterance head inputs and true losses of a held-out set.

    Args:
        utt_ids: Ids (N).
        pooled: Head inputs (``AbsLPDecoder.pool``), name -> (N, F).
        targets: True losses as the LP heads predict them, target -> (N,).
    """

    utt_ids: List[str]
    pooled: Dict[str, torch.Tensor]
    targets: Dict[str, torch.Tensor]

    def subset(self, index: torch.Tensor) -> "HeldOutSet":
        return HeldOutSet([self.utt_ids[i] for i in index.tolist()],
                          {k: v[index] for k, v in self.pooled.items()},
                          {k: v[index] for k, v in self.targets.items()})


@torch.no_grad()
def collect_held_out(model, batches: Iterable[Batch]) -> HeldOutSet:
    """Run the frozen ASR over transcribed batches: head inputs and true losses.

    Args:
        model: An ``ESPnetLPASRModel`` in eval mode.
        batches: (utt ids, speech, speech lengths, text, text lengths) tuples.
    """
    ids: List[str] = []
    pooled: Dict[str, List[torch.Tensor]] = {}
    targets: Dict[str, List[torch.Tensor]] = {}
    for utt_ids, speech, speech_lens, text, text_lens in batches:
        empty = [u for u, n in zip(utt_ids, text_lens.tolist()) if n == 0]
        if empty:
            raise ValueError(f"utterance {empty[0]}: empty transcript; refitting the LP heads "
                             "needs transcribed utterances")
        p, _, _ = model.lp_inputs(speech, speech_lens)
        t = model.utterance_losses(speech, speech_lens, text, text_lens)
        ids += list(utt_ids)
        for k, v in p.items():
            pooled.setdefault(k, []).append(v.float().cpu())
        for k, v in t.items():
            targets.setdefault(k, []).append(v.float().cpu())
    if len(ids) < MIN_UTTERANCES:
        raise ValueError(f"refitting the LP heads needs at least {MIN_UTTERANCES} held-out "
                         f"utterances, got {len(ids)}")
    return HeldOutSet(ids, {k: torch.cat(v) for k, v in pooled.items()},
                      {k: torch.cat(v) for k, v in targets.items()})


def combined(values: Dict[str, torch.Tensor], ctc_weight: float) -> torch.Tensor:
    """What ``score_pool`` ranks by: ``ctc_weight * ctc + (1 - ctc_weight) * att``."""
    if set(values) == {"ctc", "att"}:
        return ctc_weight * values["ctc"] + (1.0 - ctc_weight) * values["att"]
    return next(iter(values.values()))


def _validation_mask(utt_ids: List[str], fraction: float) -> torch.Tensor:
    """A fixed share of the ids (by hash: the same whatever their order)."""
    def u(i):
        return int.from_bytes(hashlib.sha256(i.encode()).digest()[:8], "big") / 2.0 ** 64
    return torch.tensor([u(i) < fraction for i in utt_ids])


def refit_heads(
    lp_decoder: AbsLPDecoder,
    data: HeldOutSet,
    ctc_weight: float,
    steps: int = 300,
    lr: float = 0.003,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    combined_weight: float = 1.0,
    loss: Optional[str] = "margin_ranking",
    reinit: bool = False,
    valid_fraction: float = 0.2,
    eval_every: int = 10,
    seed: int = 0,
) -> Dict[str, float]:
    """Train the heads of ``lp_decoder`` in place on a held-out set.

    The loss (``loss``, or the decoder's own when None) is applied per target, plus
    ``combined_weight`` times the same loss on the combined score (what selection ranks by;
    with a ranking loss each head's scale is otherwise free). The default, margin ranking
    from the jointly trained heads, ranked held-out utterances best on the tuning half of
    ``tools/bench/lp_quality.py``'s pool over two sets of trained models (0.613 vs 0.601 for
    ``mse_log`` from fresh heads, mean of both; and steadier within the noisy condition).

    Args:
        lp_decoder: Heads to train (their ``predict_pooled`` reads ``data.pooled``).
        data: Held-out inputs and targets (:func:`collect_held_out`).
        ctc_weight: The ASR's CTC weight (how ``score_pool`` mixes the heads).
        steps: Optimisation steps (each on up to ``batch_size`` random utterances).
        loss: An ``LP_LOSSES`` name, or None for the decoder's own.
        reinit: Start from fresh heads instead of the jointly trained ones.
        valid_fraction: Share of ``data`` kept aside to pick the best step (Spearman of the
            combined score; step 0, the heads as given, competes too); 0 uses every
            utterance and keeps the last step.
        seed: Seed of the sampling (and of a reinit).

    Returns:
        ``spearman_before`` (the heads as given) and ``spearman_after`` on the kept-aside
        part (or on all of ``data``), ``best_step`` (0: the given heads were kept),
        ``fit_utterances``, ``valid_utterances``.
    """
    loss_fn = get_lp_loss(loss) if loss is not None else getattr(lp_decoder, "loss_fn", None)
    if loss_fn is None:
        raise ValueError(f"{type(lp_decoder).__name__} has no loss_fn of its own; name a loss")
    margin = getattr(lp_decoder, "margin", 0.0)
    gen = torch.Generator().manual_seed(seed)
    valid = _validation_mask(data.utt_ids, valid_fraction) if valid_fraction > 0 else \
        torch.zeros(len(data.utt_ids), dtype=torch.bool)
    if 0 < int(valid.sum()) < MIN_CHECK or int((~valid).sum()) < MIN_CHECK:
        logger.warning("%d held-out utterances: too few to keep %d%% aside for choosing the "
                       "step; fitting on all of them for %d steps", len(data.utt_ids),
                       round(100 * valid_fraction), steps)
        valid[:] = False
        valid_fraction = 0.0
    fit = data.subset((~valid).nonzero().flatten())
    check = data.subset(valid.nonzero().flatten()) if bool(valid.any()) else fit
    if len(fit.utt_ids) < 2:
        raise ValueError("refitting the LP heads: too few utterances to fit on")
    was_training = lp_decoder.training

    def score(d: HeldOutSet) -> float:
        lp_decoder.eval()
        with torch.no_grad():
            rho = spearman(combined(lp_decoder.predict_pooled(d.pooled), ctc_weight),
                           combined(d.targets, ctc_weight))
        return float(rho) if torch.isfinite(rho) else float("-inf")

    # step 0 is the heads as given (jointly trained): kept if no refit step ranks better
    before = score(check)
    best, best_step, best_state = before, 0, copy.deepcopy(lp_decoder.state_dict())
    if reinit:
        torch.manual_seed(seed)
        for m in lp_decoder.modules():
            if isinstance(m, torch.nn.Linear):
                m.reset_parameters()
    opt = torch.optim.Adam(lp_decoder.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(fit.utt_ids)
    for step in range(1, steps + 1):
        lp_decoder.train()
        index = torch.randperm(n, generator=gen)[:batch_size]
        batch = fit.subset(index)
        pred = lp_decoder.predict_pooled(batch.pooled)
        objective = sum(loss_fn(pred[t], batch.targets[t], margin=margin) for t in pred)
        if combined_weight > 0 and len(pred) > 1:
            objective = objective + combined_weight * loss_fn(
                combined(pred, ctc_weight), combined(batch.targets, ctc_weight), margin=margin)
        opt.zero_grad()
        objective.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            rho = score(check)
            if valid_fraction <= 0 or rho > best:
                best, best_step = rho, step
                best_state = copy.deepcopy(lp_decoder.state_dict())
    lp_decoder.load_state_dict(best_state)
    lp_decoder.train(was_training)
    report = {"spearman_before": round(before, 4), "spearman_after": round(best, 4),
              "best_step": best_step, "fit_utterances": n,
              "valid_utterances": len(check.utt_ids) if check is not fit else 0}
    logger.info("LP heads refit on %d held-out utterances: Spearman %.3f -> %.3f (step %d)",
                n, before, best, best_step)
    return report


def lp_state(model) -> Dict[str, torch.Tensor]:
    """The LP heads' tensors under their model-level names (``lp_decoder.*``)."""
    return {f"lp_decoder.{k}": v for k, v in model.lp_decoder.state_dict().items()}


def check_refittable(lp_decoder: Optional[AbsLPDecoder]) -> AbsLPDecoder:
    """The decoder, or a clear error when there is nothing to refit."""
    if lp_decoder is None:
        raise ValueError("the model has no LP decoder to refit (model_conf.lp_decoder: none)")
    return lp_decoder
