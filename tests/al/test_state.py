"""Round state: id lists, partition checks, stage records, the exp-dir lock."""

import os
import socket
import subprocess
import sys

import pytest

from espnet_lp.al.state import (
    ExpDirLock,
    RunState,
    StateError,
    check_partition,
    read_ids,
    write_ids,
)


def test_ids_round_trip_sorted(tmp_path):
    write_ids(tmp_path / "ids", ["b", "a", "c"])
    assert read_ids(tmp_path / "ids") == ["a", "b", "c"]
    with pytest.raises(StateError, match="missing"):
        read_ids(tmp_path / "none")


@pytest.mark.parametrize("labeled, pool, match", [
    (["a", "b"], ["b", "c"], "1 utterances are both labeled and in the pool, e.g. b"),
    (["a"], ["b"], "1 utterances were lost, e.g. c"),
    (["a", "b", "c", "x"], [], "1 utterances are not in the training pool, e.g. x"),
])
def test_partition_errors(labeled, pool, match):
    with pytest.raises(StateError, match=match):
        check_partition(labeled, pool, ["a", "b", "c"], "round3")
    check_partition(["a"], ["b", "c"], ["a", "b", "c"], "round3")


def test_run_state_records_stages_and_refuses_other_settings(tmp_path):
    path = tmp_path / "random" / "state.json"
    path.parent.mkdir()
    state = RunState(path, "hash1", seed=0)
    assert not state.is_done("round0/score")
    state.mark_done("round0/score")
    again = RunState(path, "hash1", seed=0)
    assert again.is_done("round0/score") and again.done == ["round0/score"]
    with pytest.raises(StateError, match="another configuration or seed"):
        RunState(path, "hash2", seed=0)
    with pytest.raises(StateError, match="another configuration or seed"):
        RunState(path, "hash1", seed=1)
    path.write_text("{not json")
    with pytest.raises(StateError, match="unreadable state"):
        RunState(path, "hash1", seed=0)


def test_lock_refuses_a_live_run_and_recovers_a_stale_one(tmp_path):
    with ExpDirLock(tmp_path):
        with pytest.raises(StateError, match=f"another run \\(pid {os.getpid()}\\)"):
            ExpDirLock(tmp_path).__enter__()
    assert not (tmp_path / ".lock").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / ".lock").write_text(f"{dead} {socket.gethostname()}\n")
    with ExpDirLock(tmp_path):  # stale: its process is gone
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
    (tmp_path / ".lock").write_text("123 some-other-host\n")
    with pytest.raises(StateError, match="held by process 123 on some-other-host"):
        ExpDirLock(tmp_path).__enter__()
