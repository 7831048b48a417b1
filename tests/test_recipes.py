"""The recipes as a user runs them: ./run.sh end to end, on the local and Slurm backends.

Each test copies the recipe's *tracked* files (never a user's downloads/, data/ or exp/) out
of the tree and runs it with one clean environment (no LIBRISPEECH/AISHELL/cmd_backend of
the user's shell).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_lp.data.datadir import DataDir
from tests.slurm_cluster import SlurmCluster, why_unavailable

ROOT = Path(__file__).resolve().parent.parent
SMALL = "--train_utts 24 --dev_utts 6 --test_utts 4 --utts_per_speaker 4"
#: What a user's shell may hold that must not reach a test's recipe run.
USER_ENV = ("LIBRISPEECH", "AISHELL", "cmd_backend", "slurm_opts", "ESPNET_LP_FAULT_AFTER",
            "MAIN_ROOT", "OMP_NUM_THREADS", "SLURM_CONF")
#: A round that trains in seconds: 2 strategies, 1 round, 1 epoch.
TINY_AL = ["--strategies", "random loss_prediction", "--initial_utts", "8", "--budget_utts",
           "6", "--rounds", "1", "--asr_opts", "--max_epoch 1 --batch_size 4",
           "--export_verify_num", "1"]


def recipe_files(recipe: str):
    """The recipe's files that are not ignored outputs (git's view when this is a checkout)."""
    rel = f"egs/{recipe}/al1"
    proc = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others",
                           "--exclude-standard", rel], capture_output=True, text=True)
    if proc.returncode == 0 and proc.stdout.strip():
        return [Path(p).relative_to(rel) for p in proc.stdout.split("\n") if p]
    skip = {"downloads", "data", "exp", "dump"}
    base = ROOT / rel
    return [p.relative_to(base) for p in base.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(base).parts)]


def copy_recipe(tmp_path: Path, recipe: str) -> Path:
    """The recipe's files (symlinks to the template followed) in a fresh directory."""
    work = tmp_path / "egs" / recipe / "al1"
    for rel in recipe_files(recipe):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "egs" / recipe / "al1" / rel, work / rel)
    return work


def recipe_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in USER_ENV}
    return {**env, "MAIN_ROOT": str(ROOT), **extra}


