"""Shared bits of the command-line entry points."""

import argparse
import logging
import sys
from typing import Callable, Optional, Sequence

from espnet_lp.errors import EspnetLPError

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def new_parser(doc: Optional[str]) -> "argparse.ArgumentParser":
    """The parser every CLI starts from: the module docstring (with its ``Usage:``) as the
    description, kept as written, and ESPnet's ``--log_level``."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log_level", default="INFO",
                        choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    return parser


def setup_logging(level: str = "INFO") -> None:
    """ESPnet's log line format on stderr (keeps handlers a caller installed, e.g. pytest)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger().setLevel(level)


def run_cli(body: Callable[[], None]) -> None:
    """Run a CLI body; an :class:`EspnetLPError` becomes one clear line and exit status 1.

    Users get the message that names the bad file/line/utterance rather than a traceback.
    """
    try:
        body()
    except EspnetLPError as e:
        logging.getLogger("espnet_lp").error("%s", e)
        sys.exit(1)


def str_or_none(value: Optional[str]) -> Optional[str]:
    """argparse type: ``none``/``None``/empty -> None."""
    return None if value in (None, "", "none", "None") else value


def parse(parser, cmd: Optional[Sequence[str]]):
    """Parse ``cmd`` (``None``: ``sys.argv``) and set up logging from ``--log_level``."""
    args = parser.parse_args(cmd)
    setup_logging(getattr(args, "log_level", "INFO"))
    return args


def str2bool(value: str) -> bool:
    """argparse type accepting true/false (ESPnet's convention for boolean options)."""
    v = value.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")
