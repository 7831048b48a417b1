"""Human annotation without training: export files, the TSV and Label Studio JSON round
trips, and every bad annotation refused with one clear message and nothing written.

The rounds here are made by the loop (the initial set: ``al_run --oracle human`` stops
before any training) and by the human oracle itself (a strategy's round 0 selection with a
stand-in decoder), so no model is trained.
"""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from espnet_lp.al.annotation.layout import AnnotationDir, ExportRequest
from espnet_lp.al.state import RunState, read_ids
from espnet_lp.bin.al_annotate import main as annotate_main
from espnet_lp.data.datadir import DataDir
from tests.al.conftest import fill_tsv, stand_in_hypothesis


def snapshot(al: Path):
    return {str(p.relative_to(al)): (p.lstat().st_mtime_ns, p.lstat().st_size)
            for p in sorted(al.rglob("*"))}


@pytest.fixture
def run_dir(made, tmp_path):
    """A private copy of the made AL dir (tests may import into it)."""
    work, truth = made
    shutil.copytree(work / "al", tmp_path / "al", symlinks=True)
    return tmp_path / "al", truth


def do_import(al, path, *extra, strategy="random"):
    annotate_main(["import", "--al_dir", str(al), "--strategy", strategy, "--round", "0",
                   "--input", str(path), *extra])


def test_initial_set_annotated_through_the_tsv(made):
    work, truth = made
    al = work / "al"
    labeled = DataDir.read(al / "initial" / "round0" / "data" / "labeled")
    assert len(labeled) == 8 and labeled.text == {u: truth[u] for u in labeled.utt_ids}
    assert RunState(al / "initial" / "state.json", json.loads(
        (al / "initial/round0/annotation/export.json").read_text())["config_digest"],
        0).is_done("round0/annotate")
    tasks = json.loads((al / "initial/round0/annotation/tasks.json").read_text())
    assert all("predictions" not in t for t in tasks)  # no model yet: nothing to pre-fill


def test_export_files(made):
    work, truth = made
    al = work / "al"
    adir = AnnotationDir(al / "random" / "round0")
    request = ExportRequest.read(adir.request)
    tasks = json.loads(adir.tasks_json.read_text())
    assert [t["data"]["utt_id"] for t in tasks] == request.ids
    first = tasks[0]
    assert first["data"]["al_export_id"] == request.export_id and first["data"]["score"] == 1.0
    assert first["data"]["audio"].startswith("/data/local-files/?d=al/random/round0/")
    pred = first["predictions"][0]["result"][0]
    assert pred["from_name"] == "transcription" and pred["to_name"] == "audio"
    assert pred["value"]["text"] == [stand_in_hypothesis(truth[request.ids[0]])]
    config = ET.fromstring(adir.label_config.read_text())
    assert config.find("Audio").get("name") == "audio"
    area = config.find("TextArea")
    assert (area.get("name"), area.get("toName"), area.get("editable")) == (
        "transcription", "audio", "true")
    lines = adir.tsv.read_text().splitlines()
    assert lines[0].startswith(f"# espnet-lp annotation export_id={request.export_id} ")
    assert lines[1].split("\t") == ["id", "audio", "duration", "score", "hypothesis",
                                    "transcript"]
    row = lines[2].split("\t")
    assert row[0] == request.ids[0] and row[-1] == "" and Path(row[1]).is_file()
    pool = DataDir.read(work / "pool")
    link = adir.dir / request.utterances[0].audio
    assert link.is_symlink() and link.resolve() == Path(pool.wav_scp[request.ids[0]]).resolve()
    readme = adir.readme.read_text()
    assert "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true" in readme
    assert f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={work}" in readme
    assert f"absolute local path {al}" in readme


def test_reexport_with_a_url_prefix_keeps_a_filled_tsv(run_dir):
    al, truth = run_dir
    adir = AnnotationDir(al / "random" / "round0")
    fill_tsv(adir.tsv, truth, out=adir.tsv)
    filled = adir.tsv.read_text()
    annotate_main(["export", "--al_dir", str(al), "--strategy", "random", "--round", "0",
                   "--audio_url_prefix", "http://localhost:8081/"])
    task = json.loads(adir.tasks_json.read_text())[0]
    assert task["data"]["audio"].startswith("http://localhost:8081/al/random/round0/")
    assert adir.tsv.read_text() == filled
    assert "CORS" in adir.readme.read_text()


