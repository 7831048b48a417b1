"""The ctc_kl criterion, teachers (online and cached) and KD training."""

import json
import math

import pytest
import torch

from espnet_lp.asr.kd import CTCKLCriterion, kl_per_frame, pool_posteriors
from espnet_lp.asr.teacher import (
    CACHE_FORMAT,
    AbsTeacher,
    CachedTeacher,
    TeacherError,
    TeacherPosteriors,
    kd_train_args,
    read_teacher_spec,
    save_cache_entry,
)
from tests.asr.conftest import TINY, build_tiny, train_cmd

TOKENS = ["<blank>", "a", "b", "c", "<sos/eos>"]


class FixedTeacher(AbsTeacher):
    """Returns given logits, at the requested temperature."""

    def __init__(self, logits, lens, subsampling=4, token_list=TOKENS):
        self.logits, self.lens = logits, lens
        self.subsampling, self.token_list = subsampling, token_list

    def posteriors(self, speech, speech_lengths, utt_ids, temperature):
        return TeacherPosteriors(torch.log_softmax(self.logits / temperature, -1), None,
                                 self.lens)


def criterion(teacher, **kw):
    crit = CTCKLCriterion(teacher, **kw)
    crit.check_student(TOKENS, 4)
    return crit


def run(crit, student, lens):
    return crit(torch.zeros(len(lens), 10), torch.full((len(lens),), 10), student, lens,
                [f"u{i}" for i in range(len(lens))])


def test_kl_zero_for_identical_and_positive_otherwise():
    torch.manual_seed(0)
    logits, lens = torch.randn(2, 6, 5), torch.tensor([6, 4])
    crit = criterion(FixedTeacher(logits, lens))
    loss, stats = run(crit, logits.clone(), lens)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert stats["acc_kd"].item() == pytest.approx(1.0)
    loss, _ = run(crit, torch.randn(2, 6, 5), lens)
    assert loss.item() > 0.01


def test_temperature_squared_scaling_and_padding_ignored():
    torch.manual_seed(1)
    t, s, lens = torch.randn(1, 3, 5), torch.randn(1, 3, 5), torch.tensor([2])
    for temp in (1.0, 2.0, 4.0):
        loss, _ = run(criterion(FixedTeacher(t, lens), temperature=temp), s, lens)
        pt = torch.softmax(t[0, :2] / temp, -1)
        ps = torch.softmax(s[0, :2] / temp, -1)
        expected = (pt * (pt.log() - ps.log())).sum(-1).mean() * temp ** 2
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_teacher_nonblank_selects_frames():
    t = torch.full((1, 4, 5), -5.0)
    t[0, 0, 0] = t[0, 1, 2] = t[0, 2, 0] = t[0, 3, 3] = 5.0  # blank, b, blank, c
    s = torch.randn(1, 4, 5)
    lens = torch.tensor([4])
    loss, stats = run(criterion(FixedTeacher(t, lens), frame_select="teacher_nonblank"), s, lens)
    assert stats["frames_kd"].item() == 0.5  # 2 of 4 frames
    per_frame = kl_per_frame(torch.log_softmax(t, -1), None, torch.log_softmax(s, -1))
    assert loss.item() == pytest.approx(per_frame[0, [1, 3]].mean().item(), rel=1e-5)


def make_cache(tmp_path, logits, speech, k, token_list=TOKENS, temperature=1.0):
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    for b in range(len(logits)):
        save_cache_entry(tmp_path, f"u{b}", torch.log_softmax(logits[b] / temperature, -1), k,
                         speech[b])
    meta = {"format": CACHE_FORMAT, "token_list": token_list, "topk": k,
            "temperature": temperature, "subsampling": 4, "teacher_fingerprint": "x"}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    return tmp_path


