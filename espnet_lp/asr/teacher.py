"""Teachers for knowledge distillation: an online ESPnet model, or cached top-k posteriors.

Both give CTC log-posteriors at a temperature, as :class:`TeacherPosteriors`. The online
teacher is held outside PyTorch's module tree (a plain attribute), so it is never part of the
student's state dict, optimizer, gradients or DDP wrapper; it runs in eval mode under
``no_grad``.

A *teacher spec* is the ``kd_conf.teacher`` mapping kept in a yaml file (the recipes write
``exp/kd/teacher.yaml`` in stages 3-4); :func:`kd_train_args` turns it into the ``asr_train``
options of a distilled training run, so every active-learning round uses the same teacher.
"""

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.fileio import Pathlike, atomic_file, read_yaml

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1


class TeacherError(EspnetLPError, ValueError):
    """A teacher that cannot serve this student or this utterance."""


@dataclass
class TeacherPosteriors:
    """Teacher CTC log-posteriors of a batch.

    Args:
        logp: Log-probabilities (B, T, K) at the KD temperature.
        index: Token ids of the K columns (B, T, K), or None when K is the full vocabulary.
        lens: Valid frames (B,).
    """

    logp: torch.Tensor
    index: Optional[torch.Tensor]
    lens: torch.Tensor


class AbsTeacher(ABC):
    """Where teacher posteriors come from."""

    token_list: List[str]
    subsampling: int  # input frames per output frame of the teacher's encoder

    @abstractmethod
    def posteriors(self, speech: torch.Tensor, speech_lengths: torch.Tensor,
                   utt_ids: Sequence[str], temperature: float) -> TeacherPosteriors:
        """Posteriors of a batch (utterance ids key a cache; audio feeds a model)."""


def subsampling_factor(model) -> int:
    """Input frames per encoder output frame of an ESPnet ASR model."""
    embed = getattr(getattr(model, "encoder", None), "embed", None)
    name = type(embed[0] if isinstance(embed, torch.nn.Sequential) else embed).__name__
    factors = {"Conv2dSubsampling": 4, "Conv2dSubsampling1": 1, "Conv2dSubsampling2": 2,
               "Conv2dSubsampling6": 6, "Conv2dSubsampling8": 8, "Linear": 1,
               "LinearNoSubsampling": 1, "Embedding": 1, "NoneType": 1}
    if name not in factors:
        raise TeacherError(f"cannot tell the subsampling factor of encoder input layer {name}")
    return factors[name]


