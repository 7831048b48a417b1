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


def test_cli_help_keeps_the_line_continuations_of_its_usage_examples():
    """A backslash at a line end in a plain docstring joins the lines: ``--help`` would
    show one mangled command. CLI docstrings with continuations must be raw strings."""
    import ast

    for path in sorted((ROOT / "espnet_lp" / "bin").glob("*.py")) + sorted(
            (ROOT / "tools" / "bench").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        if not tree.body or not isinstance(getattr(tree.body[0], "value", None), ast.Constant):
            continue
        segment = ast.get_source_segment(source, tree.body[0])
        assert not ("\\\n" in segment and not segment.startswith("r")), \
            f"{path.relative_to(ROOT)}: make the module docstring a raw string (r\"\"\")"
