"""Registration in every interpreter: the installed espnet_lp.pth, cheap, idempotent, safe."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python(code: str, cwd, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, env=env)


def test_fresh_interpreter_gets_lp_espnet_without_importing_espnet_lp(tmp_path):
    code = ("import sys; assert 'espnet2' not in sys.modules\n"
            "import espnet2.tasks.asr as t\n"
            "print(t.model_choices.classes['lp_espnet'].__name__)")
    out = python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "ESPnetLPASRModel"  # ESPnet prints before it


def test_start_up_imports_no_espnet_and_registration_is_idempotent(tmp_path):
    code = ("import sys; assert not [m for m in sys.modules if m.startswith(('espnet2', "
            "'torch'))]\nimport espnet_lp, importlib; importlib.reload(espnet_lp)\n"
            "from espnet_lp.registry import register; register(); register()\n"
            "import espnet2.tasks.asr as t; register()\n"
            "print(list(t.model_choices.classes).count('lp_espnet'))")
    out = python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "1"


def test_broken_install_prints_one_line_and_python_carries_on(tmp_path):
    broken = tmp_path / "shadow" / "espnet_lp"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise RuntimeError('half-removed install')\n")
    env = {"PYTHONPATH": str(broken.parent), "PATH": "/usr/bin:/bin"}
    out = python("print('alive')", tmp_path, env=env)
    assert out.returncode == 0 and out.stdout == "alive\n"
    assert out.stderr.splitlines() == [
        "espnet_lp.pth: espnet-lp is not registered into ESPnet "
        "(RuntimeError: half-removed install)"]


def _build(hook: str, tmp_path) -> zipfile.ZipFile:
    """Run a PEP 517/660 build hook on a copy of the source (builds write into the tree)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "espnet_lp", src / "espnet_lp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = (f"import setuptools.build_meta as b; print(b.{hook}({str(tmp_path)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=src)
    assert out.returncode == 0, out.stderr[-3000:]
    return zipfile.ZipFile(tmp_path / out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("hook", ["build_wheel", "build_editable"])
def test_wheels_install_the_pth_file(hook, tmp_path):
    """``pip install .`` (wheel) and ``pip install -e .`` (editable wheel) both carry it."""
    with _build(hook, tmp_path) as wheel:
        names = wheel.namelist()
        assert "espnet_lp.pth" in names
        line = wheel.read("espnet_lp.pth").decode()
    assert line.startswith("import sys;") and line.count("\n") == 1
    if hook == "build_editable":  # site.py runs .pth files in name order: the finder first
        finder = [n for n in names if n.startswith("__editable__") and n.endswith(".pth")]
        assert finder and sorted(finder + ["espnet_lp.pth"])[-1] == "espnet_lp.pth"