def file_digest(path: Pathlike) -> str:
    """sha1 of a file's bytes."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def audio_fingerprint(speech: torch.Tensor) -> str:
    """sha1 of one utterance's samples as float32 (what ESPnet's ``sound`` reader gives)."""
    return hashlib.sha1(speech.detach().float().cpu().numpy().tobytes()).hexdigest()


class OnlineTeacher(AbsTeacher):
    """An ESPnet ASR model run alongside the student.

    Args:
        asr_train_config: The teacher's ``config.yaml``.
        asr_model_file: The teacher's checkpoint.
        zoo_zip: Alternatively, an ``espnet_model_zoo`` zip (local path) or zoo tag (needs
            network access).
    """

    def __init__(self, asr_train_config: Optional[str] = None,
                 asr_model_file: Optional[str] = None, zoo_zip: Optional[str] = None):
        if zoo_zip is not None:
            asr_train_config, asr_model_file = _unpack_zoo(zoo_zip)
        if asr_train_config is None or asr_model_file is None:
            raise TeacherError("an online teacher needs asr_train_config and asr_model_file, "
                               "or zoo_zip")
        from espnet2.tasks.asr import ASRTask  # builds stock and (registered) LP models

        model, _ = ASRTask.build_model_from_file(asr_train_config, asr_model_file, "cpu")
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.__dict__["_model"] = model  # plain attribute: never a registered submodule
        self.token_list = list(model.token_list)
        self.subsampling = subsampling_factor(model)
        self.fingerprint = hashlib.sha1(
            (file_digest(asr_train_config) + file_digest(asr_model_file)).encode()).hexdigest()

    @property
    def model(self):
        """The teacher model (eval mode, frozen)."""
        return self.__dict__["_model"]

    @torch.no_grad()
    def posteriors(self, speech, speech_lengths, utt_ids, temperature):
        model = self.model
        if next(model.parameters()).device != speech.device:
            model.to(speech.device)
        model.eval()
        enc, lens = model.encode(speech, speech_lengths)
        if isinstance(enc, tuple):
            enc = enc[0]
        logits = model.ctc.ctc_lo(enc).float()
        return TeacherPosteriors(torch.log_softmax(logits / temperature, dim=-1), None, lens)


def _unpack_zoo(zoo: str):
    from espnet_model_zoo.downloader import ModelDownloader

    downloader = ModelDownloader()
    if Path(zoo).is_file():
        files = downloader.unpack_local_file(zoo)
    else:
        files = downloader.download_and_unpack(zoo)
    return files["asr_train_config"], files["asr_model_file"]


class CachedTeacher(AbsTeacher):
    """Top-k teacher posteriors stored per utterance by ``espnet_lp.bin.kd_cache``.

    Layout: ``<cache_dir>/meta.json`` (token list, temperature, k, subsampling, teacher
    fingerprint) and ``<cache_dir>/data/<utt_id>.npz`` (``logp`` float16 (T, k), ``index``
    int32 (T, k), ``audio`` fingerprint).

    Args:
        cache_dir: The cache.
        topk: Expected k (None: whatever the cache has).
        verify_audio: Check each utterance's audio fingerprint (turn off when the training
            pipeline alters waveforms, e.g. speed perturbation; lengths are still checked).
    """

    def __init__(self, cache_dir: Pathlike, topk: Optional[int] = None,
                 verify_audio: bool = True):
        self.cache_dir = Path(cache_dir)
        meta_path = self.cache_dir / "meta.json"
        if not meta_path.is_file():
            raise TeacherError(f"{meta_path}: not a teacher cache (build it with "
                               "python -m espnet_lp.bin.kd_cache)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != CACHE_FORMAT:
            raise TeacherError(f"{meta_path}: cache format {meta.get('format')}, "
                               f"expected {CACHE_FORMAT}; rebuild it")
        if topk is not None and topk != meta["topk"]:
            raise TeacherError(f"{meta_path}: built with topk={meta['topk']}, kd_conf asks "
                               f"for {topk}")
        self.meta = meta
        self.token_list = meta["token_list"]
        self.subsampling = meta["subsampling"]
        self.fingerprint = meta["teacher_fingerprint"]
        self.verify_audio = verify_audio

    def posteriors(self, speech, speech_lengths, utt_ids, temperature):
        if abs(temperature - self.meta["temperature"]) > 1e-6:
            raise TeacherError(f"{self.cache_dir}: cached at temperature "
                               f"{self.meta['temperature']}, KD uses {temperature}; rebuild")
        entries = [self._load(u, speech[b, : speech_lengths[b]]) for b, u in enumerate(utt_ids)]
        lens = torch.tensor([len(e[0]) for e in entries], device=speech.device)
        t_max, k = int(lens.max()), self.meta["topk"]
        logp = torch.full((len(entries), t_max, k), -1e4, device=speech.device)
        index = torch.zeros((len(entries), t_max, k), dtype=torch.long, device=speech.device)
        for b, (lp, ix) in enumerate(entries):
            logp[b, : len(lp)] = torch.from_numpy(lp.astype(np.float32)).to(speech.device)
            index[b, : len(ix)] = torch.from_numpy(ix.astype(np.int64)).to(speech.device)
        return TeacherPosteriors(logp, index, lens)

    def _load(self, utt_id: str, speech: torch.Tensor):
        path = self.cache_dir / "data" / f"{utt_id}.npz"
        if not path.is_file():
            raise TeacherError(f"{path}: no cached teacher posteriors for utterance {utt_id} "
                               "(cache built for another data set?)")
        with np.load(path) as z:
            logp, index, audio = z["logp"], z["index"], str(z["audio"])
        if self.verify_audio and audio != audio_fingerprint(speech):
            raise TeacherError(f"{path}: stale entry for utterance {utt_id}: its audio changed "
                               "since the cache was built (rebuild the cache, or set "
                               "verify_audio: false if training alters waveforms on purpose)")
        return logp, index


def save_cache_entry(cache_dir: Path, utt_id: str, logp: torch.Tensor, k: int,
                     speech: torch.Tensor) -> None:
    """Store the top-k of one utterance's log-posteriors (T, V), sorted best first."""
    values, index = torch.topk(logp.float(), k=k, dim=-1)
    out = cache_dir / "data" / f"{utt_id}.npz"
    with atomic_file(out, clean=False) as tmp, open(tmp, "wb") as f:  # concurrent shards
        np.savez(f, logp=values.cpu().numpy().astype(np.float16),
                 index=index.cpu().numpy().astype(np.int32),
                 audio=np.array(audio_fingerprint(speech)))