def test_tsv_round_trip_then_reimport(run_dir, caplog):
    al, truth = run_dir
    adir = AnnotationDir(al / "random" / "round0")
    filled = fill_tsv(adir.tsv, truth)
    do_import(al, filled)
    labeled = DataDir.read(al / "random" / "round1" / "data" / "labeled")
    selected = ExportRequest.read(adir.request).ids
    before = read_ids(al / "random" / "round0" / "labeled")
    assert labeled.utt_ids == sorted(before + selected)
    assert labeled.text == {u: truth[u] for u in labeled.utt_ids}
    assert set(read_ids(al / "random" / "round1" / "pool")).isdisjoint(labeled.utt_ids)
    state = json.loads((al / "random" / "state.json").read_text())
    assert "round0/annotate" in state["done"]
    # the same file again: nothing to do; another transcript now: refused
    do_import(al, filled)
    assert "imported before; nothing to do" in caplog.text
    text = dict(truth)
    text[selected[0]] = "SOMETHING ELSE"
    with pytest.raises(SystemExit) as e:
        do_import(al, fill_tsv(adir.tsv, text))
    assert e.value.code == 1
    assert "labeled set random/round1/data/labeled was built from them" in caplog.text


def test_label_studio_json_round_trip_with_latest_duplicate(run_dir):
    """Label Studio's JSON export: full tasks, a skipped annotation, two annotations of one
    task (the later one wins with --on_duplicate latest)."""
    al, truth = run_dir
    adir = AnnotationDir(al / "random" / "round0")
    tasks = json.loads(adir.tasks_json.read_text())
    for i, task in enumerate(tasks, 1):
        task["id"] = i
        text = truth[task["data"]["utt_id"]]
        task["annotations"] = [ls_annotation(10 * i, text, "2026-01-01T10:00:00Z")]
    tasks[0]["annotations"].insert(0, ls_annotation(1, "OLD", "2026-01-01T09:00:00Z"))
    tasks[1]["annotations"].append(ls_annotation(2, "SKIPPED", "2026-01-01T11:00:00Z",
                                                 cancelled=True))
    path = al.parent / "export.json"
    path.write_text(json.dumps(tasks))
    do_import(al, path, "--on_duplicate", "latest")
    labeled = DataDir.read(al / "random" / "round1" / "data" / "labeled")
    assert all(labeled.text[t["data"]["utt_id"]] == truth[t["data"]["utt_id"]] for t in tasks)


def ls_annotation(ident, text, stamp, cancelled=False):
    return {"id": ident, "was_cancelled": cancelled, "created_at": stamp, "updated_at": stamp,
            "result": [{"from_name": "transcription", "to_name": "audio", "type": "textarea",
                        "value": {"text": [text]}}]}


# ---- every bad annotation: one clear error, nothing written ------------------------------
def rows_of(al, truth):
    """The export's TSV rows, filled with the true transcripts (a list to damage)."""
    adir = AnnotationDir(al / "random" / "round0")
    out = []
    for line in adir.tsv.read_text().splitlines()[2:]:
        cells = line.split("\t")
        cells[-1] = truth[cells[0]]
        out.append(cells)
    return adir, out


def refused(al, path, caplog, *extra, strategy="random"):
    """Import ``path``; check it fails in one message and writes nothing; return it."""
    before = snapshot(al)
    caplog.clear()
    with pytest.raises(SystemExit) as e:
        do_import(al, path, *extra, strategy=strategy)
    assert e.value.code == 1
    assert snapshot(al) == before
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "Traceback" not in caplog.text
    return errors[0].getMessage()


