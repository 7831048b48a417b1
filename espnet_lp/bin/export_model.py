#!/usr/bin/env python3
r"""Export a trained model as two ``espnet_model_zoo`` zips, and prove the stock one loads.

Writes ``<output_dir>/<name>_lp.zip`` (``model: lp_espnet``, LP heads included; needs
espnet-lp) and ``<output_dir>/<name>_stock.zip`` (``model: espnet``, stock ``model_conf``, no
LP tensors; needs only ESPnet), both packed with ESPnet's packer. Then, unless
``--verify_wav_scp`` is none, it checks in a child Python that has no espnet-lp on its path
(``python -S``, site-packages without their ``.pth`` files, ``espnet_lp`` imports refused) that
stock ``espnet_model_zoo`` unpacks the stock zip and stock ``Speech2Text`` decodes
``--verify_num`` utterances exactly as the full model does here, and that the full zip loads
with every LP tensor equal to the checkpoint's. Success (and ``export.json``) only then.

Run it from the directory the training ran in (the recipe root), as ESPnet's ``pack`` is:
relative paths in ``config.yaml`` (BPE model, feature statistics) are resolved from there.

Usage:
    python -m espnet_lp.bin.export_model --exp_dir exp/al/loss_prediction/round5/model \
        --output_dir exp/export --verify_wav_scp data/test_clean/wav.scp
    python -m espnet_lp.bin.export_model --exp_dir exp/lp_tiny \
        --asr_model_file valid.acc.best.pth --output_dir exp/export --verify_wav_scp none
"""

import argparse
import contextlib
import json
import logging
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from espnet_lp.asr.export import ExportError, export_zips, find_checkpoint, read_config
from espnet_lp.errors import InputError
from espnet_lp.utils import zoo_decode
from espnet_lp.utils.cli import check_model_files, new_parser, parse, run_cli, str_or_none
from espnet_lp.utils.fileio import path_problem, temp_sibling
from espnet_lp.utils.outputs import commit, output_lock
from espnet_lp.utils.workers import child_dies_with_parent

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    g = parser.add_argument_group("model")
    g.add_argument("--exp_dir", type=Path, required=True, help="ESPnet exp dir (config.yaml)")
    g.add_argument("--asr_model_file", type=str, default="",
                   help="Checkpoint name in exp_dir (default: the .ave.pth or .best.pth of the "
                        "config's first best_model_criterion, then valid.acc.ave.pth, "
                        "valid.acc.best.pth, valid.loss.best.pth, latest.pth: the first found)")
    g = parser.add_argument_group("output")
    g.add_argument("--output_dir", type=Path, required=True)
    g.add_argument("--name", type=str, default="model", help="Zip name prefix")
    g = parser.add_argument_group("verification")
    g.add_argument("--verify_wav_scp", type=str_or_none, required=True,
                   help="wav.scp whose first utterances are decoded by both zips (none: "
                        "skip the decoding check)")
    g.add_argument("--verify_num", type=int, default=3)
    g.add_argument("--beam_size", type=int, default=4)
    g.add_argument("--ctc_weight", type=float, default=0.3)
    return parser


def first_wavs(wav_scp: Path, num: int) -> List[str]:
    """Audio paths of the first ``num`` lines of a wav.scp (plain paths only)."""
    problem = path_problem(wav_scp)
    if problem is not None:
        raise ExportError(f"{wav_scp}: wav.scp {problem}")
    wavs = []
    try:
        lines = wav_scp.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ExportError(f"{wav_scp}: not valid UTF-8 ({e.reason})") from None
    for lineno, line in enumerate(lines, 1):
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise ExportError(f"{wav_scp}:{lineno}: expected '<utt_id> <path>'")
        problem = path_problem(parts[1])
        if problem is not None:
            raise ExportError(f"{wav_scp}:{lineno}: utterance {parts[0]}: {parts[1]}: {problem} "
                              "(only plain audio files here, no pipes)")
        wavs.append(str(Path(parts[1]).resolve()))
        if len(wavs) == num:
            break
    if not wavs:
        raise ExportError(f"{wav_scp}: empty")
    return wavs


