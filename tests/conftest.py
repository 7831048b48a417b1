"""Shared fixtures: one small synthetic corpus per test session (seconds to build)."""

import shutil
from pathlib import Path

import pytest

from espnet_lp.synth.config import SynthConfig
from espnet_lp.synth.corpus import make_corpus

SMALL = dict(train_utts=24, dev_utts=6, test_utts=6, utts_per_speaker=6, other_fraction=0.5)


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
