"""The ESPnet and espnet-lp commands a round runs: training, sharded decoding and scoring."""

import logging
import shutil
from pathlib import Path
from typing import Dict, List, Optional

from espnet_lp.al.error_rates import error_rates, read_text_file
from espnet_lp.al.jobs import python_module, run_jobs
from espnet_lp.al.scoring import get_strategy
from espnet_lp.asr.export import find_checkpoint, has_lp_decoder, read_config
from espnet_lp.asr.teacher import kd_train_args, read_teacher_spec
from espnet_lp.bin.split_scp import split_lines
from espnet_lp.data.asr_inputs import role_data_args
from espnet_lp.data.datadir import DataDir
from espnet_lp.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


def train_command(cfg, train_dir: Path, train_shapes: Path, valid_shapes: Path,
                  model_dir: Path, init_from: Optional[Path]) -> List[str]:
    """``python -m espnet2.bin.asr_train`` (stock ESPnet) for one round's labeled set."""
    args = ["--config", cfg.train_config, "--output_dir", model_dir, "--ngpu", cfg.ngpu,
            "--seed", cfg.seed, "--resume", "true", "--token_list", cfg.token_list,
            "--token_type", cfg.token_type,
            *role_data_args("train", train_dir, train_shapes, cfg.token_type),
            *role_data_args("valid", cfg.valid_set, valid_shapes, cfg.token_type)]
    if cfg.bpemodel:
        args += ["--bpemodel", cfg.bpemodel]
    if cfg.kd_weight > 0:
        args += kd_train_args(read_teacher_spec(cfg.teacher_spec), cfg.kd_weight, cfg.kd_conf)
    extra = list(cfg.train_opts)
    if init_from is not None:
        args += ["--init_param", str(find_checkpoint(init_from))]
        extra += cfg.warm_start_opts  # later options win in ESPnet's parser
    return python_module("espnet2.bin.asr_train", [*args, *extra])


LP_REFIT_CHECKPOINT = "lp_refit.pth"


def lp_refit_command(cfg, model_dir: Path) -> Optional[List[str]]:
    """``lp_refit`` of a trained round model on the validation set (None: no LP decoder)."""
    config = read_config(model_dir)
    if not has_lp_decoder(config):
        return None
    return python_module("espnet_lp.bin.lp_refit", [
        "--asr_train_config", model_dir / "config.yaml",
        "--asr_model_file", find_checkpoint(model_dir), "--data_dir", cfg.valid_set,
        "--ngpu", cfg.ngpu, "--seed", cfg.seed,
        "--output_file", model_dir / LP_REFIT_CHECKPOINT, *cfg.lp_refit_opts])


def scoring_checkpoint(model_dir: Path) -> Path:
    """What the pool is scored with: the refit LP heads' checkpoint when there is one (its
    ASR tensors are the trained model's), else the trained model's."""
    refit = model_dir / LP_REFIT_CHECKPOINT
    return refit if refit.is_file() else find_checkpoint(model_dir)


def _shard(wav_scp: Dict[str, str], out_dir: Path, nj: int) -> List[Path]:
    """Key files ``keys.1..nj`` (as Kaldi's split_scp.pl: contiguous, sizes within one)."""
    lines = [f"{u} {wav_scp[u]}\n" for u in sorted(wav_scp)]
    paths = []
    for job, chunk in enumerate(split_lines(lines, min(nj, max(1, len(lines)))), 1):
        atomic_write_text(out_dir / f"keys.{job}", "".join(chunk))
        paths.append(out_dir / f"keys.{job}")
    return paths


