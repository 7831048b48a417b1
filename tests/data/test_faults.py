"""Faults of the writing commands: SIGKILL at every step of a write, then a rerun; a second
writer at the same time; worker processes after their parent is killed; the umask."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile

from espnet_lp.bin.combine_data_dirs import main as combine_main
from espnet_lp.bin.make_asr_inputs import main as inputs_main
from espnet_lp.bin.make_synth_corpus import main as synth_main
from espnet_lp.bin.prepare_data import main as prepare_main
from espnet_lp.bin.split_scp import main as split_main
from espnet_lp.bin.subset_data_dir import main as subset_main
from espnet_lp.data.validate import find_problems
from espnet_lp.utils.fileio import atomic_write_text
from espnet_lp.utils.outputs import commit, output_lock
from tests.io_helpers import (
    ROOT,
    check_kill_points,
    children,
    hidden_entries,
    hold_lock,
    make_tiny_exp,
    process_state,
    run_cli,
    run_killed,
    snapshot,
    wait_until,
)

SYNTH_TINY = ["--languages", "zh", "--train_utts", "4", "--dev_utts", "2", "--test_utts", "2",
              "--utts_per_speaker", "2"]


def prepare_args(corpus: Path, out: Path, *extra: str):
    return ["--corpus", "librispeech", "--corpus_dir", str(corpus), "--subsets", "dev-clean",
            "test-clean", "--output_dir", str(out), "--audio_check", "header", *extra]


def drop_first_flac(corpus: Path, subset: str) -> None:
    sorted((corpus / "LibriSpeech" / subset).glob("*/*/*.flac"))[0].unlink()


# ---- SIGKILL at every step, then a rerun ----------------------------------------------------
def test_prepare_data_killed_at_every_step(corpus_copy, tmp_path):
    out = tmp_path / "data"
    prepare_main(prepare_args(corpus_copy, out))
    drop_first_flac(corpus_copy, "dev-clean")
    drop_first_flac(corpus_copy, "test-clean")
    tried = check_kill_points(
        lambda: prepare_main(prepare_args(corpus_copy, out, "--on_unmatched", "skip")), out,
        [out / "dev_clean", out / "test_clean"], tmp_path)
    assert tried > 10


def _subset(ws):
    return (lambda: subset_main(["--utterances", "5", str(ws / "data/dev_clean"),
                                 str(ws / "out/sub")]),
            lambda: subset_main(["--utterances", "7", str(ws / "data/dev_clean"),
                                 str(ws / "out/sub")]), ["sub"])


def _combine(ws):
    return (lambda: combine_main([str(ws / "out/comb"), str(ws / "data/dev_clean")]),
            lambda: combine_main([str(ws / "out/comb"), str(ws / "data/dev_clean"),
                                  str(ws / "data/test_clean")]), ["comb"])


def _split(ws):
    scp = str(ws / "data/dev_clean/wav.scp")
    return (lambda: split_main(["--nj", "4", scp, str(ws / "out/keys")]),
            lambda: split_main(["--nj", "3", scp, str(ws / "out/keys")]),
            [f"keys/keys.{n}" for n in range(1, 5)])


def _asr_inputs(ws):
    def run(src):
        return lambda: inputs_main(["--token_list_from", str(ws / "data" / src),
                                    "--token_list_dir", str(ws / "out/tokens"), "--shape_dir",
                                    str(ws / "out/shapes"), str(ws / "data/dev_clean"),
                                    str(ws / "data/test_clean")])
    return run("test_clean"), run("dev_clean"), [
        "tokens/tokens.txt", *(f"shapes/{d}/{f}" for d in ("dev_clean", "test_clean")
                               for f in ("speech_shape", "text_shape.char"))]


@pytest.mark.parametrize("setup,stride", [(_subset, 1), (_combine, 1), (_split, 1),
                                          (_asr_inputs, 3)],
                         ids=["subset_data_dir", "combine_data_dirs", "split_scp",
                              "make_asr_inputs"])
def test_data_commands_killed_at_every_step(synth_corpus, tmp_path, setup, stride):
    ws = tmp_path / "ws"
    prepare_main(prepare_args(synth_corpus, ws / "data"))
    first, second, outputs = setup(ws)
    first()
    check_kill_points(second, ws / "out", [ws / "out" / o for o in outputs], tmp_path,
                      stride=stride)


def test_commit_journal_is_finished_by_the_next_writer(tmp_path):
    """The protocol itself: killed between the moves of a commit, the next lock finishes it."""
    a, b = tmp_path / "a", tmp_path / "b"
    for k in range(1, 20):
        for p in (a, b):
            atomic_write_text(p, "old")
            Path(f"{p}.new").write_text("new")
        run_killed(lambda: commit([(f"{a}.new", a), (f"{b}.new", b)]), k, tmp_path / "n")
        if (a.read_text(), b.read_text()) == ("new", "old"):  # killed half way
            break
    else:
        pytest.fail("no kill point between the two moves")
    with output_lock(b):  # any writer of either output
        pass
    assert (a.read_text(), b.read_text()) == ("new", "new")
    assert hidden_entries(tmp_path) == []


@pytest.mark.slow
def test_make_synth_corpus_killed_then_rerun(tmp_path):
    out, saved = tmp_path / "out", tmp_path / "saved"
    synth_main(["--out", str(saved), "--num_jobs", "1", *SYNTH_TINY])
    old = snapshot(saved)
    args = ["--out", str(out), "--num_jobs", "1", "--seed", "5", "--overwrite", *SYNTH_TINY]
    shutil.copytree(saved, out)
    assert not run_killed(lambda: synth_main(args), 10 ** 9, tmp_path / "count")
    total, new = int((tmp_path / "count").read_text()), snapshot(out)
    for k in (1, total // 2, total - 8, total - 6, total - 4, total - 2, total):
        shutil.rmtree(out)
        shutil.copytree(saved, out)
        assert run_killed(lambda: synth_main(args), k, tmp_path / "count")
        visible = snapshot(out, hidden=False)
        assert visible in (old, new) or any(p.endswith(".commit") for p in hidden_entries(out)), k
        synth_main(args)
        assert snapshot(out) == new and hidden_entries(out) == [], f"killed at step {k}"


# ---- two writers at the same time -----------------------------------------------------------
WRITERS = {
    "prepare_data": (prepare_main, lambda ws: prepare_args(ws / "corpus", ws / "out"),
                     "out/dev_clean"),
    "subset_data_dir": (subset_main, lambda ws: ["--utterances", "3", str(ws / "data/dev_clean"),
                                                 str(ws / "out/sub")], "out/sub"),
    "combine_data_dirs": (combine_main, lambda ws: [str(ws / "out/comb"),
                                                    str(ws / "data/dev_clean")], "out/comb"),
    "split_scp": (split_main, lambda ws: [str(ws / "data/dev_clean/wav.scp"),
                                          str(ws / "out/k1"), str(ws / "out/k2")], "out/k2"),
    "make_asr_inputs": (inputs_main, lambda ws: [
        "--token_list_from", str(ws / "data/dev_clean"), "--token_list_dir",
        str(ws / "out/tokens"), "--shape_dir", str(ws / "out/shapes"),
        str(ws / "data/dev_clean")], "out/shapes/dev_clean/speech_shape"),
    "make_synth_corpus": (synth_main, lambda ws: ["--out", str(ws / "out"), "--num_jobs", "1",
                                                  *SYNTH_TINY], "out/data_aishell"),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_second_writer_is_refused(synth_corpus, tmp_path, capsys, caplog, name):
    """While another process writes an output, a command writing it stops with one line and
    leaves everything as it was."""
    main, args, locked = WRITERS[name]
    ws = tmp_path
    (ws / "corpus").symlink_to(synth_corpus)
    prepare_main(prepare_args(synth_corpus, ws / "data"))
    release = hold_lock(ws / locked)  # the holder is killed: its lock file stays behind
    before = snapshot(ws / "out", hidden=False)
    try:
        code, report = run_cli(main, args(ws), capsys, caplog)
    finally:
        release()
    assert code == 1 and "another process" in report and str(ws / locked) in report
    assert "Traceback" not in report
    assert snapshot(ws / "out", hidden=False) == before
    code, report = run_cli(main, args(ws), capsys, caplog)  # and it works once that is done
    assert code == 0, report
    assert hidden_entries(ws / "out") == []


def _racers(cmds):
    procs = [subprocess.Popen([sys.executable, *cmd], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for cmd in cmds]
    return [(p.wait(timeout=120), p.stderr.read()) for p in procs]


def test_concurrent_data_dir_writers_one_wins(synth_corpus, tmp_path):
    """Really concurrent runs on one output: each succeeds or is refused in one line, and
    the output is one run's complete result."""
    data = tmp_path / "data"
    prepare_main(prepare_args(synth_corpus, data))
    cmds = [["-m", "espnet_lp.bin.subset_data_dir", "--utterances", str(n),
             str(data / "dev_clean"), str(tmp_path / "sub")] for n in (4, 6, 8)]
    cmds.append(["-m", "espnet_lp.bin.prepare_data",
                 *prepare_args(synth_corpus, tmp_path / "prep")])
    cmds.append(["-m", "espnet_lp.bin.prepare_data",
                 *prepare_args(synth_corpus, tmp_path / "prep")])
    results = _racers(cmds)
    for code, err in results:
        assert "Traceback" not in err
        assert code == 0 or (code == 1 and "another process" in err), err
    assert len((tmp_path / "sub/wav.scp").read_text().splitlines()) in (4, 6, 8)
    for d in (tmp_path / "sub", tmp_path / "prep/dev_clean", tmp_path / "prep/test_clean"):
        assert find_problems(d) == []
    assert hidden_entries(tmp_path) == []


