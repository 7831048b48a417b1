"""Package-level behaviour: quiet import, console scripts, CI calls the README's command."""

import configparser
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_prints_nothing():
    out = subprocess.run([sys.executable, "-c", "import espnet_lp"], capture_output=True,
                         cwd=ROOT, check=True)
    assert out.stdout == b"" and out.stderr == b""


@pytest.mark.slow
def test_espnet_import_noise_is_silenced():
    """The CLIs swallow ESPnet's flash-attention line and g2p_en's NLTK download errors."""
    code = "import espnet_lp.bin, espnet2.tasks.asr, g2p_en"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, check=True)
    assert b"Flash Attention" not in out.stdout + out.stderr
    assert b"nltk_data" not in out.stdout + out.stderr


def test_console_scripts_resolve():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines():
        name, target = (x.strip() for x in line.split("="))
        module, func = target.split(":")
        mod = importlib.import_module(module)
        assert callable(getattr(mod, func)), name
        assert callable(getattr(mod, "get_parser")), name


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash tools/run_tests.sh" in readme
    assert "bash tools/run_tests.sh" in ci
