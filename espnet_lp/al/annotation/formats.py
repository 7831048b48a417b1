"""Read annotators' files: Label Studio's JSON export (full or ``JSON_MIN``) and the TSV.

Every format becomes a list of :class:`Annotation` records that say where in the file they
came from, so that the importer's checks can name the file and line (TSV) or task.
"""

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from espnet_lp.al.annotation.export import TEXTAREA, TSV_COLUMNS
from espnet_lp.al.annotation.layout import AnnotationError

FORMATS = ("auto", "label_studio", "tsv")
_HEADER_FIELD = re.compile(r"(\w+)=([^\s:]+)")


@dataclass
class Annotation:
    """One annotator's transcript of one utterance, as read from a file.

    Args:
        utt_id: Utterance id (``None`` when the record names none).
        text: The transcript as written (``None``: no transcript given).
        where: ``file:line`` or ``file: task N``.
        export_id: The export the record claims to belong to (``None``: unknown).
        origin: Strategy and round of that export, for messages (``random round 1``).
        order: Sort key of "latest" among duplicates (update time, then position).
    """

    utt_id: Optional[str]
    text: Optional[str]
    where: str
    export_id: Optional[str] = None
    origin: str = ""
    order: Tuple[str, int] = ("", 0)


def detect_format(path: Path) -> str:
    """``label_studio`` for a JSON file, else ``tsv``."""
    if path.suffix.lower() == ".json":
        return "label_studio"
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    return "label_studio" if head[:1] in (b"[", b"{") else "tsv"


def read_annotations(path: Path, fmt: str = "auto") -> List[Annotation]:
    """The records of an annotation file.

    Raises:
        AnnotationError: Unreadable file or a shape no format has (naming file and line).
    """
    if not path.is_file():
        raise AnnotationError(f"{path}: not found")
    if fmt not in FORMATS:
        raise AnnotationError(f"--format must be one of {FORMATS}: {fmt!r}")
    if fmt == "auto":
        fmt = detect_format(path)
    return read_label_studio(path) if fmt == "label_studio" else read_tsv(path)


# ---- Label Studio -------------------------------------------------------------------------
def read_label_studio(path: Path) -> List[Annotation]:
    """Label Studio's ``JSON`` export (tasks with their annotations) or ``JSON_MIN`` (one
    flat record per annotation). Skipped (cancelled) annotations give no transcript."""
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise AnnotationError(f"{path}: not a Label Studio JSON export ({e})") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise AnnotationError(f"{path}: not a Label Studio JSON export (expected a list of "
                              "tasks)")
    out = []
    for i, task in enumerate(tasks, 1):
        where = f"{path}: task {task.get('id', f'#{i}')}"
        if "data" in task or "annotations" in task:
            out += _full_task(task, where, i)
        else:
            out.append(_min_record(task, where, i))
    return out


def _origin(data: Dict) -> str:
    return f"{data.get('al_strategy', '?')} round {data.get('al_round', '?')}"


def _shaped(value, kind, where: str, what: str):
    """``value`` if it is a ``kind`` (None: the empty one), else an error naming the task."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise AnnotationError(f"{where}: {what} is {type(value).__name__} {value!r:.60}, not "
                              f"a {kind.__name__} (not a Label Studio export of this project?)")
    return value


def _full_task(task: Dict, where: str, i: int) -> List[Annotation]:
    data = _shaped(task.get("data"), dict, where, "'data'")
    base = dict(utt_id=_str_or_none(data.get("utt_id")), where=where,
                export_id=_str_or_none(data.get("al_export_id")), origin=_origin(data))
    annotations = [a for a in _shaped(task.get("annotations"), list, where, "'annotations'")
                   if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        return [Annotation(text=None, order=("", i), **base)]
    out = []
    for a in annotations:
        at = f"{where} annotation {a.get('id', '?')}"
        results = [_shaped(r, dict, at, "a result")
                   for r in _shaped(a.get("result"), list, at, "'result'")]
        others = sorted({str(r.get("from_name")) for r in results
                         if r.get("type") == "textarea" and r.get("from_name") != TEXTAREA})
        if others and not any(r.get("from_name") == TEXTAREA for r in results):
            raise AnnotationError(f"{at}: a transcript in the TextArea {others[0]!r}, but the "
                                  f"export's label config names it {TEXTAREA!r} (the project's "
                                  "labeling interface was edited? use the export's "
                                  "label_config.xml)")
        texts = [t for r in results if r.get("from_name") == TEXTAREA
                 for t in _texts(_shaped(r.get("value"), dict, at, "a result's 'value'")
                                 .get("text"), at)]
        stamp = str(a.get("updated_at") or a.get("created_at") or "")
        out.append(Annotation(text=" ".join(texts), order=(stamp, i),
                              **{**base, "where": at}))
    return out


def _min_record(record: Dict, where: str, i: int) -> Annotation:
    text = record.get(TEXTAREA)
    stamp = str(record.get("updated_at") or record.get("created_at") or "")
    return Annotation(utt_id=_str_or_none(record.get("utt_id")),
                      text=None if text is None else " ".join(_texts(text, where)), where=where,
                      export_id=_str_or_none(record.get("al_export_id")),
                      origin=_origin(record), order=(stamp, i))


def _texts(value, where: str) -> List[str]:
    """A TextArea's text: a string or a list of strings (one per line typed)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise AnnotationError(f"{where}: the transcript is {type(value).__name__} {value!r:.60}, "
                          "not text")


