"""Input drift: how far what the service receives is from the data the model learned from.

Framework-free (numpy only), so a batch job (an Airflow data check on a day's records) uses the
very functions the service does::

    section = reference_distribution(training_columns, training_estimates)  # at training
    reference = read_reference(card["distribution"])                       # when serving
    bins = reference.fields["age"]
    value = psi(bins.shares, bins.count(ages))
    status(value)                                                          # "ok", "watch", "drift"

Each input is cut into bins once, at training time: a category's bins are its choices, a
number's bins are cut at its training deciles. The population stability index (PSI) compares
the shares of records in each bin: sum over bins of (served - training) * ln(served / training).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from ..core.schema import CATEGORY, FIELDS, INTEGER

ESTIMATE = "estimate"  # the estimates' own distribution, compared like an input's
DECILES = tuple(i / 10 for i in range(1, 10))
# The usual rule of thumb for PSI (Lewis, "An Introduction to Credit Scoring", 1994; Siddiqi,
# "Intelligent Credit Scoring", 2017; as documented for R's scorecard::perf_psi): below 0.1 no
# significant change, 0.1 to 0.25 some change worth watching, 0.25 and above a major shift.
WATCH, DRIFT = 0.10, 0.25
# PSI grows with sampling noise on small samples (Yurdakul and Naranjo, 2020). Measured here:
# 2,000 seeded samples of 500 records each drawn from the training data itself give a mean PSI
# of 0.018 and a 99.9th percentile of 0.05 on decile bins (half the watch line); at 100 records
# the 99th percentile is 0.24. Below this many records no status is given.
MIN_RECORDS = 500
TOO_FEW = "too_few_records"
# An empty bin would make ln(0): its share counts as 0.01%. Then a whole training decile
# missing from what is served adds about 0.69 on its own: a drift, as it should be.
SHARE_FLOOR = 1e-4
# A column of values to bin: a list, a pandas column's numpy array, an Arrow column's values.
Values = Sequence[Any] | np.ndarray
METHOD = (
    "category fields: one bin per choice; numbers and the estimates: bins cut at the "
    "training deciles (a bin holds values above the previous edge up to its own); shares "
    "of the training rows in each bin"
)


@dataclass(frozen=True)
class Bins:
    """One field's bins and the share of the training rows in each."""

    name: str
    kind: str  # "numeric" or "category"
    edges: tuple = ()  # numeric: bin i holds edges[i-1] < x <= edges[i]; the last is open
    categories: tuple = ()
    shares: tuple = ()

    @property
    def labels(self) -> tuple[str, ...]:
        """A short name for each bin ("<= 19", "(19, 24]", "> 59"; or the category)."""
        if self.kind == CATEGORY:
            return self.categories
        e = [f"{edge:g}" for edge in self.edges]
        return (f"<= {e[0]}", *(f"({a}, {b}]" for a, b in pairwise(e)), f"> {e[-1]}")

    def index(self, value: Any) -> int:
        """The bin one value falls in."""
        if self.kind == CATEGORY:
            return self.categories.index(value)
        return bisect_left(self.edges, value)

    def count(self, values: Values) -> np.ndarray:
        """How many of ``values`` fall in each bin."""
        if self.kind == CATEGORY:
            column = np.asarray(values, dtype=object)
            return np.array([np.count_nonzero(column == c) for c in self.categories])
        where = np.searchsorted(
            np.asarray(self.edges, dtype=np.float64),
            np.asarray(values, dtype=np.float64),
            side="left",
        )
        return np.bincount(where, minlength=len(self.edges) + 1)

    def count_codes(self, codes: np.ndarray, choices: Sequence[str]) -> np.ndarray:
        """How many values fall in each category's bin, given as positions in ``choices``."""
        others = len(self.categories)  # a choice the card has no bin for is not counted
        bin_of = np.array(
            [self.categories.index(c) if c in self.categories else others for c in choices],
            dtype=np.intp,
        )
        return np.bincount(bin_of[codes], minlength=others + 1)[:others]

    def to_card(self) -> dict:
        """The card's JSON for these bins."""
        cut = (
            {"categories": list(self.categories)}
            if self.kind == CATEGORY
            else {"edges": list(self.edges)}
        )
        return {
            "kind": self.kind,
            **cut,
            "labels": list(self.labels),
            "shares": [round(s, 6) for s in self.shares],
        }


def numeric_bins(name: str, values: Values, whole: bool = False) -> Bins:
    """Bins cut at the deciles of ``values`` (tied deciles merge into one bin)."""
    column = np.asarray(values, dtype=np.float64)
    # Deciles that are values seen (not interpolated), so an edge reads as a real age or BMI.
    cuts = np.unique(np.quantile(column, DECILES, method="inverted_cdf"))
    cuts = cuts[cuts < column.max()]  # an edge at the maximum would leave the last bin empty
    if not cuts.size:  # one value throughout (a model estimating a constant): one edge at it,
        cuts = column.max(keepdims=True)  # so every later value is either that or above it
    edges = tuple(int(c) if whole else float(c) for c in cuts)
    bins = Bins(name, "numeric", edges=edges)
    return Bins(name, "numeric", edges=edges, shares=tuple(_shares(bins.count(column))))


