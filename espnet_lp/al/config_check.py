"""Checks of an active-learning run's config against its data, before anything is written.

:meth:`espnet_lp.al.run_config.ALConfig.check` runs these: a value of the wrong type in the
``--al_config`` yaml, a budget that selects nothing or more than the pool holds, a token list
from another corpus, or a bad option in ``--decode_opts``/``--score_opts``/``--lp_refit_opts``/
``--kd_opts`` is one line naming it, instead of a failure minutes later inside a training or
decoding job (after the exp dir was claimed).
"""

import argparse
import numbers
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from espnet_lp.errors import EspnetLPError

#: The yaml keys of a run and the type each must have (name for messages, check).
_TYPES = {
    "rounds": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "seed": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "num_clusters": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "nj": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "ngpu": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "lp_refit": ("true or false", lambda v: isinstance(v, bool)),
    "strategies": ("a list of strategy names",
                   lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v)),
    "only_strategies": ("a list of strategy names",
                        lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v)),
    "cost": ("a string", lambda v: isinstance(v, str)),
    "retrain": ("a string", lambda v: isinstance(v, str)),
    "acquisition": ("a string", lambda v: isinstance(v, str)),
    "acquisition_beta": ("a number >= 0", lambda v: isinstance(v, numbers.Real)
                         and not isinstance(v, bool) and 0 <= v < float("inf")),
    "typicality_knn": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "typicality_gate": ("a number in (0, 1]", lambda v: isinstance(v, numbers.Real)
                        and not isinstance(v, bool) and 0 < v <= 1),
}


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _error(message: str) -> EspnetLPError:
    from espnet_lp.al.run_config import ALRunError

    return ALRunError(message)


def check_types(cfg) -> None:
    """Each setting has the type it needs (a yaml ``seed: 1.5`` or ``lp_refit: maybe``)."""
    for key, (want, ok) in _TYPES.items():
        value = getattr(cfg, key)
        if not ok(value):
            raise _error(f"{key} must be {want}, got {value!r}")


def check_budgets(cfg, durations: Mapping[str, float]) -> None:
    """The initial set and every round select something, and no more than the pool holds.

    Args:
        cfg: The run's config.
        durations: The training pool's ``utt2dur`` (id -> seconds).
    """
    from espnet_lp.al.selection import Budget

    initial = Budget.from_config(cfg.initial, "initial")
    per_round = Budget.from_config(cfg.budget_per_round, "budget_per_round")
    n, hours = len(durations), sum(durations.values()) / 3600.0
    pool = f"the training pool {cfg.train_set} ({n} utterances, {hours:.3f} h)"
    if (initial.utterances or initial.hours or 0) <= 0:
        raise _error(f"initial: the budget ({initial.describe()}) selects nothing")
    shortest = min(durations.values(), default=0.0)

    def fits_one(budget, name: str) -> None:  # an hours budget below every utterance
        if budget.hours is not None and budget.hours * 3600.0 < shortest:
            raise _error(f"{name}: {budget.describe()} is less than the shortest utterance "
                         f"({shortest:.2f} s) of {pool}: it selects nothing")

    fits_one(initial, "initial")
    whole = (initial.utterances is not None and initial.utterances >= n) or \
        (initial.hours is not None and initial.hours >= hours)
    if whole and (cfg.rounds > 0 or (initial.utterances or 0) > n):
        raise _error(f"initial: {initial.describe()} is {pool} or more: nothing would be "
                     "left to select")
    if cfg.rounds == 0:
        return
    if (per_round.utterances or per_round.hours or 0) <= 0:
        raise _error(f"budget_per_round: the budget ({per_round.describe()}) selects nothing "
                     "in every round")
    fits_one(per_round, "budget_per_round")
    left = n - initial.utterances if initial.utterances is not None else n
    if (per_round.utterances is not None and per_round.utterances > left) or \
            (per_round.hours is not None and per_round.hours > hours):
        raise _error(f"budget_per_round: {per_round.describe()} is more than {pool} holds "
                     "after the initial set")


