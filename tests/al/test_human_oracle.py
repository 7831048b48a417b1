"""al_run --oracle human on an untranscribed pool: it stops (exit status 3) whenever a
selection waits for transcripts, says what to do, and the same command resumes after
``al_annotate import`` until the run is complete."""

import json

import pytest

from espnet_lp.al.annotation.layout import AnnotationDir
from espnet_lp.al.state import read_ids
from espnet_lp.bin.al_annotate import main as annotate_main
from espnet_lp.bin.al_run import EXIT_ANNOTATION_PENDING
from espnet_lp.data.datadir import DataDir
from tests.al.conftest import fill_tsv
from tests.al.test_loop import al_run_cmd, run


@pytest.mark.slow
def test_loop_stops_for_annotation_and_resumes(en_inputs, tmp_path):
    pool = DataDir.read(en_inputs / "data" / "train_clean_100")
    truth, pool.text = pool.text, None
    pool.write(tmp_path / "pool")
    cmd = al_run_cmd(en_inputs, tmp_path / "al", ["random"])
    cmd[cmd.index("--train_set") + 1] = str(tmp_path / "pool")
    cmd += ["--oracle", "human", "--nj", "1"]
    al = tmp_path / "al"

    proc = run(cmd, tmp_path)  # the initial set waits: nothing trained yet
    assert proc.returncode == EXIT_ANNOTATION_PENDING, proc.stderr[-3000:]
    assert "8 utterances of the initial set wait for transcripts" in proc.stderr
    assert (f"al_annotate import --al_dir {al} --strategy initial --round 0 --input "
            f"{al}/initial/round0/annotation/tasks.tsv") in proc.stderr
    assert "rerun this al_run command" in proc.stderr and "Traceback" not in proc.stderr
    assert not (al / "initial" / "round0" / "model").exists()
    annotate_main(["import", "--al_dir", str(al), "--strategy", "initial", "--round", "0",
                   "--input", str(fill_tsv(AnnotationDir(al / "initial/round0").tsv, truth))])

    proc = run(cmd, tmp_path)  # trains round 0, selects, exports with hypotheses, waits
    assert proc.returncode == EXIT_ANNOTATION_PENDING, proc.stderr[-3000:]
    assert "6 utterances of random round 0 wait" in proc.stderr
    adir = AnnotationDir(al / "random" / "round0")
    selected = read_ids(al / "random" / "round0" / "selected")
    assert [t["data"]["utt_id"] for t in json.loads(adir.tasks_json.read_text())] == selected
    # the pre-annotation is the round-0 model's decoding of exactly the selection
    assert read_ids(adir.hyp_dir / "wav.scp") == sorted(selected)
    assert "asr_inference" in (adir.hyp_dir / "split" / "decode.1.log").read_text()
    hyps = dict(line.partition("\t")[::2] for line in adir.tsv.read_text().splitlines()[2:])
    assert sorted(hyps) == sorted(selected)
    assert not (al / "random" / "round1").exists()

    annotate_main(["import", "--al_dir", str(al), "--strategy", "random", "--round", "0",
                   "--input", str(fill_tsv(adir.tsv, truth))])
    proc = run(cmd, tmp_path)  # resumes: trains and decodes round 1, then the report
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "round 0/1 train" not in proc.stderr and "round 1/1 train" in proc.stderr
    labeled = DataDir.read(al / "random" / "round1" / "data" / "labeled")
    assert len(labeled) == 14 and labeled.text == {u: truth[u] for u in labeled.utt_ids}
    assert (al / "RESULTS.md").is_file()
    assert json.loads((al / "random/round1/metrics.json").read_text())[
        "labeled_utterances"] == 14


def test_human_oracle_refuses_simulation_only_strategies(en_inputs, tmp_path, caplog):
    from espnet_lp.bin.al_run import main

    args = al_run_cmd(en_inputs, tmp_path / "al", ["true_loss"])[3:]  # without "python -m x"
    cmd = args + ["--oracle", "human"]
    with pytest.raises(SystemExit) as e:
        main(cmd)
    assert e.value.code == 1
    assert "true_loss reads the pool's hidden transcripts" in caplog.text
    assert not (tmp_path / "al").exists()
