"""Shared fixtures: one small synthetic corpus per test session (seconds to build)."""

import shutil
from pathlib import Path

import pytest

from espnet_lp.data.asr_inputs import build_char_token_list, write_shape_files, write_token_list
from espnet_lp.data.datadir import DataDir
from espnet_lp.synth.config import SynthConfig
from espnet_lp.synth.corpus import make_corpus

SMALL = dict(train_utts=24, dev_utts=12, test_utts=6, utts_per_speaker=6, other_fraction=0.5)


def small_config(**overrides) -> SynthConfig:
    """A corpus small enough for unit tests, with both conditions present."""
    return SynthConfig(**{**SMALL, **overrides})


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory) -> Path:
    """Both corpora (LibriSpeech and AISHELL-1 layouts), read-only for tests."""
    out = tmp_path_factory.mktemp("synth")
    make_corpus(small_config(), out, num_jobs=2)
    return out


@pytest.fixture
def corpus_copy(synth_corpus, tmp_path) -> Path:
    """A private copy of the corpus that a test may damage."""
    dst = tmp_path / "corpus"
    shutil.copytree(synth_corpus, dst)
    return dst


@pytest.fixture(scope="session")
def en_inputs(synth_corpus, tmp_path_factory):
    """Data dirs, token list and shape files of the generated English corpus."""
    from espnet_lp.bin.prepare_data import main as prepare_main

    out = tmp_path_factory.mktemp("en_inputs")
    prepare_main(["--corpus", "librispeech", "--corpus_dir", str(synth_corpus), "--subsets",
                  "train-clean-100", "dev-clean", "--output_dir", str(out / "data")])
    train = DataDir.read(out / "data" / "train_clean_100")
    write_token_list(out / "token_list", build_char_token_list(train.text.values()))
    for name in ("train_clean_100", "dev_clean"):
        write_shape_files(DataDir.read(out / "data" / name), out / "shapes" / name,
                          out / "token_list")
    return out


@pytest.fixture(scope="session")
def trained(en_inputs, tmp_path_factory):
    """A tiny LP model trained for 2 epochs by the CLI (also serves as a KD teacher)."""
    from espnet_lp.bin.asr_train import main as train_main
    from tests.asr.conftest import train_cmd

    out = tmp_path_factory.mktemp("exp") / "tiny"
    train_main(train_cmd(en_inputs, out, "--max_epoch", "2", "--batch_size", "8"))
    return out