# ---- worker processes die with their parent -------------------------------------------------
SLOW_PREPARE = """
import sys, time
from pathlib import Path
import espnet_lp.data.prepare as prepare
real = prepare.inspect_audio
def slow_inspect(*args):
    Path(sys.argv[1]).touch()
    time.sleep(0.5)
    return real(*args)
prepare.inspect_audio = slow_inspect
from espnet_lp.bin.prepare_data import main
main(sys.argv[2:])
"""
SLOW_SYNTH = """
import sys, time
from pathlib import Path
import espnet_lp.synth.corpus as corpus
real = corpus.render
def slow_render(*args):
    Path(sys.argv[1]).touch()
    time.sleep(0.5)
    return real(*args)
corpus.render = slow_render
from espnet_lp.bin.make_synth_corpus import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize("command", ["prepare_data", "make_synth_corpus"])
def test_workers_die_with_a_killed_parent_then_rerun(synth_corpus, tmp_path, command):
    started = tmp_path / "started"
    if command == "prepare_data":
        script, args = SLOW_PREPARE, [*prepare_args(synth_corpus, tmp_path / "out"),
                                      "--num_jobs", "2"]
        rerun, out = (lambda: prepare_main(args)), tmp_path / "out"
    else:
        script, args = SLOW_SYNTH, ["--out", str(tmp_path / "out"), "--num_jobs", "2",
                                    *SYNTH_TINY]
        rerun, out = (lambda: synth_main(args)), tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", script, str(started), *args], cwd=ROOT,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: started.exists() and len(children(proc.pid)) >= 2, 60, "workers")
        workers = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_until(lambda: all(process_state(w) in (None, "Z") for w in workers), 10,
                   f"workers {workers} to exit after their parent was killed")
    finally:
        if proc.poll() is None:
            proc.kill()
    rerun()
    assert hidden_entries(out) == []
    if command == "prepare_data":
        assert find_problems(out / "dev_clean") == []


# ---- the umask ------------------------------------------------------------------------------
@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755),
                                                     (0o077, 0o600, 0o700)])
def test_outputs_follow_the_umask(synth_corpus, tmp_path, mask, file_mode, dir_mode):
    old = os.umask(mask)
    try:
        prepare_main(prepare_args(synth_corpus, tmp_path / "data"))
        inputs_main(["--token_list_from", str(tmp_path / "data/dev_clean"), "--token_list_dir",
                     str(tmp_path / "tokens"), "--shape_dir", str(tmp_path / "shapes"),
                     str(tmp_path / "data/dev_clean")])
        atomic_write_text(tmp_path / "meta/meta.json", "{}")
    finally:
        os.umask(old)
    for p in [tmp_path / "data", *tmp_path.rglob("*")]:
        mode = p.stat().st_mode & 0o777
        assert mode == (dir_mode if p.is_dir() else file_mode), f"{p}: {oct(mode)}"


def test_lock_of_a_dead_process_does_not_block(tmp_path):
    """flock dies with its holder: a SIGKILLed writer never blocks the next run."""
    release = hold_lock(tmp_path / "x")
    release()
    start = time.monotonic()
    with output_lock(tmp_path / "x"):
        pass
    assert time.monotonic() - start < 1.0
    assert list(tmp_path.iterdir()) == []


# ---- kd_cache: a failed run claims nothing, changed audio, parallel shards, a killed run ----
@pytest.fixture(scope="module")
def tiny_exp(en_inputs, tmp_path_factory):
    return make_tiny_exp(en_inputs / "token_list", tmp_path_factory.mktemp("tiny_exp"))


def kd_args(exp: Path, wav_scp: Path, cache: Path, *extra: str):
    return ["--asr_train_config", str(exp / "config.yaml"), "--asr_model_file",
            str(exp / "model.pth"), "--data_path_and_name_and_type", f"{wav_scp},speech,sound",
            "--output_dir", str(cache), "--batch_size", "4", *extra]


def test_kd_cache_failed_run_claims_nothing_and_changed_audio_is_recomputed(
        tiny_exp, en_inputs, tmp_path, capsys, caplog):
    from espnet_lp.bin.kd_cache import main as cache_main

    data = tmp_path / "dev"
    shutil.copytree(en_inputs / "data/dev_clean", data)
    cache = tmp_path / "cache"
    code, report = run_cli(cache_main, kd_args(tiny_exp, data / "wav.scp", cache, "--topk",
                                               "1000"), capsys, caplog)
    assert code == 1 and "vocabulary" in report and not cache.exists()
    code, report = run_cli(cache_main, kd_args(tiny_exp, data / "wav.scp", cache, "--topk", "4"),
                           capsys, caplog)  # the corrected rerun is not refused
    assert code == 0, report
    entries = {p.name: p.read_bytes() for p in (cache / "data").iterdir()}
    assert len(entries) == 12
    utt, audio = (data / "wav.scp").read_text().splitlines()[0].split()
    changed = tmp_path / "changed.wav"
    x, rate = soundfile.read(audio, dtype="int16")
    soundfile.write(str(changed), x[: len(x) // 2], rate, subtype="PCM_16")
    (data / "wav.scp").write_text((data / "wav.scp").read_text().replace(audio, str(changed)))
    code, report = run_cli(cache_main, kd_args(tiny_exp, data / "wav.scp", cache, "--topk", "4"),
                           capsys, caplog)
    assert code == 0 and f"audio of {utt} changed" in report
    after = {p.name: p.read_bytes() for p in (cache / "data").iterdir()}
    assert [n for n in entries if after[n] != entries[n]] == [f"{utt}.npz"]


KILLED_KD = """
import os, signal, sys
import espnet_lp.bin.kd_cache as kd
real, count = kd.save_cache_entry, [0]
def save(*args):
    count[0] += 1
    if count[0] == 4:
        os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write
    real(*args)
