"""Partly transcribed data dirs: the labeled set plus the pool without its transcripts."""

import pytest

from espnet_lp.bin.combine_data_dirs import main as combine_main
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.validate import find_problems

from .test_subset import make_data


@pytest.fixture
def mixed(tmp_path):
    data = make_data()
    labeled = data.subset(u for u in data.utt_ids if u.startswith("s0"))
    pool = data.subset(u for u in data.utt_ids if not u.startswith("s0"))
    labeled.write(tmp_path / "labeled")
    pool.write(tmp_path / "pool")  # a simulated pool still holds the oracle's transcripts
    combine_main(["--untranscribed", str(tmp_path / "pool"), str(tmp_path / "mixed"),
                  str(tmp_path / "labeled")])
    return tmp_path / "mixed"


def test_pool_transcripts_are_dropped_and_listed(mixed):
    data = DataDir.read(mixed)
    assert len(data) == 20
    assert data.untranscribed_ids() == [u for u in data.utt_ids if not u.startswith("s0")]
    assert all(data.text[u] == "A B" for u in data.utt_ids if u.startswith("s0"))
    assert "A B" not in (mixed / "text").read_text().split("s1-u00")[1]
    assert (mixed / "untranscribed").read_text().split() == data.untranscribed_ids()
    assert find_problems(mixed, check_audio_exists=False) == []
    # Keeping only the transcribed part gives an ordinary data dir again.
    data.subset(u for u in data.utt_ids if u.startswith("s0")).write(mixed.parent / "back")
    assert not (mixed.parent / "back" / "untranscribed").exists()


def test_empty_transcript_not_listed_is_still_an_error(mixed):
    lines = (mixed / "untranscribed").read_text().splitlines()
    (mixed / "untranscribed").write_text("\n".join(lines[1:]) + "\n")
    problems = find_problems(mixed, check_audio_exists=False)
    assert [(p.kind, p.utt_id) for p in problems] == [("empty_text", lines[0])]
    with pytest.raises(DataPrepError, match=f"{lines[0]}: empty transcript"):
        DataDir.read(mixed)


def test_listed_utterance_with_transcript_is_an_error(mixed):
    with open(mixed / "untranscribed", "a") as f:
        f.write("s0-u00\n")
    text = (mixed / "untranscribed").read_text().splitlines()
    (mixed / "untranscribed").write_text("".join(f"{u}\n" for u in sorted(text)))
    problems = find_problems(mixed, check_audio_exists=False)
    assert any(p.utt_id == "s0-u00" and "listed in" in p.message for p in problems)
    with pytest.raises(DataPrepError, match="s0-u00: has a transcript"):
        DataDir.read(mixed)


def test_overlapping_pool_is_refused(tmp_path):
    data = make_data()
    with pytest.raises(DataPrepError, match="occur twice"):
        data.with_untranscribed(data.subset(data.utt_ids[:2]))
    with pytest.raises(DataPrepError, match="no text"):
        DataDir(wav_scp=data.wav_scp, utt2spk=data.utt2spk).with_untranscribed(data)