def category_bins(name: str, values: Values, categories: Sequence[str]) -> Bins:
    """One bin per allowed category, in the schema's order."""
    bins = Bins(name, CATEGORY, categories=tuple(categories))
    return Bins(
        name, CATEGORY, categories=bins.categories, shares=tuple(_shares(bins.count(values)))
    )


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * len(counts)


def reference_distribution(columns: Mapping[str, Values], estimates: Values) -> dict:
    """The training distribution of each input and of the estimates, as the card keeps it."""
    fields = {}
    for f in FIELDS:
        fields[f.name] = (
            category_bins(f.name, columns[f.name], f.choices)
            if f.kind == CATEGORY
            else numeric_bins(f.name, columns[f.name], whole=f.kind == INTEGER)
        )
    return {
        "method": METHOD,
        "rows": len(estimates),
        "fields": {name: bins.to_card() for name, bins in fields.items()},
        ESTIMATE: numeric_bins(ESTIMATE, estimates).to_card(),
    }


@dataclass(frozen=True)
class Reference:
    """The card's training distribution, checked: every input's bins and the estimates'."""

    rows: int
    fields: dict  # field name -> Bins, in the schema's order
    estimate: Bins

    def all_bins(self) -> dict:
        """Every compared distribution: the inputs', then the estimates'."""
        return {**self.fields, ESTIMATE: self.estimate}


def _bins_from(name: str, item: Any) -> Bins:
    if not isinstance(item, dict) or item.get("kind") not in ("numeric", CATEGORY):
        raise ValueError(
            f"distribution entry {name} must be an object with kind numeric or category"
        )
    shares = item.get("shares")
    if item["kind"] == CATEGORY:
        cut = item.get("categories")
        bins = Bins(name, CATEGORY, categories=tuple(cut or ()))
    else:
        cut = item.get("edges")
        bins = Bins(name, "numeric", edges=tuple(cut or ()))
    if not (
        isinstance(cut, list)
        and cut
        and isinstance(shares, list)
        and len(shares) == len(bins.labels)
        and all(isinstance(s, (int, float)) and 0 <= s <= 1 for s in shares)
        and abs(sum(shares) - 1) < 1e-3
    ):
        raise ValueError(
            f"distribution entry {name} must hold its bins and one share per bin adding up to 1"
        )
    if bins.kind == "numeric" and list(bins.edges) != sorted(set(bins.edges)):
        raise ValueError(f"distribution entry {name} must have increasing edges")
    return Bins(name, bins.kind, bins.edges, bins.categories, tuple(float(s) for s in shares))


def read_reference(section: Any) -> Reference:
    """The card's ``distribution`` section, checked; ValueError names what is wrong."""
    if not isinstance(section, dict) or not isinstance(section.get("fields"), dict):
        raise ValueError("distribution must be an object with fields and estimate")
    fields = {}
    for f in FIELDS:
        bins = _bins_from(f.name, section["fields"].get(f.name))
        if f.kind == CATEGORY and bins.categories != f.choices:
            raise ValueError(
                f"distribution entry {f.name} must have the categories " + ", ".join(f.choices)
            )
        fields[f.name] = bins
    rows = section.get("rows")
    if not isinstance(rows, int) or rows < 1:
        raise ValueError("distribution.rows must be a positive whole number")
    return Reference(rows, fields, _bins_from(ESTIMATE, section.get(ESTIMATE)))


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index of ``actual`` (counts or shares) against ``expected`` shares."""
    want = np.maximum(np.asarray(expected, dtype=np.float64), SHARE_FLOOR)
    got = np.asarray(actual, dtype=np.float64)
    if got.sum() <= 0:
        raise ValueError("no values to compare")
    got = np.maximum(got / got.sum(), SHARE_FLOOR)
    return float(np.sum((got - want) * np.log(got / want)))


def status(value: float) -> str:
    """ "ok" below 0.1, "watch" from 0.1, "drift" from 0.25."""
    if math.isnan(value):
        raise ValueError("PSI is not a number")
    return "drift" if value >= DRIFT else "watch" if value >= WATCH else "ok"


def assess(bins: Bins, counts: Sequence[float] | np.ndarray) -> dict:
    """PSI, status and per-bin shares of what was served against the training shares."""
    counted = np.asarray(counts, dtype=np.float64)
    records = int(counted.sum())
    served = counted / records if records else np.zeros(len(counted))
    value = psi(bins.shares, counted) if records else None
    # MIN_RECORDS is positive, so enough records always means a value; mypy needs the None test.
    return {
        "psi": None if value is None else round(value, 4),
        "status": status(value) if value is not None and records >= MIN_RECORDS else TOO_FEW,
        "records": records,
        "bins": [
            {"bin": label, "training": round(share, 4), "served": round(float(s), 4)}
            for label, share, s in zip(bins.labels, bins.shares, served, strict=True)
        ],
    }


SEVERITY = ("ok", "watch", "drift")


def worst(statuses: Sequence[str]) -> str:
    """The most severe status; too few records if none could be judged."""
    judged = [s for s in statuses if s in SEVERITY]
    return max(judged, key=SEVERITY.index) if judged else TOO_FEW
