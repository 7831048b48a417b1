"""Check annotators' transcripts of a selection and make them the next round's labeled set.

Everything is checked before anything is written, and every problem is reported (file and
line or task, utterance id): records of another round's export, unknown ids, ids already
labeled, ids not selected this round, selected ids without a transcript, empty transcripts,
duplicates (the latest wins only with ``on_duplicate="latest"``), and characters outside the
token list (``oov="map"`` applies a mapping file first). Then ``annotation/text`` is written
atomically and the round's ``annotate`` stage is applied through the round-state path
(:func:`espnet_lp.al.state.write_round`, then the stage is marked done), exactly as the loop
does it; the loop then goes on with the next round.
"""

import json
import logging
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from espnet_lp.al.annotation.formats import Annotation, read_annotations
from espnet_lp.al.annotation.layout import AnnotationDir, AnnotationError, ExportRequest
from espnet_lp.al.annotation.layout import selection_round_dir
from espnet_lp.al.state import ExpDirLock, RunState, StateError, write_round
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import Problem, format_problems
from espnet_lp.data.kaldi_io import format_kaldi_map
from espnet_lp.utils.fileio import Pathlike, atomic_write_text, file_sha1

logger = logging.getLogger(__name__)

CASES = ("keep", "upper", "lower")
OOV_ACTIONS = ("reject", "map")
ON_DUPLICATE = ("error", "latest")
OTHER_EXPORTS = ("error", "skip")
SPECIAL_TOKENS = ("<blank>", "<unk>", "<sos/eos>")
HINTS = {
    "duplicate": "--on_duplicate latest keeps each utterance's latest annotation",
    "oov": "--oov map --oov_map FILE replaces characters first (lines 'FROM TO'; '<space>' "
           "is a space, no TO deletes); --case upper/lower changes the case",
    "other_round": "--other_exports skip ignores records of other exports",
}


@dataclass
class ImportOptions:
    """How to read and check an annotation file.

    Args:
        fmt: ``auto``, ``label_studio`` or ``tsv``.
        on_duplicate: Two transcripts of one utterance: ``error``, or keep the ``latest``.
        oov: Characters outside the token list: ``reject``, or ``map`` with ``oov_map``.
        oov_map: File of ``FROM TO`` lines applied in order (``oov="map"``) to the text as
            annotated.
        case: ``keep``, or make transcripts ``upper``/``lower`` case (after the map).
        other_exports: Records of another export (round): ``error`` or ``skip``.
        replace: Replace other transcripts imported earlier for this round (before the loop
            used them).
    """

    fmt: str = "auto"
    on_duplicate: str = "error"
    oov: str = "reject"
    oov_map: Optional[str] = None
    case: str = "keep"
    other_exports: str = "error"
    replace: bool = False

    def check(self) -> None:
        for name, value, valid in (("on_duplicate", self.on_duplicate, ON_DUPLICATE),
                                   ("oov", self.oov, OOV_ACTIONS), ("case", self.case, CASES),
                                   ("other_exports", self.other_exports, OTHER_EXPORTS)):
            if value not in valid:
                raise AnnotationError(f"--{name} must be one of {valid}: {value!r}")
        if (self.oov == "map") != (self.oov_map is not None):
            raise AnnotationError("--oov map needs --oov_map FILE (and --oov_map needs "
                                  "--oov map)")


class TextRules:
    """Normalises a transcript (whitespace, case, mapping) and finds characters that the
    token list cannot express.

    Args:
        allowed: Characters of the token list (``None``: no check).
        case: ``keep``, ``upper`` or ``lower``.
        mapping: ``(from, to)`` replacements applied in order.
    """

    def __init__(self, allowed: Optional[Set[str]], case: str = "keep",
                 mapping: Optional[List[Tuple[str, str]]] = None):
        self.allowed = allowed
        self.case = case
        self.mapping = mapping or []

    def normalise(self, text: str) -> str:
        for src, dst in self.mapping:  # on the text as annotated, then the case
            text = text.replace(src, dst)
        if self.case != "keep":
            text = text.upper() if self.case == "upper" else text.lower()
        return " ".join(text.split())

    def oov(self, text: str) -> List[str]:
        if self.allowed is None:
            return []
        return sorted({c for c in text if c not in self.allowed})


def token_chars(token_list: Pathlike) -> Set[str]:
    """Characters a token list can express: those of every token but the special ones, with
    ``<space>`` (character tokens) and sentencepiece's ``▁`` read as a space."""
    chars = set()
    for line in Path(token_list).read_text(encoding="utf-8").splitlines():
        tok = line.strip()
        if tok == "<space>":
            chars.add(" ")
        elif tok and tok not in SPECIAL_TOKENS and not _is_symbol(tok):
            chars.update(tok.replace("\u2581", " "))
    return chars