def decode_wavs(cfg, model_dir: Path, wavs: Dict[str, str], out_dir: Path,
                decode_opts: Optional[List[str]] = None) -> Dict[str, str]:
    """Decode ``wavs`` (id -> wav.scp entry) with ``asr_inference`` in nj shards (ESPnet's
    decoding behind :mod:`espnet_lp.bin.asr_inference`'s input checks and atomic output).

    Args:
        cfg: The run's :class:`~espnet_lp.al.run_config.ALConfig` (jobs, backend, options).
        model_dir: ESPnet exp dir of the model.
        wavs: What to decode.
        out_dir: Work dir (replaced).
        decode_opts: asr_inference options (default: ``cfg.decode_opts``).

    Returns:
        id -> hypothesis (``""`` for an utterance decoded as nothing).
    """
    shutil.rmtree(out_dir, ignore_errors=True)
    atomic_write_text(out_dir / "wav.scp", "".join(f"{u} {wavs[u]}\n" for u in sorted(wavs)))
    keys = _shard(wavs, out_dir / "split", cfg.nj)
    ckpt = find_checkpoint(model_dir)
    opts = cfg.decode_opts if decode_opts is None else decode_opts
    cmds, logs = [], []
    for job, key_file in enumerate(keys, 1):
        cmds.append(python_module("espnet_lp.bin.asr_inference", [
            "--asr_train_config", model_dir / "config.yaml", "--asr_model_file", ckpt,
            "--data_path_and_name_and_type", f"{out_dir / 'wav.scp'},speech,sound",
            "--key_file", key_file, "--output_dir", out_dir / "split" / f"output.{job}",
            "--ngpu", "0", "--batch_size", "1", *opts]))
        logs.append(out_dir / "split" / f"decode.{job}.log")
    run_jobs(cmds, logs, cfg.nj, cfg.job_backend())
    hyps: Dict[str, str] = {}
    for job in range(1, len(keys) + 1):
        hyps.update(read_text_file(out_dir / "split" / f"output.{job}" / "1best_recog" / "text"))
    return {u: hyps.get(u, "") for u in sorted(wavs)}


def decode_sets(cfg, model_dir: Path, out_dir: Path) -> Dict[str, Dict[str, float]]:
    """Decode every test set with ``asr_inference`` (nj shards); WER/CER per set."""
    sets = {Path(s).name: DataDir.read(s) for s in cfg.test_sets}
    wavs: Dict[str, str] = {}
    for data in sets.values():
        wavs.update(data.wav_scp)
    hyps = decode_wavs(cfg, model_dir, wavs, out_dir)
    results = {}
    for name, data in sets.items():
        set_hyps = {u: hyps.get(u, "") for u in data.utt_ids}
        atomic_write_text(out_dir / name / "text",
                          "".join(f"{u} {h}\n".replace(" \n", "\n") for u, h in set_hyps.items()))
        results[name] = error_rates(data.text, set_hyps, cfg.cer_remove_spaces)
    return results


def score_pool(cfg, strategy: str, r: int, model_dir: Path, pool_dir: Path,
               out_dir: Path) -> None:
    """Score the pool with ``al_score`` in nj shards; finished shards are kept on a rerun."""
    marker = out_dir / "nj"
    if marker.is_file() and marker.read_text().strip() != str(cfg.nj):
        shutil.rmtree(out_dir)  # shards of another split cannot be merged with these
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, f"{cfg.nj}\n")
    keys = _shard(DataDir.read(pool_dir).wav_scp, out_dir / "split", cfg.nj)
    for job in range(len(keys) + 1, cfg.nj + 1):  # fewer utterances than jobs
        atomic_write_text(out_dir / f"score.{job}", "")
    ckpt = scoring_checkpoint(model_dir)
    simulation = get_strategy(strategy).simulation_only
    cmds, logs = [], []
    for job, key_file in enumerate(keys, 1):
        if (out_dir / f"score.{job}").is_file():
            continue
        cmds.append(python_module("espnet_lp.bin.al_score", [
            "--asr_train_config", model_dir / "config.yaml", "--asr_model_file", ckpt,
            "--strategy", strategy, "--seed", cfg.seed, "--round", r,
            "--data_dir", pool_dir, "--key_file", key_file, "--job", job,
            "--output_dir", out_dir, "--use_transcripts", str(simulation).lower(),
            *cfg.score_opts]))
        logs.append(out_dir / "split" / f"score.{job}.log")
    run_jobs(cmds, logs, cfg.nj, cfg.job_backend())