def check_held_out_sets(cfg, pool_ids: Sequence[str]) -> None:
    """Test sets have distinct directory names, and no validation or test utterance is in
    the training pool.

    Rounds key their decodings, ``metrics.json`` and the report by a test set's directory
    name, so two sets of one name would overwrite each other's scores. An utterance of the
    pool may be selected and trained on: on a set that holds one, the error rates (and the
    LP heads refit on the validation set) measure training data.
    """
    from espnet_lp.data.datadir import DataDir

    names = [Path(s).name for s in cfg.test_sets]
    twice = [n for n in dict.fromkeys(names) if names.count(n) > 1]
    if twice:
        paths = [s for s in cfg.test_sets if Path(s).name == twice[0]]
        raise _error(f"test_sets: {' and '.join(paths)} share the directory name {twice[0]!r}, "
                     "which names a set's results: give each test set its own name")
    pool = set(pool_ids)
    for path in dict.fromkeys([cfg.valid_set, *cfg.test_sets]):
        ids = DataDir.read(path).utt_ids
        shared = [u for u in ids if u in pool]
        if shared:
            role = "validation" if path == cfg.valid_set else "test"
            raise _error(f"{path}: {len(shared)} of its {len(ids)} utterances are in the "
                         f"training pool {cfg.train_set} (e.g. {shared[0]}): a {role} set "
                         "must be held out, or it measures data the rounds train on")


def check_token_list(cfg) -> None:
    """The validation and test sets have transcripts, and the token list fits the data (a
    list from another corpus would make most transcripts ``<unk>``).

    The training pool is what the list was made from (stage 2 of the recipes), so half of its
    tokens or more unknown is an error. Validation and test sets only warn: a list made from
    a small Mandarin training set can legitimately miss most characters of a small dev set.
    A pool without transcripts (human annotation) is not checked.
    """
    from espnet_lp.data.asr_inputs import shape_texts
    from espnet_lp.data.datadir import DataDir
    from espnet_lp.data.errors import DataPrepError

    sets = [(cfg.train_set, True)] + [(p, False) for p in dict.fromkeys(
        [cfg.valid_set, *cfg.test_sets]) if p != cfg.train_set]
    for path, is_pool in sets:
        try:
            data = DataDir.read(path)
            if data.text is None:
                if is_pool:
                    continue
                raise _error(f"{path}: no text; validation and test sets need transcripts")
            shape_texts(data, cfg.token_list, cfg.token_type, cfg.bpemodel, name=str(path),
                        unknown_is_error=is_pool)
        except DataPrepError as e:
            raise _error(str(e)) from None


def parse_options(parser: argparse.ArgumentParser, flag: str, opts: Sequence[str],
                  given: Dict[str, object]) -> argparse.Namespace:
    """Parse ``opts`` (a run's extra options of a sub-command) as the sub-command will.

    Args:
        parser: The sub-command's parser.
        flag: The al_run flag they came from (for messages), e.g. ``--decode_opts``.
        opts: The options.
        given: Options the loop sets itself -> a placeholder value; ``opts`` must not set
            them (later options win in argparse: the loop's would be replaced).

    Raises:
        ALRunError: An unknown option, a bad value, or one of ``given``.
    """
    def error(message: str):
        raise _error(f"{flag} {' '.join(opts)!r}: {message}")

    parser.error = error
    placeholders: List[str] = []
    for name, value in given.items():
        placeholders += [f"--{name}", str(value)]
    args = parser.parse_args(placeholders + list(opts))
    plain = parser.parse_args(placeholders)
    for name in given:
        if getattr(args, name) != getattr(plain, name):
            error(f"--{name} is set by the loop itself, not through {flag}")
    return args


def check_sub_options(cfg) -> None:
    """``decode_opts``, ``score_opts``, ``lp_refit_opts`` and ``train_opts`` are options the
    sub-commands take, with values they accept; ``kd_conf`` holds valid ``ctc_kl`` options."""
    from espnet_lp.bin import al_score, asr_inference, lp_refit

    model = {"asr_train_config": "config.yaml", "asr_model_file": "model.pth"}
    args = parse_options(asr_inference.get_parser(), "--decode_opts", cfg.decode_opts, {
        **model, "output_dir": "out", "data_path_and_name_and_type": "wav.scp,speech,sound",
        "key_file": "keys"})
    _as_run_error(asr_inference.check_options, args, "--decode_opts")
    args = parse_options(al_score.get_parser(), "--score_opts", cfg.score_opts, {
        **model, "strategy": "random", "data_dir": "pool", "output_dir": "out",
        "key_file": "keys", "job": 1, "seed": cfg.seed, "round": 0})
    _as_run_error(al_score.check_options, args, "--score_opts")
    args = parse_options(lp_refit.get_parser(), "--lp_refit_opts", cfg.lp_refit_opts, {
        **model, "data_dir": "valid", "output_file": "out.pth", "seed": cfg.seed})
    _as_run_error(lp_refit.check_options, args, "--lp_refit_opts")
    check_train_options(cfg)
    check_kd(cfg)