kd.save_cache_entry = save
kd.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_kd_cache_parallel_shards_and_a_killed_run(tiny_exp, en_inputs, tmp_path, capsys,
                                                   caplog):
    from espnet_lp.bin.kd_cache import main as cache_main
    from espnet_lp.bin.split_scp import split_lines

    wav_scp = en_inputs / "data/dev_clean/wav.scp"
    lines = wav_scp.read_text().splitlines(keepends=True)
    for n, chunk in enumerate(split_lines(lines, 2), 1):
        (tmp_path / f"keys.{n}").write_text("".join(chunk))
    cache = tmp_path / "cache"
    results = _racers([["-m", "espnet_lp.bin.kd_cache",
                        *kd_args(tiny_exp, wav_scp, cache, "--key_file", str(tmp_path / k))]
                       for k in ("keys.1", "keys.2")])
    assert [code for code, _ in results] == [0, 0], results
    assert len(list((cache / "data").glob("*.npz"))) == 12 and hidden_entries(cache) == []

    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILLED_KD, *kd_args(tiny_exp, wav_scp, killed)],
                          cwd=ROOT, capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert hidden_entries(killed / "data")  # the temporary file of the entry being written
    code, report = run_cli(cache_main, kd_args(tiny_exp, wav_scp, killed), capsys, caplog)
    assert code == 0, report
    assert hidden_entries(killed) == []
    assert sorted(p.name for p in (killed / "data").iterdir()) == \
        sorted(p.name for p in (cache / "data").iterdir())


