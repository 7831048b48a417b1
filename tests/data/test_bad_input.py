"""Bad corpus input: clear errors naming the file/line/utterance, and no partial output."""

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_lp.bin.prepare_data import main as prepare_main
from espnet_lp.data.aishell import list_aishell
from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.librispeech import list_librispeech
from espnet_lp.data.prepare import build_data_dir

TRANSCRIPT = "data_aishell/transcript/aishell_transcript_v0.8.txt"


def ls_build(corpus: Path, **kw):
    return build_data_dir(list_librispeech(corpus, "train-clean-100"), **kw)


def ai_build(corpus: Path, split="train", **kw):
    return build_data_dir(list_aishell(corpus, [split])[split], **kw)


def first_flac(corpus: Path) -> Path:
    return sorted((corpus / "LibriSpeech/train-clean-100").glob("*/*/*.flac"))[0]


def first_wav(corpus: Path) -> Path:
    return sorted((corpus / "data_aishell/wav/train").glob("*/*.wav"))[0]


def test_clean_corpus_has_no_problems(corpus_copy):
    assert len(ls_build(corpus_copy)) == 24
    assert len(ai_build(corpus_copy)) == 24


# ---- audio problems: one per case, each must name the file and the utterance ---------------
def _garbage(path):
    path.write_bytes(b"this is not audio " * 50)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _zero_length(path):
    soundfile.write(str(path), np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")


def _rate_8k(path):
    soundfile.write(str(path), np.zeros(8000, dtype=np.int16), 8000, subtype="PCM_16")


def _stereo(path):
    soundfile.write(str(path), np.zeros((16000, 2), dtype=np.int16), 16000, subtype="PCM_16")


def _missing(path):
    path.unlink()


AUDIO_CASES = [
    ("unreadable", _garbage, "unreadable or corrupt"),
    ("truncated", _truncate, "corrupt"),
    ("zero_length", _zero_length, "zero-length audio"),
    ("wrong_rate", _rate_8k, "expected 16000 Hz, got 8000 Hz"),
    ("stereo", _stereo, "expected mono audio, got 2 channels"),
]


@pytest.mark.parametrize("case,damage,match", AUDIO_CASES, ids=[c[0] for c in AUDIO_CASES])
def test_bad_flac(corpus_copy, case, damage, match):
    flac = first_flac(corpus_copy)
    damage(flac)
    with pytest.raises(DataPrepError, match=match) as e:
        ls_build(corpus_copy)
    assert str(flac) in str(e.value) and flac.stem in str(e.value)
    data = ls_build(corpus_copy, on_bad="skip")
    assert flac.stem not in data.wav_scp and len(data) == 23


@pytest.mark.parametrize("case,damage,match", AUDIO_CASES, ids=[c[0] for c in AUDIO_CASES])
def test_bad_wav(corpus_copy, case, damage, match):
    wav = first_wav(corpus_copy)
    damage(wav)
    with pytest.raises(DataPrepError, match=match) as e:
        ai_build(corpus_copy)
    assert str(wav) in str(e.value) and wav.stem in str(e.value)
    assert wav.stem not in ai_build(corpus_copy, on_bad="skip").wav_scp


def test_truncated_wav_passes_a_header_only_check_only_if_not_detectable(corpus_copy):
    # libsndfile reads a truncated WAV as a shorter file; the RIFF size check catches it even
    # without decoding.
    wav = first_wav(corpus_copy)
    _truncate(wav)
    with pytest.raises(DataPrepError, match="truncated WAV"):
        ai_build(corpus_copy, full_decode=False)


# ---- unmatched audio and transcripts ------------------------------------------------------
def test_transcript_without_audio(corpus_copy):
    flac = first_flac(corpus_copy)
    _missing(flac)
    trans = next(flac.parent.glob("*.trans.txt"))
    with pytest.raises(DataPrepError, match="1 transcript_without_audio") as e:
        ls_build(corpus_copy)
    assert f"{trans}:1" in str(e.value) and flac.stem in str(e.value)
    assert "--on_unmatched skip" in str(e.value)
    assert len(ls_build(corpus_copy, on_unmatched="skip")) == 23


def test_audio_without_transcript(corpus_copy, caplog):
    flac = first_flac(corpus_copy)
    extra = flac.with_name(flac.name.replace("-0000.", "-0999."))
    extra.write_bytes(flac.read_bytes())
    with pytest.raises(DataPrepError, match="1 audio_without_transcript") as e:
        ls_build(corpus_copy)
    assert extra.stem in str(e.value)
    with caplog.at_level(logging.WARNING):
        data = ls_build(corpus_copy, on_unmatched="skip")
    assert extra.stem not in data.wav_scp and len(data) == 24
    assert "1 audio_without_transcript" in caplog.text


def test_aishell_counts_across_splits(corpus_copy):
    """A transcript of a dev utterance is not 'without audio' when preparing train."""
    path = corpus_copy / TRANSCRIPT
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines + ["BAC009S0999W0001 孤 儿\n"]), encoding="utf-8")
    with pytest.raises(DataPrepError, match="^aishell train: 1 transcript_without_audio"):
        build_data_dir(list_aishell(corpus_copy, ["train"])["train"], name="aishell train")


