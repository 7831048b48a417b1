"""What ESPnet training needs besides a data dir: a token list and shape files.

ESPnet's ``asr.sh`` makes these in its tokenisation and statistics stages; this is the same
output from a data directory in Python (no Kaldi, no extra pass over the audio: speech lengths
come from ``utt2dur``).
"""

import contextlib
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from espnet_lp.asr.ctc_alignment import EncoderGeometry, Unalignable, unalignable
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError
from espnet_lp.utils.fileio import Pathlike, atomic_write_text, path_problem, temp_sibling
from espnet_lp.utils.outputs import atomic_outputs

logger = logging.getLogger(__name__)

BLANK, UNK, SOS_EOS = "<blank>", "<unk>", "<sos/eos>"
TOKEN_TYPES = ("char", "bpe")
BPE_MODES = ("unigram", "bpe")
#: Share of transcript tokens outside the token list that is an error (the list was made
#: from another corpus) / that is worth a warning.
UNK_ERROR_SHARE = 0.5
UNK_WARN_SHARE = 0.02


def build_tokenizer(token_type: str = "char", bpemodel: Optional[Pathlike] = None):
    """ESPnet's tokenizer for ``token_type`` (``<space>`` for spaces, as ESPnet's recipes)."""
    from espnet2.text.build_tokenizer import build_tokenizer as espnet_build_tokenizer

    if token_type not in TOKEN_TYPES:
        raise DataPrepError(f"token_type must be one of {TOKEN_TYPES}: {token_type!r}")
    if token_type == "bpe":
        problem = "not given" if bpemodel is None else path_problem(bpemodel)
        if problem is not None:
            raise DataPrepError(f"token_type bpe needs the BPE model file: {bpemodel}: {problem}")
        try:
            return espnet_build_tokenizer(token_type="bpe", bpemodel=str(bpemodel))
        except (RuntimeError, OSError) as e:
            raise DataPrepError(f"{bpemodel}: not a sentencepiece model "
                                f"({' '.join(str(e).split())})") from None
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
    ``<prefix>.model`` and ``<prefix>.vocab`` are written only when both are complete.
    """
    prefix = Path(model_prefix)
    files = [Path(f"{prefix}.model"), Path(f"{prefix}.vocab")]
    with atomic_outputs(files=files) as staged:
        tmp = temp_sibling(prefix)
        try:
            _train_sentencepiece(texts, tmp, nbpe, bpemode)
            for ext, final in zip(("model", "vocab"), files):
                os.replace(f"{tmp}.{ext}", staged[final])
        finally:
            for ext in ("model", "vocab"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{tmp}.{ext}")
    return files[0]


def _train_sentencepiece(texts: Iterable[str], prefix: Path, nbpe: int, bpemode: str) -> None:
    """Train into ``<prefix>.model`` and ``<prefix>.vocab`` (private names: no lock)."""
    import sentencepiece

    lines = [t for t in texts if t.strip()]
    if not lines:
        raise DataPrepError("no text to train a BPE model on")
    if nbpe < 2:
        raise DataPrepError(f"nbpe must be >= 2: {nbpe}")
    if bpemode not in BPE_MODES:
        raise DataPrepError(f"bpemode must be one of {BPE_MODES}: {bpemode!r}")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    train_text = Path(f"{prefix}.train.txt")
    train_text.write_text("".join(f"{t}\n" for t in lines), encoding="utf-8")
    try:
        sentencepiece.SentencePieceTrainer.train(
            input=str(train_text), model_prefix=str(prefix), vocab_size=nbpe,
            model_type=bpemode, character_coverage=1.0, input_sentence_size=100000000,
            hard_vocab_limit=False, minloglevel=2)
    except RuntimeError as e:
        raise DataPrepError(f"sentencepiece could not train a {bpemode} model of {nbpe} "
                            f"pieces: {' '.join(str(e).split())}") from None
    finally:
        train_text.unlink()


def write_token_list(path: Pathlike, tokens: List[str]) -> None:
    """One token per line, atomically."""
    atomic_write_text(path, "".join(f"{t}\n" for t in tokens))


def read_token_list(path: Pathlike) -> List[str]:
    """A token list file (one token per line), checked for what ESPnet needs.

    Raises:
        DataPrepError: Missing or unreadable file, empty or duplicate tokens, no
            ``<blank>``/``<unk>``/``<sos/eos>``, or ``<blank>`` not first / ``<sos/eos>`` not
            last (naming the file and line).
    """
    path = Path(path)
    problem = path_problem(path)
    if problem is not None:
        raise DataPrepError(f"{path}: token list {problem}")
    try:
        tokens = path.read_bytes().decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise DataPrepError(f"{path}: not valid UTF-8 ({e.reason})") from None
    if tokens and tokens[-1] == "":
        tokens.pop()
    seen = {}
    for lineno, tok in enumerate(tokens, 1):
        if not tok.strip() or tok != tok.strip():
            raise DataPrepError(f"{path}:{lineno}: empty token or surrounding spaces")
        if tok in seen:
            raise DataPrepError(f"{path}:{lineno}: token {tok!r} also on line {seen[tok]}")
        seen[tok] = lineno
    missing = [t for t in (BLANK, UNK, SOS_EOS) if t not in seen]
    if missing:
        raise DataPrepError(f"{path}: not a token list of ESPnet (no {', '.join(missing)})")
    # ESPnet's CTC blank is token 0 and its <sos/eos> the last token, by position: a
    # reordered list (e.g. one passed through `sort`) would train another token as either
    if tokens[0] != BLANK:
        raise DataPrepError(f"{path}:1: {tokens[0]!r}, but ESPnet's CTC takes the first token "
                            f"as the blank: <blank> must be line 1 (it is line {seen[BLANK]})")
    if tokens[-1] != SOS_EOS:
        raise DataPrepError(f"{path}:{len(tokens)}: {tokens[-1]!r}, but ESPnet takes the last "
                            f"token as <sos/eos>: it must be the last line (it is line "
                            f"{seen[SOS_EOS]})")
    return tokens


def shape_texts(data: DataDir, token_list: Pathlike, token_type: str = "char",
                bpemodel: Optional[Pathlike] = None, sample_rate: int = 16000,
                name: str = "data", unknown_is_error: bool = False,
                geometry: Optional[EncoderGeometry] = None) -> Dict[str, str]:
    """The content of the shape files of :func:`write_shape_files`: file name -> text.

    A share of ``<unk>`` tokens of 2% or more is a warning. With ``unknown_is_error`` (a
    token list made elsewhere, reused) half or more is an error: the list is likely from
    another corpus. A list just made from this corpus's training text can legitimately miss
    most characters of a small Mandarin dev set, so there it stays a warning. With the
    model's ``geometry``, transcripts CTC cannot align to their audio are a warning
    (:func:`warn_unalignable`).

    Raises:
        DataPrepError: No ``utt2dur``, a bad token list, or (``unknown_is_error``) a token
            list that does not fit the transcripts.
    """
    if data.utt2dur is None:
        raise DataPrepError(f"{name}: shape files need utt2dur")
    tokens = read_token_list(token_list)
    out = {"speech_shape": "".join(f"{u} {int(round(data.utt2dur[u] * sample_rate))}\n"
                                   for u in data.utt_ids)}
    if data.text is not None:
        tok = build_tokenizer(token_type, bpemodel)
        known, lines, total, unknown = set(tokens), [], 0, Counter()
        sequences = {}
        for u in data.utt_ids:
            seq = sequences[u] = tok.text2tokens(data.text[u])
            total += len(seq)
            unknown.update(t for t in seq if t not in known)
            lines.append(f"{u} {len(seq)},{len(tokens)}\n")
        _check_unknown_share(unknown, total, token_list, name, unknown_is_error)
        if geometry is not None:
            samples = {u: int(round(data.utt2dur[u] * sample_rate)) for u in data.utt_ids}
            warn_unalignable(unalignable(samples, sequences, geometry), len(sequences), name,
                             token_type)
        out[f"text_shape.{token_type}"] = "".join(lines)
    return out


def warn_unalignable(bad: List[Unalignable], total: int, name: str, token_type: str) -> None:
    """Log a warning naming the utterances CTC cannot align (none: nothing)."""
    if not bad:
        return
    shown = ", ".join(f"{b.utt_id} ({b.frames} frames, {b.needed} needed)" for b in bad[:5])
    hint = ("longer tokens (token_type bpe) or" if token_type == "char" else "a larger nbpe or")
    logger.warning(
        "%s: %d of %d utterances cannot be aligned by CTC: their audio gives fewer encoder "
        "frames than their %s tokens need (one per token, a blank between repeats), so "
        "ESPnet's CTC loss is 0 for them and their labels train only the attention decoder: "
        "%s%s. %s an input_layer that subsamples less avoid it.", name, len(bad), total,
        token_type, shown, ", ..." if len(bad) > 5 else "", hint[0].upper() + hint[1:])


def check_unknown_tokens(texts: Iterable[str], tokens: Sequence[str], token_type: str,
                         bpemodel: Optional[Pathlike], name: str, token_list: str,
                         hint: str = "is the data from another corpus than the model?") -> None:
    """Transcripts half or more of whose tokens are not in ``tokens`` are an error (a
    model's token list and data of another corpus); 2% or more a warning.

    Raises:
        DataPrepError: Naming ``name``, the share and the most frequent unknown tokens.
    """
    tok = build_tokenizer(token_type, bpemodel)
    known, total, unknown = set(tokens), 0, Counter()
    for text in texts:
        seq = tok.text2tokens(text)
        total += len(seq)
        unknown.update(t for t in seq if t not in known)
    _check_unknown_share(unknown, total, token_list, name, True, hint)


def _check_unknown_share(unknown: Counter, total: int, token_list: Pathlike, name: str,
                         is_error: bool, hint: str = "is the token list from another corpus? "
                         "Make it from this corpus's training text (--token_list_from)"
                         ) -> None:
    share = sum(unknown.values()) / max(total, 1)
    if share == 0:
        return
    examples = " ".join(t for t, _ in unknown.most_common(5))
    message = (f"{name}: {share:.1%} of the transcript tokens are not in {token_list} and "
               f"become <unk> (most frequent: {examples})")
    if is_error and share >= UNK_ERROR_SHARE:
        raise DataPrepError(f"{message}; {hint}")
    if share >= UNK_WARN_SHARE:
        logger.warning("%s", message)


def write_shape_files(data: DataDir, out_dir: Pathlike, token_list: Pathlike,
                      token_type: str = "char", bpemodel: Optional[Pathlike] = None,
                      sample_rate: int = 16000,
                      geometry: Optional[EncoderGeometry] = None) -> None:
    """``speech_shape`` and, with text, ``text_shape.<token_type>``, in ESPnet's formats.

    ``speech_shape``: ``utt samples``; ``text_shape.<token_type>``: ``utt tokens,vocabulary``
    (as ``asr.sh`` writes them, so that ``batch_type: numel`` counts the same). These are
    the files of ``--train_shape_file``/``--valid_shape_file`` (sorting and batching). Both
    are replaced together. ``geometry``: the model's, to warn about transcripts CTC cannot
    align (:func:`shape_texts`).
    """
    out_dir = Path(out_dir)
    texts = shape_texts(data, token_list, token_type, bpemodel, sample_rate, str(out_dir),
                        geometry=geometry)
    with atomic_outputs(files=[out_dir / n for n in texts]) as staged:
        for n, text in texts.items():
            staged[out_dir / n].write_text(text, encoding="utf-8")


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
