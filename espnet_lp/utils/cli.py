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


def check_data_args(triples: Sequence, key_file: Optional[str] = None,
                    sample_rate: Optional[int] = None) -> List[str]:
    """Check ESPnet's ``--data_path_and_name_and_type`` values (``path,name,type``) and an
    optional ``--key_file`` before a model is loaded: files present and readable; every
    audio file of a ``sound`` list that will be read present, readable, mono and non-empty
    (its header and last frame; at ``sample_rate`` when given), and no command (Kaldi pipe),
    which ESPnet's ``sound`` reader cannot run; every key of the key file in the data, once,
    in the order of the first list, and every other list holding the first list's ids in its
    order (ESPnet reads the lists line by line in step with the key file).

    Returns:
        The utterance ids to process (the key file's, or the first list's).

    Raises:
        InputError: Naming the file, line and utterance.
    """
    from espnet_lp.data.errors import DataPrepError
    from espnet_lp.data.kaldi_io import read_id_list, read_kaldi_map
    from espnet_lp.errors import InputError

    ids: Optional[List[str]] = None
    paths, sounds, tables = [], [], []
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
            sounds.append((path, table))
        tables.append((path, list(table)))
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
        position = {u: i for i, u in enumerate(ids or [])}
        seen: dict = {}
        previous = None
        for lineno, key in enumerate(keys, 1):
            if key in seen:
                raise InputError(f"{key_file}:{lineno}: {key} also on line {seen[key]}")
            if previous is not None and position[key] < position[previous]:
                raise InputError(f"{key_file}:{lineno}: {key} comes before {previous} in "
                                 f"{paths[0]}: ESPnet reads the key file in the list's order "
                                 "(keep the ids in that order)")
            seen[key], previous = lineno, key
        ids = keys
    _check_lists_in_step(tables, set(ids or []))
    for path, table in sounds:
        _check_sound_list(path, table, set(ids or table), sample_rate)
    return ids or []


def _check_lists_in_step(tables: List[tuple], wanted: set) -> None:
    """ESPnet's streaming reader reads all lists line by line in step and stops with "Keys are
    mismatched" where their ids differ: up to the last wanted id, every list must hold the
    first list's ids in its order (see check_data_args)."""
    from itertools import zip_longest

    from espnet_lp.errors import InputError

    first_path, first = tables[0]
    end = max((i for i, u in enumerate(first) if u in wanted), default=-1) + 1
    for path, other in tables[1:]:
        for lineno, (want, got) in enumerate(zip_longest(first[:end], other[:end]), 1):
            if want != got:
                found = "the end of the file" if got is None else f"{got}"
                raise InputError(f"{path}:{lineno}: {found} where {first_path}:{lineno} has "
                                 f"{want}: ESPnet reads the lists line by line in step (give "
                                 "them the same ids in the same order)")


def _check_sound_list(path: str, table: dict, wanted: set, sample_rate: Optional[int]) -> None:
    """The audio of the ``wanted`` utterances of a ``sound`` list (see check_data_args)."""
    from espnet_lp.data.audio import inspect_audio
    from espnet_lp.errors import InputError

    for lineno, (utt, value) in enumerate(table.items(), 1):
        if utt not in wanted:
            continue
        if value.rstrip().endswith("|"):
            raise InputError(f"{path}:{lineno}: utterance {utt}: a command ({value}); "
                             "ESPnet's 'sound' type reads audio files: write the audio to "
                             "files (prepare_data does)")
        _, problem = inspect_audio(value, sample_rate, full_decode=False)
        if problem is not None:
            raise InputError(f"{path}:{lineno}: utterance {utt}: {problem}: {value}")


def model_sample_rate(config: dict) -> Optional[int]:
    """The sampling rate an ESPnet ASR config's frontend expects (``frontend_conf.fs``,
    ESPnet's default 16 kHz; ``"16k"`` spelled as ESPnet parses it), None if unknown."""
    import humanfriendly  # an ESPnet dependency: how ESPnet's frontends parse ``fs``

    frontend_conf = config.get("frontend_conf") or {}
    if not isinstance(frontend_conf, dict):
        return None
    fs = frontend_conf.get("fs", 16000)
    if isinstance(fs, str):
        try:
            fs = humanfriendly.parse_size(fs)
        except humanfriendly.InvalidSize:
            return None
    return int(fs) if isinstance(fs, (int, float)) and fs > 0 else None


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
