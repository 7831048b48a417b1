"""espnet-lp: loss-prediction active learning and knowledge distillation for ESPnet2 ASR.

Importing the package is cheap (it does not import ESPnet). It arranges that, in this process,
importing ESPnet's ASR task registers espnet-lp's components, and that two noisy imports of
ESPnet's stack stay quiet.
"""

from espnet_lp.utils import import_hooks as _hooks

__version__ = "0.1.0"


def _register() -> None:
    from espnet_lp.registry import register

    register()


_hooks.quiet_import("espnet.nets.pytorch_backend.transformer.attention")
_hooks.quiet_import("g2p_en.g2p")
_hooks.when_imported("espnet2.tasks.asr", _register)
