"""Data-dir preparation of the generated LibriSpeech and AISHELL-1 corpora."""

import soundfile

from espnet_lp.bin.prepare_data import main as prepare_main
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.validate import find_problems

LS = ["train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"]


def test_librispeech_data_dirs(synth_corpus, tmp_path):
    prepare_main(["--corpus", "librispeech", "--corpus_dir", str(synth_corpus), "--subsets",
                  *LS, "--output_dir", str(tmp_path), "--num_jobs", "2"])
    for subset in LS:
        d = tmp_path / subset.replace("-", "_")
        assert find_problems(d) == []
        data = DataDir.read(d)
        flacs = sorted((synth_corpus / "LibriSpeech" / subset).glob("*/*/*.flac"))
        assert data.utt_ids == [f.stem for f in flacs]
        for utt in data.utt_ids:
            spk, chapter, _ = utt.split("-")
            assert data.utt2spk[utt] == f"{spk}-{chapter}"
            info = soundfile.info(data.wav_scp[utt])
            assert abs(data.utt2dur[utt] - info.frames / 16000) < 1e-3
        trans = {}
        for t in (synth_corpus / "LibriSpeech" / subset).glob("*/*/*.trans.txt"):
            trans.update(line.split(" ", 1) for line in t.read_text().splitlines())
        assert data.text == trans


def test_files_are_sorted_in_c_locale_order(synth_corpus, tmp_path):
    prepare_main(["--corpus", "aishell", "--corpus_dir", str(synth_corpus), "--subsets", "train",
                  "--output_dir", str(tmp_path)])
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur"):
        raw = (tmp_path / "train" / name).read_bytes().splitlines()
        keys = [line.split(b" ")[0] for line in raw]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_aishell_text_is_normalised_for_characters(synth_corpus, tmp_path):
    prepare_main(["--corpus", "aishell", "--corpus_dir", str(synth_corpus), "--subsets", "train",
                  "dev", "test", "--output_dir", str(tmp_path)])
    src = {}
    path = synth_corpus / "data_aishell/transcript/aishell_transcript_v0.8.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        utt, words = line.split(" ", 1)
        src[utt] = words
    total = 0
    for split in ("train", "dev", "test"):
        assert find_problems(tmp_path / split) == []
        data = DataDir.read(tmp_path / split)
        total += len(data)
        for utt, text in data.text.items():
            assert text == src[utt].replace(" ", "")
            assert data.utt2spk[utt] == utt[6:11]  # BAC009S0002W0122 -> S0002
            assert f"/wav/{split}/" in data.wav_scp[utt]
    assert total == len(src)


def test_normalize_text_fullwidth_and_latin():
    from espnet_lp.data.aishell import normalize_text

    assert normalize_text("我们 有 ＡＢｃ １２ 个") == "我们有ABC12个"


def test_aishell_transcript_with_a_byte_order_mark(synth_corpus, tmp_path):
    """A transcript saved by a Windows editor (UTF-8 with BOM) keeps its first utterance."""
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(synth_corpus, corpus)
    path = corpus / "data_aishell/transcript/aishell_transcript_v0.8.txt"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    first = path.read_text(encoding="utf-8-sig").split(" ", 1)[0]
    prepare_main(["--corpus", "aishell", "--corpus_dir", str(corpus), "--subsets", "train",
                  "dev", "test", "--output_dir", str(tmp_path / "data")])
    texts = {}
    for split in ("train", "dev", "test"):
        texts.update(DataDir.read(tmp_path / "data" / split).text)
    assert first in texts
    assert not [u for u in texts if u.startswith("\ufeff")]