@pytest.mark.parametrize("k,tol", [(5, 2e-3), (4, 2e-2)])
def test_topk_cache_round_trip_matches_dense(tmp_path, k, tol):
    torch.manual_seed(2)
    logits, s = torch.randn(2, 6, 5) * 2, torch.randn(2, 6, 5)
    lens = torch.tensor([6, 6])
    speech = torch.randn(2, 10)
    dense, _ = CTCKLCriterion(FixedTeacher(logits, lens))(speech, torch.tensor([10, 10]), s,
                                                          lens, ["u0", "u1"])
    cache = make_cache(tmp_path, logits, speech, k)
    crit = CTCKLCriterion({"cache_dir": str(cache), "topk": k})
    crit.check_student(TOKENS, 4)
    cached, _ = crit(speech, torch.tensor([10, 10]), s, lens, ["u0", "u1"])
    assert cached.item() == pytest.approx(dense.item(), rel=tol, abs=tol)


def test_stale_or_missing_cache_entries_are_errors(tmp_path):
    speech = torch.randn(1, 10)
    cache = make_cache(tmp_path, torch.randn(1, 3, 5), speech, 3)
    teacher = CachedTeacher(cache)
    with pytest.raises(TeacherError, match="stale entry for utterance u0"):
        teacher.posteriors(speech + 0.1, torch.tensor([10]), ["u0"], 1.0)
    with pytest.raises(TeacherError, match="no cached teacher posteriors for utterance u9"):
        teacher.posteriors(speech, torch.tensor([10]), ["u9"], 1.0)
    with pytest.raises(TeacherError, match="temperature"):
        teacher.posteriors(speech, torch.tensor([10]), ["u0"], 2.0)
    with pytest.raises(TeacherError, match="topk=3"):
        CachedTeacher(cache, topk=8)


def test_vocabulary_and_frame_rate_checks(tmp_path):
    lens = torch.tensor([4])
    crit = CTCKLCriterion(FixedTeacher(torch.randn(1, 4, 5), lens, token_list=TOKENS[::-1]))
    with pytest.raises(TeacherError, match="token lists differ"):
        crit.check_student(TOKENS, 4)
    crit = CTCKLCriterion(FixedTeacher(torch.randn(1, 4, 5), lens, subsampling=3))
    with pytest.raises(TeacherError, match="not an integer"):
        crit.check_student(TOKENS, 4)
    crit = CTCKLCriterion(FixedTeacher(torch.randn(1, 8, 5), torch.tensor([7]), subsampling=2))
    crit.check_student(TOKENS, 4)
    assert crit.pool == 2
    loss, stats = run(crit, torch.randn(1, 4, 5), torch.tensor([4]))
    assert torch.isfinite(loss) and stats["frames_kd"].item() == 1.0


def test_pooling_averages_probabilities():
    p = torch.tensor([[[0.8, 0.2], [0.4, 0.6], [1.0, 0.0]]])
    pooled = pool_posteriors(TeacherPosteriors(p.clamp(min=1e-12).log(), None,
                                               torch.tensor([3])), 2)
    assert pooled.lens.tolist() == [2]
    torch.testing.assert_close(pooled.logp.exp(), torch.tensor([[[0.6, 0.4], [1.0, 0.0]]]),
                               atol=1e-6, rtol=1e-6)


def test_frame_count_mismatch_is_an_error():
    crit = criterion(FixedTeacher(torch.randn(1, 9, 5), torch.tensor([9])))
    with pytest.raises(TeacherError, match="utterance u0: teacher has 9 frames, student 4"):
        run(crit, torch.randn(1, 4, 5), torch.tensor([4]))


# ---- with real models -------------------------------------------------------------------
def kd_student(en_inputs, trained, *extra):
    teacher = (f"teacher={{asr_train_config: {trained / 'config.yaml'}, "
               f"asr_model_file: {trained / '2epoch.pth'}}}")
    return build_tiny(en_inputs / "token_list", "--model_conf", "kd=ctc_kl",
                      "--model_conf", f"kd_conf.{teacher}",
                      "--model_conf", "kd_weight=0.5", *extra)


