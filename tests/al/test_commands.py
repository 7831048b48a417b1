"""The sub-command lines a round runs (no process is started here)."""

from pathlib import Path

import pytest

from espnet_lp.al.commands import train_command
from espnet_lp.al.loop import ALConfig, ALRunError


def config(tmp_path, **kw):
    for name in ("train", "dev"):
        (tmp_path / name).mkdir(exist_ok=True)
    for name in ("tokens", "train.yaml"):
        (tmp_path / name).write_text("x\n")
    return ALConfig(strategies=["random"], train_set=str(tmp_path / "train"),
                    valid_set=str(tmp_path / "dev"), test_sets=[str(tmp_path / "dev")],
                    token_list=str(tmp_path / "tokens"),
                    train_config=str(tmp_path / "train.yaml"), **kw)


def test_training_uses_stock_asr_train_and_distils_when_asked(tmp_path):
    (tmp_path / "teacher.yaml").write_text("cache_dir: cache\ntopk: 8\n")
    cfg = config(tmp_path, teacher_spec=str(tmp_path / "teacher.yaml"), kd_weight=0.5,
                 kd_conf={"temperature": 2.0}, train_opts=["--max_epoch", "3"], seed=7)
    cmd = train_command(cfg, Path("r1/data/train"), Path("r1/shapes/train"),
                        Path("shapes/valid"), Path("r1/model"), None)
    assert cmd[1:3] == ["-m", "espnet2.bin.asr_train"]
    joined = " ".join(cmd)
    assert "--model_conf kd=ctc_kl --model_conf kd_weight=0.5" in joined
    assert f'kd_conf.teacher={{"cache_dir": "{tmp_path / "cache"}", "topk": 8}}' in joined
    assert "--model_conf kd_conf.temperature=2.0" in joined
    assert "--resume true" in joined and "--seed 7" in joined
    assert cmd[-2:] == ["--max_epoch", "3"]  # the user's options come last and win
    assert "--init_param" not in cmd
    plain = train_command(config(tmp_path), Path("d"), Path("s"), Path("v"), Path("m"), None)
    assert "kd=ctc_kl" not in " ".join(plain)


def test_warm_start_initialises_from_the_previous_model(tmp_path):
    prev = tmp_path / "round0" / "model"
    prev.mkdir(parents=True)
    (prev / "valid.acc.best.pth").write_bytes(b"")
    cmd = train_command(config(tmp_path, retrain="warm_start"), Path("d"), Path("s"),
                        Path("v"), Path("m"), prev)
    assert cmd[cmd.index("--init_param") + 1] == str(prev / "valid.acc.best.pth")


def test_warm_start_options_apply_to_warm_started_rounds_only(tmp_path):
    prev = tmp_path / "round0" / "model"
    prev.mkdir(parents=True)
    (prev / "valid.acc.best.pth").write_bytes(b"")
    cfg = config(tmp_path, retrain="warm_start", train_opts=["--max_epoch", "12"],
                 warm_start_opts=["--max_epoch", "6"])
    warm = train_command(cfg, Path("d"), Path("s"), Path("v"), Path("m"), prev)
    assert warm[-4:] == ["--max_epoch", "12", "--max_epoch", "6"]  # the last one wins
    scratch = train_command(cfg, Path("d"), Path("s"), Path("v"), Path("m"), None)
    assert scratch[-2:] == ["--max_epoch", "12"] and "6" not in scratch
    # an unset option leaves the digest of runs made before it existed as it was
    assert config(tmp_path).digest() != cfg.digest()
    assert config(tmp_path, warm_start_opts=[]).digest() == config(tmp_path).digest()


def test_acquisition_changes_the_digest_only_when_not_the_default(tmp_path):
    # the digest of a default run, as computed before the acquisition settings existed
    pinned = ALConfig(strategies=["random"], train_set="t", valid_set="v", test_sets=["v"],
                      token_list="tok", train_config="c.yaml")
    assert pinned.digest() == "254cb4ffb7a70e60"
    base = config(tmp_path).digest()
    assert config(tmp_path, acquisition="topk", acquisition_beta=3.0).digest() == base
    # running some strategies now and the others later is the same run
    assert config(tmp_path, only_strategies=["random"]).digest() == base
    soft = config(tmp_path, acquisition="softrank").digest()
    sharper = config(tmp_path, acquisition="softrank", acquisition_beta=2).digest()
    assert len({base, soft, sharper}) == 3
    assert config(tmp_path, acquisition="softrank", acquisition_beta=2.0).digest() == sharper
    # the typicality settings count only for typical acquisition, beta only for softrank
    assert config(tmp_path, typicality_knn=5, typicality_gate=0.2).digest() == base
    typical = config(tmp_path, acquisition="typical").digest()
    assert config(tmp_path, acquisition="typical", acquisition_beta=3.0).digest() == typical
    assert config(tmp_path, acquisition="typical", typicality_gate=1).digest() == \
        config(tmp_path, acquisition="typical", typicality_gate=1.0).digest() != typical
    assert len({base, soft, typical}) == 3
    for bad in ({"typicality_knn": 0}, {"typicality_gate": 0}, {"typicality_gate": True}):
        with pytest.raises(ALRunError, match="typicality_"):
            config(tmp_path, acquisition="typical", **bad).check_settings()
    with pytest.raises(ALRunError, match="acquisition must be one of"):
        config(tmp_path, acquisition="greedy").check()


