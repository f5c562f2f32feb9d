"""The promotion gate: challenger and champion scored side by side on the same records.

A challenger is promoted only if every check passes: its input schema is the one the service
serves, its libraries are the ones installed here (the serving image's lock), every prediction
is finite and positive, its MAE is not worse than the champion's by more than ``TOLERANCE`` over
the records neither was trained on, and its likely range covers 78-82% of the records it was not
trained on (allowing for the sampling error of that many records).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import model_card
from ..core.estimates import estimate_valid
from ..core.schema import FIELD_NAMES
from ..training.card_writer import schema_document
from ..training.data import TARGET
from .evaluation import EvaluationSet

# A challenger may be this much worse than the champion (relative MAE over the records neither
# was trained on) and still pass. Measured: on the 536 evaluation records of the registry's
# tests, the MAE ratio of two comparable models (trained on 400 and on 802 rows) has a paired
# bootstrap sd of 3.0% (4.2% on 268 records), so an equally good retrain is refused for noise
# about 1 time in 20 at 5% (1.65 sd); the damaged-data model (+243%) and the tutorials' linear
# model (+19% on the committed model's holdout) are refused. Smaller regressions need more
# records than one holdout holds to be told from noise.
TOLERANCE = 0.05
COVERAGE_BAND = (0.78, 0.82)  # the 80% range, as the issue asks
# The band is judged against the sampling error of the records at hand: on 268 records a
# perfectly calibrated 80% range lands outside 78-82% in 45% of samples (binomial sd 2.4
# points), so the gate refuses only when the exact (Clopper-Pearson) 95% interval of the
# observed share misses the band: at most 1 in 40 calibrated ranges is refused on each side
# for noise alone, and with more records the rule tightens towards the band itself.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Score:
    """One model on one evaluation set."""

    mae: float
    covered: int  # records whose charges fall inside the likely range
    rows: int
    bad: int  # predictions that are not finite and positive
    has_range: bool

    @property
    def coverage(self) -> float | None:
        """The share of records inside the range, or None for a model without one."""
        return self.covered / self.rows if self.has_range else None


@dataclass(frozen=True)
class SetResult:
    """Both models on one set; ``*_trained`` when the card names this very file as its data."""

    name: str
    rows: int
    challenger: Score | None
    champion: Score | None
    challenger_trained: bool
    champion_trained: bool


def _scored(score: Score | None) -> Score:
    """A score the gate reads: judge() reads scores only once every model was scored."""
    if score is None:
        raise ValueError("the gate read the score of a model that was not scored")
    return score


@dataclass(frozen=True)
class Check:
    """One rule of the gate."""

    name: str
    passed: bool
    detail: str


def score(model, evaluation: EvaluationSet) -> Score:
    """MAE, coverage and non-positive or non-finite predictions of ``model`` on the records."""
    records = evaluation.frame[list(FIELD_NAMES)].to_dict("records")
    truth = evaluation.frame[TARGET].to_numpy(dtype=np.float64)
    got = estimate_valid(model, records)
    amounts = got.amounts
    bad = int(np.count_nonzero(~(np.isfinite(amounts) & (amounts > 0))))
    covered = (
        0
        if got.lower is None
        else int(np.count_nonzero((truth >= got.lower) & (truth <= got.upper)))
    )
    return Score(
        mae=float(np.mean(np.abs(amounts - truth))),
        covered=covered,
        rows=len(truth),
        bad=bad,
        has_range=got.lower is not None,
    )


def exact_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Clopper-Pearson (exact binomial) interval of a share of ``n``."""
    from scipy.stats import beta

    tail = (1 - confidence) / 2
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - tail, successes + 1, n - successes))
    return low, high


def _pct(x: float) -> str:
    return f"{x:.1%}"


def judge(
    card: dict,
    results: list[SetResult],
    champion: str | None,
    not_scored: str | None,
    champion_not_scored: str | None,
) -> list[Check]:
    """Every check of the gate, from the challenger's card and the scores."""
    served = schema_document({})["fields"]
    schema_ok = card.get("schema", {}).get("fields") == served
    mismatches = model_card.version_mismatches(card)
    here = model_card.installed_versions(model_card.MUST_MATCH)
    checks = [
        Check(
            "input schema",
            schema_ok,
            "the six fields as served"
            if schema_ok
            else "differs from the schema this service serves (core/schema.py)",
        ),
        Check(
            "library versions",
            not mismatches,
            ", ".join(mismatches)
            if mismatches
            else ", ".join(f"{k} {v}" for k, v in here.items()) + " as installed",
        ),
    ]
    if not_scored:
        return checks + [Check("scored", False, f"not scored: {not_scored}")]
    bad = sum(_scored(r.challenger).bad for r in results)
    rows = sum(r.rows for r in results)
    checks.append(Check("finite, positive predictions", bad == 0, f"{rows - bad} of {rows}"))
    checks.append(_mae_check(results, champion, champion_not_scored))
    checks.append(_coverage_check(results))
    return checks


