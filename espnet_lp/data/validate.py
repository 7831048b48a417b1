"""Check a data directory the way Kaldi's ``utils/validate_data_dir.sh`` does."""

import logging
import math
from pathlib import Path
from typing import Dict, List, Optional

from espnet_lp.data.errors import DataPrepError, Problem, format_problems
from espnet_lp.utils.fileio import Pathlike, path_problem

logger = logging.getLogger(__name__)


def _read_lines(path: Path, problems: List[Problem]) -> Optional[List[List[str]]]:
    """Split each line into fields; record undecodable or empty lines."""
    rows = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                problems.append(Problem("encoding", f"{path}:{lineno}", "not valid UTF-8"))
                continue
            fields = line.split()
            if not fields:
                problems.append(Problem("format", f"{path}:{lineno}", "empty line"))
                continue
            rows.append(fields)
    return rows


def _check_sorted_unique(path: Path, keys: List[str], problems: List[Problem]) -> None:
    for i in range(1, len(keys)):
        if keys[i] == keys[i - 1]:
            problems.append(Problem("format", f"{path}:{i + 1}", f"duplicate key {keys[i]!r}"))
        elif keys[i] < keys[i - 1]:
            problems.append(
                Problem("format", f"{path}:{i + 1}", "not sorted in C-locale order (LC_ALL=C sort)")
            )
            return


def _check_same_keys(
    ref_name: str, ref: List[str], path: Path, keys: List[str], problems: List[Problem]
) -> None:
    missing = sorted(set(ref) - set(keys))
    extra = sorted(set(keys) - set(ref))
    if missing:
        problems.append(
            Problem("mismatch", str(path), f"{len(missing)} utterances of {ref_name} absent",
                    utt_id=missing[0])
        )
    if extra:
        problems.append(
            Problem("mismatch", str(path), f"{len(extra)} utterances not in {ref_name}",
                    utt_id=extra[0])
        )


def find_problems(
    data_dir: Pathlike, require_text: bool = True, check_audio_exists: bool = True
) -> List[Problem]:
    """List everything wrong with a data directory (empty list: valid).

    Checks: required files present; each file UTF-8, sorted and unique by key; ``utt2spk`` and
    ``spk2utt`` describe the same mapping, with utterance order consistent with speaker order
    (so speaker-sorted and utterance-sorted views agree, as Kaldi requires); ``wav.scp``,
    ``text`` and ``utt2dur`` cover exactly the utterances of ``utt2spk``; transcripts non-empty
    (except those listed in ``untranscribed``: see :mod:`espnet_lp.data.datadir`);
    durations positive numbers; audio files exist.

    Args:
        data_dir: Directory to check.
        require_text: Whether ``text`` must exist (False for an untranscribed pool).
        check_audio_exists: Whether to stat every path in ``wav.scp`` (pipes are skipped).
    """
    d = Path(data_dir)
    problems = _missing_files(d, require_text)
    if problems:
        return problems
    tables: Dict[str, List[List[str]]] = {}
    for name in ("utt2spk", "spk2utt", "wav.scp", "text", "utt2dur"):
        if (d / name).is_file():
            tables[name] = _read_lines(d / name, problems)
            _check_sorted_unique(d / name, [r[0] for r in tables[name]], problems)
    utts = [r[0] for r in tables["utt2spk"]]
    if not utts and not problems:
        problems.append(Problem("empty", str(d / "utt2spk"), "no utterances (empty data "
                                "directory)"))
    _check_speakers(d, tables, problems)
    for name in ("wav.scp", "text", "utt2dur"):
        if name in tables:
            _check_same_keys("utt2spk", utts, d / name, [r[0] for r in tables[name]], problems)
    _check_text(d, tables.get("text", []), utts, problems)
    for lineno, row in enumerate(tables.get("utt2dur", []), 1):
        try:
            ok = len(row) == 2 and 0 < float(row[1]) < math.inf
        except ValueError:
            ok = False
        if not ok:
            problems.append(Problem("format", f"{d / 'utt2dur'}:{lineno}",
                                    "expected '<utt> <positive seconds>'", utt_id=row[0]))
    _check_wav_scp(d, tables["wav.scp"], check_audio_exists, problems)
    return problems


