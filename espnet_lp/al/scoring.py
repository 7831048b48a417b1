"""Acquisition strategies: one function each, one signature, higher score = more useful.

Every strategy is ``fn(scorer, batch) -> ScoreOutput`` and is looked up by name in
:data:`STRATEGIES` (an unknown name lists the valid ones). The shared code (:func:`score_batch`)
checks shapes and finiteness; selection (``espnet_lp.al.selection``) handles ranking,
budgets and ties, so the loop never special-cases a strategy.

- ``random``: a uniform number from (seed, round, utterance id): the same whatever the
  batching or sharding.
- ``least_confidence``: 1 - exp(length-normalised log-probability of the best hypothesis of
  ESPnet's beam search, joint CTC/attention as configured).
- ``ctc_confidence``: the same from the CTC greedy path (no beam search): the cheap baseline.
- ``estimated_loss``: the model's own hybrid loss against its CTC greedy hypothesis
  (pseudo-label), per token, weighted by the ASR's ``ctc_weight``.
- ``loss_prediction``: the LP heads' predicted loss (``ESPnetLPASRModel.score_pool``).
- ``lp_diverse``: loss prediction; selection adds a diversity constraint over the pooled
  encoder embeddings.
- ``true_loss``: the real loss against the hidden transcripts (simulation only: an upper
  reference, refused when the pool has no transcripts).

Every strategy that runs the model also returns each utterance's mean-pooled encoder output
(the embedding of diversity-aware and typicality-gated selection); ``random`` returns none.
"""

import hashlib
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch

from espnet_lp.asr.loss_predictor import masked_mean
from espnet_lp.errors import EspnetLPError


class ScoringError(EspnetLPError, ValueError):
    """A strategy that cannot score this pool or this model."""


@dataclass
class PoolBatch:
    """Utterances to score.

    Args:
        utt_ids: Ids (B).
        speech: Waveforms (B, L), zero-padded.
        speech_lengths: (B,).
        text: Reference token ids (B, N), padded with -1 (``true_loss`` only), or None.
        text_lengths: (B,) or None.
    """

    utt_ids: List[str]
    speech: torch.Tensor
    speech_lengths: torch.Tensor
    text: Optional[torch.Tensor] = None
    text_lengths: Optional[torch.Tensor] = None


@dataclass
class ScoreOutput:
    """Scores (B,) and, for diversity-aware selection, embeddings (B, D)."""

    scores: torch.Tensor
    embedding: Optional[torch.Tensor] = None


class Scorer:
    """What strategies score with: the model, a beam search built on demand, the seed.

    Args:
        model: An ESPnet ASR model in eval mode (``ESPnetLPASRModel`` for LP strategies).
        seed: Seed of ``random``.
        round_index: The active-learning round (``random`` draws anew every round).
        beam_search: Builds ESPnet's ``Speech2Text`` around the model (``least_confidence``).
    """

    def __init__(self, model, seed: int = 0, round_index: int = 0,
                 beam_search: Optional[Callable[[], object]] = None):
        self.model = model
        self.seed = seed
        self.round_index = round_index
        self._beam_search_factory = beam_search
        self._speech2text = None

    @property
    def speech2text(self):
        """ESPnet's ``Speech2Text`` (beam search), built the first time it is needed."""
        if self._speech2text is None:
            if self._beam_search_factory is None:
                raise ScoringError("least_confidence needs beam search settings")
            self._speech2text = self._beam_search_factory()
        return self._speech2text

    @property
    def ctc_weight(self) -> float:
        return float(getattr(self.model, "ctc_weight", 1.0))