def write_rows(adir, rows, name="bad.tsv"):
    lines = adir.tsv.read_text().splitlines()[:2] + ["\t".join(c) for c in rows]
    path = adir.dir.parent.parent.parent / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("damage, expect", [
    (lambda rows, pool, labeled: rows.append(["NO-SUCH-UTT", "", "", "", "", "HELLO"]),
     "[NO-SUCH-UTT]: unknown utterance id (not in the training pool"),
    (lambda rows, pool, labeled: rows.append([pool[-1], "", "", "", "", "HELLO"]),
     "]: not selected in random round 0"),
    (lambda rows, pool, labeled: rows.append([labeled[0], "", "", "", "", "HELLO"]),
     "]: already labeled (in the labeled set before this round)"),
    (lambda rows, pool, labeled: rows.pop(1),
     "]: selected in random round 0 but not annotated"),
    (lambda rows, pool, labeled: rows[2].__setitem__(5, "   "), "]: empty transcript"),
    (lambda rows, pool, labeled: rows.append(list(rows[0])), "]: annotated 2 times"),
], ids=["unknown_id", "not_selected", "already_labeled", "missing", "empty", "duplicate"])
def test_bad_tsv_is_refused(run_dir, caplog, damage, expect):
    al, truth = run_dir
    adir, rows = rows_of(al, truth)
    selected = {r[0] for r in rows}
    pool = [u for u in read_ids(al / "random" / "round0" / "pool") if u not in selected]
    damage(rows, pool, read_ids(al / "random" / "round0" / "labeled"))
    message = refused(al, write_rows(adir, rows), caplog)
    assert expect in message and "1 problem(s), nothing imported" in message
    assert "bad.tsv:" in message  # names the file and line


def test_duplicate_latest_wins_only_when_asked(run_dir, caplog):
    al, truth = run_dir
    adir, rows = rows_of(al, truth)
    rows.append(list(rows[0][:5]) + ["THE LATER ONE"])
    path = write_rows(adir, rows)
    assert "--on_duplicate latest keeps" in refused(al, path, caplog)
    do_import(al, path, "--on_duplicate", "latest")
    text = DataDir.read(al / "random" / "round1" / "data" / "labeled").text
    assert text[rows[0][0]] == "THE LATER ONE"


def test_characters_outside_the_token_list_reported_per_id_then_mapped(run_dir, caplog,
                                                                       tmp_path):
    al, truth = run_dir
    adir, rows = rows_of(al, truth)
    rows[0][5] = "CAF\u00e9 " + rows[0][5]
    rows[1][5] = rows[1][5].lower()
    path = write_rows(adir, rows)
    message = refused(al, path, caplog)
    assert f"[{rows[0][0]}]: characters outside the token list: '\u00e9' (U+00E9 " in message
    assert f"[{rows[1][0]}]: characters outside the token list:" in message
    assert "the token list has them in upper case: --case upper" in message
    assert "--oov map --oov_map FILE" in message
    mapping = tmp_path / "oov_map.txt"
    mapping.write_text("# accents\n\u00e9 E\n")
    assert "--oov map needs --oov_map FILE" in refused(al, path, caplog, "--oov", "map")
    do_import(al, path, "--oov", "map", "--oov_map", str(mapping), "--case", "upper")
    text = DataDir.read(al / "random" / "round1" / "data" / "labeled").text
    assert text[rows[0][0]] == "CAFE " + truth[rows[0][0]]
    assert text[rows[1][0]] == truth[rows[1][0]]


def test_file_of_another_round_is_refused(run_dir, caplog):
    al, truth = run_dir
    other = fill_tsv(AnnotationDir(al / "initial" / "round0").tsv, truth)
    message = refused(al, other, caplog)
    assert "from initial round 0 (export " in message
    assert "not from the export of random round 0" in message
    # and a Label Studio export of the initial set, imported for random round 0
    tasks = json.loads((al / "initial/round0/annotation/tasks.json").read_text())
    for task in tasks:
        task["annotations"] = [ls_annotation(1, truth[task["data"]["utt_id"]], "x")]
    path = al.parent / "initial.json"
    path.write_text(json.dumps(tasks))
    assert "from initial round 0" in refused(al, path, caplog)


def test_skipped_label_studio_task_is_missing(run_dir, caplog):
    al, truth = run_dir
    tasks = json.loads((al / "random/round0/annotation/tasks.json").read_text())
    for i, task in enumerate(tasks):
        task["annotations"] = [ls_annotation(i, truth[task["data"]["utt_id"]], "x",
                                             cancelled=i == 0)]
    path = al.parent / "skipped.json"
    path.write_text(json.dumps(tasks))
    message = refused(al, path, caplog)
    assert f"[{tasks[0]['data']['utt_id']}]: selected in random round 0 but not annotated" \
        in message


