"""Splitting lists into key files for sharded jobs."""

import pytest

from espnet_lp.bin.split_scp import main as split_main
from espnet_lp.bin.split_scp import split_lines


def test_chunks_are_contiguous_and_balanced():
    lines = [f"u{i}\n" for i in range(10)]
    chunks = split_lines(lines, 3)
    assert [len(c) for c in chunks] == [4, 3, 3]
    assert sum(chunks, []) == lines


def test_cli_with_nj_and_explicit_outputs(tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i} /a/u{i}.wav\n" for i in range(5)))
    split_main(["--nj", "2", str(scp), str(tmp_path / "keys")])
    assert (tmp_path / "keys" / "keys.1").read_text().count("\n") == 3
    assert (tmp_path / "keys" / "keys.2").read_text().splitlines()[-1] == "u4 /a/u4.wav"
    split_main([str(scp), *(str(tmp_path / f"k{n}") for n in range(5))])
    assert (tmp_path / "k4").read_text() == "u4 /a/u4.wav\n"


@pytest.mark.parametrize("content,nj,match", [
    ("u1 a\n", 2, "1 lines cannot fill 2 shards"),
    ("u1 a\n\nu2 b\n", 1, "wav.scp:2: empty line"),
])
def test_bad_requests(tmp_path, caplog, content, nj, match):
    scp = tmp_path / "wav.scp"
    scp.write_text(content)
    with pytest.raises(SystemExit):
        split_main(["--nj", str(nj), str(scp), str(tmp_path / "keys")])
    assert match in caplog.text
    assert not (tmp_path / "keys").exists()