def decode_without_espnet_lp(zip_path: Path, cachedir: Path, wavs: List[str],
                             beam_size: int, ctc_weight: float) -> Dict:
    """Decode with stock ESPnet in a child Python that cannot import espnet-lp."""
    cachedir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-S", zoo_decode.__file__, "--stock", "--zip", str(zip_path.resolve()),
           "--cachedir", str(cachedir), "--beam_size", str(beam_size),
           "--ctc_weight", str(ctc_weight)]
    site_dirs = site.getsitepackages()
    if site.ENABLE_USER_SITE and Path(site.getusersitepackages()).is_dir():
        site_dirs.append(site.getusersitepackages())
    for d in site_dirs:
        cmd += ["--site_dir", d]
    for wav in wavs:
        cmd += ["--wav", wav]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cachedir,
                          preexec_fn=child_dies_with_parent)
    if proc.returncode != 0:
        raise ExportError(f"stock ESPnet could not load or decode {zip_path}:\n"
                          f"{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if report["registered"] or report["espnet_lp_imported"]:
        raise ExportError("the stock check ran with espnet-lp loaded; it proves nothing")
    return report


@contextlib.contextmanager
def quiet_root_logger(level: int = logging.WARNING):
    """Raise the root logger's level for a while (ESPnet's modules log through it)."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(max(before, level))
    try:
        yield
    finally:
        root.setLevel(before)


def verify(zips: Dict[str, Path], wavs: List[str], args) -> Dict:
    """Compare stock and full decodes; check the full zip's LP tensors."""
    from espnet_lp.asr.espnet_model import is_plugin_key

    with tempfile.TemporaryDirectory() as tmp:
        stock = decode_without_espnet_lp(zips["stock"], Path(tmp) / "stock", wavs,
                                         args.beam_size, args.ctc_weight)
        with quiet_root_logger():  # Speech2Text logs the whole model and every beam step
            full = zoo_decode.decode(str(zips["full"].resolve()), str(Path(tmp) / "full"),
                                     wavs, args.beam_size, args.ctc_weight)
    if stock["model"] != "ESPnetASRModel" or full["model"] != "ESPnetLPASRModel":
        raise ExportError(f"loaded {stock['model']} (stock) and {full['model']} (full)")
    saved = torch.load(zips["checkpoint"], map_location="cpu")
    lp_keys = sorted(k for k in saved if is_plugin_key(k))
    missing = sorted(set(lp_keys) - set(full["state_keys"]))
    if missing:
        raise ExportError(f"{zips['full']}: LP tensors lost on loading: {missing}")
    for wav in wavs:
        (s_text, s_score), (f_text, f_score) = stock["hyps"][wav], full["hyps"][wav]
        if s_text != f_text or abs(s_score - f_score) > 1e-3 * max(1.0, abs(f_score)):
            raise ExportError(f"{wav}: stock model decodes {s_text!r} ({s_score:.4f}), the "
                              f"LP model {f_text!r} ({f_score:.4f})")
    return {"utterances": len(wavs), "lp_tensors": len(lp_keys),
            "hyps": {w: full["hyps"][w][0] for w in wavs}}


def _check_args(args) -> Optional[List[str]]:
    """Everything a user may get wrong, before anything is built or written; returns the
    verification audio."""
    for name in ("verify_num", "beam_size"):
        if getattr(args, name) < 1:
            raise ExportError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.ctc_weight <= 1.0:
        raise ExportError(f"--ctc_weight must be in [0, 1], got {args.ctc_weight}")
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise ExportError(f"--name {args.name!r}: a plain file name prefix, please")
    problem = path_problem(args.output_dir, "dir")
    if problem not in (None, "not found"):
        raise ExportError(f"{args.output_dir}: output directory {problem}")
    read_config(args.exp_dir)
    config, ckpt = args.exp_dir / "config.yaml", find_checkpoint(args.exp_dir, args.asr_model_file)
    try:
        check_model_files(str(config), str(ckpt))
    except InputError as e:
        raise ExportError(str(e)) from None
    _check_builds(config, ckpt)
    if args.verify_wav_scp is None:
        return None
    return first_wavs(Path(args.verify_wav_scp), args.verify_num)


def _check_builds(config: Path, ckpt: Path) -> None:
    """The full model must build from its config and take the checkpoint (a zip that loads
    nowhere is no export); a bad option is one line naming it."""
    from espnet2.tasks.asr import ASRTask

    try:
        ASRTask.build_model_from_file(config, ckpt, "cpu")
    except RuntimeError as e:
        if "Error(s) in loading state_dict" not in str(e):
            raise
        raise ExportError(f"{ckpt} does not fit {config}: {' '.join(str(e).split())[:300]}") \
            from None


def export(args) -> Dict:
    """Write both zips, verify them, write ``export.json``; return its content.

    The three files are made in a staging directory and replace an earlier export together,
    only once verified: a failed, refused or killed run leaves the earlier export as it was.
    """
    wavs = _check_args(args)
    out = Path(args.output_dir)
    finals = {"full": out / f"{args.name}_lp.zip", "stock": out / f"{args.name}_stock.zip",
              "report": out / "export.json"}
    with output_lock(list(finals.values())):
        stage = temp_sibling(finals["full"])
        stage.mkdir()
        try:
            zips = export_zips(args.exp_dir, stage, args.name, args.asr_model_file)
            report = {"exp_dir": str(args.exp_dir), "checkpoint": str(zips["checkpoint"]),
                      "full_zip": str(finals["full"]), "stock_zip": str(finals["stock"]),
                      "verified": None}
            if wavs is not None:
                report["verified"] = verify(zips, wavs, args)
                logger.info("Stock ESPnet (no espnet-lp) loads %s and decodes %d utterances as "
                            "the LP model does", finals["stock"], len(wavs))
            (stage / "export.json").write_text(json.dumps(report, indent=2) + "\n",
                                               encoding="utf-8")
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        commit([(zips["full"], finals["full"]), (zips["stock"], finals["stock"]),
                (stage / "export.json", finals["report"])], cleanup=[stage])
    return report


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run the export."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: export(args))


if __name__ == "__main__":
    main()