def run(work: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(["./run.sh", *args], cwd=work, env=env or recipe_env(),
                          capture_output=True, text=True)


def ok(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def test_recipe_copies_hold_no_outputs(tmp_path):
    for recipe in ("librispeech_100", "aishell"):
        names = {p.parts[0] for p in recipe_files(recipe)}
        assert names.isdisjoint({"downloads", "data", "exp"}), names
        work = copy_recipe(tmp_path, recipe)
        assert (work / "al.sh").is_file() and not (work / "al.sh").is_symlink()


def test_help_lists_the_flags_users_expect():
    out = ok(run(ROOT / "egs/aishell/al1", "--help"))
    for flag in ("--corpus_dir", "--pool_hours", "--initial_hours", "--budget_hours",
                 "--rounds", "--strategies", "--seeds", "--asr_config", "--decode_opts",
                 "--ngpu", "--nj", "--kd_weight", "--stage", "--stop_stage", "--only_strategies"):
        assert flag in out, flag


@pytest.mark.parametrize("args, message", [
    (["--teacher_opts", "--max_epoch", "30"], "unexpected argument '30'"),
    (["--stage", "two"], "--stage must be a non-negative integer"),
    (["--stage", "9"], "the last stage is 7"),
    (["--stage", "5", "--stop_stage", "3"], "--stop_stage 3 is before --stage 5"),
    (["--no_such_flag", "1"], "unknown option --no_such_flag"),
    (["--stop_stage", "last"], "--stop_stage must be a non-negative integer"),
    (["--nj", "two"], "--nj must be a non-negative integer"),
    (["--nj", "0"], "--nj must be at least 1"),
    (["--strategies", "random lp_diversee"], "unknown strategy 'lp_diversee'; valid: "),
    (["--only_strategies", "randon"], "unknown strategy 'randon'; valid: "),
])
def test_bad_flags_are_refused_before_anything_runs(tmp_path, args, message):
    work = copy_recipe(tmp_path, "librispeech_100")
    proc = run(work, *args)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (work / "data").exists() and not (work / "downloads").exists()


def test_nonexistent_corpus_fails_fast(tmp_path):
    work = copy_recipe(tmp_path, "librispeech_100")
    proc = run(work, "--corpus_dir", str(tmp_path / "absent"))
    assert proc.returncode != 0
    assert f"{tmp_path / 'absent'} does not exist" in proc.stdout + proc.stderr
    assert not (work / "exp").exists()


@pytest.mark.slow
def test_librispeech_recipe_end_to_end_then_restart_from_a_middle_stage(tmp_path):
    work = copy_recipe(tmp_path, "librispeech_100")
    args = ["--local_data_opts", f"--synth_opts '{SMALL}'", "--nbpe", "30",
            "--test_sets", "dev_clean test_clean", "--metric", "cer", *TINY_AL]
    out = ok(run(work, *args))
    assert "Successfully finished" in out and "| random | 1 |" in out  # the printed table
    assert str(work / "exp/al/learning_curve.png") in out
    # ESPnet's token list and shape paths and formats (tokens,vocabulary)
    tokens = (work / "data/token_list/bpe_unigram30/tokens.txt").read_text().split("\n")[:-1]
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert (work / "data/token_list/bpe_unigram30/bpe.model").is_file()
    shape = (work / "exp/asr_stats_raw_en_bpe30/dev/text_shape.bpe").read_text().split("\n")[0]
    assert shape.split()[1].endswith(f",{len(tokens)}")
    # every training wrote its log; LP models were refit; the report and the export exist
    al = work / "exp/al/seed0"
    trainings = {p.resolve() for p in al.glob("*/round*/model/train.log")}  # round 0: shared
    assert len(trainings) == 3 and all("1epoch results" in t.read_text() for t in trainings)
    assert (al / "loss_prediction/round1/model/lp_refit.pth").is_file()
    assert "loss_prediction" in (work / "exp/al/RESULTS.md").read_text()
    assert sorted(p.name for p in (work / "exp/export").glob("*.zip")) == [
        "loss_prediction_round1_lp.zip", "loss_prediction_round1_stock.zip"]
    # a restart from stage 5 finds every round done and only rewrites the report
    selected = (al / "loss_prediction/round0/selected").read_text()
    out = ok(run(work, *args, "--stage", "5", "--stop_stage", "6"))
    assert "round 1/1 train" not in out and "Stage 6" in out
    assert (al / "loss_prediction/round0/selected").read_text() == selected


@pytest.mark.slow
def test_human_oracle_stops_at_stage_5_then_the_same_command_resumes(tmp_path):
    work = copy_recipe(tmp_path, "librispeech_100")
    args = ["--local_data_opts", f"--synth_opts '{SMALL}'", "--nbpe", "30", "--test_sets",
            "dev_clean", "--metric", "cer", "--strategies", "random", "--initial_utts", "8",
            "--rounds", "0", "--asr_opts", "--max_epoch 1 --batch_size 4", "--oracle", "human",
            "--stop_stage", "6"]
    out = ok(run(work, *args))
    assert "Stage 5 stopped for annotation" in out and "rerun this ./run.sh" in out
    assert not re.search(r"Successfully finished$", out, re.M) and "Stage 6" not in out
    assert (work / "exp/al/annotation_pending").is_file()
    tsv = work / "exp/al/seed0/initial/round0/annotation/tasks.tsv"
    command = (f"al_annotate import --al_dir exp/al/seed0 --strategy initial --round 0 "
               f"--input {tsv.relative_to(work)}")
    assert command in out
    # the demo pool is transcribed: its held-back text plays the annotators
    truth = DataDir.read(work / "data" / "train_clean_100").text
    lines = tsv.read_text().splitlines()
    rows = [line.split("\t") for line in lines[2:]]
    tsv.write_text("\n".join(lines[:2] + ["\t".join(r[:5] + [truth[r[0]]]) for r in rows]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "espnet_lp.bin.al_annotate", *command.split()[1:]],
                          cwd=work, env=recipe_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = ok(run(work, *args))
    assert "resuming at stage 5" in out and "Stage 1: data preparation" not in out
    assert "Stage 6" in out and re.search(r"Successfully finished$", out, re.M)
    assert not (work / "exp/al/annotation_pending").exists()
    labeled = DataDir.read(work / "exp/al/seed0/random/round0/data/labeled")
    assert len(labeled) == 8 and labeled.text == {u: truth[u] for u in labeled.utt_ids}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    yield cluster
    cluster.stop()


def test_launch_on_slurm_collects_every_exit_code(slurm, tmp_path):
    from espnet_lp.al.jobs import Backend, JobError, run_jobs

    logs = [tmp_path / f"job.{j}.log" for j in (1, 2, 3)]
    cmds = [["sh", "-c", f"echo job {j} on $SLURM_JOB_ID; exit {int(j == 2)}"] for j in (1, 2, 3)]
    os.environ["SLURM_CONF"] = slurm.env["SLURM_CONF"]
    try:
        with pytest.raises(JobError, match="job.2.log"):
            run_jobs(cmds, logs, backend=Backend("slurm", "--time=5"))
    finally:
        del os.environ["SLURM_CONF"]
    for j, log in enumerate(logs, 1):
        text = log.read_text()
        assert text.startswith("# srun ") and f"job {j} on " in text


@pytest.mark.slow
def test_aishell_recipe_end_to_end_on_slurm(slurm, tmp_path, synth_corpus):
    work = copy_recipe(tmp_path, "aishell")
    env = recipe_env(cmd_backend="slurm", slurm_opts="--time=30",
                     SLURM_CONF=slurm.env["SLURM_CONF"])
    out = ok(run(work, "--corpus_dir", str(synth_corpus), *TINY_AL, env=env))
    assert "Successfully finished" in out and "CER" in (work / "exp/al/RESULTS.md").read_text()
    assert (work / "data/token_list/char/tokens.txt").is_file()
    logs = list((work / "exp/al/seed0").rglob("*.log"))
    assert logs and all(log.read_text().startswith("# srun ") for log in logs)
    assert any("score" in log.name for log in logs) and any("decode" in log.name for log in logs)


@pytest.mark.slow
def test_librispeech_kd_teacher_cache_then_distilled_rounds(tmp_path):
    """Stages 1-4 (teacher on other speakers, cached), then a distilled initial round."""
    from espnet_lp.asr.teacher import read_teacher_spec

    work = copy_recipe(tmp_path, "librispeech_100")
    data_opts = f"--teacher_subset train-clean-360 --synth_opts '{SMALL} --extra_train_utts 8'"
    ok(run(work, "--local_data_opts", data_opts, "--teacher_set", "train_clean_360",
           "--teacher_opts", "--max_epoch 1 --batch_size 4", "--nbpe", "30",
           "--stop_stage", "4"))
    data, exp = work / "data", work / "exp"
    pool = DataDir.read(data / "train_clean_100")
    teacher = DataDir.read(data / "train_clean_360")
    assert not set(pool.utt2spk.values()) & set(teacher.utt2spk.values())
    assert (exp / "teacher" / "valid.acc.best.pth").exists()
    assert "asr_train" in (exp / "teacher" / "train.log").read_text()
    spec = read_teacher_spec(exp / "kd" / "teacher.yaml")
    assert spec == {"cache_dir": str((exp / "kd" / "cache").resolve()), "topk": 8}
    cached = {p.stem for p in (exp / "kd" / "cache" / "data").glob("*.npz")}
    assert cached == set(pool.utt_ids) | set(DataDir.read(data / "dev").utt_ids)

    ok(run(work, "--stage", "5", "--stop_stage", "5", "--nbpe", "30", "--kd_weight", "0.5",
           "--kd_pool", "true", "--strategies", "random", "--rounds", "0", "--initial_utts", "6",
           "--asr_opts", "--max_epoch 1 --batch_size 4", "--lp_refit", "false"))
    log = (exp / "al/seed0/initial/round0/model/train.log").read_text()
    assert "loss_kd=" in log and "kd_weight" in log

    # A given teacher (ESPnet exp dir) replaces training; a wrong path is a clear error.
    ok(run(work, "--stage", "3", "--stop_stage", "3", "--teacher_model", str(exp / "teacher"),
           "--teacher_checkpoint", "1epoch.pth"))
    assert read_teacher_spec(exp / "kd" / "teacher.yaml") == {
        "asr_train_config": str((exp / "teacher" / "config.yaml").resolve()),
        "asr_model_file": str(exp.resolve() / "teacher" / "1epoch.pth")}
    bad = run(work, "--stage", "3", "--teacher_model", "nowhere")
    assert bad.returncode != 0 and "neither a zoo zip nor an exp dir" in bad.stdout + bad.stderr


@pytest.mark.slow
def test_aishell_demo_sets_teacher_speakers_aside(tmp_path):
    work = copy_recipe(tmp_path, "aishell")
    ok(run(work, "--local_data_opts", f"--synth_opts '{SMALL} --extra_train_utts 8'",
           "--teacher_set", "train_teacher", "--stop_stage", "2"))
    pool = DataDir.read(work / "data" / "train")
    teacher = DataDir.read(work / "data" / "train_teacher")
    assert len(pool) == 24 and len(teacher) == 8
    assert not set(pool.utt2spk.values()) & set(teacher.utt2spk.values())
    tokens = (work / "data/token_list/char/tokens.txt").read_text().split()
    assert tokens[0] == "<blank>" and tokens[-1] == "<sos/eos>"
    assert (work / "exp/asr_stats_raw_zh_char/train_teacher/text_shape.char").is_file()
