"""espnet_lp.asr.ctc_alignment: encoder frames as ESPnet makes them, CTC's frame need, and
the warning about transcripts CTC cannot align."""

import logging

import pytest
import torch

from espnet_lp.asr.ctc_alignment import (EncoderGeometry, frames_needed, geometry_from_config,
                                         unalignable)
from espnet_lp.data.asr_inputs import build_char_token_list, write_shape_files, write_token_list
from espnet_lp.data.datadir import DataDir


@pytest.mark.parametrize("layer", ["conv2d", "conv2d2", "conv2d6", "conv2d8"])
def test_encoder_frames_match_espnet_frontend_and_subsampling(layer):
    from espnet2.asr.frontend.default import DefaultFrontend
    from espnet.nets.pytorch_backend.transformer import subsampling

    cls = {"conv2d": subsampling.Conv2dSubsampling, "conv2d2": subsampling.Conv2dSubsampling2,
           "conv2d6": subsampling.Conv2dSubsampling6,
           "conv2d8": subsampling.Conv2dSubsampling8}[layer]
    frontend = DefaultFrontend(fs=16000, n_fft=400, hop_length=160, n_mels=80)
    conv = cls(80, 4, 0.0).eval()
    for samples in (4000, 16000, 16159, 16160, 33333):
        feats, feat_lens = frontend(torch.zeros(1, samples), torch.tensor([samples]))
        with torch.no_grad():
            x, mask = conv(feats, torch.ones(1, 1, feats.size(1), dtype=torch.bool))
        assert int(feat_lens[0]) == 1 + samples // 160
        assert EncoderGeometry(160, layer).frames(samples) == mask.size(-1) == x.size(1)


def test_frames_needed_is_where_ctc_stops_being_finite():
    tokens = ["H", "E", "L", "L", "O", "<space>", "O", "O"]
    need = frames_needed(tokens)
    assert need == len(tokens) + 2
    ids = {t: i + 1 for i, t in enumerate(sorted(set(tokens)))}
    target = torch.tensor([[ids[t] for t in tokens]])
    for frames, finite in ((need, True), (need - 1, False)):
        logp = torch.randn(frames, 1, len(ids) + 1).log_softmax(-1)
        loss = torch.nn.functional.ctc_loss(logp, target, torch.tensor([frames]),
                                            torch.tensor([len(tokens)]), reduction="sum")
        assert bool(torch.isfinite(loss)) == finite
    geometry = EncoderGeometry(160, "linear")  # no subsampling: 1 + samples // 160 frames
    assert unalignable({"a": 160 * (need - 1), "b": 160 * (need - 2)},
                       {"a": tokens, "b": tokens}, geometry) == [("b", need - 1, need)]


@pytest.mark.parametrize("conf, expected", [
    ({"encoder": "conformer", "frontend_conf": {"hop_length": 160},
      "encoder_conf": {"input_layer": "conv2d6"}}, EncoderGeometry(160, "conv2d6")),
    ({"encoder": "e_branchformer"}, EncoderGeometry(128, "conv2d")),  # ESPnet's defaults
    ({"encoder": "rnn"}, None),  # its subsampling is not an input_layer
    ({"encoder": "conformer", "frontend": "s3prl"}, None),
    ({"encoder": "conformer", "preencoder": "linear"}, None),
    ({"encoder": "conformer", "encoder_conf": {"input_layer": "vgg2l"}}, None),
    ({"encoder": "conformer", "encoder_conf": {"input_layer": ["conv2d"]}}, None),
    ({"encoder": "conformer", "frontend_conf": {"hop_length": True}}, None),
    ({"encoder": "conformer", "encoder_conf": "conv2d"}, None),
    (["not", "a", "mapping"], None),
])
def test_geometry_from_config_claims_only_what_it_knows(conf, expected):
    assert geometry_from_config(conf) == expected


def test_shape_files_warn_about_transcripts_ctc_cannot_align(tmp_path, caplog):
    """One second of audio at hop 160 and 4x subsampling is 24 frames: 30 characters do not
    fit, 12 do; the warning names the data and the utterance, the shape files are as ever."""
    texts = {"fast": "THE QUICK BROWN FOX JUMPS OVER", "fine": "SLOW ENOUGH."}
    data = DataDir(wav_scp={u: f"/nonexistent/{u}.wav" for u in texts},
                   utt2spk={u: u for u in texts}, text=texts, utt2dur={u: 1.0 for u in texts})
    tokens = tmp_path / "tokens.txt"
    write_token_list(tokens, build_char_token_list(texts.values()))
    geometry = EncoderGeometry(160, "conv2d")
    with caplog.at_level(logging.WARNING):
        write_shape_files(data, tmp_path / "shapes", tokens, geometry=geometry)
    warned = [r.getMessage() for r in caplog.records
              if "cannot be aligned by CTC" in r.getMessage()]
    assert len(warned) == 1
    assert "shapes: 1 of 2 utterances" in warned[0] and "fast (24 frames, 30 needed)" in warned[0]
    assert "token_type bpe" in warned[0]
    assert (tmp_path / "shapes" / "text_shape.char").read_text() == "fast 30,{n}\nfine 12,{n}\n" \
        .format(n=len(tokens.read_text().split()))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        write_shape_files(data, tmp_path / "shapes2", tokens)  # no geometry: no claim
        write_shape_files(data.subset(["fine"]), tmp_path / "shapes3", tokens, geometry=geometry)
    assert not [r for r in caplog.records if "cannot be aligned" in r.getMessage()]


def test_the_al_loop_checks_its_training_sets_with_the_models_geometry(
        en_inputs, tmp_path, caplog):
    """The loop's training config (the tiny one: hop 160, conv2d) sets the geometry, and the
    shape files it writes for a training set carry the warning."""
    from espnet_lp.al.loop import ALConfig, ALRun
    from tests.asr.conftest import TINY

    dev = str(en_inputs / "data" / "dev_clean")
    cfg = ALConfig(strategies=["random"], train_set=str(en_inputs / "data" / "train_clean_100"),
                   valid_set=dev, test_sets=[dev], token_list=str(en_inputs / "token_list"),
                   train_config=str(TINY), initial={"utterances": 8},
                   budget_per_round={"utterances": 6}, rounds=1)
    run = ALRun(cfg, tmp_path / "al")
    assert run.geometry == EncoderGeometry(160, "conv2d")
    data = DataDir.read(en_inputs / "data" / "dev_clean")
    first = data.utt_ids[0]
    data.utt2dur = {**data.utt2dur, first: 0.1}  # 100 ms: 2 encoder frames
    with caplog.at_level(logging.WARNING):
        run._write_shapes(data, tmp_path / "shapes")
    assert f"1 of {len(data)} utterances cannot be aligned by CTC" in caplog.text
    assert f"{first} (2 frames" in caplog.text
