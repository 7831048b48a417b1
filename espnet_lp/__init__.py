"""espnet-lp: loss-prediction active learning and knowledge distillation for ESPnet2 ASR.

Importing the package is cheap (it does not import ESPnet): it arranges that, in this process,
importing ESPnet's ASR task registers ``model: lp_espnet`` (:mod:`espnet_lp.registry`).
Installed, the package does this in every interpreter of its environment: the
``espnet_lp.pth`` file that ``pip install`` puts into site-packages imports it at start-up,
so stock ESPnet entry points need no ``import espnet_lp``.
"""

from espnet_lp.utils import import_hooks as _hooks

__version__ = "0.1.0"


def _register() -> None:
    from espnet_lp.registry import register

    register()


_hooks.when_imported("espnet2.tasks.asr", _register)
