"""Label Studio end to end: a round's export goes into a real Label Studio server (its own
virtual environment, SQLite, localhost), is annotated through its API, comes back through
its export API and ``al_annotate import`` into the next round's labeled set.

Needs ``tools/install.sh --with_label_studio`` (``tools/run_tests.sh`` runs it); without it
the tests are skipped with the reason printed. The screenshot of a task page (audio player,
transcript box pre-filled with the model's hypothesis) is saved in the test's tmp dir and,
when ``ESPNET_LP_SCREENSHOT_DIR`` is set, copied there (``docs/img`` holds the committed one).
"""

import json
import os
import shutil

import pytest
import requests

from espnet_lp.al.annotation.export import model_version, storage_path
from espnet_lp.al.annotation.layout import AnnotationDir, ExportRequest
from espnet_lp.bin.al_annotate import main as annotate_main
from espnet_lp.data.datadir import DataDir
from tests.label_studio import LabelStudio, chromium, screenshot_page, why_unavailable

pytestmark = pytest.mark.slow


def skip(reason: str):
    print(f"SKIPPED: {reason}")  # in the log too, not only in pytest's summary
    pytest.skip(reason)


@pytest.fixture(scope="module")
def project(made, tmp_path_factory):
    """A Label Studio server serving a copy of the AL dir, with a project made from the
    export of random round 0 (config, audio storage, tasks, prediction version)."""
    reason = why_unavailable()
    if reason:
        skip(reason)
    work, truth = made
    root = tmp_path_factory.mktemp("ls_root")
    al = root / "al"
    shutil.copytree(work / "al", al, symlinks=True)
    annotate_main(["export", "--al_dir", str(al), "--strategy", "random", "--round", "0",
                   "--document_root", str(root)])
    adir = AnnotationDir(al / "random" / "round0")
    request = ExportRequest.read(adir.request)
    server = LabelStudio(tmp_path_factory.mktemp("ls_server"), root).start()
    try:
        pid = server.api("POST", "projects", json={
            "title": f"espnet-lp {request.describe()}",
            "label_config": adir.label_config.read_text()})["id"]
        server.api("POST", "storages/localfiles", json={
            "project": pid, "title": "AL audio", "path": str(storage_path(adir, root)),
            "use_blob_urls": False})
        imported = server.api("POST", f"projects/{pid}/import",
                              json=json.loads(adir.tasks_json.read_text()))
        assert imported["task_count"] == 6 and imported["prediction_count"] == 6
        server.api("PATCH", f"projects/{pid}", json={
            "model_version": model_version(request), "show_collab_predictions": True})
        tasks = server.api("GET", "tasks", params={"project": pid, "page_size": 100})["tasks"]
        yield server, pid, tasks, al, truth
    finally:
        server.stop()
        assert not server.data.exists()


def test_task_page_shows_the_player_and_the_prefilled_transcript(project, tmp_path):
    server, pid, tasks, al, truth = project
    exe = chromium()
    if exe is None:
        skip("no chromium: tools/install.sh --with_label_studio installs Debian's")
    task = server.api("GET", f"tasks/{tasks[0]['id']}")
    hyp = task["predictions"][0]["result"][0]["value"]["text"][0]
    # Label Studio serves the audio (local files, through the export's links)
    audio = requests.get(server.url + task["data"]["audio"], cookies=server.cookies())
    link = al / "random/round0/annotation/audio" / os.path.basename(task["data"]["audio"])
    assert audio.ok and audio.content == link.read_bytes()
    ready = ("(() => { const t = document.body.innerText;"
             " const box = [...document.querySelectorAll('textarea')].map(e => e.value);"
             f" return document.querySelector('canvas') && t.includes({json.dumps(hyp)})"
             "  && t.includes('Utterance ') && JSON.stringify({box: box, text: t}); })()")
    out = tmp_path / "label_studio_task.png"
    shown = screenshot_page(f"{server.url}/projects/{pid}/data?task={task['id']}",
                            server.cookies(), out, ready, tmp_path / "chromium")
    assert shown, f"the task page never showed the hypothesis {hyp!r}"
    shown = json.loads(shown)
    assert task["data"]["utt_id"] in shown["text"] and "Submit" in shown["text"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20000
    print(f"screenshot: {out}")
    if os.environ.get("ESPNET_LP_SCREENSHOT_DIR"):
        shutil.copyfile(out, os.path.join(os.environ["ESPNET_LP_SCREENSHOT_DIR"], out.name))


def test_annotated_in_label_studio_then_imported(project, tmp_path, caplog):
    server, pid, tasks, al, truth = project
    for task in tasks:
        pred = server.api("GET", f"tasks/{task['id']}")["predictions"][0]
        hyp = pred["result"][0]["value"]["text"][0]
        utt = task["data"]["utt_id"]
        edited = f"{hyp.upper()} {truth[utt].split()[-1]}"  # the annotator's correction
        assert edited == truth[utt]
        server.api("POST", f"tasks/{task['id']}/annotations", json={
            "result": [{"from_name": "transcription", "to_name": "audio", "type": "textarea",
                        "value": {"text": [edited]}}],
            "was_cancelled": False, "lead_time": 4.2, "parent_prediction": pred["id"]})
    export = server.api("GET", f"projects/{pid}/export", params={"exportType": "JSON"})
    assert len(export) == 6 and all(len(t["annotations"]) == 1 for t in export)
    path = tmp_path / "project-export.json"
    path.write_text(json.dumps(export))
    annotate_main(["import", "--al_dir", str(al), "--strategy", "random", "--round", "0",
                   "--input", str(path)])
    labeled = DataDir.read(al / "random" / "round1" / "data" / "labeled")
    assert len(labeled) == 14 and labeled.text == {u: truth[u] for u in labeled.utt_ids}
    assert json.loads((al / "random/round0/annotation/import.json").read_text())[
        "source"] == str(path)
    # Label Studio's JSON_MIN export holds the same transcripts: importing it changes nothing
    minimal = tmp_path / "project-export-min.json"
    minimal.write_text(json.dumps(server.api("GET", f"projects/{pid}/export",
                                             params={"exportType": "JSON_MIN"})))
    annotate_main(["import", "--al_dir", str(al), "--strategy", "random", "--round", "0",
                   "--input", str(minimal)])
    assert "the same transcripts were imported before; nothing to do" in caplog.text