def _mae_check(
    results: list[SetResult], champion: str | None, champion_not_scored: str | None
) -> Check:
    name = f"MAE within {TOLERANCE:.0%} of the champion's"
    if champion is None:
        return Check(name, True, "no champion yet")
    if champion_not_scored:
        return Check(name, False, f"champion {champion} not scored: {champion_not_scored}")
    fair = [r for r in results if not (r.challenger_trained or r.champion_trained)]
    if not fair:
        return Check(
            name,
            False,
            "no evaluation records that neither model was trained on; "
            "give --evaluation-data (the newest data's holdout)",
        )
    rows = sum(r.rows for r in fair)
    ours = sum(_scored(r.challenger).mae * r.rows for r in fair) / rows
    theirs = sum(_scored(r.champion).mae * r.rows for r in fair) / rows
    return Check(
        name,
        ours <= theirs * (1 + TOLERANCE),
        f"{ours:,.2f} vs {theirs:,.2f} ({ours / theirs - 1:+.1%}) on {rows} records",
    )


def _coverage_check(results: list[SetResult]) -> Check:
    low, high = COVERAGE_BAND
    name = f"interval coverage {low:.0%}-{high:.0%}"
    unseen = [r for r in results if not r.challenger_trained]
    if not all(_scored(r.challenger).has_range for r in results):
        return Check(name, False, "the challenger's card has no likely range")
    if not unseen:
        return Check(
            name,
            False,
            "no evaluation records it was not trained on; give "
            "--evaluation-data (the newest data's holdout)",
        )
    covered = sum(_scored(r.challenger).covered for r in unseen)
    rows = sum(r.rows for r in unseen)
    lo, hi = exact_interval(covered, rows)
    return Check(
        name,
        lo <= high and hi >= low,
        f"{_pct(covered / rows)} of {rows} records (95% interval {lo:.2%}-{hi:.2%})",
    )


def table(results: list[SetResult], checks: list[Check]) -> str:
    """The side-by-side comparison and the checks, as the terminal shows them."""

    def cell(score: Score | None, field: str) -> str:
        if score is None:
            return "-"
        value = getattr(score, field)
        return "-" if value is None else f"{value:,.2f}" if field == "mae" else _pct(value)

    lines = [
        f"{'evaluation set':<34} {'rows':>5}  {'challenger MAE':>14}  {'champion MAE':>12}"
        f"  {'challenger cover':>16}  {'champion cover':>14}"
    ]
    for r in results:
        mark = " *" if r.challenger_trained or r.champion_trained else ""
        lines.append(
            f"{(r.name + mark)[:34]:<34} {r.rows:>5}  "
            f"{cell(r.challenger, 'mae'):>14}  {cell(r.champion, 'mae'):>12}  "
            f"{cell(r.challenger, 'coverage'):>16}  {cell(r.champion, 'coverage'):>14}"
        )
    if any(r.challenger_trained or r.champion_trained for r in results):
        lines.append(
            "* a model was trained on these very records (its card names the file): "
            "shown, not judged"
        )
    lines.append("")
    lines += [f"{'PASS' if c.passed else 'FAIL'}  {c.name:<32} {c.detail}" for c in checks]
    return "\n".join(lines)


def figures(results: list[SetResult], checks: list[Check]) -> dict:
    """The gate's figures as the champion's history keeps them."""

    def plain(score: Score | None) -> dict | None:
        return (
            None
            if score is None
            else {"mae": round(score.mae, 2), "coverage": score.coverage, "bad": score.bad}
        )

    return {
        "passed": all(c.passed for c in checks),
        "sets": [
            {
                "name": r.name,
                "rows": r.rows,
                "challenger": plain(r.challenger),
                "champion": plain(r.champion),
            }
            for r in results
        ],
        "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks],
    }