# ---- transcripts -------------------------------------------------------------------------
def test_empty_transcript(corpus_copy):
    flac = first_flac(corpus_copy)
    trans = next(flac.parent.glob("*.trans.txt"))
    lines = trans.read_text().splitlines(keepends=True)
    trans.write_text(f"{flac.stem}\n" + "".join(lines[1:]))
    with pytest.raises(DataPrepError, match="empty transcript") as e:
        ls_build(corpus_copy)
    assert f"{trans}:1" in str(e.value) and flac.stem in str(e.value)


def test_non_utf8_transcript(corpus_copy):
    path = corpus_copy / TRANSCRIPT
    raw = path.read_bytes().splitlines(keepends=True)
    raw[2] = raw[2].split(b" ")[0] + b" caf\xe9\n"
    path.write_bytes(b"".join(raw))
    with pytest.raises(DataPrepError, match="not valid UTF-8") as e:
        ai_build(corpus_copy)
    assert f"{path}:3" in str(e.value)


def test_duplicate_ids_are_always_fatal(corpus_copy):
    path = corpus_copy / TRANSCRIPT
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines + lines[:1]), encoding="utf-8")
    with pytest.raises(DataPrepError, match="duplicate utterance id") as e:
        ai_build(corpus_copy, on_bad="skip", on_unmatched="skip")
    assert f"{path}:{len(lines) + 1}" in str(e.value)


def test_same_utterance_in_two_splits(corpus_copy):
    wav = first_wav(corpus_copy)
    dup = corpus_copy / "data_aishell/wav/dev" / wav.parent.name / wav.name
    dup.parent.mkdir(parents=True)
    dup.write_bytes(wav.read_bytes())
    with pytest.raises(DataPrepError, match="duplicate_id") as e:
        build_data_dir(list_aishell(corpus_copy, ["dev"])["dev"], on_unmatched="skip")
    assert wav.stem in str(e.value)


# ---- the CLI writes nothing on failure ---------------------------------------------------
def test_cli_failure_leaves_no_partial_output(corpus_copy, tmp_path, caplog):
    out = tmp_path / "data"
    args = ["--corpus", "librispeech", "--corpus_dir", str(corpus_copy), "--subsets",
            "dev-clean", "train-clean-100", "--output_dir", str(out)]
    prepare_main(args)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    flac = first_flac(corpus_copy)
    _garbage(flac)
    _garbage(sorted((corpus_copy / "LibriSpeech/dev-clean").glob("*/*/*.flac"))[0])
    with pytest.raises(SystemExit) as e:
        prepare_main(args)
    assert e.value.code == 1
    assert flac.stem in caplog.text
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_unknown_subset_and_missing_corpus(tmp_path):
    with pytest.raises(SystemExit):
        prepare_main(["--corpus", "librispeech", "--corpus_dir", str(tmp_path / "none"),
                      "--subsets", "dev-clean", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(DataPrepError, match="valid:"):
        list_aishell(tmp_path, ["eval"])
    assert not (tmp_path / "o").exists()


def test_flac_with_zero_samples(tmp_path):
    """A well-formed FLAC with no samples (libsndfile cannot open it) is 'zero-length'."""
    import shutil
    import subprocess

    from espnet_lp.data.audio import inspect_audio

    if shutil.which("flac") is None:
        pytest.skip("flac command not installed")
    out = tmp_path / "empty.flac"
    subprocess.run(["flac", "-s", "-f", "--force-raw-format", "--endian=little",
                    "--sign=signed", "--channels=1", "--bps=16", "--sample-rate=16000",
                    "-o", str(out), "/dev/null"], check=True)
    assert inspect_audio(out) == (None, "zero-length audio")
