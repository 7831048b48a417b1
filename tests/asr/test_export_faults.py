"""Export faults: the packer dies with its parent; exports into one directory do not share
staging names; a failed pack leaves nothing behind."""

import os
import signal
import subprocess
import time

import pytest
import torch

from espnet_lp.asr import export
from tests.asr.test_export import CONFIG
from tests.io_helpers import children, hidden_entries, process_state, wait_until


def test_packer_dies_with_a_killed_parent(tmp_path):
    """ESPnet's packer (a Python process that imports ESPnet for seconds) is gone once the
    export that started it is SIGKILLed (it is started with PR_SET_PDEATHSIG: checked on the
    call below, since a packer writing to its closed pipes dies of SIGPIPE anyway), and the
    next pack of that output removes what the killed one left."""
    staging = tmp_path / "staging"
    extra = export.stage(CONFIG, {"w": torch.ones(1)}, staging)
    out = tmp_path / "out" / "model_lp.zip"
    out.parent.mkdir()
    pid = os.fork()
    if pid == 0:  # the export
        try:
            export.pack_zip(staging, extra, out)
        finally:
            os._exit(0)
    try:
        wait_until(lambda: children(pid), 30, "the packer to start")
        packers = children(pid)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        wait_until(lambda: all(process_state(p) in (None, "Z") for p in packers), 10,
                   f"packer {packers} to exit after its parent was killed")
    finally:
        if process_state(pid) not in (None, "Z"):
            os.kill(pid, signal.SIGKILL)
    assert not out.exists() and hidden_entries(out.parent)  # its temporary file
    calls = []

    def fake_packer(cmd, **kwargs):
        calls.append(kwargs)
        return subprocess.CompletedProcess(cmd, 1, "", "packer failed")

    with pytest.MonkeyPatch.context() as m:
        m.setattr(export.subprocess, "run", fake_packer)
        with pytest.raises(export.ExportError, match="packer failed"):
            export.pack_zip(staging, extra, out)
    assert calls[0]["preexec_fn"] is export.child_dies_with_parent
    assert not out.exists() and hidden_entries(out.parent) == []


def test_exports_into_one_directory_stage_apart(tmp_path, monkeypatch, en_inputs):
    """Each export stages under names of its own (two at once do not meet), and a failed one
    leaves no staging directory."""
    from tests.io_helpers import make_tiny_exp

    exp = make_tiny_exp(en_inputs / "token_list", tmp_path / "exp")
    (exp / "model.pth").rename(exp / "valid.acc.best.pth")
    staged = []

    def fake_packer(cmd, cwd, **kwargs):
        staged.append(cwd)
        assert sorted(p.name for p in cwd.iterdir()) == ["exp"]
        if len(staged) == 3:
            return subprocess.CompletedProcess(cmd, 1, "", "packer failed")
        zipped = cmd[cmd.index("--outpath") + 1]
        with open(zipped, "wb") as f:
            f.write(b"zip")
        time.sleep(0.01)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(export.subprocess, "run", fake_packer)
    out = tmp_path / "out"
    export.export_zips(exp, out)
    with pytest.raises(export.ExportError):
        export.export_zips(exp, out)
    assert len(set(staged)) == 3 and all(p.parent == out for p in staged)
    assert sorted(p.name for p in out.iterdir()) == ["model_lp.zip", "model_stock.zip"]
