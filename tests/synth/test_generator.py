"""The synthetic corpus generator: determinism, layouts, text split, conditions."""

import dataclasses
import hashlib
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_lp.bin.make_synth_corpus import main as synth_main
from espnet_lp.data.errors import DataPrepError
from espnet_lp.synth.config import SynthConfig
from espnet_lp.synth.corpus import make_corpus
from espnet_lp.synth.text import mandarin_sentences
from tests.conftest import small_config


def tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_num_jobs(tmp_path, synth_corpus):
    cfg = small_config()
    make_corpus(cfg, tmp_path / "a", num_jobs=1)
    assert tree_digest(tmp_path / "a") == tree_digest(synth_corpus)  # built with 2 jobs


def test_other_seed_other_corpus(tmp_path, synth_corpus):
    make_corpus(small_config(seed=1, languages=("en",)), tmp_path, num_jobs=2)
    a = tree_digest(tmp_path / "LibriSpeech")
    b = tree_digest(synth_corpus / "LibriSpeech")
    assert a != b


def test_cli_is_idempotent_and_refuses_a_silent_config_change(tmp_path):
    args = ["--out", str(tmp_path), "--languages", "zh", "--train_utts", "4", "--dev_utts", "2",
            "--test_utts", "2", "--num_jobs", "1"]
    synth_main(args)
    before = tree_digest(tmp_path)
    synth_main(args)  # no-op
    assert tree_digest(tmp_path) == before
    with pytest.raises(SystemExit):
        synth_main(args[:-2] + ["--seed", "3", "--num_jobs", "1"])
    assert tree_digest(tmp_path) == before
    synth_main(args + ["--seed", "3", "--overwrite"])
    assert tree_digest(tmp_path) != before


LS_SUBSETS = ["dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100"]


def test_librispeech_layout(synth_corpus):
    root = synth_corpus / "LibriSpeech"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == LS_SUBSETS
    flacs = sorted(root.glob("*/*/*/*.flac"))
    assert len(flacs) == 24 + 2 * 12 + 2 * 6  # train, dev-clean/other, test-clean/other
    for flac in flacs:
        subset, spk, chapter = flac.parts[-4:-1]
        assert re.fullmatch(rf"{spk}-{chapter}-\d{{4}}\.flac", flac.name)
        info = soundfile.info(str(flac))
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
        assert info.frames > 0
    for trans in root.glob("*/*/*/*.trans.txt"):
        spk, chapter = trans.parts[-3:-1]
        assert trans.name == f"{spk}-{chapter}.trans.txt"
        lines = trans.read_text(encoding="utf-8").splitlines()
        ids = [line.split(" ", 1)[0] for line in lines]
        assert ids == sorted(ids)
        for line in lines:
            utt, text = line.split(" ", 1)
            assert re.fullmatch(r"[A-Z']+( [A-Z']+)*", text)
            assert (trans.parent / f"{utt}.flac").is_file()
    speakers = _pipe_table(root / "SPEAKERS.TXT")
    assert {r[2] for r in speakers} == set(LS_SUBSETS)
    assert {r[1] for r in speakers} <= {"F", "M"}
    assert {r[0] for r in speakers} == {f.parts[-3] for f in flacs}
    chapters = _pipe_table(root / "CHAPTERS.TXT")
    assert {(r[1], r[0]) for r in chapters} == {(f.parts[-3], f.parts[-2]) for f in flacs}


def _pipe_table(path: Path):
    rows = [[c.strip() for c in line.split("|")]
            for line in path.read_text().splitlines() if not line.startswith(";")]
    assert rows and all(r[0].isdigit() for r in rows)
    return rows


def test_aishell_layout(synth_corpus):
    wavs = sorted((synth_corpus / "data_aishell" / "wav").glob("*/*/*.wav"))
    assert {w.parts[-3] for w in wavs} == {"train", "dev", "test"}
    for wav in wavs:
        assert re.fullmatch(r"S\d{4}", wav.parent.name)
        assert re.fullmatch(rf"BAC009{wav.parent.name}W\d{{4}}\.wav", wav.name)
        info = soundfile.info(str(wav))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    lines = (synth_corpus / "data_aishell/transcript/aishell_transcript_v0.8.txt").read_text(
        encoding="utf-8").splitlines()
    assert len(lines) == len(wavs)
    for line in lines:
        utt, words = line.split(" ", 1)
        assert re.fullmatch(r"[\u4e00-\u9fff]+( [\u4e00-\u9fff]+)*", words)
    spk_info = (synth_corpus / "resource_aishell/speaker.info").read_text().splitlines()
    assert {line.split()[0] for line in spk_info} == {w.parent.name[1:] for w in wavs}
    assert {line.split()[1] for line in spk_info} <= {"F", "M"}