@pytest.mark.slow
def test_teacher_stays_out_of_student_state_and_optimizer(en_inputs, trained):
    student = kd_student(en_inputs, trained)
    plain = build_tiny(en_inputs / "token_list")
    assert set(student.state_dict()) == set(plain.state_dict())
    teacher_params = {id(p) for p in student.kd.teacher.model.parameters()}
    assert not teacher_params & {id(p) for p in student.parameters()}
    assert not student.kd.teacher.model.training
    assert all(not p.requires_grad for p in student.kd.teacher.model.parameters())


@pytest.mark.slow
def test_mixed_transcribed_and_untranscribed_batch_trains(en_inputs, trained, en_batch):
    student = kd_student(en_inputs, trained)
    speech, lens, text, text_lens = en_batch
    text_lens = text_lens.clone()
    text_lens[1] = 0  # utterance 1 has no transcript
    text = text.clone()
    text[1] = -1
    loss, stats, _ = student(speech, lens, text, text_lens, utt_id=["a", "b", "c", "d"])
    loss.backward()
    assert torch.isfinite(loss) and "loss_kd" in stats and "loss_asr_labeled" in stats
    grads = [p.grad for p in student.encoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    plain = build_tiny(en_inputs / "token_list", "--model_conf", "lp_decoder=none")
    with pytest.raises(ValueError, match="no transcript"):
        plain(speech, lens, text, text_lens)


@pytest.mark.slow
def test_scoring_model_load_skips_the_teacher(en_inputs, trained, tmp_path):
    """A KD student's config names its teacher; decoding/scoring must not need it."""
    import yaml

    from espnet2.tasks.asr import ASRTask

    config = yaml.safe_load((trained / "config.yaml").read_text())
    config["model_conf"].update(kd="ctc_kl", kd_weight=0.5,
                                kd_conf={"teacher": {"cache_dir": str(tmp_path / "gone")}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    model, _ = ASRTask.build_model_from_file(tmp_path / "config.yaml", trained / "2epoch.pth",
                                             "cpu")
    assert model.kd is not None and model.kd._teacher is None  # not loaded
    hyp = model.eval().score_pool(torch.randn(1, 16000), torch.tensor([16000]))["hyp"]
    assert len(hyp) == 1
    with pytest.raises(TeacherError, match="not a teacher cache"):
        model.train()(torch.randn(1, 16000), torch.tensor([16000]),
                      torch.tensor([[5, 6]]), torch.tensor([2]), utt_id=["u"])


@pytest.mark.slow
def test_cli_training_with_online_teacher_and_with_cache(en_inputs, trained, tmp_path):
    from espnet_lp.bin.asr_train import main as train_main
    from espnet_lp.bin.kd_cache import main as cache_main

    teacher = {"asr_train_config": str(trained / "config.yaml"),
               "asr_model_file": str(trained / "2epoch.pth")}
    common = ["--max_epoch", "1", "--batch_size", "8", "--model_conf", "kd_weight=0.5",
              "--model_conf", "kd=ctc_kl"]
    train_main(train_cmd(en_inputs, tmp_path / "online", *common,
                         "--model_conf", f"kd_conf.teacher={json.dumps(teacher)}"))
    assert (tmp_path / "online" / "1epoch.pth").is_file()
    stats = torch.load(tmp_path / "online" / "checkpoint.pth",
                       weights_only=False)["reporter"]["stats"][1]["train"]
    assert {"loss_kd", "acc_kd", "frames_kd"} <= set(stats)

    cache = tmp_path / "cache"
    for split in ("train_clean_100", "dev_clean"):
        cache_main(["--asr_train_config", teacher["asr_train_config"], "--asr_model_file",
                    teacher["asr_model_file"], "--data_path_and_name_and_type",
                    f"{en_inputs}/data/{split}/wav.scp,speech,sound",
                    "--output_dir", str(cache), "--topk", "8"])
    assert len(list((cache / "data").glob("*.npz"))) == 24 + 12  # train + dev_clean
    train_main(train_cmd(en_inputs, tmp_path / "cached", *common,
                         "--model_conf", f"kd_conf.teacher={{cache_dir: {cache}, topk: 8}}"))
    stats = torch.load(tmp_path / "cached" / "checkpoint.pth",
                       weights_only=False)["reporter"]["stats"][1]["train"]
    assert math.isfinite(stats["loss_kd"])


@pytest.mark.slow
def test_cache_refuses_a_second_teacher_or_other_settings(en_inputs, trained, tmp_path):
    from espnet_lp.bin.kd_cache import build_cache, get_parser
    from espnet_lp.bin.kd_cache import main as cache_main

    spec = tmp_path / "teacher.yaml"
    spec.write_text(f"asr_train_config: {trained / 'config.yaml'}\n"
                    f"asr_model_file: {trained / '2epoch.pth'}\n")
    data = ["--data_path_and_name_and_type", f"{en_inputs}/data/dev_clean/wav.scp,speech,sound",
            "--output_dir", str(tmp_path / "cache")]
    cache_main(["--teacher_spec", str(spec), "--topk", "4", *data])
    entries = sorted((tmp_path / "cache" / "data").iterdir())
    cache_main(["--teacher_spec", str(spec), "--topk", "4", *data])  # resumes: nothing to do
    assert sorted((tmp_path / "cache" / "data").iterdir()) == entries
    state = torch.load(trained / "2epoch.pth", map_location="cpu")
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, tmp_path / "other.pth")  # another teacher: same shape, other weights
    other = ["--asr_train_config", str(trained / "config.yaml"),
             "--asr_model_file", str(tmp_path / "other.pth"), "--topk", "4"]
    for cmd, what in [(other, "teacher_fingerprint"),
                      (["--teacher_spec", str(spec), "--topk", "8"], "topk")]:
        with pytest.raises(TeacherError, match=f"built with other {what}"):
            build_cache(get_parser().parse_args(cmd + data))
    assert sorted((tmp_path / "cache" / "data").iterdir()) == entries


def test_teacher_spec_file(tmp_path):
    spec = tmp_path / "kd" / "teacher.yaml"
    spec.parent.mkdir()
    spec.write_text("asr_train_config: ../teacher/config.yaml\nasr_model_file: /m.pth\n")
    got = read_teacher_spec(spec)
    assert got == {"asr_train_config": str(tmp_path / "teacher" / "config.yaml"),
                   "asr_model_file": "/m.pth"}
    for text, match in [("cache_dir: [1\n", "not valid yaml"), ("- a\n", "expected a mapping"),
                        ("cache_dir: c\ntopk: 8\nmodel: x\n", "unknown teacher keys"),
                        ("asr_train_config: c.yaml\n", "asr_model_file, zoo_zip or cache_dir")]:
        spec.write_text(text)
        with pytest.raises(TeacherError, match=match) as e:
            read_teacher_spec(spec)
        assert str(spec) in str(e.value)
    with pytest.raises(TeacherError, match="not found"):
        read_teacher_spec(tmp_path / "absent.yaml")


def test_kd_train_args():
    assert kd_train_args({"cache_dir": "/c"}, 0.0) == []
    args = kd_train_args({"cache_dir": "/c", "topk": 8}, 0.5, {"frame_select": "teacher_nonblank"})
    assert args == ["--model_conf", "kd=ctc_kl", "--model_conf", "kd_weight=0.5",
                    "--model_conf", 'kd_conf.teacher={"cache_dir": "/c", "topk": 8}',
                    "--model_conf", 'kd_conf.frame_select="teacher_nonblank"']
    from espnet2.tasks.asr import ASRTask

    parsed = ASRTask.get_parser().parse_args(["--output_dir", "x", "--config", str(TINY), *args])
    assert parsed.model_conf["kd_conf"] == {"teacher": {"cache_dir": "/c", "topk": 8},
                                            "frame_select": "teacher_nonblank"}
    assert parsed.model_conf["lp_decoder"] == "lp_mlp"  # the yaml's model_conf is kept
    with pytest.raises(TeacherError, match="kd_weight"):
        kd_train_args({"cache_dir": "/c"}, 1.0)
