"""Export an espnet-lp model as ``espnet_model_zoo`` zips: the full model and a stock copy.

- Full (``<name>_lp.zip``): ``model: lp_espnet`` with its LP heads; loads wherever espnet-lp is
  installed. Distillation settings are dropped (``kd: null``): the teacher is a training-time
  input whose paths mean nothing on another machine, and decoding or scoring never needs it.
- Stock (``<name>_stock.zip``): ``model: espnet``, ``model_conf`` reduced to
  ``ESPnetASRModel``'s own keys, no LP tensors; loads on a machine without espnet-lp.

Both are packed with ESPnet's packer (``espnet2.bin.pack asr``) from a staging directory that
holds the config, the checkpoint and every file the config refers to (BPE model, feature
statistics, token list file), so the zips are self-contained wherever the exp dir was.
"""

import inspect
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import torch
import yaml

from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.fileio import (
    Pathlike,
    atomic_file,
    read_yaml,
    remove_path,
    remove_stale,
    temp_sibling,
)
from espnet_lp.utils.workers import child_dies_with_parent

logger = logging.getLogger(__name__)

#: Checkpoints tried, in order, when none is named (what ESPnet's asr.sh decodes with).
CHECKPOINTS = ("valid.acc.ave.pth", "valid.acc.best.pth", "valid.loss.best.pth",
               "latest.pth")
#: Config keys whose values are data of a training run, never packed.
RUN_KEYS = {"train_data_path_and_name_and_type", "valid_data_path_and_name_and_type",
            "train_shape_file", "valid_shape_file", "output_dir", "init_param",
            "allow_variable_data_keys", "config"}
#: Keys ESPnet's trainer writes into config.yaml that are no options (its ``--config``
#: rejects them); exports drop them so a zip's config is a valid ``--config`` as it is.
ESPNET_BOOKKEEPING = ("required", "distributed", "version")
LP_ONLY_MODEL_CONF = ("lp_decoder", "lp_decoder_conf", "lp_weight", "lp_target_norm", "kd",
                      "kd_conf", "kd_weight")


class ExportError(EspnetLPError):
    """An exp dir or checkpoint that cannot be exported as asked."""


def find_checkpoint(exp_dir: Path, name: str = "") -> Path:
    """The checkpoint to use: ``name`` in ``exp_dir``; else the average or best of the first
    ``best_model_criterion`` of the run's ``config.yaml`` (a config that selects by
    ``[valid, cer_ctc, min]`` is decoded with ``valid.cer_ctc.*``), then the first of
    :data:`CHECKPOINTS`."""
    configured = [] if name else configured_checkpoints(exp_dir)
    candidates = [name] if name else configured + [c for c in CHECKPOINTS
                                                   if c not in configured]
    for candidate in candidates:
        path = exp_dir / candidate
        if path.is_file():
            return path
    raise ExportError(f"{exp_dir}: no checkpoint {' or '.join(candidates)} (name one with "
                      "--asr_model_file)")


def configured_checkpoints(exp_dir: Path) -> List[str]:
    """``<phase>.<key>.ave.pth`` and ``.best.pth`` of the first ``best_model_criterion`` in
    ``exp_dir/config.yaml`` (none when it names none or cannot be read: the defaults)."""
    try:
        config = yaml.safe_load((exp_dir / "config.yaml").read_text(encoding="utf-8"))
        phase, key = config["best_model_criterion"][0][:2]
    except (OSError, ValueError, yaml.YAMLError, TypeError, KeyError, IndexError):
        return []
    if not (isinstance(phase, str) and isinstance(key, str)):
        return []
    return [f"{phase}.{key}.ave.pth", f"{phase}.{key}.best.pth"]


def read_config(exp_dir: Path) -> Dict:
    """The ``config.yaml`` of an ESPnet ASR exp dir."""
    path = exp_dir / "config.yaml"
    config = read_yaml(path, ExportError, "config.yaml (not an ESPnet exp dir?)")
    if not isinstance(config, dict) or "model" not in config:
        raise ExportError(f"{path}: not an ESPnet training config (no 'model')")
    return config


def has_lp_decoder(config: Dict) -> bool:
    """Whether a training config builds loss-prediction heads (``model: lp_espnet`` with an
    ``lp_decoder``, which defaults to ``lp_mlp``)."""
    if config.get("model") != "lp_espnet":
        return False
    name = (config.get("model_conf") or {}).get("lp_decoder", "lp_mlp")
    return name is not None and str(name).lower() not in ("none", "null", "nil")


def full_config(config: Dict) -> Dict:
    """The exported LP model's config: the trained one without its distillation settings.

    ESPnet's bookkeeping keys are dropped too (:data:`ESPNET_BOOKKEEPING`), so that stock
    ``asr_train --config`` accepts the exported config (for fine-tuning) as it is.
    """
    out = {k: v for k, v in config.items() if k not in ESPNET_BOOKKEEPING}
    conf = dict(out.get("model_conf") or {})
    for key in ("kd", "kd_conf"):
        conf.pop(key, None)
    conf["kd_weight"] = 0.0
    out["model_conf"] = conf
    return out