def build_teacher(asr_train_config: Optional[str] = None, asr_model_file: Optional[str] = None,
                  zoo_zip: Optional[str] = None, cache_dir: Optional[str] = None,
                  topk: Optional[int] = None, verify_audio: bool = True) -> AbsTeacher:
    """The teacher a ``kd_conf.teacher`` mapping describes."""
    if cache_dir is not None:
        return CachedTeacher(cache_dir, topk=topk, verify_audio=verify_audio)
    return OnlineTeacher(asr_train_config, asr_model_file, zoo_zip)


TEACHER_KEYS = {"asr_train_config", "asr_model_file", "zoo_zip", "cache_dir", "topk",
                "verify_audio"}
_PATH_KEYS = ("asr_train_config", "asr_model_file", "zoo_zip", "cache_dir")


def check_teacher_spec(spec, where: str) -> Dict:
    """Check a teacher spec's form without loading anything (a copy is returned).

    Args:
        spec: The ``kd_conf.teacher`` mapping.
        where: What to name in errors (a file, or ``kd_conf.teacher``).

    Raises:
        TeacherError: Not a mapping, unknown keys, or neither a model nor a cache named.
    """
    if not isinstance(spec, dict):
        raise TeacherError(f"{where}: expected a mapping of {sorted(TEACHER_KEYS)}, got {spec!r}")
    unknown = sorted(set(spec) - TEACHER_KEYS)
    if unknown:
        raise TeacherError(f"{where}: unknown teacher keys {unknown}; known: "
                           f"{sorted(TEACHER_KEYS)}")
    named = {k for k, v in spec.items() if v is not None}
    if not ({"cache_dir", "zoo_zip"} & named or {"asr_train_config", "asr_model_file"} <= named):
        raise TeacherError(f"{where}: name asr_train_config + asr_model_file, zoo_zip or cache_dir")
    return dict(spec)


def read_teacher_spec(path: Pathlike) -> Dict:
    """Read a teacher spec (the ``kd_conf.teacher`` mapping) from a yaml file.

    Relative paths in it are taken relative to the file's directory, so a recipe's
    ``exp/kd/teacher.yaml`` stays valid wherever the training runs from.

    Raises:
        TeacherError: Missing file, not a mapping, unknown keys, or neither a model nor a
            cache named (the message names the file).
    """
    path = Path(path)
    spec = read_yaml(path, TeacherError, "teacher spec (run the recipe's teacher stage)")
    spec = check_teacher_spec(spec, str(path))
    for key in _PATH_KEYS:
        if spec.get(key) is not None and not Path(spec[key]).is_absolute():
            spec[key] = str((path.parent / spec[key]).resolve())
    return spec


def kd_train_args(teacher: Mapping, kd_weight: float, kd_conf: Optional[Mapping] = None
                  ) -> List[str]:
    """``asr_train`` options that distil from ``teacher`` (none when ``kd_weight`` is 0).

    Args:
        teacher: A teacher spec (:func:`read_teacher_spec`).
        kd_weight: Weight of the KD loss, in [0, 1).
        kd_conf: Other ``ctc_kl`` options, e.g. ``{"temperature": 2.0}``.
    """
    if not 0.0 <= kd_weight < 1.0:
        raise TeacherError(f"kd_weight must be in [0, 1): {kd_weight}")
    if kd_weight == 0.0:
        return []
    args = ["--model_conf", "kd=ctc_kl", "--model_conf", f"kd_weight={kd_weight}",
            "--model_conf", "kd_conf.teacher=" + json.dumps(dict(teacher), sort_keys=True)]
    for key, value in (kd_conf or {}).items():
        args += ["--model_conf", f"kd_conf.{key}={json.dumps(value)}"]
    return args
