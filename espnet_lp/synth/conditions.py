"""Recording conditions: "clean" speech, and "other" speech that is harder to recognise.

"other" applies a tempo change, additive noise at one of several SNRs and, sometimes, light
reverberation. Everything is drawn from a per-utterance random generator, so an utterance's
audio does not depend on how the corpus is split across worker processes.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy.signal import fftconvolve


@dataclass(frozen=True)
class Condition:
    """How one utterance is degraded."""

    name: str  # "clean" or "other"
    rate_factor: float = 1.0
    snr_db: Optional[float] = None
    noise: str = "white"
    rt60: Optional[float] = None

    def describe(self) -> str:
        """Short text for metadata files."""
        parts = [self.name, f"rate={self.rate_factor:g}"]
        if self.snr_db is not None:
            parts.append(f"{self.noise}@{self.snr_db:g}dB")
        if self.rt60 is not None:
            parts.append(f"rt60={self.rt60:.2f}")
        return " ".join(parts)


def draw_condition(
    rng: np.random.Generator, other: bool, snrs: Sequence[float], rate_factors: Sequence[float],
    reverb_prob: float,
) -> Condition:
    """A clean condition, or a random "other" one."""
    if not other:
        return Condition("clean")
    return Condition(
        name="other",
        rate_factor=float(rate_factors[int(rng.integers(len(rate_factors)))]),
        snr_db=float(snrs[int(rng.integers(len(snrs)))]),
        noise=("white", "pink", "brown")[int(rng.integers(3))],
        rt60=float(rng.uniform(0.2, 0.5)) if rng.random() < reverb_prob else None,
    )


def _colored_noise(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    # Shape the spectrum: pink ~ 1/f power, brown ~ 1/f^2.
    spec = np.fft.rfft(white)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec /= np.sqrt(f) if kind == "pink" else f
    return np.fft.irfft(spec, n)


def _reverberate(x: np.ndarray, rt60: float, sample_rate: int, rng: np.random.Generator):
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # 60 dB decay at t = rt60
    rir[0] = 1.0 / 0.3  # a direct path that dominates: "light" reverberation
    y = fftconvolve(x, rir)[: len(x)]
    return y * (np.max(np.abs(x)) / max(np.max(np.abs(y)), 1e-9))


def apply_condition(
    x: np.ndarray, cond: Condition, rng: np.random.Generator, sample_rate: int = 16000
) -> np.ndarray:
    """Degrade ``x`` (float, [-1, 1]) as ``cond`` says (tempo is applied at synthesis)."""
    y = x.astype(np.float64)
    if cond.rt60 is not None:
        y = _reverberate(y, cond.rt60, sample_rate, rng)
    if cond.snr_db is not None:
        noise = _colored_noise(rng, len(y), cond.noise)
        p_sig = np.mean(y ** 2) + 1e-12
        p_noise = np.mean(noise ** 2) + 1e-12
        y = y + noise * np.sqrt(p_sig / (p_noise * 10 ** (cond.snr_db / 10)))
    return y


def to_int16(x: np.ndarray) -> np.ndarray:
    """Peak-limit to 0.95 full scale and quantise by rounding (no dither: reproducible)."""
    peak = np.max(np.abs(x)) if len(x) else 0.0
    if peak > 0.95:
        x = x * (0.95 / peak)
    return np.round(x * 32767.0).astype(np.int16)
