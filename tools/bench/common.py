"""Shared helpers of the benchmarks: the tiny training setup and result files."""

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(ROOT))


def prepare_english(work: Path, train_utts: int, eval_utts: int, seed: int,
                    subsets: List[str], extra_train_utts: int = 0) -> Path:
    """Generate the English corpus, its data dirs, token list and shape files."""
    from espnet_lp.bin.make_asr_inputs import main as inputs_main
    from espnet_lp.bin.make_synth_corpus import main as synth_main
    from espnet_lp.bin.prepare_data import main as prepare_main

    synth_main(["--out", str(work / "corpus"), "--languages", "en", "--seed", str(seed),
                "--train_utts", str(train_utts), "--dev_utts", str(eval_utts),
                "--test_utts", str(eval_utts), "--extra_train_utts", str(extra_train_utts),
                "--num_jobs", str(os.cpu_count() or 1)])
    prepare_main(["--corpus", "librispeech", "--corpus_dir", str(work / "corpus"),
                  "--subsets", *subsets, "--output_dir", str(work / "data")])
    names = [s.replace("-", "_") for s in subsets]
    inputs_main(["--token_list_from", str(work / "data" / "train_clean_100"),
                 "--token_list_dir", str(work / "inputs"), "--shape_dir", str(work / "inputs"),
                 *[str(work / "data" / n) for n in names]])
    return work


def epoch_stats(exp: Path) -> dict:
    """ESPnet's per-epoch reporter statistics of a training run."""
    return torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["stats"]


def finished(exp: Path, epochs: int) -> bool:
    """Whether the training run in ``exp`` has done ``epochs`` epochs (a killed one has not)."""
    return (exp / "checkpoint.pth").is_file() and len(epoch_stats(exp)) >= epochs


def train_args(work: Path, out: Path, config: Path, valid: str = "dev_clean",
               train: str = "train_clean_100") -> List[str]:
    """asr_train arguments for the prepared English data."""
    from espnet_lp.data.asr_inputs import asr_train_data_args

    return ["--config", str(config), "--output_dir", str(out), "--ngpu", "0",
            *asr_train_data_args(work / "data", work / "inputs", work / "inputs" / "tokens.txt",
                                 train, valid)]


def machine() -> Dict:
    """Where the numbers were measured."""
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def git_commit() -> str:
    """The commit the benchmark runs (``+dirty`` when the tree has uncommitted changes)."""
    def git(*a):
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True,
                              text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # the results a previous run wrote do not make the code dirty
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  ":(exclude)tools/bench/results")
    return commit + ("+dirty" if changed else "")


def interleaved_cpu_seconds(fns: Dict[str, object], data, repeats: int) -> Dict:
    """Per function, CPU seconds over ``data`` per repeat; per batch the functions run back
    to back, in alternating order, so that a drift of the machine hits all of them."""
    times = {k: np.zeros(repeats) for k in fns}
    for r in range(repeats):
        order = list(fns) if r % 2 == 0 else list(fns)[::-1]
        for b in data:
            for name in order:
                start = time.process_time()
                fns[name](b)
                times[name][r] += time.process_time() - start
    return times


def write_results(name: str, data: Dict, table: List[List], header: List[str],
                  commit: Optional[str] = None, notes: Sequence[str] = ()) -> None:
    """``results/<name>.json`` (all figures) and ``results/<name>.md`` (table + command).

    ``commit``: the commit the run started from (taken now when not given).
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join(shlex.quote(a) for a in [
        str(Path(sys.argv[0]).resolve().relative_to(ROOT))] + sys.argv[1:])
    commit = commit or git_commit()
    data = {**data, "command": command, "commit": commit, "machine": machine()}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    lines = [f"# {name}", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    lines += ["", f"Made by (commit {commit}):", "", "```", command, "```", "",
              f"Machine: {data['machine']['cpu_count']} CPUs, torch {data['machine']['torch']}"]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