@pytest.mark.parametrize("kw, match", [
    ({"strategies": ["rand"]}, "unknown strategy 'rand'"),
    ({"strategies": []}, "distinct and not empty"),
    ({"only_strategies": ["true_loss"]}, "only_strategies: 'true_loss' is not one of the run"),
    ({"only_strategies": "random"}, "only_strategies must be a list of strategy names"),
    ({"initial": {"minutes": 3}}, "initial"),
    ({"rounds": -1}, "rounds must be an integer >= 0"),
    ({"retrain": "finetune"}, "retrain must be scratch or warm_start"),
    ({"cost": "tokens"}, "cost must be one of"),
    ({"metric": "bleu"}, "metric must be one of"),
    ({"kd_weight": 0.5}, "kd_weight > 0 needs a teacher spec"),
    ({"token_list": "/no/such/tokens"}, "/no/such/tokens: not found"),
])
def test_config_errors(tmp_path, kw, match):
    cfg = config(tmp_path)
    for key, value in kw.items():
        setattr(cfg, key, value)
    with pytest.raises((ALRunError, ValueError), match=match):
        cfg.check()


def test_al_config_yaml_and_flags(tmp_path):
    from espnet_lp.bin.al_run import build_config, get_parser

    cfg_file = tmp_path / "al.yaml"
    cfg_file.write_text("strategies: [random, loss_prediction]\nrounds: 5\n"
                        "initial: {hours: 1.0}\nbudget_per_round: {hours: 0.5}\n")
    base = ["--al_dir", "x", "--train_set", "t", "--valid_set", "v", "--test_sets", "v",
            "--token_list", "k", "--train_config", "c", "--al_config", str(cfg_file)]
    cfg = build_config(get_parser().parse_args(base + ["--rounds", "2", "--budget_utts", "7",
                                                       "--kd_opts", "temperature=2.0"]))
    assert cfg.strategies == ["random", "loss_prediction"] and cfg.rounds == 2
    assert cfg.initial == {"hours": 1.0} and cfg.budget_per_round == {"utterances": 7}
    assert cfg.kd_conf == {"temperature": 2.0}
    with pytest.raises(ALRunError, match="not both"):
        build_config(get_parser().parse_args(base + ["--budget_utts", "1",
                                                     "--budget_hours", "1"]))
    cfg_file.write_text("strategies: [random]\nretrain: warm_start\n"
                        "warm_start_opts: --max_epoch 6\n")
    assert build_config(get_parser().parse_args(base)).warm_start_opts == ["--max_epoch", "6"]
    cfg = build_config(get_parser().parse_args(base + ["--warm_start_opts=--max_epoch 4"]))
    assert cfg.warm_start_opts == ["--max_epoch", "4"]
    cfg_file.write_text("strategies: [random]\nwarm_start_opts: {max_epoch: 6}\n")
    with pytest.raises(ALRunError, match="warm_start_opts must be"):
        build_config(get_parser().parse_args(base))
    cfg_file.write_text("strategy: random\n")
    with pytest.raises(ALRunError, match=r"al.yaml: unknown keys \['strategy'\]"):
        build_config(get_parser().parse_args(base))


@pytest.mark.parametrize("name", sorted(p.name for p in (
    Path(__file__).resolve().parents[2] / "conf" / "al").glob("*.yaml")))
def test_shipped_al_configs_are_valid(name):
    # Every yaml in conf/al/ (the recipes' and benchmarks' settings) builds a config whose
    # values pass the checks that need no data: a typo there would fail only hours into a run.
    from espnet_lp.bin.al_run import build_config, get_parser

    path = Path(__file__).resolve().parents[2] / "conf" / "al" / name
    base = ["--al_dir", "x", "--train_set", "t", "--valid_set", "v", "--test_sets", "v",
            "--token_list", "k", "--train_config", "c", "--al_config", str(path)]
    build_config(get_parser().parse_args(base)).check_settings()


def test_a_round_selects_with_the_configured_acquisition(tmp_path):
    # The loop's select stage hands acquisition, beta and the round to the selection.
    from espnet_lp.al.loop import ALRun
    from espnet_lp.al.score_files import write_shard
    from espnet_lp.al.selection import Budget, select
    from espnet_lp.al.state import write_ids

    ids = [f"u{i:03d}" for i in range(100)]
    scores = {u: float(i) for i, u in enumerate(ids)}
    rdir = tmp_path / "loss_prediction" / "round2"
    write_ids(rdir / "pool", ids)
    write_shard(rdir / "scores", 1, ids, [scores[u] for u in ids])
    picked = {}
    for acquisition in ("topk", "softrank"):
        run = ALRun.__new__(ALRun)  # the select stage needs only the config and durations
        run.cfg = config(tmp_path, acquisition=acquisition,
                         budget_per_round={"utterances": 10})
        run.durations = {u: 1.0 for u in ids}
        run._select(rdir, "loss_prediction", 2)
        picked[acquisition] = [line.split()[0] for line in
                               (rdir / "selected").read_text().splitlines()]
    assert picked["topk"] == ids[:-11:-1]
    assert picked["softrank"] == select(scores, run.durations, Budget(utterances=10),
                                        acquisition="softrank", round_index=2)
    assert picked["softrank"] != picked["topk"]
