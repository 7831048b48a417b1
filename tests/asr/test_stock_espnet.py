"""Stock ESPnet is the client: its entry points, in fresh interpreters that never import
espnet_lp themselves (registration comes from the installed espnet_lp.pth)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch
import yaml

from tests.asr.conftest import ROOT, train_cmd

LP_KD_YAML = ROOT / "conf" / "tuning" / "train_lp_kd_tiny.yaml"


def run_python(args, cwd, **kw):
    """A fresh interpreter (not this test process), like a user's shell."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, **kw)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def stock_python(code: str, cwd):
    """Python without espnet-lp: no .pth processing (-S), espnet_lp imports refused."""
    import site

    return run_python(["-S", "-c", _HIDE + f"sys.path.extend({site.getsitepackages()!r})\n"
                       + code], cwd)


_HIDE = """import importlib.abc, sys
class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] == 'espnet_lp':
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, _Hide())
"""


@pytest.fixture(scope="session")
def stock_lp_kd_run(en_inputs, trained, tmp_path_factory):
    """The README's LP+KD yaml, trained by stock ``python -m espnet2.bin.asr_train``."""
    out = tmp_path_factory.mktemp("stock") / "lp_kd"
    teacher = {"asr_train_config": str(trained / "config.yaml"),
               "asr_model_file": str(trained / "2epoch.pth")}
    cmd = train_cmd(en_inputs, out, "--max_epoch", "1", "--batch_size", "8",
                    "--model_conf", f"kd_conf.teacher={json.dumps(teacher)}")
    cmd[cmd.index("--config") + 1] = str(LP_KD_YAML)
    proc = run_python(["-m", "espnet2.bin.asr_train", *cmd], cwd=out.parent)
    (out / "train.log").write_text(proc.stderr)
    return out


@pytest.mark.slow
def test_stock_asr_train_runs_lp_and_kd(stock_lp_kd_run):
    log = (stock_lp_kd_run / "train.log").read_text()
    assert "loss_lp=" in log and "loss_kd=" in log and "spearman_lp_ctc=" in log
    config = yaml.safe_load((stock_lp_kd_run / "config.yaml").read_text())
    assert config["model"] == "lp_espnet"
    assert config["model_conf"]["kd"] == "ctc_kl"
    assert not {"lp_decoder", "lp_decoder_conf", "kd", "kd_conf"} & set(config)


@pytest.mark.slow
def test_stock_inference_pack_and_zoo_keep_lp_weights(stock_lp_kd_run, en_inputs, tmp_path):
    exp = stock_lp_kd_run
    keys = tmp_path / "keys"
    keys.write_text("".join((en_inputs / "data/dev_clean/wav.scp").read_text()
                            .splitlines(keepends=True)[:2]))
    run_python(["-m", "espnet2.bin.asr_inference", "--asr_train_config", str(exp / "config.yaml"),
                "--asr_model_file", str(exp / "1epoch.pth"), "--output_dir", str(tmp_path / "dec"),
                "--data_path_and_name_and_type", f"{en_inputs}/data/dev_clean/wav.scp,speech,sound",
                "--key_file", str(keys), "--ngpu", "0", "--beam_size", "1", "--ctc_weight", "1.0"],
               cwd=tmp_path)
    assert len((tmp_path / "dec/1best_recog/text").read_text().splitlines()) == 2
    run_python(["-m", "espnet2.bin.pack", "asr", "--asr_train_config", str(exp / "config.yaml"),
                "--asr_model_file", str(exp / "1epoch.pth"), "--outpath",
                str(tmp_path / "model.zip")], cwd=tmp_path)
    code = f"""
import torch
from espnet_model_zoo.downloader import ModelDownloader
from espnet2.bin.asr_inference import Speech2Text
zoo = ModelDownloader({str(tmp_path / 'zoo')!r})
files = zoo.download_and_unpack({str(tmp_path / 'model.zip')!r})
model = Speech2Text(**files, device="cpu").asr_model
torch.save({{k: v for k, v in model.state_dict().items() if k.startswith("lp_decoder.")}},
           {str(tmp_path / 'loaded.pth')!r})
"""
    proc = run_python(["-c", code], cwd=tmp_path)
    assert "dropped" not in proc.stderr
    loaded = torch.load(tmp_path / "loaded.pth")
    saved = {k: v for k, v in torch.load(exp / "1epoch.pth").items()
             if k.startswith("lp_decoder.")}
    assert saved and set(loaded) == set(saved)
    for k in saved:
        torch.testing.assert_close(loaded[k], saved[k], rtol=0, atol=0)