def stock_config(config: Dict) -> Dict:
    """``model: espnet`` and the ``model_conf`` keys ``ESPnetASRModel`` takes."""
    from espnet2.asr.espnet_model import ESPnetASRModel

    accepted = set(inspect.signature(ESPnetASRModel.__init__).parameters)
    conf = config.get("model_conf") or {}
    unknown = sorted(k for k in conf if k not in accepted and k not in LP_ONLY_MODEL_CONF)
    if unknown:
        raise ExportError(f"model_conf keys {unknown} are neither ESPnetASRModel's nor "
                          "espnet-lp's; cannot make a stock config")
    out = {k: v for k, v in config.items() if k not in ESPNET_BOOKKEEPING}
    out["model"] = "espnet"
    out["model_conf"] = {k: v for k, v in conf.items() if k in accepted}
    return out


def stock_state_dict(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The checkpoint without espnet-lp's tensors."""
    from espnet_lp.asr.espnet_model import is_plugin_key

    return {k: v for k, v in state.items() if not is_plugin_key(k)}


def _referenced_files(config: Dict) -> List[Tuple[Tuple, Path]]:
    """(key path, file) for every existing file a model config refers to."""
    found = []

    def walk(value, keys):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, keys + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, keys + (i,))
        elif isinstance(value, str) and len(value) < 4096 and Path(value).is_file():
            found.append((keys, Path(value)))

    for key, value in config.items():
        if key in RUN_KEYS or key == "model_conf" or (key == "token_list"
                                                      and isinstance(value, list)):
            continue
        walk(value, (key,))
    return found


def _set(config: Dict, keys: Tuple, value) -> None:
    node = config
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value


def stage(config: Dict, state: Dict[str, torch.Tensor], staging: Path) -> List[str]:
    """Write config, checkpoint and referenced files under ``staging/exp`` (paths relative to
    ``staging``, as the packer wants them); return the extra files to pack."""
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "exp" / "files").mkdir(parents=True)
    config = yaml.safe_load(yaml.safe_dump(config))  # deep copy
    extra, names = [], set()
    for keys, path in _referenced_files(config):
        name = path.name
        while name in names:
            name = f"_{name}"
        names.add(name)
        shutil.copyfile(path, staging / "exp" / "files" / name)
        _set(config, keys, f"exp/files/{name}")
        extra.append(f"exp/files/{name}")
    (staging / "exp" / "config.yaml").write_text(
        yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    torch.save(state, staging / "exp" / "model.pth")
    return extra


def pack_zip(staging: Path, extra: List[str], outpath: Path) -> None:
    """Pack ``staging`` with ``python -m espnet2.bin.pack asr`` (ESPnet's packer) into
    ``outpath`` (atomically). The packer dies with this process."""
    zipped = staging / "packed.zip"  # in the staging dir: goes with it, even after a kill
    cmd = [sys.executable, "-m", "espnet2.bin.pack", "asr",
           "--asr_train_config", "exp/config.yaml", "--asr_model_file", "exp/model.pth",
           "--outpath", str(zipped.resolve())]
    for f in extra:
        cmd += ["--option", f]
    with atomic_file(outpath) as tmp:
        proc = subprocess.run(cmd, cwd=staging, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, preexec_fn=child_dies_with_parent)
        if proc.returncode != 0:
            raise ExportError(f"espnet2.bin.pack failed for {outpath}:\n{proc.stderr[-2000:]}")
        os.replace(zipped, tmp)


def export_zips(exp_dir: Pathlike, output_dir: Pathlike, name: str = "model",
                checkpoint: str = "") -> Dict[str, Path]:
    """Write ``<name>_lp.zip`` and ``<name>_stock.zip`` from an exp dir.

    The stock copy is checked here already: a stock ``ESPnetASRModel`` built from its config
    takes its state dict with ``strict=True``.

    Returns:
        ``{"full": path, "stock": path, "checkpoint": path}``.
    """
    exp_dir, output_dir = Path(exp_dir), Path(output_dir)
    config = read_config(exp_dir)
    ckpt = find_checkpoint(exp_dir, checkpoint)
    state = torch.load(ckpt, map_location="cpu")
    if config["model"] not in ("lp_espnet", "espnet"):
        raise ExportError(f"{exp_dir}/config.yaml: model {config['model']!r}; export takes "
                          "lp_espnet or espnet models")
    full, stock = full_config(config), stock_config(config)
    stock_state = stock_state_dict(state)
    _check_stock_loads(stock, stock_state, exp_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    out = {"checkpoint": ckpt}
    for kind, conf, weights in (("full", full, state), ("stock", stock, stock_state)):
        out[kind] = output_dir / f"{name}_{'lp' if kind == 'full' else 'stock'}.zip"
        # a staging dir of this process only: concurrent exports into one directory do not
        # meet, and one a killed export left is removed by the next (remove_stale)
        remove_stale(out[kind])
        staging = temp_sibling(out[kind])
        try:
            extra = stage(conf, weights, staging)
            pack_zip(staging, extra, out[kind])
        finally:
            remove_path(staging)
        logger.info("Wrote %s", out[kind])
    return out


def _check_stock_loads(config: Dict, state: Dict[str, torch.Tensor], exp_dir: Path) -> None:
    import argparse

    from espnet2.tasks.asr import ASRTask

    model = ASRTask.build_model(argparse.Namespace(**yaml.safe_load(yaml.safe_dump(config))))
    if type(model).__name__ != "ESPnetASRModel":
        raise ExportError(f"stock config of {exp_dir} builds {type(model).__name__}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ExportError(f"{exp_dir}: the stock model does not take the checkpoint's "
                          f"weights: {e}") from None
