"""A Kaldi/ESPnet data directory held in memory.

Files: ``wav.scp``, ``text`` (optional: an untranscribed pool has none), ``utt2spk``,
``spk2utt`` (derived, never stored separately in memory), ``utt2dur`` and ``untranscribed``.

A *partly transcribed* directory (the labeled set plus the still-unlabeled pool, for
distillation: see :meth:`DataDir.with_untranscribed`) lists its utterances without transcript
in ``untranscribed``; their ``text`` lines hold the id only, which ESPnet reads as an empty
transcript (``text_lengths == 0``). An empty transcript anywhere else is an error.
"""

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.kaldi_io import format_kaldi_map, read_id_list, read_kaldi_map
from espnet_lp.utils.fileio import Pathlike, atomic_directory, path_problem

FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur", "untranscribed")


@dataclass
class DataDir:
    """Utterance-indexed tables of one data directory.

    Args:
        wav_scp: utt -> audio path (or Kaldi pipe).
        utt2spk: utt -> speaker.
        text: utt -> transcript; ``None`` for an untranscribed set; ``""`` for the
            untranscribed utterances of a partly transcribed set.
        utt2dur: utt -> duration in seconds; ``None`` if unknown.
    """

    wav_scp: Dict[str, str]
    utt2spk: Dict[str, str]
    text: Optional[Dict[str, str]] = None
    utt2dur: Optional[Dict[str, float]] = field(default=None)

    @property
    def utt_ids(self) -> List[str]:
        """Utterance ids in C-locale order."""
        return sorted(self.wav_scp)

    def __len__(self) -> int:
        return len(self.wav_scp)

    def spk2utt(self) -> Dict[str, List[str]]:
        """Speaker -> sorted utterance ids."""
        out: Dict[str, List[str]] = {}
        for utt in self.utt_ids:
            out.setdefault(self.utt2spk[utt], []).append(utt)
        return dict(sorted(out.items()))

    def untranscribed_ids(self) -> List[str]:
        """Utterances of a partly transcribed set that have no transcript (sorted)."""
        return [] if self.text is None else sorted(u for u, t in self.text.items() if t == "")

    def with_untranscribed(self, pool: "DataDir") -> "DataDir":
        """This (transcribed) set plus ``pool``'s utterances *without* their transcripts.

        The pool's own ``text``, if it has one (a simulated pool keeps the held-back
        transcripts of the oracle), is dropped, so nothing leaks into training.

        Raises:
            DataPrepError: This set has no transcripts, or the two share utterance ids.
        """
        if self.text is None:
            raise DataPrepError("with_untranscribed: the transcribed part has no text")
        blank = DataDir(wav_scp=pool.wav_scp, utt2spk=pool.utt2spk,
                        text={u: "" for u in pool.wav_scp}, utt2dur=pool.utt2dur)
        return DataDir.combine([self, blank])

    def total_hours(self) -> float:
        """Total duration in hours (requires ``utt2dur``)."""
        if self.utt2dur is None:
            raise DataPrepError("total_hours needs utt2dur")
        return sum(self.utt2dur.values()) / 3600.0

    def subset(self, utt_ids: Iterable[str]) -> "DataDir":
        """A new DataDir restricted to ``utt_ids`` (unknown ids are an error)."""
        ids = sorted(set(utt_ids))
        unknown = [u for u in ids if u not in self.wav_scp]
        if unknown:
            raise DataPrepError(f"{len(unknown)} unknown utterance ids, e.g. {unknown[:3]}")

        def pick(table):
            return None if table is None else {u: table[u] for u in ids}

        return DataDir(
            wav_scp=pick(self.wav_scp),
            utt2spk=pick(self.utt2spk),
            text=pick(self.text),
            utt2dur=pick(self.utt2dur),
        )

    @classmethod
    def combine(cls, parts: List["DataDir"], names: Optional[List[str]] = None) -> "DataDir":
        """Concatenate data directories with disjoint utterance ids (like Kaldi's
        ``combine_data.sh``); ``utt2dur`` is kept only if every part has it.

        Args:
            parts: The data directories.
            names: What to call each part in errors (e.g. its path).

        Raises:
            DataPrepError: Shared utterance ids, or some parts with transcripts and some
                without (combining would silently drop every transcript; add untranscribed
                audio with :meth:`with_untranscribed`).
        """
        names = names or [f"part {i + 1}" for i in range(len(parts))]
        has_text = [p.text is not None for p in parts]
        if any(has_text) and not all(has_text):
            raise DataPrepError(
                f"{names[has_text.index(False)]}: no text, while {names[has_text.index(True)]} "
                "has transcripts: combining would drop them all (add untranscribed audio "
                "explicitly: combine_data_dirs --untranscribed DIR)")
        out = cls(wav_scp={}, utt2spk={}, text={}, utt2dur={})
        seen: Dict[str, str] = {}
        for name, part in zip(names, parts):
            dup = sorted(set(part.wav_scp) & set(out.wav_scp))
            if dup:
                raise DataPrepError(f"{name}: {len(dup)} utterance ids occur twice (also in "
                                    f"{seen[dup[0]]}), e.g. {dup[0]}")
            seen.update(dict.fromkeys(part.wav_scp, name))
            for name in ("wav_scp", "utt2spk", "text", "utt2dur"):
                table, mine = getattr(part, name), getattr(out, name)
                if table is None or mine is None:
                    setattr(out, name, None)
                else:
                    mine.update(table)
        return out

    @classmethod
    def read(cls, path: Pathlike) -> "DataDir":
        """Read ``wav.scp``, ``utt2spk`` and, when present, ``text`` and ``utt2dur``.

        Raises:
            DataPrepError: Missing required file or malformed content (naming file and line).
        """
        path = Path(path)
        problem = path_problem(path, "dir")
        if problem is not None:
            raise DataPrepError(f"{path}: data directory {problem}")
        for name in ("wav.scp", "utt2spk"):
            problem = path_problem(path / name)
            if problem == "not found":
                raise DataPrepError(f"{path / name}: missing (not a data directory?)")
            if problem is not None:
                raise DataPrepError(f"{path / name}: {problem}")
        text = None
        if os.path.lexists(path / "text"):
            untranscribed = set()
            if os.path.lexists(path / "untranscribed"):
                untranscribed = set(read_id_list(path / "untranscribed"))
            text = read_kaldi_map(path / "text", allow_empty_value=bool(untranscribed))
            for utt, value in text.items():
                if (value == "") != (utt in untranscribed):
                    raise DataPrepError(
                        f"{path / 'text'}: utterance {utt}: "
                        + ("empty transcript" if value == "" else
                           f"has a transcript but is listed in {path / 'untranscribed'}"))
        utt2dur = None
        if os.path.lexists(path / "utt2dur"):
            utt2dur = {}
            for utt, value in read_kaldi_map(path / "utt2dur").items():
                try:
                    utt2dur[utt] = float(value)
                except ValueError:
                    utt2dur[utt] = math.nan
                if not 0 < utt2dur[utt] < math.inf:
                    raise DataPrepError(f"{path / 'utt2dur'}: utterance {utt}: bad duration "
                                        f"{value!r} (expected positive seconds)")
        wav_scp = read_kaldi_map(path / "wav.scp")
        for name, table in (("utt2spk", read_kaldi_map(path / "utt2spk")), ("text", text),
                            ("utt2dur", utt2dur)):
            if table is not None and table.keys() != wav_scp.keys():
                extra = sorted(set(table) - set(wav_scp))
                missing = sorted(set(wav_scp) - set(table))
                raise DataPrepError(
                    f"{path / name}: utterance {extra[0]} is not in wav.scp" if extra else
                    f"{path / name}: no line for utterance {missing[0]} of wav.scp")
            if name == "utt2spk":
                utt2spk = table
        return cls(wav_scp=wav_scp, utt2spk=utt2spk, text=text, utt2dur=utt2dur)

    def write(self, path: Pathlike, validate: bool = True) -> None:
        """Write all files atomically: the directory appears complete or not at all.

        Args:
            path: Output directory; an existing one is replaced once the new one is complete.
            validate: Run the data-dir validator on the new files before they replace
                anything (audio paths are not re-checked here).

        Raises:
            DataPrepError: The tables do not form a valid data directory (e.g. a speaker id
                that breaks Kaldi's sort-order rule); ``path`` is left as it was.
        """
        with atomic_directory(path) as tmp:
            self.write_staged(tmp, path, validate)

    def write_staged(self, tmp: Pathlike, path: Pathlike, validate: bool = True) -> None:
        """Write the files into ``tmp``, the staging copy of ``path`` (see :meth:`write`);
        for callers that move several outputs into place together
        (:func:`espnet_lp.utils.fileio.atomic_outputs`)."""
        from espnet_lp.data.validate import validate_data_dir

        self._write_files(Path(tmp))
        if validate:
            try:
                validate_data_dir(tmp, require_text=self.text is not None,
                                  check_audio_exists=False)
            except DataPrepError as e:  # name the destination, not the temporary copy
                raise DataPrepError(f"{path} not written: "
                                    + str(e).replace(str(tmp), str(path))) from None

    def _write_files(self, out: Path) -> None:
        def dump(name: str, items) -> None:
            with open(out / name, "w", encoding="utf-8", newline="\n") as f:
                f.write(format_kaldi_map(items))

        dump("wav.scp", self.wav_scp.items())
        dump("utt2spk", self.utt2spk.items())
        dump("spk2utt", ((s, " ".join(u)) for s, u in self.spk2utt().items()))
        if self.text is not None:
            dump("text", self.text.items())
            if self.untranscribed_ids():
                dump("untranscribed", ((u, "") for u in self.untranscribed_ids()))
        if self.utt2dur is not None:
            dump("utt2dur", ((u, f"{d:.3f}") for u, d in self.utt2dur.items()))
