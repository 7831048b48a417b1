"""Shape files against the token list: how a high share of ``<unk>`` is treated."""

import logging

import pytest

from espnet_lp.data.asr_inputs import build_char_token_list, shape_texts, write_token_list
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError


def _data(texts):
    ids = [f"u{i}" for i in range(len(texts))]
    return DataDir(wav_scp={u: f"{u}.wav" for u in ids}, utt2spk={u: "s" for u in ids},
                   text=dict(zip(ids, texts)), utt2dur={u: 1.0 for u in ids})


def test_mostly_unknown_tokens_are_an_error_only_for_a_reused_token_list(tmp_path, caplog):
    tokens = tmp_path / "tokens.txt"
    write_token_list(tokens, build_char_token_list(["我们 学习"]))
    dev = _data(["而成学问论", "而成学问"])  # a small Mandarin dev set: most characters unseen
    with caplog.at_level(logging.WARNING):
        out = shape_texts(dev, tokens, "char", name="data/dev")  # a list made in this run
    assert out["text_shape.char"].startswith("u0 5,")
    assert "data/dev: " in caplog.text and "become <unk>" in caplog.text
    with pytest.raises(DataPrepError, match=r"data/dev: .*% of the transcript tokens .*"
                                            r"another corpus"):
        shape_texts(dev, tokens, "char", name="data/dev", unknown_is_error=True)