@pytest.mark.slow
def test_print_config_shows_lp_and_kd_defaults(tmp_path):
    proc = run_python(["-m", "espnet2.bin.asr_train", "--print_config", "--model", "lp_espnet"],
                      cwd=tmp_path)
    conf = yaml.safe_load(proc.stdout)["model_conf"]
    assert conf["lp_decoder"] == "lp_mlp" and conf["lp_decoder_conf"]["hidden"] == 128
    assert conf["kd"] is None and conf["kd_conf"]["frame_select"] == "all"
    assert conf["ctc_weight"] == 0.5  # ESPnetASRModel's own options are all there


@pytest.mark.slow
def test_export_round_trip(trained, en_inputs, tmp_path):
    from espnet_lp.bin.export_model import main as export_main

    export_main(["--exp_dir", str(trained), "--asr_model_file", "2epoch.pth",
                 "--output_dir", str(tmp_path / "export"), "--verify_num", "2",
                 "--verify_wav_scp", str(en_inputs / "data/dev_clean/wav.scp")])
    report = json.loads((tmp_path / "export/export.json").read_text())
    assert report["verified"]["utterances"] == 2 and report["verified"]["lp_tensors"] > 0
    assert Path(report["stock_zip"]).is_file() and Path(report["full_zip"]).is_file()


@pytest.mark.slow
def test_every_written_config_loads_in_stock_espnet(stock_lp_kd_run, trained, tmp_path):
    """Configs the project writes: students (LP, LP+KD), the conf/ files, both exports.
    LP configs are parsed by stock asr_train and built in a fresh registered interpreter;
    the stock export's config also where espnet-lp cannot be imported."""
    from espnet_lp.asr.export import ESPNET_BOOKKEEPING, export_zips

    zips = export_zips(trained, tmp_path / "export", checkpoint="2epoch.pth")
    for kind in ("full", "stock"):
        run_python(["-c", f"import zipfile; zipfile.ZipFile({str(zips[kind])!r})"
                    f".extractall({str(tmp_path / kind)!r})"], cwd=tmp_path)
    conf_files = sorted((ROOT / "conf").rglob("train_*.yaml"))
    stock_conf = [c for c in conf_files if yaml.safe_load(c.read_text())["model"] == "espnet"]
    lp_configs = [trained / "config.yaml", stock_lp_kd_run / "config.yaml",
                  tmp_path / "full/exp/config.yaml", *(set(conf_files) - set(stock_conf))]
    stock_configs = [tmp_path / "stock/exp/config.yaml", *stock_conf]
    assert stock_conf and len(lp_configs) >= 6
    token_list = trained / "token_list.txt"
    token_list.write_text("\n".join(yaml.safe_load((trained / "config.yaml").read_text())
                                    ["token_list"]) + "\n")
    stats = tmp_path / "feats_stats.npz"  # what collect_stats writes, for global_mvn configs
    numpy.savez(stats, count=numpy.array(10), sum=numpy.zeros(80), sum_square=numpy.ones(80) * 10)
    check = """
import yaml
from espnet2.tasks.asr import ASRTask
for config in {configs!r}:
    # ESPnet writes three keys of its own that are no options (required, distributed,
    # version) into every config.yaml, and its --config rejects them for stock models too:
    # drop them, as a user re-using a config.yaml does (exports have none).
    d = yaml.safe_load(open(config))
    for key in ESPNET_BOOKKEEPING:
        d.pop(key, None)
    yaml.safe_dump(d, open("c.yaml", "w"))
    extra = []
    if d.get("normalize") == "global_mvn" and "stats_file" not in d.get("normalize_conf", {{}}):
        extra = ["--normalize_conf", "stats_file=" + {stats!r}]  # as asr.sh passes it
    args = ASRTask.get_parser().parse_args(["--config", "c.yaml", "--output_dir", "x",
                                            "--token_list", {token_list!r}, *extra])
    model = ASRTask.build_model(args)
    print(config, type(model).__name__)
"""
    for configs, python in ((lp_configs, run_python), (stock_configs, None)):
        code = f"ESPNET_BOOKKEEPING = {ESPNET_BOOKKEEPING!r}\n" + check.format(
            configs=[str(c) for c in configs], token_list=str(token_list), stats=str(stats))
        if python is None:
            out = stock_python(code, tmp_path).stdout
            assert out.count("ESPnetASRModel") == len(configs), out
        else:
            out = python(["-c", code], cwd=tmp_path).stdout
            assert out.count("ESPnetLPASRModel") == len(lp_configs), out
    stock = yaml.safe_load((tmp_path / "stock/exp/config.yaml").read_text())
    assert stock["model"] == "espnet" and not set(ESPNET_BOOKKEEPING) & set(stock)
    assert not any(k.startswith(("lp_", "kd")) for k in stock["model_conf"])
    full = yaml.safe_load((tmp_path / "full/exp/config.yaml").read_text())
    assert full["model_conf"]["kd_weight"] == 0.0 and "kd_conf" not in full["model_conf"]
