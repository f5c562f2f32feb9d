"""The training data: the canonical download, checked by SHA-256, and schema-checked rows."""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path

import pandas as pd

from ..core.model_card import sha256_of
from ..core.schema import FIELD_NAMES, validate_record
from ..errors import UserError

log = logging.getLogger(__name__)

CANONICAL_URL = (
    "https://raw.githubusercontent.com/stedy/Machine-Learning-with-R-datasets/master/insurance.csv"
)
CANONICAL_SHA256 = "505c1cbc2e63d0363bac59501563df2530aadf4cdb9cfee226f4ef32f5468281"
TARGET = "charges"


class DataError(UserError):
    """The training data cannot be used; the message says why."""

    heading = "Refused"  # the data is refused as it is; fetching it again will not help


def download_canonical(dest_dir: Path) -> Path:
    """Fetch the canonical CSV and refuse it unless its SHA-256 is the published one."""
    dest = dest_dir / "insurance.csv"
    log.info("downloading %s", CANONICAL_URL)
    # B310 is safe here: the URL is a constant https address and the bytes are checked below.
    with urllib.request.urlopen(CANONICAL_URL, timeout=60) as resp:  # nosec B310
        dest.write_bytes(resp.read())
    digest = sha256_of(dest)
    if digest != CANONICAL_SHA256:
        raise DataError(
            f"downloaded file has SHA-256 {digest}, expected {CANONICAL_SHA256}; "
            "refusing to train on it"
        )
    return dest


def load_data(path: Path) -> pd.DataFrame:
    """Read the CSV and check every row against the input schema."""
    frame = pd.read_csv(path)
    expected = [*FIELD_NAMES, TARGET]
    if sorted(frame.columns) != sorted(expected):
        raise DataError(f"{path}: columns {list(frame.columns)}, expected {expected}")
    for i, row in enumerate(frame[list(FIELD_NAMES)].to_dict("records")):
        _, errors = validate_record(row)
        if errors:
            raise DataError(f"{path}: row {i + 2}: {errors[0].message}")
    if frame[TARGET].isna().any() or (frame[TARGET] <= 0).any():
        raise DataError(f"{path}: {TARGET} must be a positive number on every row")
    return frame[expected]
