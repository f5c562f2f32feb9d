"""Calibrate the likely range at training time and measure its coverage on the holdout.

Split conformal as in the textbook: the model trained on the training split predicts the
holdout it never saw, and those residuals set the offsets. Coverage is then measured on the
holdout by cross-fitting, so no row is ever checked against a range its own residual helped set.
"""

from __future__ import annotations

from ..core import interval
from . import conformal

GROUP_BY = "smoker"
# Every candidate is calibrated and measured the same way; the card keeps all their figures.
CANDIDATES: dict[str, dict] = {
    "constant, symmetric": {"group_by": None, "symmetric": True},
    "constant, asymmetric": {"group_by": None},
    "by smoker, symmetric": {"group_by": GROUP_BY, "symmetric": True},
    "by smoker, asymmetric": {"group_by": GROUP_BY},
    "scaled to the estimate, asymmetric": {"group_by": None, "scale": "log"},
    "by smoker, scaled to the estimate, asymmetric": {"group_by": GROUP_BY, "scale": "log"},
}
# Smokers' and non-smokers' errors differ in shape (non-smokers have a long upper tail of
# unexplained bills), so each group gets its own lower and upper offsets: coverage holds
# within each group, not just on average.
CHOSEN = "by smoker, asymmetric"
CROSS_FIT = {"folds": 10, "repeats": 50, "seed": 0}
# One 268-row holdout moves coverage by a few points either way, so the whole procedure (fit,
# calibrate, check, on three disjoint parts) is also re-run on fresh seeded splits of all data.
RESAMPLES = 20
METHOD = (
    "split-conformal prediction interval, Mondrian by smoker: per group, the conformal "
    "10th and 90th percentiles of the holdout residuals of the model trained on the "
    "training split are added to the estimate; the lower bound is floored at the "
    "smallest training charge"
)


def _fit(records, truths, predictions, floor: float, level: float, name: str = CHOSEN) -> dict:
    groups = [str(r[GROUP_BY]) for r in records]
    return conformal.fit(truths, predictions, groups, level=level, floor=floor, **CANDIDATES[name])


