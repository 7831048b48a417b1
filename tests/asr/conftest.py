"""Fixtures for model tests: a tiny LP model built from the tiny yaml, and a batch."""

from pathlib import Path

import pytest
import torch

from espnet_lp.data.asr_inputs import asr_train_data_args
from espnet_lp.data.datadir import DataDir

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "conf" / "tuning" / "train_lp_tiny.yaml"


def build_tiny(token_list: Path, *extra: str):
    from espnet2.tasks.asr import ASRTask

    args = ASRTask.get_parser().parse_args(
        ["--config", str(TINY), "--token_list", str(token_list), "--token_type", "char",
         "--output_dir", "unused", *extra])
    torch.manual_seed(0)
    return ASRTask.build_model(args)


@pytest.fixture
def tiny_model(en_inputs):
    return build_tiny(en_inputs / "token_list")


@pytest.fixture(scope="session")
def en_batch(en_inputs):
    """Four training utterances as ESPnet's collate would give them."""
    import soundfile

    data = DataDir.read(en_inputs / "data" / "train_clean_100")
    tokens = (en_inputs / "token_list").read_text().split("\n")
    index = {t: i for i, t in enumerate(tokens)}
    utts = data.utt_ids[:4]
    wavs = [torch.tensor(soundfile.read(data.wav_scp[u], dtype="float32")[0]) for u in utts]
    ids = [torch.tensor([index[c if c != " " else "<space>"] for c in data.text[u]]) for u in utts]
    speech = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    text = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=-1)
    return (speech, torch.tensor([len(w) for w in wavs]), text,
            torch.tensor([len(i) for i in ids]))


def train_cmd(inputs: Path, out: Path, *extra: str):
    """asr_train arguments for the tiny config on the prepared English data."""
    return ["--config", str(TINY), "--output_dir", str(out), "--ngpu", "0",
            *asr_train_data_args(inputs / "data", inputs / "shapes", inputs / "token_list",
                                 "train_clean_100", "dev_clean"),
            *extra]