def test_tsv_without_its_export_line_is_refused(run_dir, caplog):
    al, truth = run_dir
    adir = AnnotationDir(al / "random" / "round0")
    filled = fill_tsv(adir.tsv, truth)
    filled.write_text("\n".join(filled.read_text().splitlines()[1:]) + "\n")
    assert "keep the export's first line" in refused(al, filled, caplog)


def test_unknown_round_is_refused(run_dir, caplog):
    al, truth = run_dir
    message = refused(al, al / "nothing.tsv", caplog, strategy="lp_diverse")
    assert "no export for this round" in message


KILLED_AT = """
import os, signal, sys
import espnet_lp.al.annotation.importer as importer
import espnet_lp.al.state as state
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[1] == "before_apply":  # the annotation files written, the round not yet built
    importer.apply_annotations = die
else:  # the round's labeled set written, the stage not yet marked done
    state.RunState.mark_done = die
from espnet_lp.bin.al_annotate import main
main(sys.argv[2:])
"""


def done_stages(al):
    path = al / "random" / "state.json"
    return json.loads(path.read_text()).get("done", []) if path.exists() else []


@pytest.mark.parametrize("point", ["before_apply", "before_mark"])
def test_import_killed_then_rerun_gives_the_clean_result(run_dir, point):
    import signal
    import subprocess
    import sys

    al, truth = run_dir
    adir = AnnotationDir(al / "random" / "round0")
    filled = fill_tsv(adir.tsv, truth)
    args = ["import", "--al_dir", str(al), "--strategy", "random", "--round", "0",
            "--input", str(filled)]
    proc = subprocess.run([sys.executable, "-c", KILLED_AT, point, *args],
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "round0/annotate" not in done_stages(al)
    do_import(al, filled)
    labeled = DataDir.read(al / "random" / "round1" / "data" / "labeled")
    selected = ExportRequest.read(adir.request).ids
    assert labeled.utt_ids == sorted(read_ids(al / "random" / "round0" / "labeled") + selected)
    assert labeled.text == {u: truth[u] for u in labeled.utt_ids}
    assert "round0/annotate" in done_stages(al)
    assert not [p for p in al.rglob("*") if ".tmp" in p.name]


def test_import_while_a_run_holds_the_dir_saves_and_applies_later(run_dir, caplog):
    from espnet_lp.al.state import ExpDirLock

    al, truth = run_dir
    adir = AnnotationDir(al / "random" / "round0")
    filled = fill_tsv(adir.tsv, truth)
    with ExpDirLock(al):  # as a running al_run holds it
        do_import(al, filled)
        assert "the transcripts are saved and the run applies them" in caplog.text
        assert "round0/annotate" not in done_stages(al)
    do_import(al, filled)  # the same file, the dir free: the round is built now
    assert "round0/annotate" in done_stages(al)
    labeled = DataDir.read(al / "random" / "round1" / "data" / "labeled")
    assert labeled.text == {u: truth[u] for u in labeled.utt_ids}


@pytest.mark.parametrize("root", ["audio", "elsewhere"])
def test_export_under_a_document_root_that_cannot_serve_the_audio(run_dir, caplog, root):
    """The round's audio dir itself, or a root beside the AL dir: Label Studio could not
    serve the audio (it serves a directory below the root); refused before writing."""
    al, _ = run_dir
    adir = AnnotationDir(al / "random" / "round0")
    path = adir.audio if root == "audio" else al.parent / "elsewhere"
    path.mkdir(exist_ok=True)
    before = snapshot(al)
    caplog.clear()
    with pytest.raises(SystemExit) as e:
        annotate_main(["export", "--al_dir", str(al), "--strategy", "random", "--round", "0",
                       "--document_root", str(path)])
    assert e.value.code == 1 and "Traceback" not in caplog.text
    assert f"--document_root {path}: the round's audio dir" in caplog.text
    assert snapshot(al) == before
