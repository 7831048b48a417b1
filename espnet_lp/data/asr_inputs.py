"""What ESPnet training needs besides a data dir: a token list and shape files.

ESPnet's ``asr.sh`` makes these in its tokenisation and statistics stages; this is the same
output from a data directory in Python (no Kaldi, no extra pass over the audio: speech lengths
come from ``utt2dur``).
"""

from collections import Counter
from pathlib import Path
from typing import Iterable, List, Optional

from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError
from espnet_lp.utils.fileio import Pathlike, atomic_write_text

BLANK, UNK, SOS_EOS = "<blank>", "<unk>", "<sos/eos>"


TOKEN_TYPES = ("char", "bpe")


def build_tokenizer(token_type: str = "char", bpemodel: Optional[Pathlike] = None):
    """ESPnet's tokenizer for ``token_type`` (``<space>`` for spaces, as ESPnet's recipes)."""
    from espnet2.text.build_tokenizer import build_tokenizer as espnet_build_tokenizer

    if token_type not in TOKEN_TYPES:
        raise DataPrepError(f"token_type must be one of {TOKEN_TYPES}: {token_type!r}")
    if token_type == "bpe":
        if bpemodel is None or not Path(bpemodel).is_file():
            raise DataPrepError(f"token_type bpe needs the BPE model file: {bpemodel}")
        return espnet_build_tokenizer(token_type="bpe", bpemodel=str(bpemodel))
    return espnet_build_tokenizer(token_type="char", space_symbol="<space>")


def build_token_list(texts: Iterable[str], tokenizer) -> List[str]:
    """``<blank>``, ``<unk>``, the tokens of ``texts`` by decreasing frequency, ``<sos/eos>``
    (what ESPnet's ``tokenize_text --write_vocabulary true`` writes in ``asr.sh``).

    Ties are broken by code point, so the list is reproducible.
    """
    counts = Counter(tok for text in texts for tok in tokenizer.text2tokens(text))
    counts.pop(UNK, None)
    if not counts:
        raise DataPrepError("no text to build a token list from")
    ordered = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return [BLANK, UNK] + ordered + [SOS_EOS]


def build_char_token_list(texts: Iterable[str]) -> List[str]:
    """The character token list of ``texts`` (:func:`build_token_list`)."""
    return build_token_list(texts, build_tokenizer("char"))


def train_bpe_model(texts: Iterable[str], model_prefix: Pathlike, nbpe: int,
                    bpemode: str = "unigram") -> Path:
    """Train a sentencepiece model as ESPnet's ``asr.sh`` stage 5 does; return its path.

    ``hard_vocab_limit`` is off, so a small corpus yields fewer pieces instead of an error.
    """
    import sentencepiece

    prefix = Path(model_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    lines = [t for t in texts if t.strip()]
    if not lines:
        raise DataPrepError("no text to train a BPE model on")
    if nbpe < 2:
        raise DataPrepError(f"nbpe must be >= 2: {nbpe}")
    train_text = prefix.parent / f".{prefix.name}.train.txt"
    atomic_write_text(train_text, "".join(f"{t}\n" for t in lines))
    try:
        sentencepiece.SentencePieceTrainer.train(
            input=str(train_text), model_prefix=str(prefix.parent / f".{prefix.name}.tmp"),
            vocab_size=nbpe, model_type=bpemode, character_coverage=1.0,
            input_sentence_size=100000000, hard_vocab_limit=False, minloglevel=2)
    finally:
        train_text.unlink()
    for ext in ("model", "vocab"):  # moved into place only when both exist
        (prefix.parent / f".{prefix.name}.tmp.{ext}").replace(f"{prefix}.{ext}")
    return Path(f"{prefix}.model")


def write_token_list(path: Pathlike, tokens: List[str]) -> None:
    """One token per line, atomically."""
    atomic_write_text(path, "".join(f"{t}\n" for t in tokens))


def write_shape_files(data: DataDir, out_dir: Pathlike, token_list: Pathlike,
                      token_type: str = "char", bpemodel: Optional[Pathlike] = None,
                      sample_rate: int = 16000) -> None:
    """``speech_shape`` and, with text, ``text_shape.<token_type>``, in ESPnet's formats.

    ``speech_shape``: ``utt samples``; ``text_shape.<token_type>``: ``utt tokens,vocabulary``
    (as ``asr.sh`` writes them, so that ``batch_type: numel`` counts the same). These are
    the files of ``--train_shape_file``/``--valid_shape_file`` (sorting and batching).
    """
    if data.utt2dur is None:
        raise DataPrepError("shape files need utt2dur")
    out_dir = Path(out_dir)
    vocab = len(Path(token_list).read_text(encoding="utf-8").splitlines())
    atomic_write_text(out_dir / "speech_shape", "".join(
        f"{u} {int(round(data.utt2dur[u] * sample_rate))}\n" for u in data.utt_ids))
    if data.text is not None:
        tok = build_tokenizer(token_type, bpemodel)
        atomic_write_text(out_dir / f"text_shape.{token_type}", "".join(
            f"{u} {len(tok.text2tokens(data.text[u]))},{vocab}\n" for u in data.utt_ids))


def asr_train_data_args(data_dir: Pathlike, shapes_dir: Pathlike, token_list: Pathlike,
                        train: str, valid: str, token_type: str = "char",
                        bpemodel: Optional[Pathlike] = None) -> List[str]:
    """The data options of ``asr_train`` for data dirs prepared by this module.

    Args:
        data_dir: Parent of the data directories.
        shapes_dir: Parent of the per-set shape-file directories (:func:`write_shape_files`).
        token_list: The token list.
        train: Name of the training set under ``data_dir``.
        valid: Name of the validation set.
        token_type: ``char`` or ``bpe`` (with ``bpemodel``).
    """
    d, s = Path(data_dir), Path(shapes_dir)
    bpe = ["--bpemodel", str(bpemodel)] if token_type == "bpe" else []
    return ["--token_list", str(token_list), "--token_type", token_type, *bpe,
            *role_data_args("train", d / train, s / train, token_type),
            *role_data_args("valid", d / valid, s / valid, token_type)]


def role_data_args(role: str, data_dir: Pathlike, shapes_dir: Pathlike,
                   token_type: str = "char") -> List[str]:
    """``--<role>_data_path_and_name_and_type`` and ``--<role>_shape_file`` options of one
    data dir and its shape files (role: ``train`` or ``valid``)."""
    d, s = Path(data_dir), Path(shapes_dir)
    return [f"--{role}_data_path_and_name_and_type", f"{d / 'wav.scp'},speech,sound",
            f"--{role}_data_path_and_name_and_type", f"{d / 'text'},text,text",
            f"--{role}_shape_file", str(s / "speech_shape"),
            f"--{role}_shape_file", str(s / f"text_shape.{token_type}")]