def _is_symbol(tok: str) -> bool:
    """``<noise>``-like tokens (not characters a transcript may hold)."""
    return len(tok) > 2 and tok.startswith("<") and tok.endswith(">")


def read_oov_map(path: Pathlike) -> List[Tuple[str, str]]:
    """``FROM TO`` lines (``<space>`` is a space; no ``TO`` deletes; ``#`` starts a comment)."""
    from espnet_lp.utils.fileio import path_problem

    problem = path_problem(path)
    if problem is not None:
        raise AnnotationError(f"{path}: --oov_map {problem}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: --oov_map is not UTF-8 ({e.reason})") from None
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) > 2:
            raise AnnotationError(f"{path}:{lineno}: expected 'FROM TO' or 'FROM', got {line!r}")
        src, dst = (parts + [""])[:2]
        out.append((src.replace("<space>", " "), dst.replace("<space>", " ")))
    return out


def show_chars(chars: List[str]) -> str:
    """``'é' (U+00E9 LATIN SMALL LETTER E WITH ACUTE), ' ' (U+0020 SPACE)``; without the
    names when there are many."""
    if len(chars) > 3:
        return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars)
    return ", ".join(f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, '?')})" for c in chars)


def _other_case(chars: List[str], allowed: Optional[Set[str]]) -> str:
    """A hint when every character is in the token list in the other case."""
    if allowed and all(c.upper() in allowed for c in chars):
        return " (the token list has them in upper case: --case upper)"
    if allowed and all(c.lower() in allowed for c in chars):
        return " (the token list has them in lower case: --case lower)"
    return ""


def check_annotations(records: List[Annotation], request: ExportRequest, pool_ids: Set[str],
                      labeled_before: Set[str], rules: TextRules, on_duplicate: str = "error",
                      other_exports: str = "error") -> Tuple[Dict[str, str], List[Problem]]:
    """Transcripts of the selection from ``records``, and every problem found.

    Returns:
        ``(transcripts, problems)``; the transcripts are usable only without problems.
    """
    problems: List[Problem] = []
    selected = set(request.ids)
    by_id: Dict[str, List[Annotation]] = {}
    for rec in records:
        if rec.export_id != request.export_id:
            if other_exports == "skip" and rec.export_id is not None:
                continue
            what = (f"from {rec.origin} (export {rec.export_id})" if rec.export_id else
                    "without an export id (al_export_id)")
            problems.append(Problem("other_round", rec.where, f"{what}, not from the export "
                                    f"of {request.describe()} (export {request.export_id})",
                                    rec.utt_id))
        elif rec.utt_id is None:
            problems.append(Problem("no_id", rec.where, "no utterance id"))
        elif rec.utt_id not in pool_ids:
            problems.append(Problem("unknown_id", rec.where, f"unknown utterance id "
                                    f"(not in the training pool {request.pool_dir})", rec.utt_id))
        elif rec.utt_id in labeled_before:
            problems.append(Problem("already_labeled", rec.where, "already labeled (in the "
                                    "labeled set before this round)", rec.utt_id))
        elif rec.utt_id not in selected:
            problems.append(Problem("not_selected", rec.where, "not selected in "
                                    f"{request.describe()}", rec.utt_id))
        else:
            by_id.setdefault(rec.utt_id, []).append(rec)
    transcripts: Dict[str, str] = {}
    if not by_id and problems and all(p.kind == "other_round" for p in problems):
        return transcripts, problems  # a file of another round: no use listing the rest
    for utt in request.ids:
        text = _one_transcript(utt, by_id.get(utt, []), request, on_duplicate, problems)
        if text is None:
            continue
        text = rules.normalise(text)
        oov = rules.oov(text)
        where = by_id[utt][-1].where
        if not text:
            problems.append(Problem("empty", where, "empty transcript", utt))
        elif oov:
            problems.append(Problem("oov", where, "characters outside the token list: "
                                    + show_chars(oov) + _other_case(oov, rules.allowed), utt))
        else:
            transcripts[utt] = text
    return transcripts, problems


def _one_transcript(utt: str, recs: List[Annotation], request: ExportRequest,
                    on_duplicate: str, problems: List[Problem]) -> Optional[str]:
    given = [r for r in recs if r.text is not None]
    if not given:
        where = recs[0].where if recs else "(no record)"
        problems.append(Problem("missing", where, f"selected in {request.describe()} but not "
                                "annotated (no transcript, or the task was skipped)", utt))
        return None
    if len(given) > 1:
        if on_duplicate == "error":
            problems.append(Problem("duplicate", given[0].where, f"annotated {len(given)} "
                                    f"times ({'; '.join(r.where for r in given)})", utt))
            return None
        latest = max(given, key=lambda r: r.order)
        logger.info("%s: %d annotations, keeping the latest (%s)", utt, len(given),
                    latest.where)
        given = [latest]
        recs[:] = given
    return given[0].text