# ---- decoding and export: a second writer, a killed run ---------------------------------------
def infer_args(exp: Path, wav_scp: Path, out: Path):
    return ["--asr_train_config", str(exp / "config.yaml"), "--asr_model_file",
            str(exp / "model.pth"), "--data_path_and_name_and_type", f"{wav_scp},speech,sound",
            "--output_dir", str(out), "--ngpu", "0", "--batch_size", "1", "--beam_size", "1",
            "--ctc_weight", "1.0", "--nbest", "1", "--maxlenratio", "0.1"]


def export_args(exp: Path, out: Path):
    return ["--exp_dir", str(exp), "--asr_model_file", "model.pth", "--output_dir", str(out),
            "--verify_wav_scp", "none"]


KILLED_AFTER = """
import importlib, os, signal, sys, threading, time
from pathlib import Path
out = Path(sys.argv[2])
def children():
    return [p for p in Path("/proc").glob("[0-9]*/stat")
            if p.read_text().rsplit(")", 1)[1].split()[1] == str(os.getpid())]
def watch():  # SIGKILL once the staged output exists, mid-run, between packer runs (the
    # packer dies with its parent; tests/asr/test_export_faults.py kills it mid-pack)
    while not any(p.name.startswith("." + out.name + ".") for p in out.parent.glob(".*")):
        time.sleep(0.01)
    time.sleep(float(sys.argv[3]))
    while True:
        try:
            if not children():
                break
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGKILL)
threading.Thread(target=watch, daemon=True).start()
importlib.import_module("espnet_lp.bin." + sys.argv[1]).main(sys.argv[4:])
"""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["asr_inference", "export_model"])
def test_model_writers_refuse_a_second_run_and_recover_from_a_kill(
        tiny_exp, en_inputs, tmp_path, capsys, caplog, command):
    import importlib

    main = importlib.import_module(f"espnet_lp.bin.{command}").main
    keys = tmp_path / "wav.scp"
    keys.write_text("".join((en_inputs / "data/dev_clean/wav.scp").read_text()
                            .splitlines(keepends=True)[:2]))
    out = tmp_path / "out"
    if command == "asr_inference":
        args, locked = infer_args(tiny_exp, keys, out), out
    else:
        args, locked = export_args(tiny_exp, out), out / "model_lp.zip"
    release = hold_lock(locked)
    try:
        code, report = run_cli(main, args, capsys, caplog)
    finally:
        release()
    assert code == 1 and "another process" in report and "Traceback" not in report
    assert snapshot(out, hidden=False) in (None, {})
    proc = subprocess.run([sys.executable, "-c", KILLED_AFTER, command,
                           str(out if command == "asr_inference" else locked), "0.2", *args],
                          cwd=ROOT, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert snapshot(out, hidden=False) in (None, {})  # nothing half-written is visible
    code, report = run_cli(main, args, capsys, caplog)
    assert code == 0, report
    assert hidden_entries(tmp_path) == []
    if command == "asr_inference":
        assert len((out / "1best_recog/text").read_text().splitlines()) == 2
    else:
        names = sorted(p.name for p in out.iterdir())
        assert names == ["export.json", "model_lp.zip", "model_stock.zip"]