def _meta(corpus: Path, name: str):
    lines = (corpus / "synth_meta" / f"{name}_utterances.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def test_conditions_follow_the_requested_mix(synth_corpus):
    rows = _meta(synth_corpus, "librispeech")
    by_subset = {}
    for r in rows:
        by_subset.setdefault(r["subset"], []).append(r["condition"].split()[0])
    assert by_subset["train-clean-100"].count("other") == 12  # other_fraction 0.5 of 24
    assert set(by_subset["dev-clean"]) == {"clean"} and set(by_subset["test-other"]) == {"other"}
    assert all("dB" in r["condition"] for r in rows if r["condition"].startswith("other"))


def test_other_condition_is_noisier(synth_corpus):
    """Noise fills the pauses: the quietest frames of 'other' audio are much louder."""
    rows = _meta(synth_corpus, "librispeech")

    def floor_db(utt):
        spk, chapter, _ = utt.split("-")
        subset = next(r["subset"] for r in rows if r["utt_id"] == utt)
        x, _ = soundfile.read(synth_corpus / "LibriSpeech" / subset / spk / chapter
                              / f"{utt}.flac")
        frames = x[: len(x) // 400 * 400].reshape(-1, 400)
        return 10 * np.log10(np.percentile((frames ** 2).mean(1), 5) + 1e-10)

    clean = np.median([floor_db(r["utt_id"]) for r in rows if r["subset"] == "dev-clean"])
    other = np.median([floor_db(r["utt_id"]) for r in rows if r["subset"] == "dev-other"])
    assert other > clean + 20


@pytest.mark.parametrize("name,pools", [
    ("librispeech", {"train": ["train-clean-100"], "dev": ["dev-clean", "dev-other"],
                     "test": ["test-clean", "test-other"]}),
    ("aishell", {"train": ["train"], "dev": ["dev"], "test": ["test"]}),
])
def test_no_sentence_shared_between_train_dev_test(synth_corpus, name, pools):
    texts = _texts(synth_corpus, name)
    sets = {pool: {t for s in subsets for t in texts[s]} for pool, subsets in pools.items()}
    assert not sets["train"] & sets["dev"]
    assert not sets["train"] & sets["test"]
    assert not sets["dev"] & sets["test"]


def _texts(corpus: Path, name: str):
    out = {}
    if name == "librispeech":
        for trans in (corpus / "LibriSpeech").glob("*/*/*/*.trans.txt"):
            for line in trans.read_text().splitlines():
                out.setdefault(trans.parts[-4], []).append(line.split(" ", 1)[1])
    else:
        split = {w.stem: w.parts[-3] for w in (corpus / "data_aishell/wav").glob("*/*/*.wav")}
        path = corpus / "data_aishell/transcript/aishell_transcript_v0.8.txt"
        for line in path.read_text(encoding="utf-8").splitlines():
            utt, words = line.split(" ", 1)
            out.setdefault(split[utt], []).append(words)
    return out


def test_mandarin_inventory_is_limited(tmp_path):
    make_corpus(small_config(languages=("zh",), zh_chars=50), tmp_path, num_jobs=2)
    chars = {c for texts in _texts(tmp_path, "aishell").values() for t in texts
             for c in t.replace(" ", "")}
    assert len(chars) <= 50
    record = json.loads((tmp_path / "synth_meta" / "aishell.json").read_text())
    assert record["config"]["zh_chars"] == 50


def test_mandarin_inventory_has_one_character_per_reading():
    # The default inventory: what is said fixes what is written (espeak-ng's reading of each
    # character alone); without the option the 300 most frequent characters share readings.
    from espnet_lp.synth.text import espeak_readings

    def inventory(clauses):
        return sorted({c for clause in clauses for w in clause for c in w})

    free = inventory(mandarin_sentences(num_chars=300, homophone_free=True))
    readings = espeak_readings(free)
    assert len(set(readings.values())) == len(free) > 250
    plain = inventory(mandarin_sentences(num_chars=300))
    assert len(set(espeak_readings(plain).values())) < len(plain)
    assert SynthConfig().zh_homophone_free


def test_packed_mandarin_sentences_join_clauses_within_the_length_range(tmp_path):
    # A tagged corpus in People's Daily's form: clauses of 2-3 characters, one per line.
    chars = "的一是在不了有和人这中大为上个国我以要他"
    lines = [f"{chars[i % 20]}{chars[(i * 7) % 20]}/n  {chars[(i * 3) % 20]}/v  ，/w"
             for i in range(60)]
    corpus = tmp_path / "tagged.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    clauses = mandarin_sentences(num_chars=20, min_chars=2, max_chars=3, corpus=corpus)
    packed = mandarin_sentences(num_chars=20, min_chars=7, max_chars=10, corpus=corpus,
                                pack_clauses=True)
    assert packed and all(7 <= sum(map(len, s)) <= 10 for s in packed)
    # each clause is used once: no more characters than the clauses have
    assert sum(sum(map(len, s)) for s in packed) <= sum(sum(map(len, c)) for c in clauses)
    assert len(packed) < len(clauses)
    # fixed order: the same sentences every time
    assert packed == mandarin_sentences(num_chars=20, min_chars=7, max_chars=10,
                                        corpus=corpus, pack_clauses=True)


def test_espeak_reading_count_mismatch_is_a_clear_error(monkeypatch):
    from espnet_lp.synth import text

    monkeypatch.setattr("espnet_lp.synth.voice.espeak_binary", lambda: "espeak-ng")
    monkeypatch.setattr(text.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout="t@11_|\n".encode(), stderr=b""))
    with pytest.raises(DataPrepError, match="1 readings for 2 characters"):
        text.espeak_readings(["的", "一"])


def test_too_many_eval_utterances_is_a_clear_error(tmp_path):
    with pytest.raises(DataPrepError, match="distinct sentences"):
        make_corpus(small_config(languages=("zh",), zh_chars=20, dev_utts=5000),
                    tmp_path, num_jobs=1)


def test_a_changed_corpus_is_noticed_and_an_old_record_is_upgraded(tmp_path):
    args = ["--out", str(tmp_path), "--languages", "zh", "--train_utts", "4", "--dev_utts", "2",
            "--test_utts", "2", "--num_jobs", "1"]
    synth_main(args)
    record = tmp_path / "synth_meta" / "aishell.json"
    full = json.loads(record.read_text())
    record.write_text(json.dumps({k: v for k, v in full.items() if k != "contents"}))
    synth_main(args)  # a record of an earlier version: accepted, completed
    assert json.loads(record.read_text()) == full
    next((tmp_path / "data_aishell/wav/dev").glob("*/*.wav")).unlink()
    with pytest.raises(SystemExit):
        synth_main(args)
    synth_main(args + ["--overwrite"])
    assert json.loads(record.read_text()) == full


def test_other_language_text_options_do_not_invalidate_a_corpus(tmp_path):
    # A record written before the Mandarin options existed (or with other ones) still
    # matches an English corpus; for a Mandarin corpus, a changed option is refused.
    cfg = small_config(languages=("en",), train_utts=4, dev_utts=2, test_utts=2)
    make_corpus(cfg, tmp_path, num_jobs=1)
    record = tmp_path / "synth_meta" / "librispeech.json"
    old = json.loads(record.read_text())
    for key in ("zh_homophone_free", "zh_pack_clauses", "zh_min_chars", "zh_max_chars"):
        del old["config"][key]
    old["config"]["zh_chars"] = 123
    record.write_text(json.dumps(old))
    before = tree_digest(tmp_path / "LibriSpeech")
    make_corpus(cfg, tmp_path, num_jobs=1)  # accepted as is
    assert tree_digest(tmp_path / "LibriSpeech") == before

    zh = small_config(languages=("zh",), train_utts=4, dev_utts=2, test_utts=2)
    make_corpus(zh, tmp_path / "zh", num_jobs=1)
    with pytest.raises(DataPrepError, match="another config"):
        make_corpus(dataclasses.replace(zh, zh_min_chars=10), tmp_path / "zh", num_jobs=1)


def test_a_mandarin_corpus_recorded_before_the_text_options_still_matches(tmp_path):
    # A record without the zh_* options added later matches the settings that reproduce it.
    old_style = small_config(languages=("zh",), train_utts=4, dev_utts=2, test_utts=2,
                             zh_homophone_free=False, zh_pack_clauses=False, zh_min_chars=4,
                             zh_max_chars=16)
    make_corpus(old_style, tmp_path, num_jobs=1)
    record = tmp_path / "synth_meta" / "aishell.json"
    old = json.loads(record.read_text())
    for key in ("zh_homophone_free", "zh_pack_clauses", "zh_min_chars", "zh_max_chars"):
        del old["config"][key]
    record.write_text(json.dumps(old))
    before = tree_digest(tmp_path / "data_aishell")
    make_corpus(old_style, tmp_path, num_jobs=1)  # accepted as is
    assert tree_digest(tmp_path / "data_aishell") == before
    with pytest.raises(DataPrepError, match="another config"):
        make_corpus(dataclasses.replace(old_style, zh_pack_clauses=True), tmp_path,
                    num_jobs=1)
