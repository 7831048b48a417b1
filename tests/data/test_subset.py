"""Seeded subset selection."""

import pytest

from espnet_lp.bin.subset_data_dir import main as subset_main
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.subset import select_subset
from espnet_lp.data.validate import find_problems


def make_data(n_spk=4, per_spk=5):
    utts = [f"s{s}-u{u:02d}" for s in range(n_spk) for u in range(per_spk)]
    return DataDir(
        wav_scp={u: f"/x/{u}.wav" for u in utts},
        utt2spk={u: u.split("-")[0] for u in utts},
        text={u: "A B" for u in utts},
        utt2dur={u: 1.0 + int(u[-2:]) for u in utts},  # 1..5 s
    )


def test_by_utterances_is_seeded():
    data = make_data()
    a = select_subset(data, utterances=7, seed=3)
    assert len(a) == 7 and a == sorted(a) and set(a) <= set(data.utt_ids)
    assert select_subset(data, utterances=7, seed=3) == a
    assert select_subset(data, utterances=7, seed=4) != a


def test_by_hours_stays_within_budget():
    data = make_data()
    ids = select_subset(data, hours=20 / 3600, seed=0)
    total = sum(data.utt2dur[u] for u in ids)
    assert 15 <= total <= 20  # greedy fill leaves less than the longest utterance unused


def test_by_speakers_takes_whole_speakers():
    data = make_data()
    ids = select_subset(data, speakers=2, seed=0)
    spks = {data.utt2spk[u] for u in ids}
    assert len(spks) == 2 and len(ids) == 10


def test_speakers_then_utterances():
    data = make_data()
    ids = select_subset(data, speakers=1, utterances=3, seed=0)
    assert len(ids) == 3 and len({data.utt2spk[u] for u in ids}) == 1


@pytest.mark.parametrize("kwargs,match", [
    (dict(utterances=21), "only 20 available"),
    (dict(utterances=0), "utterances must be positive, got 0"),
    (dict(utterances=-3), "utterances must be positive, got -3"),
    (dict(speakers=0), "speakers must be positive"),
    (dict(hours=float("nan")), "hours must be positive, got nan"),
    (dict(speakers=5), "4 speakers"),
    (dict(utterances=3, hours=1.0), "not both"),
    (dict(hours=0.1 / 3600), "no utterance is that short"),
])
def test_impossible_requests(kwargs, match):
    with pytest.raises(DataPrepError, match=match):
        select_subset(make_data(), **kwargs)


def test_cli_writes_a_valid_subset(tmp_path):
    make_data().write(tmp_path / "src", validate=True)
    subset_main(["--utterances", "6", "--seed", "1", str(tmp_path / "src"), str(tmp_path / "dst")])
    dst = DataDir.read(tmp_path / "dst")
    assert len(dst) == 6
    assert find_problems(tmp_path / "dst", check_audio_exists=False) == []
    (tmp_path / "ids").write_text("s1-u00\ns2-u03 extra-column\n")
    subset_main(["--utt_list", str(tmp_path / "ids"), str(tmp_path / "src"),
                 str(tmp_path / "lst")])
    assert DataDir.read(tmp_path / "lst").utt_ids == ["s1-u00", "s2-u03"]


def test_combine(tmp_path):
    data = make_data()
    a, b = data.subset(data.utt_ids[:8]), data.subset(data.utt_ids[8:])
    assert DataDir.combine([a, b]).utt_ids == data.utt_ids
    with pytest.raises(DataPrepError, match="occur twice"):
        DataDir.combine([a, a])


def test_cli_speaker_lists_and_exclusion(tmp_path):
    make_data().write(tmp_path / "src", validate=True)
    (tmp_path / "spk").write_text("s1\ns3\n")
    subset_main(["--spk_list", str(tmp_path / "spk"), str(tmp_path / "src"), str(tmp_path / "a")])
    subset_main(["--spk_list", str(tmp_path / "spk"), "--exclude", str(tmp_path / "src"),
                 str(tmp_path / "b")])
    a, b = DataDir.read(tmp_path / "a"), DataDir.read(tmp_path / "b")
    assert set(a.utt2spk.values()) == {"s1", "s3"} and set(b.utt2spk.values()) == {"s0", "s2"}
    assert sorted(a.utt_ids + b.utt_ids) == make_data().utt_ids
    (tmp_path / "none").write_text("s9\n")
    with pytest.raises(SystemExit):
        subset_main(["--spk_list", str(tmp_path / "none"), str(tmp_path / "src"),
                     str(tmp_path / "c")])
