"""Fixtures of the active-learning tests: a round waiting for human annotation."""

import shutil
from pathlib import Path

import pytest

from espnet_lp.al.annotation.layout import AnnotationDir
from espnet_lp.al.loop import ALConfig, ALRun
from espnet_lp.al.oracle import AnnotationPending, HumanOracle, Selection
from espnet_lp.al.state import read_ids
from espnet_lp.bin.al_annotate import main as annotate_main
from espnet_lp.data.datadir import DataDir
from tests.asr.conftest import TINY


def stand_in_hypothesis(text: str) -> str:
    """What a weak model might say: lower case, the last word missing."""
    return " ".join(text.lower().split()[:-1]) or text.lower()


def fill_tsv(tsv: Path, text, out: Path = None, rows=None) -> Path:
    """The export's TSV with transcripts from ``text`` (``rows``: replace the data rows)."""
    lines = tsv.read_text(encoding="utf-8").splitlines()
    head, body = lines[:2], lines[2:]
    if rows is None:
        rows = []
        for line in body:
            cells = line.split("\t")
            cells[-1] = text[cells[0]]
            rows.append("\t".join(cells))
    out = out or tsv.with_name("filled.tsv")
    out.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def made(en_inputs, tmp_path_factory):
    """An AL dir whose initial set was annotated (TSV) and whose strategy ``random`` selected
    6 utterances in round 0 (exported with stand-in hypotheses), waiting for annotation.
    The pool has no transcripts; the hidden ones (``truth``) play the annotators."""
    work = tmp_path_factory.mktemp("annotate")
    pool = DataDir.read(en_inputs / "data" / "train_clean_100")
    truth, pool.text = pool.text, None
    pool.write(work / "pool")
    dev = str(en_inputs / "data" / "dev_clean")
    cfg = ALConfig(strategies=["random"], train_set=str(work / "pool"), valid_set=dev,
                   test_sets=[dev], token_list=str(en_inputs / "token_list"),
                   train_config=str(TINY), initial={"utterances": 8},
                   budget_per_round={"utterances": 6}, rounds=1, oracle="human")
    al = work / "al"
    with pytest.raises(AnnotationPending, match="8 utterances of the initial set wait"):
        ALRun(cfg, al).run()
    initial = AnnotationDir(al / "initial" / "round0")
    filled = fill_tsv(initial.tsv, truth)
    annotate_main(["import", "--al_dir", str(al), "--strategy", "initial", "--round", "0",
                   "--input", str(filled)])
    # random's round 0 selection, as the loop would make it after training round 0
    rdir = al / "random" / "round0"
    shutil.copytree(al / "initial" / "round0" / "data", rdir / "data")
    for name in ("labeled", "pool"):
        shutil.copyfile(al / "initial" / "round0" / name, rdir / name)
    chosen = read_ids(rdir / "pool")[:6]
    oracle = HumanOracle(al, DataDir.read(work / "pool"), str(work / "pool"), cfg.token_list,
                         cfg.digest(), cfg.seed,
                         decode=lambda model, wavs, out: {u: stand_in_hypothesis(truth[u])
                                                          for u in wavs})
    sel = Selection("random", 0, rdir, chosen, al / "random" / "round1",
                    {u: 1.0 - i / 10 for i, u in enumerate(chosen)}, rdir / "model",
                    rdir / "data" / "labeled")
    with pytest.raises(AnnotationPending, match="6 utterances of random round 0"):
        oracle.transcribe(sel)
    return work, truth
