"""Audio file checks used during data preparation."""

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import soundfile

from espnet_lp.utils.fileio import Pathlike


@dataclass(frozen=True)
class AudioInfo:
    """What data preparation needs to know of an audio file."""

    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.frames / self.sample_rate


def inspect_audio(
    path: Pathlike, sample_rate: int = 16000, full_decode: bool = True
) -> Tuple[Optional[AudioInfo], Optional[str]]:
    """Check that ``path`` is readable, mono, non-empty audio at ``sample_rate``.

    A pure per-file function (runs in worker processes): it returns the problem rather than
    raising so that the caller can report every bad file at once.

    Args:
        path: Audio file (any format libsndfile reads: WAV, FLAC, ...).
        sample_rate: Required sampling rate in Hz.
        full_decode: Decode all samples, which catches truncated or corrupt bodies that a
            valid header hides; False reads only the header (fast, for trusted corpora).

    Returns:
        ``(info, None)`` when the file is usable, else ``(info_or_None, reason)``.
    """
    path = Path(path)
    if not path.is_file():
        return None, "audio file not found"
    if path.stat().st_size == 0:
        return None, "zero-length audio (empty file)"
    try:
        info = soundfile.info(str(path))
        frames = info.frames
        if full_decode:
            data, _ = soundfile.read(str(path), dtype="int16", always_2d=True)
            if data.shape[0] != info.frames:
                return None, f"corrupt audio: header says {info.frames} frames, decoded {len(data)}"
            frames = data.shape[0]
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        if _flac_total_samples(path) == 0:  # libsndfile cannot open an empty FLAC at all
            return None, "zero-length audio"
        return None, f"unreadable or corrupt audio ({e})"
    if info.format == "WAV":
        truncated = _wav_truncation(path)
        if truncated:
            return None, truncated
    result = AudioInfo(sample_rate=info.samplerate, channels=info.channels, frames=frames)
    if frames == 0:
        return result, "zero-length audio"
    if info.channels != 1:
        return result, f"expected mono audio, got {info.channels} channels"
    if info.samplerate != sample_rate:
        return result, f"expected {sample_rate} Hz, got {info.samplerate} Hz"
    return result, None


def _wav_truncation(path: Path) -> Optional[str]:
    """Compare the RIFF ``data`` chunk's declared size with the bytes present.

    libsndfile silently reads a truncated WAV as a shorter one, so a download cut short
    would otherwise pass as valid audio.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                if pos + 8 + chunk_size > size:
                    return (f"corrupt audio: truncated WAV (data chunk declares {chunk_size} "
                            f"bytes, file has {size - pos - 8})")
                return None
            pos += 8 + chunk_size + (chunk_size & 1)
    return "corrupt audio: WAV without a data chunk"


def _flac_total_samples(path: Path) -> Optional[int]:
    """Total samples from a FLAC STREAMINFO block, or None if not a FLAC file."""
    with open(path, "rb") as f:
        head = f.read(4 + 4 + 34)
    if len(head) < 42 or head[:4] != b"fLaC":
        return None
    # STREAMINFO bytes 10-17: 20 bits rate, 3 channels, 5 bits/sample, 36 total samples.
    (bits,) = struct.unpack(">Q", head[8 + 10: 8 + 18])
    return bits & ((1 << 36) - 1)
