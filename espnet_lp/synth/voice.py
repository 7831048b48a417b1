"""espeak-ng speakers and synthesis.

The espeak-ng command line is bit-exact across runs, so the corpus is reproducible as long as
the installed espeak-ng version is the same.
"""

import shutil
import subprocess
from dataclasses import dataclass
from typing import List

import numpy as np
from scipy.signal import resample_poly

from espnet_lp.data.errors import DataPrepError
from espnet_lp.utils.workers import child_dies_with_parent

ESPEAK_RATE = 22050
# espeak-ng voice variants that sound distinct; 'f*' and a few named ones are female.
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "Andy", "Annie", "belinda", "david",
    "edward", "iven", "linda", "paul", "rob", "steph", "travis", "zac",
)
FEMALE_VARIANTS = {"f1", "f2", "f3", "f4", "f5", "Annie", "belinda", "linda", "steph"}
LANGUAGE_VOICES = {"en": "en-us", "zh": "cmn-latn-pinyin"}


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: espeak-ng voice variant, pitch (0-99) and speaking rate (wpm)."""

    language: str
    variant: str
    pitch: int
    rate: int

    @property
    def gender(self) -> str:
        """'F' or 'M' (as corpora record it)."""
        return "F" if self.variant in FEMALE_VARIANTS else "M"

    @property
    def voice(self) -> str:
        """espeak-ng ``-v`` argument."""
        return f"{LANGUAGE_VOICES[self.language]}+{self.variant}"


def draw_speakers(rng: np.random.Generator, language: str, n: int) -> List[Speaker]:
    """``n`` speakers with varied voice, pitch and rate."""
    return [
        Speaker(
            language=language,
            variant=VARIANTS[int(rng.integers(len(VARIANTS)))],
            pitch=int(rng.integers(25, 76)),
            rate=int(rng.integers(140, 191)),
        )
        for _ in range(n)
    ]


def espeak_binary() -> str:
    """Path of espeak-ng, or a clear error saying how to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise DataPrepError(
            "espeak-ng not found: run tools/install.sh as root, or apt-get install espeak-ng"
        )
    return path


def _pcm_from_wav_stream(data: bytes) -> np.ndarray:
    """Samples of espeak-ng's ``--stdout`` WAV (its header carries no valid length)."""
    pos = data.find(b"data", 12)
    if data[:4] != b"RIFF" or pos < 0:
        raise DataPrepError("espeak-ng did not produce WAV output")
    pcm = data[pos + 8:]
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")


def synthesize(text: str, speaker: Speaker, rate_factor: float = 1.0,
               sample_rate: int = 16000) -> np.ndarray:
    """Speak ``text`` and return float32 samples in [-1, 1] at ``sample_rate``.

    Args:
        text: What to say (English words, or Mandarin characters for ``zh``).
        speaker: Voice settings.
        rate_factor: Multiplies the speaker's rate (tempo condition).
        sample_rate: Output rate; resampled from espeak's 22.05 kHz without dither.
    """
    cmd = [espeak_binary(), "-v", speaker.voice, "-p", str(speaker.pitch),
           "-s", str(int(round(speaker.rate * rate_factor))), "--stdout"]
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False,
                          preexec_fn=child_dies_with_parent)
    if proc.returncode != 0:
        raise DataPrepError(f"espeak-ng failed on {text!r}: {proc.stderr.decode(errors='replace')}")
    pcm = _pcm_from_wav_stream(proc.stdout).astype(np.float32) / 32768.0
    if sample_rate != ESPEAK_RATE:
        g = np.gcd(sample_rate, ESPEAK_RATE)
        pcm = resample_poly(pcm, sample_rate // g, ESPEAK_RATE // g).astype(np.float32)
    return pcm
