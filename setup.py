"""Build hooks: install ``espnet_lp.pth`` beside the package (metadata is in setup.cfg).

The .pth file makes every interpreter of the environment import ``espnet_lp`` at start-up,
which only installs an import hook (no ESPnet import): when ``espnet2.tasks.asr`` is imported,
``model: lp_espnet`` is registered, so stock ``espnet2.bin.asr_train``, ``asr_inference``,
``pack``, ``Speech2Text`` and ``espnet_model_zoo`` work with espnet-lp models.

It goes into the wheel's root for ``pip install .`` and into the editable wheel for
``pip install -e .`` (setuptools >= 64 builds that from the ``install`` command's
``install_lib``; site-packages processes ``__editable__*.pth`` before ``espnet_lp.pth``).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "espnet_lp.pth"
# One line, run by site.py: never fails an interpreter start; a broken install says so once.
# One line, run by site.py (once per site-packages path: a venv's lib64 -> lib symlink makes
# it twice, hence the guard). Never fails an interpreter start; a broken install says so once.
PTH_LINE = (
    "import sys; exec(\"if not getattr(sys, '_espnet_lp_pth', False):\\n"
    " sys._espnet_lp_pth = True\\n"
    " try:\\n  import espnet_lp\\n except Exception as e:\\n"
    "  sys.stderr.write('espnet_lp.pth: espnet-lp is not registered into ESPnet (%s: %s)\\\\n'"
    " % (type(e).__name__, e))\")\n"
)


class BuildPyWithPth(build_py):
    """build_py that also writes ``espnet_lp.pth`` at the root of what gets installed."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            root = self.get_finalized_command("install").install_lib  # the editable wheel
        else:
            root = self.build_lib
        Path(root).mkdir(parents=True, exist_ok=True)
        (Path(root) / PTH_NAME).write_text(PTH_LINE)

    def get_outputs(self, *args, **kwargs):
        outputs = list(super().get_outputs(*args, **kwargs))
        if not getattr(self, "editable_mode", False):
            outputs.append(str(Path(self.build_lib, PTH_NAME)))
        return outputs


setup(cmdclass={"build_py": BuildPyWithPth})