def _str_or_none(value) -> Optional[str]:
    return None if value in (None, "") else str(value)


# ---- TSV ------------------------------------------------------------------------------------
def read_tsv(path: Path) -> List[Annotation]:
    """The TSV of :func:`~espnet_lp.al.annotation.export.write_export`, filled in (also as
    saved by spreadsheet programs: quoted cells, CRLF line ends).

    Raises:
        AnnotationError: No header row with ``id`` and ``transcript`` columns, or no export
            line (``# espnet-lp annotation export_id=...``).
    """
    header, columns, rows = _tsv_parts(path)
    if not header:
        raise AnnotationError(f"{path}: no '# espnet-lp annotation export_id=...' line: "
                              "keep the export's first line, it says which round the file is")
    fields = dict(_HEADER_FIELD.findall(header))
    origin = f"{fields.get('strategy', '?')} round {fields.get('round', '?')}"
    return [Annotation(utt_id=cells.get("id") or None, text=cells.get("transcript"),
                       where=f"{path}:{line}", export_id=fields.get("export_id"),
                       origin=origin, order=("", line)) for line, cells in rows]


def tsv_has_transcripts(path: Path) -> bool:
    """Whether someone started filling the transcript column."""
    try:
        _, _, rows = _tsv_parts(path)
    except AnnotationError:
        return True  # unreadable: never overwrite what may be someone's work
    return any((cells.get("transcript") or "").strip() for _, cells in rows)


def _tsv_parts(path: Path):
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            lines, start = [], 1
            for cells in reader:  # each row with the line it starts on
                lines.append((start, cells, reader.line_num))
                start = reader.line_num + 1
    except (UnicodeDecodeError, csv.Error) as e:
        raise AnnotationError(f"{path}: not a UTF-8 TSV ({e})") from None
    header, columns, rows = "", None, []
    for line, cells, last_line in lines:
        if not any(c.strip() for c in cells):
            continue
        if last_line != line:  # a quote opened a cell that newlines do not end
            raise AnnotationError(f"{path}:{line}: a cell runs on to line {last_line} (an "
                                  'unbalanced " in a cell? quote a whole cell, "like this", '
                                  "or remove the quote)")
        if cells[0].lstrip().startswith("#"):
            header = header or "\t".join(cells)
        elif columns is None:
            columns = [c.strip().lower() for c in cells]
            missing = [c for c in ("id", "transcript") if c not in columns]
            if missing:
                raise AnnotationError(f"{path}:{line}: header row without column(s) "
                                      f"{missing} (expected {', '.join(TSV_COLUMNS)})")
        else:
            extra = [c for c in cells[len(columns):] if c.strip()]
            if extra:  # the cells past the header's would be dropped, a transcript cut short
                raise AnnotationError(f"{path}:{line}: {len(cells)} cells where the header "
                                      f"has {len(columns)} (a tab inside a transcript? "
                                      f"separate words with spaces); extra: {extra[0]!r}")
            rows.append((line, {c: (cells[k] if k < len(cells) else "")
                                for k, c in enumerate(columns)}))
    if columns is None:
        raise AnnotationError(f"{path}: no header row ({', '.join(TSV_COLUMNS)})")
    return header, columns, rows
