"""Write a selection for annotators: Label Studio tasks and labeling config, a TSV, audio.

Audio reaches Label Studio in one of two ways (:class:`ExportOptions`):

- *local files* (the default): Label Studio serves the files itself. It is started with
  ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
  ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<root>`` (default root: the AL dir's parent), the
  project gets a *Local files* storage whose path is the first directory under the root on
  the way to the audio (the AL dir by default), and task URLs are
  ``/data/local-files/?d=<path of the file relative to the root>``.
- *a URL prefix*: any static web server that serves ``<root>`` (with CORS headers, since the
  player fetches the audio from another origin); task URLs are ``<prefix><relative path>``.

Files under ``audio/`` are symbolic links to the pool's audio when browsers play its format
(WAV, FLAC, MP3, Ogg ...), else WAV copies (pipes in ``wav.scp`` are run once for that).
"""

import io
import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from espnet_lp.al.annotation.layout import INITIAL, AnnotationDir, AnnotationError
from espnet_lp.al.annotation.layout import ExportRequest
from espnet_lp.utils.fileio import atomic_directory, atomic_write_text

logger = logging.getLogger(__name__)

#: Audio formats browsers play (Label Studio's player is the browser's).
BROWSER_AUDIO = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".webm")
#: Names of the labeling config's parts (the importer reads ``TEXTAREA``'s results).
AUDIO, TEXTAREA = "audio", "transcription"
#: Show the allowed characters in the labeling config when there are at most this many.
MAX_HINT_CHARS = 80


@dataclass
class ExportOptions:
    """How annotators' tools reach the audio.

    Args:
        document_root: Root of the served files (default: the AL dir's parent).
        audio_url_prefix: URL of ``document_root`` on a static server (default: none, Label
            Studio's local-files serving).
    """

    document_root: Optional[Path] = None
    audio_url_prefix: Optional[str] = None


def model_version(request: ExportRequest) -> str:
    """The Label Studio model version of a selection's predictions."""
    return f"espnet-lp {request.strategy} round{request.round}"


def label_config(allowed_chars: str = "", prefilled: bool = True, scored: bool = True) -> str:
    """Label Studio labeling config: audio player, transcript box (pre-filled from the
    prediction when there is one), and the characters annotators may use when few."""
    hint = ""
    shown = allowed_chars.replace(" ", "")
    if shown and len(shown) <= MAX_HINT_CHARS and "$" not in shown:
        hint = (f'  <Text name="charset" value={quoteattr("Allowed characters: " + shown)}/>\n')
    return ("<View>\n"
            + ('  <Header value="Utterance $utt_id ($duration s, acquisition score $score)"/>\n'
               if scored else '  <Header value="Utterance $utt_id ($duration s)"/>\n') +
            f'  <Audio name="{AUDIO}" value="$audio" hotkey="ctrl+p"/>\n'
            + ('  <Header value="Transcript (the model\'s hypothesis; correct it)"/>\n'
               if prefilled else '  <Header value="Transcript"/>\n') +
            f'  <TextArea name="{TEXTAREA}" toName="{AUDIO}" editable="true" '
            'maxSubmissions="1" rows="3" required="true"\n'
            '            placeholder="What is said, exactly"/>\n'
            f"{hint}</View>\n")


def tsv_header(request: ExportRequest) -> str:
    """The TSV's first line: which selection it belongs to (the importer checks it)."""
    return (f"# espnet-lp annotation export_id={request.export_id} strategy={request.strategy}"
            f" round={request.round}: fill the transcript column; keep this line\n")


TSV_COLUMNS = ("id", "audio", "duration", "score", "hypothesis", "transcript")


