"""Checks of model options before anything is built: a typo or a wrong value in ``model_conf``
(or in a component's ``*_conf``) becomes one message naming the key and the valid ones,
instead of a ``TypeError`` deep in a constructor."""

import difflib
import inspect
from typing import Dict, List, Mapping, Optional, Sequence

from typeguard import TypeCheckError

from espnet_lp.errors import ModelConfigError


def keyword_names(cls: type) -> List[str]:
    """The keyword arguments a class's constructor takes, following ``**kwargs`` that are
    passed on to the base class (as :class:`ESPnetLPASRModel` does)."""
    names: List[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names += [p.name for p in params if p.name != "self"
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return sorted(set(names))


def check_keys(conf: Mapping, valid: Sequence[str], where: str, hint: str = "") -> None:
    """Raise :class:`ModelConfigError` naming the first key of ``conf`` not in ``valid``."""
    unknown = [k for k in conf if k not in valid]
    if unknown:
        close = [] if hint else difflib.get_close_matches(str(unknown[0]), valid, n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelConfigError(f"{where}: unknown key {unknown[0]!r}{guess}{hint}; valid: "
                               f"{', '.join(valid)}")


#: What ESPnet's ``ASRTask.build_model`` passes itself (not ``model_conf`` keys).
BUILT_BY_ESPNET = ("vocab_size", "frontend", "specaug", "normalize", "preencoder", "encoder",
                   "postencoder", "decoder", "ctc", "joint_network", "token_list")
#: ``model_conf`` keys that only ``model: lp_espnet`` takes.
LP_MODEL_CONF = ("lp_decoder", "lp_decoder_conf", "lp_weight", "lp_target_norm", "kd",
                 "kd_conf", "kd_weight", "mask_padding")


def check_model_conf(model: str, model_class: type, model_conf: Mapping) -> None:
    """Check ``model_conf`` keys against the model class before ESPnet builds it (stock ESPnet
    fails deep in the constructor with a bare ``TypeError``).

    Raises:
        ModelConfigError: Naming the unknown key, a close valid one, and all valid ones.
    """
    valid = [k for k in keyword_names(model_class) if k not in BUILT_BY_ESPNET]
    lp_keys = [k for k in model_conf if k in LP_MODEL_CONF and k not in valid]
    hint = (f" ({lp_keys[0]} is an espnet-lp option: it needs model: lp_espnet, not "
            f"{model})") if lp_keys else ""
    check_keys({k: None for k in (lp_keys or list(model_conf))}, valid,
               f"model_conf (model: {model})", hint)


def build_checked(cls: type, where: str, conf: Mapping, **given):
    """``cls(**given, **conf)``, a wrong key or value in ``conf`` raised as one clear
    :class:`ModelConfigError` naming ``where``."""
    if not isinstance(conf, Mapping):
        raise ModelConfigError(f"{where}: expected a mapping, got {conf!r}")
    check_keys(conf, [k for k in keyword_names(cls) if k not in given], where)
    try:
        return cls(**given, **conf)
    except ModelConfigError:
        raise
    except (ValueError, TypeError, TypeCheckError) as e:
        raise ModelConfigError(f"{where}: {' '.join(str(e).split())}") from None


def choose_class(choices: Dict[str, type], name: Optional[str], option: str) -> Optional[type]:
    """The class ``model_conf.<option>`` names, or None for ``none``/``null``."""
    if name is None or name.lower() in ("none", "null", "nil"):
        return None
    if name not in choices:
        raise ModelConfigError(f"model_conf.{option} must be one of {sorted(choices)} or none: "
                               f"{name!r}")
    return choices[name]
