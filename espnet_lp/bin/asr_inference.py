#!/usr/bin/env python3
r"""ESPnet's ``asr_inference``, with ``model: lp_espnet`` registered (quiet imports).

Once espnet-lp is installed, stock ``python -m espnet2.bin.asr_inference`` does the same and
restores every LP weight; this entry point exists for source checkouts that were not
installed (no ``espnet_lp.pth``). Decoding itself is ESPnet's. On top of it, this one checks
its inputs first (model files, data lists, audio paths, key file: a bad one is one line
naming it, not a traceback) and writes ``--output_dir`` atomically: the decoding goes to a
temporary sibling that replaces it only when complete (a killed run leaves the previous
output, a second run on the same output is refused).

Usage:
    python -m espnet_lp.bin.asr_inference --asr_train_config exp/asr/config.yaml \
        --asr_model_file exp/asr/valid.acc.ave.pth --output_dir exp/asr/decode \
        --data_path_and_name_and_type data/test/wav.scp,speech,sound --batch_size 1
"""

import sys
from pathlib import Path
from typing import List, Optional, Sequence

import espnet_lp  # noqa: F401  (registers lp_espnet when ESPnet's ASR task is imported)
from espnet_lp.errors import InputError
from espnet_lp.utils.cli import (check_data_args, check_model_files, model_sample_rate, run_cli,
                                 setup_logging)
from espnet_lp.utils.fileio import atomic_directory, path_problem


def get_parser():
    """ESPnet's asr_inference parser."""
    from espnet2.bin.asr_inference import get_parser as stock_parser

    return stock_parser()


def check_inputs(args) -> None:
    """Everything a user may get wrong, checked before a model is built or a file written."""
    if args.ngpu > 0:
        import torch

        if not torch.cuda.is_available():
            raise InputError(f"--ngpu {args.ngpu}: no CUDA device here (use --ngpu 0)")
    sample_rate = None
    if args.model_tag is None:
        sample_rate = model_sample_rate(check_model_files(args.asr_train_config,
                                                          args.asr_model_file))
    check_data_args(args.data_path_and_name_and_type, args.key_file, sample_rate)
    check_options(args)
    problem = path_problem(args.output_dir, "dir")
    if problem not in (None, "not found"):
        raise InputError(f"{args.output_dir}: output directory {problem}")


def check_options(args) -> None:
    """The decoding options alone (also what ``al_run --decode_opts`` is checked with)."""
    for name in ("batch_size", "nbest", "beam_size"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.ctc_weight <= 1.0:
        raise InputError(f"--ctc_weight must be in [0, 1], got {args.ctc_weight}")


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Check the inputs, then run ESPnet's inference main into a staged output directory."""
    from espnet2.bin.asr_inference import main as stock_main

    cmd: List[str] = list(sys.argv[1:] if cmd is None else cmd)
    args = get_parser().parse_args(cmd)
    setup_logging(args.log_level if isinstance(args.log_level, str) else "INFO")

    def body() -> None:
        check_inputs(args)
        output_dir = Path(args.output_dir)
        with atomic_directory(output_dir) as tmp:
            try:
                stock_main(cmd + ["--output_dir", str(tmp)])
            except RuntimeError as e:
                if "Error(s) in loading state_dict" not in str(e):
                    raise
                raise InputError(f"{args.asr_model_file} does not fit "
                                 f"{args.asr_train_config}: {str(e).splitlines()[0]} "
                                 f"{str(e).splitlines()[1].strip()}") from None

    run_cli(body)


if __name__ == "__main__":
    main()
