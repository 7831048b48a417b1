"""espnet-lp: loss-prediction active learning and knowledge distillation for ESPnet2 ASR."""

from espnet_lp.utils import quiet as _quiet

_quiet.install()

__version__ = "0.1.0"
