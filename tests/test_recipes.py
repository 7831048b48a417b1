"""The recipes' stage 1 (synthetic corpus + data preparation) run as a user runs them."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from espnet_lp.data.datadir import DataDir
from espnet_lp.data.validate import find_problems

ROOT = Path(__file__).resolve().parent.parent
SMALL = "--train_utts 12 --dev_utts 4 --test_utts 4 --utts_per_speaker 4"


def run_recipe(tmp_path: Path, recipe: str, *args: str) -> Path:
    """Copy the recipe out of the tree (outputs land beside it) and run run.sh."""
    work = tmp_path / "egs" / recipe / "al1"
    shutil.copytree(ROOT / "egs" / recipe / "al1", work)
    env = {**os.environ, "MAIN_ROOT": str(ROOT), "LIBRISPEECH": "", "AISHELL": ""}
    if "--synth_opts" not in args:
        args = ("--synth_opts", SMALL, *args)
    subprocess.run(["./run.sh", *args], cwd=work, env=env, check=True, capture_output=True)
    return work


@pytest.mark.slow
def test_librispeech_recipe_demo(tmp_path):
    work = run_recipe(tmp_path, "librispeech_100")
    names = ["train_clean_100", "dev_clean", "dev_other", "dev", "test_clean", "test_other"]
    assert sorted(p.name for p in (work / "data").iterdir()) == sorted(names)
    for name in names:
        assert find_problems(work / "data" / name) == []
    assert len(DataDir.read(work / "data" / "dev")) == 8
    # Rerunning is a no-op for the corpus and rewrites identical data dirs.
    before = (work / "data" / "train_clean_100" / "text").read_bytes()
    subprocess.run(["./run.sh", "--synth_opts", SMALL], cwd=work, check=True,
                   capture_output=True, env={**os.environ, "MAIN_ROOT": str(ROOT)})
    assert (work / "data" / "train_clean_100" / "text").read_bytes() == before


@pytest.mark.slow
def test_aishell_recipe_on_given_corpus(tmp_path, synth_corpus):
    work = run_recipe(tmp_path, "aishell", "--aishell_dir", str(synth_corpus))
    assert not (work / "downloads").exists()  # a given corpus is used as is
    for split in ("train", "dev", "test"):
        assert find_problems(work / "data" / split) == []


def test_missing_corpus_without_download_is_an_error(tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as e:
        run_recipe(tmp_path, "librispeech_100", "--librispeech_dir", str(tmp_path / "absent"))
    assert b"does not exist" in e.value.stdout + e.value.stderr


def test_help_lists_options(tmp_path):
    out = subprocess.run(["./run.sh", "--help"], cwd=ROOT / "egs/aishell/al1", check=True,
                         capture_output=True, text=True).stdout
    assert "--aishell_dir" in out and "--stage" in out


@pytest.mark.slow
def test_librispeech_recipe_trains_a_kd_teacher_on_other_speakers(tmp_path):
    work = run_recipe(tmp_path, "librispeech_100", "--teacher_subset", "train-clean-360",
                      "--synth_opts", SMALL + " --extra_train_utts 8",
                      "--teacher_opts", "--max_epoch 1 --batch_size 4")
    pool = DataDir.read(work / "data" / "train_clean_100")
    teacher = DataDir.read(work / "data" / "train_clean_360")
    assert not set(pool.utt2spk.values()) & set(teacher.utt2spk.values())
    assert (work / "exp" / "teacher" / "config.yaml").is_file()
    assert (work / "exp" / "teacher" / "1epoch.pth").is_file()
    assert (work / "exp" / "asr_inputs" / "train_clean_360" / "speech_shape").is_file()


@pytest.mark.slow
def test_aishell_demo_sets_teacher_speakers_aside(tmp_path):
    work = run_recipe(tmp_path, "aishell", "--stop_stage", "2",
                      "--synth_opts", SMALL + " --extra_train_utts 8")
    pool = DataDir.read(work / "data" / "train")
    teacher = DataDir.read(work / "data" / "train_teacher")
    assert len(pool) == 12 and len(teacher) == 8
    assert not set(pool.utt2spk.values()) & set(teacher.utt2spk.values())
    tokens = (work / "exp" / "asr_inputs" / "token_list").read_text().split()
    assert tokens[0] == "<blank>" and tokens[-1] == "<sos/eos>"