@dataclass
class ImportResult:
    """What an import did."""

    transcripts: int
    labeled_dir: Path
    applied: bool
    unchanged: bool


def import_annotations(al_dir: Pathlike, strategy: str, r: int, path: Pathlike,
                       options: ImportOptions) -> ImportResult:
    """Check ``path`` against the selection of ``strategy`` round ``r`` and import it.

    Raises:
        AnnotationError: Any problem (all are listed); nothing was written.
    """
    options.check()
    al_dir, path = Path(al_dir), Path(path)
    adir = AnnotationDir(selection_round_dir(al_dir, strategy, r))
    request = ExportRequest.read(adir.request)
    pool = DataDir.read(request.pool_dir)
    before = DataDir.read(al_dir / request.labeled_before) if request.labeled_before else None
    mapping = read_oov_map(options.oov_map) if options.oov_map else []
    rules = TextRules(token_chars(request.token_list), options.case, mapping)
    records = read_annotations(path, options.fmt)
    transcripts, problems = check_annotations(
        records, request, set(pool.wav_scp), set(before.utt_ids) if before else set(), rules,
        options.on_duplicate, options.other_exports)
    if problems:
        hints = [HINTS[k] for k in HINTS if any(p.kind == k for p in problems)]
        raise AnnotationError(f"{path}: {len(problems)} problem(s), nothing imported: "
                              + format_problems(problems, limit=20)
                              + "".join(f"\n  hint: {h}" for h in hints))
    state = RunState(al_dir / request.state, request.config_digest, request.seed)
    unchanged = _check_earlier_import(adir, transcripts, state, request, options.replace)
    if not unchanged:
        record = {"source": str(path.absolute()), "sha1": file_sha1(path), "time": time.strftime(
            "%Y-%m-%dT%H:%M:%S"), "transcripts": len(transcripts), **asdict(options)}
        atomic_write_text(adir.imported, json.dumps(record, indent=1) + "\n")
        atomic_write_text(adir.text, format_kaldi_map(transcripts.items()))
    applied = apply_annotations(al_dir, request, transcripts)
    return ImportResult(len(transcripts), al_dir / request.output_round / "data" / "labeled",
                        applied, unchanged)


def _check_earlier_import(adir: AnnotationDir, transcripts: Dict[str, str], state: RunState,
                          request: ExportRequest, replace: bool) -> bool:
    """True when the same transcripts were imported before; raise if others were and may
    not (or no longer) be replaced."""
    if not adir.text.is_file():
        return False
    old = adir.read_text()
    if old == transcripts:
        return True
    differ = sorted(u for u in transcripts if old.get(u) != transcripts[u])
    if state.is_done(request.stage):
        raise AnnotationError(
            f"{adir.text}: the annotations of {request.describe()} were imported and the "
            f"labeled set {request.output_round}/data/labeled was built from them; "
            f"{len(differ)} transcript(s) differ here (e.g. {differ[0]}): a round's labels "
            "cannot change once the loop used them (start another --al_dir to redo it)")
    if not replace:
        raise AnnotationError(
            f"{adir.text}: other transcripts of {request.describe()} were imported before "
            f"({len(differ)} differ, e.g. {differ[0]}); --replace true replaces them")
    logger.warning("%s: replacing %d transcript(s) imported before", adir.text, len(differ))
    return False


def apply_annotations(al_dir: Path, request: ExportRequest,
                      transcripts: Dict[str, str]) -> bool:
    """The round's ``annotate`` stage: the labeled set grows by ``transcripts`` (as the loop
    does it). False when another process holds the AL dir (it, or the next run, applies the
    imported ``annotation/text`` itself)."""
    lock = ExpDirLock(al_dir)
    try:
        lock.__enter__()
    except StateError as e:  # a running al_run holds the dir
        logger.warning("%s; the transcripts are saved and the run applies them", e)
        return False
    try:
        state = RunState(al_dir / request.state, request.config_digest, request.seed)
        if not state.is_done(request.stage):
            before = {}
            if request.labeled_before:
                before = DataDir.read(al_dir / request.labeled_before).text or {}
            write_round(al_dir / request.output_round, DataDir.read(request.pool_dir),
                        {**before, **transcripts})
            state.mark_done(request.stage)
    finally:
        lock.__exit__(None, None, None)
    return True
