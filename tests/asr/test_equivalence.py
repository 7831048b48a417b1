"""ESPnetLPASRModel with ``lp_weight: 0`` is ESPnetASRModel: same loss, same statistics.

Written for this project (not ESPnet's tests): both models are built by stock ASRTask from
the same options and seed, differing only in ``--model``, over a matrix of ESPnet settings.
"""

import itertools

import pytest
import torch

VOCAB = ["<blank>", "<unk>", "a", "b", "c", "d", "e", "<space>", "<sos/eos>"]


def build(model: str, decoder: str, ctc_weight: float, interctc: bool, length_norm: bool,
          tmp_path):
    from espnet2.tasks.asr import ASRTask

    token_list = tmp_path / "tokens.txt"
    token_list.write_text("\n".join(VOCAB) + "\n")
    encoder_conf = ("{output_size: 16, attention_heads: 2, linear_units: 32, num_blocks: 2, "
                    "input_layer: conv2d, dropout_rate: 0.0"
                    + (", interctc_layer_idx: [1]" if interctc else "") + "}")
    decoder_conf = ("{attention_heads: 2, linear_units: 32, num_blocks: 1, dropout_rate: 0.0}"
                    if decoder == "transformer" else "{num_layers: 1, hidden_size: 16}")
    args = ["--output_dir", "x", "--token_list", str(token_list), "--input_size", "20",
            "--normalize", "none", "--specaug", "none",
            "--encoder", "transformer", "--encoder_conf", encoder_conf,
            "--decoder", decoder, "--decoder_conf", decoder_conf, "--model", model,
            "--model_conf", f"ctc_weight={ctc_weight}",
            "--model_conf", f"interctc_weight={0.3 if interctc else 0.0}",
            "--model_conf", f"length_normalized_loss={str(length_norm).lower()}",
            "--model_conf", "lsm_weight=0.1"]
    if model == "lp_espnet":
        # LP needs the CTC branch (its heads read the CTC greedy hypothesis)
        targets = [t for t, ok in (("ctc", ctc_weight > 0), ("att", 0 < ctc_weight < 1
                                                             and decoder == "transformer")) if ok]
        # mask_padding changes the computation for padded batches (on purpose): off here
        args += ["--model_conf", "lp_weight=0.0", "--model_conf", "mask_padding=false"]
        if targets:
            args += ["--model_conf", f"lp_decoder_conf.targets=[{','.join(targets)}]",
                     "--model_conf", "lp_decoder_conf.encoder_layers=[1,2]",
                     "--model_conf", "lp_decoder_conf.features=[hidden,posteriors]"]
        else:
            args += ["--model_conf", "lp_decoder=none"]
    torch.manual_seed(0)
    return ASRTask.build_model(ASRTask.get_parser().parse_args(args))


def batch():
    g = torch.Generator().manual_seed(1)
    speech = torch.randn(3, 40, 20, generator=g)
    speech_lengths = torch.tensor([40, 33, 25])
    text = torch.tensor([[2, 3, 4, 7, 5], [6, 2, 3, -1, -1], [4, 4, -1, -1, -1]])
    return speech, speech_lengths, text, torch.tensor([5, 3, 2])


# interctc reuses the CTC module, which ESPnet does not build at ctc_weight 0 (stock fails too)
MATRIX = [cell for cell in itertools.product(["transformer", "rnn"], [0.0, 0.3, 1.0],
                                             [False, True], [False, True])
          if not (cell[1] == 0.0 and cell[2])]


@pytest.mark.parametrize("decoder,ctc_weight,interctc,length_norm", MATRIX)
def test_lp_weight_zero_equals_stock(decoder, ctc_weight, interctc, length_norm, tmp_path):
    stock = build("espnet", decoder, ctc_weight, interctc, length_norm, tmp_path).eval()
    lp = build("lp_espnet", decoder, ctc_weight, interctc, length_norm, tmp_path).eval()
    assert type(lp).__name__ == "ESPnetLPASRModel"
    missing = lp.load_state_dict(stock.state_dict(), strict=False).missing_keys
    assert all(k == "lp_epoch" or k.startswith("lp_decoder.") for k in missing)
    with torch.no_grad():
        loss, stats, weight = stock(*batch())
        lp_loss, lp_stats, lp_weight = lp(*batch())
    torch.testing.assert_close(lp_loss, loss, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(lp_weight, weight, rtol=0, atol=0)
    for key, value in stats.items():
        if value is None:
            assert lp_stats[key] is None, key
        else:
            torch.testing.assert_close(lp_stats[key], value, rtol=1e-6, atol=1e-7, msg=key)
    if lp.lp_decoder is not None:
        assert "loss_lp" in lp_stats
    for value in lp_stats.values():  # gatherable like ESPnet's: 1-dim tensors
        assert value is None or value.dim() == 1
