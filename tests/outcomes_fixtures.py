"""Shared by the outcomes tests and the retraining data check's: the shared data set estimated,
captured and billed (its own charges as the bills), and what `outcomes join` makes of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from insurance_charges.core.captures import KEYS, capture_line
from insurance_charges.core.estimates import estimate_valid
from insurance_charges.core.schema import FIELD_NAMES
from insurance_charges.outcomes.cli import main

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday: ISO week 2026-W45 starts here
HOURS_APART = 3  # the data set's 1,338 records spread over about 24 weeks


@pytest.fixture(scope="session")
def shared(real_model, data_path, tmp_path_factory):
    """The shared data set scored once through the core and captured by the hour, its charges
    as the bills: the captures directory, the bills file and the data set with its estimates."""
    data = pd.read_csv(data_path)
    records = data[list(FIELD_NAMES)].to_dict("records")
    got = estimate_valid(real_model, records)
    folder = tmp_path_factory.mktemp("captures")
    data = data.assign(
        inference_id=[f"patient-{i}" for i in range(len(data))],
        time=[START + timedelta(hours=HOURS_APART * i) for i in range(len(data))],
        estimate=got.amounts,
        low=got.lower,
        high=got.upper,
    )
    for row in data.to_dict("records"):
        hour = folder / row["time"].strftime("%Y/%m/%d/%H")
        hour.mkdir(parents=True, exist_ok=True)
        with open(hour / "part-0.jsonl", "ab") as fh:
            fh.write(
                capture_line(
                    {
                        **{k: row[k] for k in KEYS if k in data},
                        "model_version": real_model.version,
                        "path": "/api/v1/predict",
                    }
                )
            )
    bills = folder.parent / "bills.csv"
    data[["inference_id", "charges"]].to_csv(bills, index=False)
    return folder, bills, data


@pytest.fixture(scope="session")
def shared_joined(shared, tmp_path_factory):
    """The shared captures joined with their bills by the command itself, as CSV and as
    Parquet: {".csv": JOINED, ".parquet": JOINED}."""
    folder, bills, _ = shared
    out = tmp_path_factory.mktemp("joined")
    joined = {}
    for suffix in (".csv", ".parquet"):
        path = out / f"joined{suffix}"
        status = main(["join", "--captures", str(folder), "--actuals", str(bills), "-o", str(path)])
        assert status == 0, f"join to {path} ended {status}"
        joined[suffix] = path
    return joined
