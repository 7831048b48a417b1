"""Decode a few audio files with an ``espnet_model_zoo`` zip, using stock ESPnet only.

Run as a script (``python -S zoo_decode.py ...``) by ``espnet_lp.bin.export_model`` to prove
that a machine without espnet-lp loads the stock export: with ``--stock``, site-packages are
put on the path without running their ``.pth`` files (so neither espnet-lp's registration nor
an editable install's finder runs) and any import of ``espnet_lp`` is refused. This file
imports nothing from espnet-lp.

Prints one JSON object: ``hyps`` ({path: [text, score]}), ``model`` (class name),
``registered`` (whether ``lp_espnet`` was in ESPnet's model choices), ``espnet_lp_imported``
and ``state_keys`` (the loaded model's state-dict keys).
"""

import argparse
import importlib.abc
import json
import sys


class _RefuseEspnetLP(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname == "espnet_lp" or fullname.startswith("espnet_lp."):
            raise ModuleNotFoundError(f"{fullname} is hidden: stock ESPnet check")
        return None


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zip", required=True, help="espnet_model_zoo zip")
    parser.add_argument("--cachedir", required=True, help="Where the zoo unpacks it")
    parser.add_argument("--wav", action="append", default=[], help="Audio file (repeatable)")
    parser.add_argument("--beam_size", type=int, default=4)
    parser.add_argument("--ctc_weight", type=float, default=0.3)
    parser.add_argument("--stock", action="store_true",
                        help="Hide espnet-lp (needs python -S and --site_dir)")
    parser.add_argument("--site_dir", action="append", default=[],
                        help="site-packages to put on sys.path (no .pth processing)")
    return parser


def decode(zip_path: str, cachedir: str, wavs, beam_size: int = 4,
           ctc_weight: float = 0.3) -> dict:
    """Unpack ``zip_path`` with the zoo, build stock ``Speech2Text``, decode ``wavs``."""
    import soundfile
    import torch
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.tasks.asr import model_choices
    from espnet_model_zoo.downloader import ModelDownloader

    files = ModelDownloader(cachedir).download_and_unpack(zip_path)
    speech2text = Speech2Text(**files, device="cpu", beam_size=beam_size,
                              ctc_weight=ctc_weight, lm_weight=0.0, nbest=1)
    hyps = {}
    for wav in wavs:
        audio, _ = soundfile.read(wav, dtype="float32")
        with torch.no_grad():
            text, _, _, hyp = speech2text(audio)[0]
        hyps[wav] = [text, float(hyp.score)]
    return {"hyps": hyps, "model": type(speech2text.asr_model).__name__,
            "registered": "lp_espnet" in model_choices.classes,
            "espnet_lp_imported": "espnet_lp" in sys.modules,
            "state_keys": sorted(speech2text.asr_model.state_dict())}


def main(cmd=None) -> None:
    """Decode and print the JSON report."""
    args = get_parser().parse_args(cmd)
    if args.stock:
        sys.meta_path.insert(0, _RefuseEspnetLP())
        sys.path.extend(args.site_dir)
    print(json.dumps(decode(args.zip, args.cachedir, args.wav, args.beam_size,
                            args.ctc_weight)))


if __name__ == "__main__":
    main()
