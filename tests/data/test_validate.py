"""The data-dir validator catches what Kaldi's validate_data_dir.sh catches."""

import pytest

from espnet_lp.bin.validate_data_dir import main as validate_main
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.validate import find_problems, validate_data_dir


@pytest.fixture
def good(tmp_path):
    d = tmp_path / "d"
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    utts = ["spkA-1", "spkA-2", "spkB-1"]
    DataDir(wav_scp={u: str(audio) for u in utts}, utt2spk={u: u[:4] for u in utts},
            text={u: "HELLO WORLD" for u in utts}, utt2dur={u: 1.5 for u in utts}).write(d)
    return d


def test_good_dir_is_valid(good):
    assert find_problems(good) == []
    validate_main([str(good)])


def _edit(path, fn):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(fn(lines)))


@pytest.mark.parametrize("name,edit,match", [
    ("text", lambda ls: ls[::-1], "not sorted"),
    ("utt2spk", lambda ls: ls + ls[-1:], "duplicate key"),
    ("text", lambda ls: ls[:-1], "absent"),
    ("wav.scp", lambda ls: ls + ["spkC-1 /x.wav\n"], "not in utt2spk"),
    ("text", lambda ls: ls[:-1] + ["spkB-1\n"], "empty transcript"),
    ("utt2dur", lambda ls: ls[:-1] + ["spkB-1 -2\n"], "positive seconds"),
    ("spk2utt", lambda ls: ls[:1], "does not match utt2spk"),
    ("wav.scp", lambda ls: ls[:-1] + ["spkB-1 /no/such/file.flac\n"], "audio file not found"),
])
def test_problems_are_found_and_located(good, name, edit, match):
    _edit(good / name, edit)
    with pytest.raises(DataPrepError, match=match) as e:
        validate_data_dir(good)
    assert str(good / name) in str(e.value)


def test_speaker_order_must_agree_with_utterance_order(tmp_path):
    # Kaldi requires utterance ids to sort like their speakers (speaker-id prefixes).
    data = DataDir(wav_scp={"a": "/x", "b": "/x", "c": "/x"},
                   utt2spk={"a": "s2", "b": "s1", "c": "s2"}, text={"a": "X", "b": "X", "c": "X"})
    with pytest.raises(DataPrepError, match="does not match utt2spk"):
        data.write(tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_missing_file_and_non_utf8(good):
    (good / "text").write_bytes(b"spkA-1 caf\xe9\nspkA-2 X\nspkB-1 X\n")
    with pytest.raises(DataPrepError, match=r"text:1.*not valid UTF-8"):
        validate_data_dir(good)
    (good / "spk2utt").unlink()
    with pytest.raises(DataPrepError, match="spk2utt.*required file missing"):
        validate_data_dir(good)


def test_untranscribed_set(good):
    (good / "text").unlink()
    assert find_problems(good, require_text=False) == []
    with pytest.raises(SystemExit):
        validate_main([str(good)])
    validate_main(["--no_text", str(good)])
