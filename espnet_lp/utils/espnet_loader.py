"""ESPnet's own data loading for the tools that run a trained model over a data dir."""

from pathlib import Path
from typing import Iterator, Optional, Tuple


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
