#!/usr/bin/env python3
"""Export a trained model as two ``espnet_model_zoo`` zips, and prove the stock one loads.

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
import json
import logging
import site
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from espnet_lp.asr.export import ExportError, export_zips
from espnet_lp.utils import zoo_decode
from espnet_lp.utils.cli import new_parser, parse, run_cli, str_or_none
from espnet_lp.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    g = parser.add_argument_group("model")
    g.add_argument("--exp_dir", type=Path, required=True, help="ESPnet exp dir (config.yaml)")
    g.add_argument("--asr_model_file", type=str, default="",
                   help="Checkpoint name in exp_dir (default: valid.acc.ave.pth, "
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
    if not wav_scp.is_file():
        raise ExportError(f"{wav_scp}: no such wav.scp")
    wavs = []
    for lineno, line in enumerate(wav_scp.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise ExportError(f"{wav_scp}:{lineno}: expected '<utt_id> <path>'")
        if not Path(parts[1]).is_file():
            raise ExportError(f"{wav_scp}:{lineno}: {parts[1]} is not a file (pipes are not "
                              "supported here)")
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
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cachedir)
    if proc.returncode != 0:
        raise ExportError(f"stock ESPnet could not load or decode {zip_path}:\n"
                          f"{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if report["registered"] or report["espnet_lp_imported"]:
        raise ExportError("the stock check ran with espnet-lp loaded; it proves nothing")
    return report


def verify(zips: Dict[str, Path], args) -> Dict:
    """Compare stock and full decodes; check the full zip's LP tensors."""
    from espnet_lp.asr.espnet_model import is_plugin_key

    wavs = first_wavs(Path(args.verify_wav_scp), args.verify_num)
    with tempfile.TemporaryDirectory() as tmp:
        stock = decode_without_espnet_lp(zips["stock"], Path(tmp) / "stock", wavs,
                                         args.beam_size, args.ctc_weight)
        full = zoo_decode.decode(str(zips["full"].resolve()), str(Path(tmp) / "full"), wavs,
                                 args.beam_size, args.ctc_weight)
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


def export(args) -> Dict:
    """Write both zips, verify them, write ``export.json``; return its content."""
    zips = export_zips(args.exp_dir, args.output_dir, args.name, args.asr_model_file)
    report = {"exp_dir": str(args.exp_dir), "checkpoint": str(zips["checkpoint"]),
              "full_zip": str(zips["full"]), "stock_zip": str(zips["stock"]),
              "verified": None}
    if args.verify_wav_scp is not None:
        report["verified"] = verify(zips, args)
        logger.info("Stock ESPnet (no espnet-lp) loads %s and decodes %d utterances as the "
                    "LP model does", zips["stock"], report["verified"]["utterances"])
    atomic_write_text(Path(args.output_dir) / "export.json", json.dumps(report, indent=2) + "\n")
    return report


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run the export."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: export(args))


if __name__ == "__main__":
    main()