def check_train_options(cfg) -> None:
    """``train_opts`` and ``warm_start_opts`` are options of ESPnet's ``asr_train`` (unknown
    options and bad values would stop the first training, after the exp dir is claimed)."""
    from espnet2.tasks.asr import ASRTask

    data = "data/wav.scp,speech,sound"
    given = {"output_dir": "exp", "token_list": "tokens.txt", "token_type": cfg.token_type,
             "train_data_path_and_name_and_type": data, "train_shape_file": "shape",
             "valid_data_path_and_name_and_type": data, "valid_shape_file": "shape"}
    for flag, opts in (("--train_opts", cfg.train_opts),
                       ("--warm_start_opts", cfg.warm_start_opts)):
        if opts:
            parse_options(ASRTask.get_parser(), flag, opts, given)


def _as_run_error(check: Callable, args, flag: str) -> None:
    try:
        check(args)
    except EspnetLPError as e:
        raise _error(f"{flag}: {e}") from None


def check_kd(cfg) -> None:
    """Distillation settings: weight, teacher spec and ``ctc_kl`` options."""
    from espnet_lp.asr.kd import check_ctc_kl_options
    from espnet_lp.asr.teacher import read_teacher_spec

    if not 0.0 <= cfg.kd_weight < 1.0:
        raise _error(f"--kd_weight must be in [0, 1), got {cfg.kd_weight}")
    if cfg.kd_weight > 0:
        read_teacher_spec(cfg.teacher_spec)
    try:
        check_ctc_kl_options(cfg.kd_conf, "--kd_opts")
    except EspnetLPError as e:
        raise _error(str(e)) from None


def parse_kd_opts(text: str) -> Optional[Dict[str, object]]:
    """``--kd_opts 'temperature=2.0 frame_select=teacher_nonblank'`` -> a mapping of yaml
    values."""
    import shlex

    import yaml

    conf = {}
    try:
        items = shlex.split(text)
    except ValueError as e:
        raise _error(f"--kd_opts {text!r}: {e}") from None
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise _error(f"--kd_opts {text!r}: {item!r} is not KEY=VALUE")
        try:
            conf[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise _error(f"--kd_opts {text!r}: {item!r}: the value is not yaml") from None
    return conf


def input_fingerprints(cfg) -> Dict[str, str]:
    """SHA-1 of each input file of a run (the data dirs' lists, the token list, the training
    config): recorded when the exp dir is claimed, compared on every rerun."""
    from espnet_lp.utils.fileio import file_sha1

    files = [Path(d) / n for d in dict.fromkeys([cfg.train_set, cfg.valid_set, *cfg.test_sets])
             for n in ("wav.scp", "text", "utt2dur", "utt2spk")]
    files += [Path(cfg.token_list), Path(cfg.train_config)]
    return {str(f): file_sha1(f) for f in files if f.is_file()}


def check_inputs_unchanged(old: Optional[Mapping], new: Mapping, config) -> None:
    """A rerun on inputs that changed since the exp dir was made would mix two setups.

    Args:
        old: The fingerprints recorded in the exp dir's ``config.yaml`` (None: made before
            they were recorded; nothing to compare).
        new: Those of the inputs now.
        config: The exp dir's ``config.yaml`` (for the message).
    """
    if not isinstance(old, Mapping):
        return
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            what = "is new" if path not in old else "is gone" if path not in new else "changed"
            raise _error(f"{path} {what} since {config} was written: the rounds done so far "
                         "used other inputs; restore it, or use another --al_dir")