def cross_fitted(
    records,
    truths,
    predictions,
    floor: float,
    level: float,
    name: str = CHOSEN,
    folds: int = CROSS_FIT["folds"],
    repeats: int = CROSS_FIT["repeats"],
    seed: int = CROSS_FIT["seed"],
) -> dict:
    """Coverage where each row is checked against a range calibrated on the other folds only."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    strata = [str(r[GROUP_BY]) for r in records]
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    checked, lower, upper = [], [], []
    for calibration, check in splitter.split(strata, strata):
        spec = _fit(
            [records[i] for i in calibration],
            [truths[i] for i in calibration],
            [predictions[i] for i in calibration],
            floor,
            level,
            name,
        )
        checked.extend(check)
        low, high = interval.bounds(
            spec, [records[i] for i in check], [predictions[i] for i in check]
        )
        lower.extend(low.tolist())
        upper.extend(high.tolist())
    # Every repeat checks every row once, so these are also the means over the repeats.
    pooled = conformal.coverage_of(
        lower, upper, [records[i] for i in checked], [truths[i] for i in checked], GROUP_BY
    )
    return {**pooled, "rows": len(records), "folds": folds, "repeats": repeats}


def _split_coverage(
    estimator, features, target, raw, seed: int, size: int, level: float
) -> tuple[float, float]:
    """Fit, calibrate and check on three disjoint parts of one seeded split of all the data.

    Returns the coverage of the calibrated model, then of a model refit on the fit and
    calibration parts with the same offsets: what serving a finalized model does.
    """
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    rest, check = train_test_split(range(len(target)), random_state=seed, test_size=size)
    fit_rows, calibration = train_test_split(rest, random_state=seed, test_size=size)
    fitted = clone(estimator).fit(features.iloc[fit_rows], target.iloc[fit_rows])
    spec = _fit(
        raw.iloc[calibration].to_dict("records"),
        target.iloc[calibration].tolist(),
        fitted.predict(features.iloc[calibration]).tolist(),
        float(target.iloc[fit_rows].min()),
        level,
    )
    refit = clone(estimator).fit(features.iloc[rest], target.iloc[rest])
    records, truths = raw.iloc[check].to_dict("records"), target.iloc[check].tolist()
    return tuple(
        conformal.coverage(
            spec, records, model.predict(features.iloc[check]).tolist(), truths, GROUP_BY
        )["coverage"]
        for model in (fitted, refit)
    )


def _summary(shares: list[float]) -> dict:
    mean = sum(shares) / len(shares)
    return {
        "mean": mean,
        "sd": (sum((x - mean) ** 2 for x in shares) / len(shares)) ** 0.5,
        "min": min(shares),
        "max": max(shares),
    }


def resampled_coverage(experiment, estimator, level: float, splits: int = RESAMPLES) -> dict:
    """Coverage of the whole procedure over fresh random splits: how much one holdout varies."""
    from joblib import Parallel, delayed

    # Each split is seeded and independent, so running them on every core changes no figure.
    pairs = Parallel(n_jobs=-1)(
        delayed(_split_coverage)(
            estimator,
            experiment.X_transformed,
            experiment.y_transformed,
            experiment.X,
            seed,
            len(experiment.y_test),
            level,
        )
        for seed in range(splits)
    )
    return {
        "splits": splits,
        "seeds": f"0 to {splits - 1}",
        "rows_each": len(experiment.y_test),
        **_summary([calibrated for calibrated, _ in pairs]),
        "refit_on_fit_and_calibration": _summary([refit for _, refit in pairs]),
    }


def out_of_fold(estimator, folds, features, target) -> list[float]:
    """Predictions for each row from the cross-validation model that did not see it."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_predict

    return cross_val_predict(clone(estimator), features, target, cv=folds, n_jobs=1).tolist()


def _against_training_residuals(
    experiment,
    estimator,
    served: dict,
    holdout: tuple[list[dict], list[float], list[float]],
    level: float,
) -> dict:
    """The other calibration source, both ways: training-split out-of-fold residuals."""
    records = experiment.X_train.to_dict("records")
    truths = experiment.y_train.tolist()
    oof = out_of_fold(
        estimator,
        experiment.get_config("fold_generator"),
        experiment.X_train_transformed,
        experiment.y_train_transformed,
    )
    from_training = _fit(records, truths, oof, served["floor"], level)
    return {
        "residuals": "10-fold out-of-fold, training split",
        "rows": len(truths),
        "offsets": from_training["offsets"],
        "calibrated_on_them_checked_on_holdout": conformal.coverage(
            from_training, *holdout, GROUP_BY
        ),
        "served_range_checked_on_them": conformal.coverage(served, records, oof, truths, GROUP_BY),
    }


def calibrate(experiment, estimator, level: float = interval.LEVEL) -> dict:
    """The card's ``interval`` section: the served spec, its holdout coverage, the candidates."""
    records = experiment.X_test.to_dict("records")
    truths = experiment.y_test.tolist()
    predictions = estimator.predict(experiment.X_test_transformed).tolist()
    floor = float(experiment.y_train.min())
    served = _fit(records, truths, predictions, floor, level)
    measured = {
        name: cross_fitted(records, truths, predictions, floor, level, name) for name in CANDIDATES
    }
    return {
        **served,
        "method": METHOD,
        "chosen": CHOSEN,
        "calibration": {
            "residuals": "holdout, model trained on the training split",
            "rows": len(truths),
        },
        "holdout": measured[CHOSEN],
        "resampled": resampled_coverage(experiment, estimator, level),
        "candidates": measured,
        "training_residuals": _against_training_residuals(
            experiment, estimator, served, (records, predictions, truths), level
        ),
    }
