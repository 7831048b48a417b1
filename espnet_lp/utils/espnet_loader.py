"""ESPnet's own data loading for the tools that run a trained model over a data dir."""

from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple


def streaming_batches(train_args, data_dir: Path, batch_size: int, with_text: bool,
                      key_file: Optional[Path] = None) -> Iterator[Tuple[list, dict]]:
    """(ids, tensors) batches of ``data_dir`` in file order, read and collated as ESPnet's
    inference does (``ASRTask.build_streaming_iterator`` with the model's preprocessing).

    Args:
        train_args: The model's training arguments (``Speech2Text.asr_train_args``).
        data_dir: Kaldi-style data dir (``wav.scp``, and ``text`` when ``with_text``).
        batch_size: Utterances per batch.
        with_text: Also read the transcripts (``text``, ``text_lengths``).
        key_file: Only these utterances (a shard).
    """
    from espnet2.tasks.asr import ASRTask

    triples = [(str(Path(data_dir) / "wav.scp"), "speech", "sound")]
    if with_text:
        triples.append((str(Path(data_dir) / "text"), "text", "text"))
    return ASRTask.build_streaming_iterator(
        triples, key_file=None if key_file is None else str(key_file), batch_size=batch_size,
        dtype="float32", num_workers=0, inference=not with_text,
        preprocess_fn=ASRTask.build_preprocess_fn(train_args, False),
        collate_fn=ASRTask.build_collate_fn(train_args, False))


def length_sorted_batches(singles: Iterable[Tuple[list, dict]], batch_size: int,
                          window: int) -> Iterator[Tuple[list, dict]]:
    """Regroup one-utterance batches into batches of similar length.

    Reads ``window`` utterances ahead, sorts them by length (longest first) and yields them
    ``batch_size`` at a time, padded as ESPnet's collate pads (0.0 for floats, -1 for
    integers). Only for models whose outputs do not depend on the batch
    (``model_conf.mask_padding``): then the order changes how much padding is computed, not
    any score. On a pool in file order, batches of 16 carry a third less padding this way.

    Args:
        singles: ``(ids, tensors)`` batches of one utterance (:func:`streaming_batches`).
        batch_size: Utterances per batch.
        window: Utterances read ahead and sorted together.
    """
    buffer: List[Tuple[list, dict]] = []
    for item in singles:
        buffer.append(item)
        if len(buffer) >= window:
            yield from _regroup(buffer, batch_size)
            buffer = []
    yield from _regroup(buffer, batch_size)


def _regroup(items: List[Tuple[list, dict]], batch_size: int) -> Iterator[Tuple[list, dict]]:
    import torch

    if not items:
        return
    main = next(k for k in items[0][1] if not k.endswith("_lengths"))
    items = sorted(items, key=lambda it: -int(it[1][main + "_lengths"][0]))
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        batch = {}
        for name, value in chunk[0][1].items():
            if name.endswith("_lengths"):
                continue
            lengths = torch.cat([b[name + "_lengths"] for _, b in chunk])
            pad = 0.0 if value.is_floating_point() else -1
            batch[name] = torch.nn.utils.rnn.pad_sequence(
                [b[name][0, :n] for (_, b), n in zip(chunk, lengths.tolist())],
                batch_first=True, padding_value=pad)
            batch[name + "_lengths"] = lengths
        yield [k for keys, _ in chunk for k in keys], batch
