"""Shared bits of the command-line entry points."""

import argparse
import logging
import sys
from typing import Callable, List, Optional, Sequence

from espnet_lp.errors import EspnetLPError

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def new_parser(doc: Optional[str]) -> "argparse.ArgumentParser":
    """The parser every CLI starts from: the module docstring (with its ``Usage:``) as the
    description, kept as written, and ESPnet's ``--log_level``."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log_level", default="INFO",
                        choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    return parser


def setup_logging(level: str = "INFO") -> None:
    """ESPnet's log line format on stderr (keeps handlers a caller installed, e.g. pytest)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger().setLevel(level)


def run_cli(body: Callable[[], None]) -> None:
    """Run a CLI body; an :class:`EspnetLPError` becomes one clear line and exit status 1.

    Users get the message that names the bad file/line/utterance rather than a traceback.
    """
    try:
        body()
    except EspnetLPError as e:
        logging.getLogger("espnet_lp").error("%s", e)
        sys.exit(1)


def check_model_files(asr_train_config: Optional[str], asr_model_file: Optional[str]) -> dict:
    """Check an ESPnet model's ``config.yaml`` and checkpoint before anything is built or
    written, so that a wrong path or a cut-off download is one clear line.

    Also checks the files the config names (token list, BPE model, feature statistics), as
    ESPnet resolves them (from the working directory).

    Returns:
        The config (a mapping).

    Raises:
        InputError: Naming the bad file and what is wrong with it.
    """
    import zipfile

    from espnet_lp.errors import InputError
    from espnet_lp.utils.fileio import path_problem, read_yaml

    if asr_train_config is None or asr_model_file is None:
        raise InputError("give both --asr_train_config and --asr_model_file")
    config = read_yaml(asr_train_config, InputError, "model config")
    if not isinstance(config, dict) or "model" not in config:
        raise InputError(f"{asr_train_config}: not an ESPnet training config (no 'model' key)")
    problem = path_problem(asr_model_file)
    if problem is not None:
        raise InputError(f"{asr_model_file}: model file {problem}")
    try:
        with zipfile.ZipFile(asr_model_file) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError(f"{asr_model_file}: not a PyTorch checkpoint, or truncated "
                         f"({e})") from None
    if bad is not None:
        raise InputError(f"{asr_model_file}: corrupt checkpoint (member {bad})")
    named = [("token_list", config.get("token_list")), ("bpemodel", config.get("bpemodel")),
             ("normalize_conf.stats_file", (config.get("normalize_conf") or {}).get("stats_file")
              if isinstance(config.get("normalize_conf"), dict) else None)]
    for key, value in named:
        if isinstance(value, str) and path_problem(value) is not None:
            raise InputError(f"{asr_train_config}: {key} {value}: {path_problem(value)} "
                             "(paths in config.yaml are relative to where training ran)")
    return config


def check_data_args(triples: Sequence, key_file: Optional[str] = None) -> List[str]:
    """Check ESPnet's ``--data_path_and_name_and_type`` values (``path,name,type``) and an
    optional ``--key_file`` before a model is loaded: files present and readable, every plain
    audio path of a ``sound`` list present, every key of the key file in the data.

    Returns:
        The utterance ids to process (the key file's, or the first list's).

    Raises:
        InputError: Naming the file, line and utterance.
    """
    from espnet_lp.data.errors import DataPrepError
    from espnet_lp.data.kaldi_io import read_id_list, read_kaldi_map
    from espnet_lp.errors import InputError
    from espnet_lp.utils.fileio import path_problem

    ids: Optional[List[str]] = None
    paths = []
    for triple in triples:
        parts = triple.split(",") if isinstance(triple, str) else [str(p) for p in triple]
        if len(parts) != 3 or not all(parts):
            raise InputError(f"--data_path_and_name_and_type {triple!r}: expected "
                             "path,name,type (e.g. data/test/wav.scp,speech,sound)")
        path, _, kind = parts
        paths.append(path)
        try:
            table = read_kaldi_map(path)
        except DataPrepError as e:
            raise InputError(str(e)) from None
        if not table:
            raise InputError(f"{path}: empty")
        if kind == "sound":
            for lineno, (utt, value) in enumerate(table.items(), 1):
                if not value.endswith("|") and path_problem(value) is not None:
                    raise InputError(f"{path}:{lineno}: utterance {utt}: audio file "
                                     f"{path_problem(value)}: {value}")
        if ids is None:
            ids = list(table)
    if key_file is not None:
        try:
            keys = read_id_list(key_file)
        except DataPrepError as e:
            raise InputError(str(e)) from None
        unknown = sorted(set(keys) - set(ids or []))
        if unknown:
            raise InputError(f"{key_file}: {len(unknown)} ids not in {paths[0]}, e.g. "
                             f"{unknown[0]}")
        ids = keys
    return ids or []


def str_or_none(value: Optional[str]) -> Optional[str]:
    """argparse type: ``none``/``None``/empty -> None."""
    return None if value in (None, "", "none", "None") else value


def parse(parser, cmd: Optional[Sequence[str]]):
    """Parse ``cmd`` (``None``: ``sys.argv``) and set up logging from ``--log_level``."""
    args = parser.parse_args(cmd)
    setup_logging(getattr(args, "log_level", "INFO"))
    return args


def str2bool(value: str) -> bool:
    """argparse type accepting true/false (ESPnet's convention for boolean options)."""
    v = value.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")