def _missing_files(d: Path, require_text: bool) -> List[Problem]:
    problem = path_problem(d, "dir")
    if problem is not None:
        return [Problem("missing_file", str(d), f"data directory {problem}")]
    problems = []
    required = ["utt2spk", "spk2utt", "wav.scp"] + (["text"] if require_text else [])
    for name in ("utt2spk", "spk2utt", "wav.scp", "text", "utt2dur", "untranscribed"):
        problem = path_problem(d / name)
        if problem == "not found" and name in required:
            problems.append(Problem("missing_file", str(d / name), "required file missing"))
        elif problem not in (None, "not found"):
            problems.append(Problem("missing_file", str(d / name), problem))
    return problems


def _check_speakers(d: Path, tables: Dict[str, List[List[str]]],
                    problems: List[Problem]) -> None:
    for lineno, row in enumerate(tables["utt2spk"], 1):
        if len(row) != 2:
            problems.append(Problem("format", f"{d / 'utt2spk'}:{lineno}", "expected 2 fields"))
    utt2spk = {r[0]: r[1] for r in tables["utt2spk"] if len(r) == 2}
    # Expanding spk2utt must give utt2spk line by line: this is Kaldi's ordering requirement.
    expanded = [(u, r[0]) for r in tables["spk2utt"] for u in r[1:]]
    if expanded != sorted(utt2spk.items()):
        problems.append(
            Problem("mismatch", str(d / "spk2utt"),
                    "does not match utt2spk (or utterance ids are not prefixed consistently "
                    "with speaker ids, so the two sort orders differ)")
        )


def _check_text(d: Path, rows: List[List[str]], utts: List[str],
                problems: List[Problem]) -> None:
    """Only a partly transcribed set (labeled + pool, for distillation) has empty transcripts,
    and exactly for the utterances it lists in ``untranscribed``."""
    untranscribed = set()
    if (d / "untranscribed").is_file():
        listed = _read_lines(d / "untranscribed", problems)
        _check_sorted_unique(d / "untranscribed", [r[0] for r in listed], problems)
        untranscribed = {r[0] for r in listed}
        unknown = sorted(untranscribed - set(utts))
        if unknown:
            problems.append(Problem("mismatch", str(d / "untranscribed"),
                                    f"{len(unknown)} utterances not in utt2spk",
                                    utt_id=unknown[0]))
    for lineno, row in enumerate(rows, 1):
        if len(row) < 2 and row[0] not in untranscribed:
            problems.append(Problem("empty_text", f"{d / 'text'}:{lineno}", "empty transcript",
                                    utt_id=row[0]))
        elif len(row) >= 2 and row[0] in untranscribed:
            problems.append(Problem("mismatch", f"{d / 'text'}:{lineno}",
                                    f"has a transcript but is listed in {d / 'untranscribed'}",
                                    utt_id=row[0]))


def _check_wav_scp(d: Path, rows: List[List[str]], check_audio_exists: bool,
                   problems: List[Problem]) -> None:
    for lineno, row in enumerate(rows, 1):
        if len(row) < 2:
            problems.append(Problem("format", f"{d / 'wav.scp'}:{lineno}", "no audio path",
                                    utt_id=row[0]))
        elif check_audio_exists and len(row) == 2 and not row[1].endswith("|"):
            problem = path_problem(row[1])
            if problem is not None:
                problems.append(Problem("missing_audio", f"{d / 'wav.scp'}:{lineno}",
                                        f"audio file {problem}: {row[1]}", utt_id=row[0]))


def validate_data_dir(
    data_dir: Pathlike, require_text: bool = True, check_audio_exists: bool = True
) -> None:
    """Raise :class:`DataPrepError` describing every problem of ``data_dir``, if any."""
    problems = find_problems(data_dir, require_text, check_audio_exists)
    if problems:
        raise DataPrepError(f"invalid data directory {data_dir}: {format_problems(problems)}")
    logger.debug("%s: valid data directory", data_dir)


def read_valid_data_dir(data_dir: Pathlike, require_text: bool = False,
                        check_audio_exists: bool = False):
    """:meth:`DataDir.read` after :func:`validate_data_dir`: the input of a command, checked
    so that errors name it (and not only the output the command would write)."""
    from espnet_lp.data.datadir import DataDir

    validate_data_dir(data_dir, require_text, check_audio_exists)
    return DataDir.read(data_dir)
