"""Audio file checks used during data preparation."""

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import soundfile

from espnet_lp.utils.fileio import Pathlike, path_problem

#: libsndfile's frame count of a stream whose length the header does not give.
UNKNOWN_LENGTH = 1 << 62


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
    path: Pathlike, sample_rate: Optional[int] = 16000, full_decode: bool = True
) -> Tuple[Optional[AudioInfo], Optional[str]]:
    """Check that ``path`` is readable, mono, non-empty audio at ``sample_rate``.

    A pure per-file function (runs in worker processes): it returns the problem rather than
    raising so that the caller can report every bad file at once.

    Args:
        path: Audio file (any format libsndfile reads: WAV, FLAC, ...).
        sample_rate: Required sampling rate in Hz; None accepts any.
        full_decode: Decode all samples, which catches truncated or corrupt bodies that a
            valid header hides; False reads the header and the last frame (fast; catches
            cut-off files, misses damage in the middle).

    Returns:
        ``(info, None)`` when the file is usable, else ``(info_or_None, reason)``.
    """
    path = Path(path)
    problem = path_problem(path)
    if problem is not None:
        return None, f"audio file {problem}"
    if path.stat().st_size == 0:
        return None, "zero-length audio (empty file)"
    flac_samples = _flac_total_samples(path)
    if flac_samples == 0:
        return None, _flac_without_count(path)
    try:
        info = soundfile.info(str(path))
        if info.frames >= UNKNOWN_LENGTH:
            return None, ("the header gives no length (written through a pipe?), which "
                          "ESPnet's reader cannot handle: re-encode the file")
        frames = info.frames
        if full_decode:
            data, _ = soundfile.read(str(path), dtype="int16", always_2d=True)
            if data.shape[0] != info.frames:
                return None, f"corrupt audio: header says {info.frames} frames, decoded {len(data)}"
            frames = data.shape[0]
        elif info.format != "WAV" and frames > 0:
            _read_last_frame(path, frames)
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError, MemoryError) as e:
        return None, f"unreadable or corrupt audio ({' '.join(str(e).split())})"
    if info.format == "WAV":
        truncated = _wav_truncation(path)
        if truncated:
            return None, truncated
    result = AudioInfo(sample_rate=info.samplerate, channels=info.channels, frames=frames)
    if frames == 0:
        return result, "zero-length audio"
    if info.channels != 1:
        return result, f"expected mono audio, got {info.channels} channels"
    if sample_rate is not None and info.samplerate != sample_rate:
        return result, f"expected {sample_rate} Hz, got {info.samplerate} Hz"
    return result, None


def _read_last_frame(path: Path, frames: int) -> None:
    """Seek to the last frame and read it: a cheap check that a compressed file (FLAC, ...)
    is as long as its header says (a cut-off download is not)."""
    with soundfile.SoundFile(str(path)) as f:
        f.seek(frames - 1)
        if len(f.read(1, dtype="int16")) != 1:
            raise RuntimeError(f"truncated: the header says {frames} frames, the last is missing")


def _flac_without_count(path: Path) -> str:
    """What is wrong with a FLAC whose STREAMINFO gives 0 samples (libsndfile then reports an
    endless length, and ``soundfile.read``, which ESPnet uses, fails)."""
    try:
        with soundfile.SoundFile(str(path)) as f:
            has_samples = len(f.read(1, dtype="int16")) > 0
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError):
        has_samples = False
    if not has_samples:
        return "zero-length audio"
    return ("the FLAC header gives no sample count (written through a pipe?), which ESPnet's "
            "reader cannot handle: re-encode the file (flac -d, then flac)")


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
