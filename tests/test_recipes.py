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
def test_librispeech_recipe_kd_teacher_then_a_distilled_round(tmp_path):
    """Stages 1-4 (teacher on other speakers, cached), then what an AL round with
    kd_weight > 0 runs: the labeled part plus the untranscribed pool, distilled from
    exp/kd/teacher.yaml."""
    import torch

    from espnet_lp.asr.teacher import kd_train_args, read_teacher_spec
    from espnet_lp.bin.asr_train import main as train_main
    from espnet_lp.bin.combine_data_dirs import main as combine_main
    from espnet_lp.bin.make_asr_inputs import main as inputs_main
    from espnet_lp.bin.subset_data_dir import main as subset_main
    from espnet_lp.data.asr_inputs import asr_train_data_args

    work = run_recipe(tmp_path, "librispeech_100", "--teacher_subset", "train-clean-360",
                      "--synth_opts", SMALL + " --extra_train_utts 8",
                      "--teacher_opts", "--max_epoch 1 --batch_size 4")
    data, exp = work / "data", work / "exp"
    pool = DataDir.read(data / "train_clean_100")
    teacher = DataDir.read(data / "train_clean_360")
    assert not set(pool.utt2spk.values()) & set(teacher.utt2spk.values())
    assert (exp / "teacher" / "valid.acc.best.pth").exists()
    assert (exp / "asr_inputs" / "train_clean_360" / "speech_shape").is_file()
    # Stage 4 cached the teacher over the AL training and validation sets, once.
    spec = read_teacher_spec(exp / "kd" / "teacher.yaml")
    assert spec == {"cache_dir": str((exp / "kd" / "cache").resolve()), "topk": 8}
    cached = {p.stem for p in (exp / "kd" / "cache" / "data").glob("*.npz")}
    assert cached == set(pool.utt_ids) | set(DataDir.read(data / "dev").utt_ids)
    assert read_teacher_spec(exp / "kd" / "teacher_model.yaml")["asr_model_file"].endswith(
        "exp/teacher/valid.acc.best.pth")

    # A round: 6 labeled utterances, the rest of the pool without transcripts.
    ids = tmp_path / "labeled_ids"
    ids.write_text("".join(f"{u}\n" for u in pool.utt_ids[:6]))
    subset_main(["--utt_list", str(ids), str(data / "train_clean_100"), str(data / "labeled")])
    subset_main(["--utt_list", str(ids), "--exclude", str(data / "train_clean_100"),
                 str(data / "pool")])
    combine_main(["--untranscribed", str(data / "pool"), str(data / "round"),
                  str(data / "labeled")])
    inputs_main(["--output_dir", str(exp / "asr_inputs"), str(data / "round")])
    shapes = (exp / "asr_inputs" / "round" / "text_shape.char").read_text().splitlines()
    assert sum(line.endswith(" 0") for line in shapes) == len(pool) - 6
    train_main(["--config", str(ROOT / "conf/tuning/train_lp_tiny.yaml"), "--output_dir",
                str(exp / "round"), "--ngpu", "0", "--max_epoch", "1", "--batch_size", "4",
                *asr_train_data_args(data, exp / "asr_inputs", exp / "asr_inputs" / "token_list",
                                     "round", "dev"),
                *kd_train_args(spec, 0.5)])
    stats = torch.load(exp / "round" / "checkpoint.pth",
                       weights_only=False)["reporter"]["stats"][1]["train"]
    assert stats["loss_kd"] > 0 and "loss_asr_labeled" in stats

    # A given teacher (ESPnet exp dir) replaces training; a wrong path is a clear error.
    env = {**os.environ, "MAIN_ROOT": str(ROOT)}
    subprocess.run(["./run.sh", "--stage", "3", "--stop_stage", "3", "--teacher_model",
                    str(exp / "round"), "--teacher_checkpoint", "1epoch.pth"],
                   cwd=work, env=env, check=True, capture_output=True)
    assert read_teacher_spec(exp / "kd" / "teacher.yaml") == {
        "asr_train_config": str((exp / "round" / "config.yaml").resolve()),
        "asr_model_file": str(exp.resolve() / "round" / "1epoch.pth")}
    bad = subprocess.run(["./run.sh", "--stage", "3", "--teacher_model", "nowhere"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "neither a zoo zip nor an exp dir" in bad.stdout + bad.stderr


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
