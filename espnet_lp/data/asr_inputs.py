"""What ESPnet training needs besides a data dir: a token list and shape files.

ESPnet's ``asr.sh`` makes these in its tokenisation and statistics stages; this is the same
output from a data directory in Python (no Kaldi, no extra pass over the audio: speech lengths
come from ``utt2dur``).
"""

from collections import Counter
from pathlib import Path
from typing import Iterable, List

from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError
from espnet_lp.utils.fileio import Pathlike, atomic_write_text

BLANK, UNK, SOS_EOS = "<blank>", "<unk>", "<sos/eos>"


def _char_tokenizer():
    from espnet2.text.build_tokenizer import build_tokenizer

    return build_tokenizer(token_type="char", space_symbol="<space>")


def build_char_token_list(texts: Iterable[str]) -> List[str]:
    """``<blank>``, ``<unk>``, characters by decreasing frequency, ``<sos/eos>``.

    Spaces become ``<space>`` as with ESPnet's char tokenizer; ties are broken by code point
    so the list is reproducible.
    """
    tokenizer = _char_tokenizer()
    counts = Counter(tok for text in texts for tok in tokenizer.text2tokens(text))
    if not counts:
        raise DataPrepError("no text to build a token list from")
    ordered = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return [BLANK, UNK] + ordered + [SOS_EOS]


def write_token_list(path: Pathlike, tokens: List[str]) -> None:
    """One token per line, atomically."""
    atomic_write_text(path, "".join(f"{t}\n" for t in tokens))


def write_shape_files(data: DataDir, out_dir: Pathlike, sample_rate: int = 16000) -> None:
    """``speech_shape`` (samples) and, with text, ``text_shape.char`` (tokens) per utterance.

    These are the files ESPnet's ``--train_shape_file``/``--valid_shape_file`` expect (used
    to sort and batch by length).
    """
    if data.utt2dur is None:
        raise DataPrepError("shape files need utt2dur")
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "speech_shape", "".join(
        f"{u} {int(round(data.utt2dur[u] * sample_rate))}\n" for u in data.utt_ids))
    if data.text is not None:
        tok = _char_tokenizer()
        atomic_write_text(out_dir / "text_shape.char", "".join(
            f"{u} {len(tok.text2tokens(data.text[u]))}\n" for u in data.utt_ids))