def _uniform(seed: int, round_index: int, utt_id: str) -> float:
    digest = hashlib.sha256(f"{seed}/{round_index}/{utt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def random_scores(scorer: Scorer, batch: PoolBatch) -> ScoreOutput:
    """``random``: uniform in [0, 1), fixed by (seed, round, utterance id)."""
    return ScoreOutput(torch.tensor([_uniform(scorer.seed, scorer.round_index, u)
                                     for u in batch.utt_ids], dtype=torch.float64))


def _encode(scorer: Scorer, batch: PoolBatch):
    enc, lens = scorer.model.encode(batch.speech, batch.speech_lengths)
    return (enc[0] if isinstance(enc, tuple) else enc), lens


def _embedding(enc: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Mean of the encoder output over each utterance's own frames (B, D), as the LP model's
    ``score_pool`` returns it."""
    return masked_mean(enc, lens).double()


def ctc_confidence(scorer: Scorer, batch: PoolBatch) -> ScoreOutput:
    """``ctc_confidence``: 1 - exp(best-path log-probability per hypothesis token)."""
    enc, lens = _encode(scorer, batch)
    logp = scorer.model.ctc.log_softmax(enc)
    best = logp.max(-1).values
    mask = torch.arange(best.size(1), device=lens.device)[None, :] < lens[:, None]
    path_logp = (best * mask).sum(1)
    tokens = [len(h) for h in scorer.model.ctc_greedy(enc, lens, logp)]
    per_token = path_logp / torch.tensor(tokens, dtype=path_logp.dtype).clamp(min=1)
    return ScoreOutput(1.0 - per_token.double().exp(), _embedding(enc, lens))


def least_confidence(scorer: Scorer, batch: PoolBatch) -> ScoreOutput:
    """``least_confidence``: 1 - exp(score / length) of the best beam-search hypothesis."""
    scores = []
    for b in range(len(batch.utt_ids)):
        speech = batch.speech[b, : batch.speech_lengths[b]]
        results = scorer.speech2text(speech)
        if not results:
            scores.append(1.0)  # nothing decoded at all: as unsure as it gets
            continue
        hyp = results[0][3]
        length = max(1, len(hyp.yseq) - 1)  # tokens after <sos>, <eos> included
        scores.append(1.0 - math.exp(min(0.0, float(hyp.score) / length)))
    # one more encoder pass for the embedding: ~1/30 of the beam search's cost
    return ScoreOutput(torch.tensor(scores, dtype=torch.float64),
                       _embedding(*_encode(scorer, batch)))


def _combined(scorer: Scorer, losses: Dict[str, torch.Tensor]) -> torch.Tensor:
    if set(losses) == {"ctc", "att"}:
        w = scorer.ctc_weight
        return w * losses["ctc"] + (1.0 - w) * losses["att"]
    return next(iter(losses.values()))


def _pad(hyps: List[List[int]]):
    lens = torch.tensor([len(h) for h in hyps])
    text = torch.full((len(hyps), max(1, int(lens.max()))), -1, dtype=torch.long)
    for b, h in enumerate(hyps):
        text[b, : len(h)] = torch.tensor(h, dtype=torch.long)
    return text, lens


def estimated_loss(scorer: Scorer, batch: PoolBatch) -> ScoreOutput:
    """``estimated_loss``: the hybrid loss against the CTC greedy hypothesis, per token."""
    model = scorer.model
    enc, lens = _encode(scorer, batch)
    text, text_lens = _pad(model.ctc_greedy(enc, lens))
    losses = model.utterance_losses(batch.speech, batch.speech_lengths, text, text_lens,
                                    encoded=(enc, lens))  # one encoder pass, not two
    return ScoreOutput(_combined(scorer, losses).double(), _embedding(enc, lens))


def true_loss(scorer: Scorer, batch: PoolBatch) -> ScoreOutput:
    """``true_loss`` (simulation only): the hybrid loss against the hidden transcripts."""
    if batch.text is None:
        raise ScoringError("true_loss needs the pool's transcripts (simulation only); this "
                           "pool has none")
    losses, embedding = scorer.model.utterance_losses(
        batch.speech, batch.speech_lengths, batch.text, batch.text_lengths, with_embedding=True)
    return ScoreOutput(_combined(scorer, losses).double(), embedding.double())


def loss_prediction(scorer: Scorer, batch: PoolBatch) -> ScoreOutput:
    """``loss_prediction``: the LP heads' predicted loss (and the pooled embedding)."""
    if getattr(scorer.model, "lp_decoder", None) is None:
        raise ScoringError("loss_prediction needs a model with an LP decoder "
                           "(model: lp_espnet, model_conf.lp_decoder)")
    out = scorer.model.score_pool(batch.speech, batch.speech_lengths)
    return ScoreOutput(out["lp_score"].double(), out["embedding"].double())


@dataclass(frozen=True)
class Strategy:
    """A named strategy: its function, whether selection applies the diversity constraint,
    and whether it peeks at hidden transcripts (simulation only)."""

    fn: Callable[[Scorer, PoolBatch], ScoreOutput]
    diverse: bool = False
    simulation_only: bool = False

    @property
    def needs_model(self) -> bool:
        """Whether it runs the model on the audio (``random`` is a hash of the ids)."""
        return self.fn is not random_scores

    @property
    def uses_lp_heads(self) -> bool:
        """Whether it scores with the LP heads (so their refit matters)."""
        return self.fn is loss_prediction


STRATEGIES: Dict[str, Strategy] = {
    "random": Strategy(random_scores),
    "least_confidence": Strategy(least_confidence),
    "ctc_confidence": Strategy(ctc_confidence),
    "estimated_loss": Strategy(estimated_loss),
    "loss_prediction": Strategy(loss_prediction),
    "lp_diverse": Strategy(loss_prediction, diverse=True),
    "true_loss": Strategy(true_loss, simulation_only=True),
}


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; an unknown name lists the valid ones."""
    if name not in STRATEGIES:
        raise ScoringError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
    return STRATEGIES[name]


# inference mode rather than no_grad: scores never meet autograd, and skipping the version
# counters and view tracking takes ~2% off the LP heads' many small tensor ops
@torch.inference_mode()
def score_batch(strategy: Strategy, scorer: Scorer, batch: PoolBatch) -> ScoreOutput:
    """Run a strategy on a batch; a non-finite score is an error naming the utterance."""
    out = strategy.fn(scorer, batch)
    scores = out.scores.detach().cpu().double().reshape(-1)
    if scores.numel() != len(batch.utt_ids):
        raise ScoringError(f"strategy returned {scores.numel()} scores for "
                           f"{len(batch.utt_ids)} utterances")
    bad = (~torch.isfinite(scores)).nonzero().flatten().tolist()
    if bad:
        raise ScoringError(f"utterance {batch.utt_ids[bad[0]]}: non-finite score "
                           f"{scores[bad[0]].item()} ({len(bad)} in this batch)")
    emb = None if out.embedding is None else out.embedding.detach().cpu().double()
    return ScoreOutput(scores, emb)