def write_export(al_dir: Path, adir: AnnotationDir, request: ExportRequest,
                 options: ExportOptions, allowed_chars: str = "") -> None:
    """Write (or rewrite) everything annotators need from ``request``.

    A ``tasks.tsv`` whose transcript column someone started filling is kept as it is.

    Args:
        al_dir: The AL dir (as the user gave it; printed in commands).
        adir: The selection's annotation dir.
        request: The selection (``export.json``).
        options: How the audio is served.
        allowed_chars: Characters of the token list (shown to annotators when few).

    Raises:
        AnnotationError: Audio that cannot be read, or a root the audio is not under.
    """
    root = Path(os.path.abspath(options.document_root or Path(al_dir).absolute().parent))
    # checked before any file is written: Label Studio serves a directory below the root
    # (storage_path), so the audio dir must lie strictly below it
    rel = os.path.relpath(os.path.abspath(adir.audio), root)
    if rel == "." or rel.startswith(".."):
        raise AnnotationError(f"--document_root {root}: the round's audio dir {adir.audio} is "
                              "not below it; choose a --document_root above the AL dir")
    _write_audio(adir, request)
    urls = {u.id: _audio_url(adir.dir / u.audio, root, options.audio_url_prefix)
            for u in request.utterances}
    atomic_write_text(adir.tasks_json, json.dumps(
        label_studio_tasks(request, urls), indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(adir.label_config, label_config(
        allowed_chars, any(u.hypothesis for u in request.utterances),
        any(u.score is not None for u in request.utterances)))
    from espnet_lp.al.annotation.formats import tsv_has_transcripts

    if adir.tsv.is_file() and tsv_has_transcripts(adir.tsv):
        logger.warning("%s: transcripts filled in; kept as it is", adir.tsv)
    else:
        atomic_write_text(adir.tsv, tsv_header(request) + _tsv_rows(request, adir))
    atomic_write_text(adir.readme, readme(al_dir, adir, request, root, options))


def label_studio_tasks(request: ExportRequest, urls: Dict[str, str]) -> List[Dict]:
    """Label Studio tasks: data (audio URL, id, score, duration, round) and, when the round
    has a model, its hypothesis as the prediction that pre-fills the transcript box."""
    tasks = []
    for u in request.utterances:
        task = {"data": {"audio": urls[u.id], "utt_id": u.id, "duration": round(u.duration, 3),
                         "score": "" if u.score is None else u.score,
                         "al_strategy": request.strategy, "al_round": request.round,
                         "al_export_id": request.export_id}}
        if u.hypothesis:
            task["predictions"] = [{"model_version": model_version(request), "result": [{
                "from_name": TEXTAREA, "to_name": AUDIO, "type": "textarea",
                "value": {"text": [u.hypothesis]}}]}]
        tasks.append(task)
    return tasks


def _tsv_rows(request: ExportRequest, adir: AnnotationDir) -> str:
    lines = ["\t".join(TSV_COLUMNS) + "\n"]
    for u in request.utterances:
        score = "" if u.score is None else repr(u.score)
        lines.append("\t".join([u.id, str(Path(os.path.abspath(adir.dir / u.audio))),
                                f"{u.duration:.3f}", score, u.hypothesis or "", ""]) + "\n")
    return "".join(lines)


def _audio_url(path: Path, root: Path, prefix: Optional[str]) -> str:
    rel = os.path.relpath(os.path.abspath(path), root)  # under root: write_export checks
    if prefix:
        return prefix.rstrip("/") + "/" + quote(rel)
    return f"/data/local-files/?d={quote(rel)}"


def storage_path(adir: AnnotationDir, root: Path) -> Path:
    """The Label Studio local-files storage path that lets it serve ``adir``'s audio: the
    first directory under ``root`` on the way (it must not be the root itself)."""
    rel = Path(os.path.relpath(os.path.abspath(adir.audio), root))
    return root / rel.parts[0]


def audio_name(utt_id: str, wav: str) -> str:
    """File name under ``audio/``: the id, with the source's extension when browsers play it."""
    safe = utt_id.replace("/", "_")
    ext = Path(wav).suffix.lower()
    return f"{safe}{ext}" if _playable(wav) else f"{safe}.wav"


def _playable(wav: str) -> bool:
    return not wav.rstrip().endswith("|") and Path(wav).suffix.lower() in BROWSER_AUDIO


def _write_audio(adir: AnnotationDir, request: ExportRequest) -> None:
    with atomic_directory(adir.audio) as tmp:
        for u in request.utterances:
            dst = tmp / Path(u.audio).name
            if _playable(u.wav):
                src = Path(os.path.abspath(u.wav))
                if not src.is_file():
                    raise AnnotationError(f"{request.pool_dir}/wav.scp: utterance {u.id}: "
                                          f"audio {src} not found")
                dst.symlink_to(src)
            else:
                _write_wav_copy(u.id, u.wav, dst, request.pool_dir)


def _write_wav_copy(utt_id: str, wav: str, dst: Path, pool_dir: str) -> None:
    import soundfile

    where = f"{pool_dir}/wav.scp: utterance {utt_id}"
    try:
        if wav.rstrip().endswith("|"):
            proc = subprocess.run(wav.rstrip()[:-1], shell=True, capture_output=True,
                                  check=True)
            data, rate = soundfile.read(io.BytesIO(proc.stdout))
        else:
            data, rate = soundfile.read(wav)
    except (OSError, RuntimeError, subprocess.CalledProcessError,
            soundfile.LibsndfileError) as e:
        raise AnnotationError(f"{where}: cannot read {wav!r} ({e})") from None
    soundfile.write(dst, data, rate, subtype="PCM_16")


def readme(al_dir: Path, adir: AnnotationDir, request: ExportRequest, root: Path,
           options: ExportOptions) -> str:
    """What annotators and the person running the loop do with this export."""
    n, hours = len(request.utterances), sum(u.duration for u in request.utterances) / 3600
    cmd = (f"python -m espnet_lp.bin.al_annotate import --al_dir {al_dir} "
           f"--strategy {request.strategy} --round {request.round}")
    if options.audio_url_prefix:
        serve = (f"The tasks' audio URLs start with {options.audio_url_prefix}: serve {root}\n"
                 "there with a static web server that sends CORS headers "
                 "(Access-Control-Allow-Origin).\n")
    else:
        serve = (f"Label Studio serves the audio itself (local files). Start it with\n"
                 f"    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true \\\n"
                 f"    LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={root} label-studio start\n"
                 f"and add to the project Settings > Cloud Storage > Add Source Storage >\n"
                 f"Local files, absolute local path {storage_path(adir, root)} (do not sync\n"
                 "it: the tasks come from tasks.json; the storage only lets Label Studio\n"
                 "serve the files).\n")
    prelabel = ""
    if any(u.hypothesis for u in request.utterances):
        prelabel = ("In Settings > Annotation, turn on 'Use predictions to prelabel tasks' "
                    f"with\nmodel version '{model_version(request)}': each transcript box "
                    "starts from the model's hypothesis.\n")
    initial = request.strategy == INITIAL
    return (f"Annotation of {request.describe()}: {n} utterances, {hours:.2f} h "
            f"(export {request.export_id}).\n\n"
            f"== Label Studio ==\n{serve}"
            f"Create a project with the labeling config {adir.label_config} (Settings >\n"
            f"Labeling Interface > Code) and import {adir.tasks_json}.\n{prelabel}"
            "When every task is annotated, Export > JSON, then:\n"
            f"    {cmd} --input EXPORT.json\n\n"
            "== Without Label Studio ==\n"
            f"Fill the transcript column of {adir.tsv} (audio in {adir.audio}),\n"
            f"keeping its first line, then:\n    {cmd} --input {adir.tsv}\n\n"
            "== Then ==\nRerun the same al_run (or ./run.sh) command: it continues with "
            + ("training round 0." if initial else f"round {request.round + 1}.") + "\n")
