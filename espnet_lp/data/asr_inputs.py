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


def asr_train_data_args(data_dir: Pathlike, shapes_dir: Pathlike, token_list: Pathlike,
                        train: str, valid: str) -> List[str]:
    """The data options of ``asr_train`` for data dirs prepared by this module.

    Args:
        data_dir: Parent of the data directories.
        shapes_dir: Parent of the per-set shape-file directories (:func:`write_shape_files`).
        token_list: The character token list.
        train: Name of the training set under ``data_dir``.
        valid: Name of the validation set.
    """
    d, s = Path(data_dir), Path(shapes_dir)
    return ["--token_list", str(token_list), "--token_type", "char",
            *role_data_args("train", d / train, s / train),
            *role_data_args("valid", d / valid, s / valid)]


def role_data_args(role: str, data_dir: Pathlike, shapes_dir: Pathlike) -> List[str]:
    """``--<role>_data_path_and_name_and_type`` and ``--<role>_shape_file`` options of one
    data dir and its shape files (role: ``train`` or ``valid``)."""
    d, s = Path(data_dir), Path(shapes_dir)
    return [f"--{role}_data_path_and_name_and_type", f"{d / 'wav.scp'},speech,sound",
            f"--{role}_data_path_and_name_and_type", f"{d / 'text'},text,text",
            f"--{role}_shape_file", str(s / "speech_shape"),
            f"--{role}_shape_file", str(s / "text_shape.char")]
