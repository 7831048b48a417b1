"""Download and unpack official corpus archives, verified by size (as Kaldi/ESPnet do)."""

import logging
import shutil
import tarfile
import urllib.request
from pathlib import Path
from typing import Optional

from espnet_lp.data.errors import DataPrepError
from espnet_lp.utils.fileio import Pathlike

logger = logging.getLogger(__name__)


def download_file(url: str, dest: Pathlike, expected_size: Optional[int] = None) -> Path:
    """Download ``url`` to ``dest`` unless a file of the expected size is already there.

    The download goes to ``dest.part`` and is renamed only when complete and of the expected
    size, so an interrupted download is never mistaken for a finished one.
    """
    dest = Path(dest)
    if dest.is_file() and (expected_size is None or dest.stat().st_size == expected_size):
        logger.info("%s exists, not downloading", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    logger.info("Downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url) as resp, open(part, "wb") as f:
            shutil.copyfileobj(resp, f, length=1 << 20)
    except OSError as e:
        raise DataPrepError(f"download of {url} failed: {e}") from e
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink()
        raise DataPrepError(f"{url}: got {size} bytes, expected {expected_size}")
    part.replace(dest)
    return dest


def extract_tar(archive: Pathlike, target_dir: Pathlike) -> None:
    """Unpack a (gzipped) tar archive, refusing members that would land outside the target."""
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    logger.info("Extracting %s", archive)
    with tarfile.open(archive) as tar:
        tar.extractall(target_dir, filter="data")
