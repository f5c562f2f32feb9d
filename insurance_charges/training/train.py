"""Train the charges regression pipeline with PyCaret and write it with its model card.

Usage: ``python -m insurance_charges.training --signing-key KEY [--data PATH] [--out DIR]
[--candidates lr,gbr,...] [--folds N]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# PyCaret opens ./logs.log when it is first imported unless told otherwise.
os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", os.devnull)

import pandas as pd
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sklearn.base import BaseEstimator

from .. import cli_runner
from ..command_logs import log_to, step
from ..core import model_card, model_signing
from ..core.model_card import sha256_of
from ..core.schema import FIELD_NAMES
from ..errors import UserError
from ..paths import DEFAULT_MODEL_PATH
from . import baseline, calibrate, card_writer
from .data import CANONICAL_SHA256, TARGET, download_canonical, load_data
from .options import TrainingOptions, read_candidates, read_folds

log = logging.getLogger(__name__)
STEPS = 6  # the steps train() logs with their timing (docs/training.md)

HOLDOUT_FRACTION = 0.2
SORT_BY = "R2"
BASELINE: dict[str, Any] = {
    "description": "the tutorials' model: linear regression after normalize=True, "
    "polynomial_features=True, same split",
    "estimator_id": "lr",
    "setup": {"normalize": True, "polynomial_features": True},
    "fit": baseline.FIT,
}
DEFAULT_OUT = DEFAULT_MODEL_PATH.parent
MODEL_NAME = DEFAULT_MODEL_PATH.stem


def holdout_metrics(experiment, estimator) -> dict:
    """MAE, RMSE and R² on the experiment's holdout, preprocessed as in training."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    truth = experiment.y_test_transformed.to_numpy()
    pred = estimator.predict(experiment.X_test_transformed)
    return {
        "mae": float(mean_absolute_error(truth, pred)),
        "rmse": float(mean_squared_error(truth, pred) ** 0.5),
        "r2": float(r2_score(truth, pred)),
    }


def cv_metrics(experiment) -> dict:
    """Mean cross-validation MAE, RMSE and R² from the experiment's last scoring grid."""
    grid = experiment.pull()
    return {
        key: float(grid.loc["Mean", column])
        for key, column in (("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R2"))
    }


def run_experiment(
    frame: pd.DataFrame,
    estimator: str | BaseEstimator | None,
    options: TrainingOptions = TrainingOptions(),
    **setup_options,
):
    """Set up PyCaret, pick (or create) the estimator by CV and return the pieces."""
    from pycaret.regression import RegressionExperiment

    exp = RegressionExperiment()
    exp.setup(
        frame,
        target=TARGET,
        session_id=options.seed,
        train_size=1 - HOLDOUT_FRACTION,
        fold=options.folds,
        verbose=False,
        html=False,
        system_log=False,
        n_jobs=-1,
        **setup_options,
    )
    if estimator is None:
        exp.compare_models(include=list(options.candidates), sort=SORT_BY, verbose=False)
        leaderboard = exp.pull()
        estimator = leaderboard.index[0]
    # create_model re-runs the winner's CV so its own scoring grid can be read.
    model = exp.create_model(estimator, verbose=False)
    cv = cv_metrics(exp)
    holdout = holdout_metrics(exp, model)
    return exp, model, estimator, cv, holdout


def read_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key that signs models, or a UserError saying how to make one."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(
            f"signing key {path} cannot be used ({exc}); make one with "
            "`openssl genpkey -algorithm ed25519 -out KEY` "
            "(docs/security.md#model-signing)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"signing key {path} is not an Ed25519 private key")
    return key


def train(
    data: Path,
    out_dir: Path,
    signing_key: Ed25519PrivateKey,
    options: TrainingOptions = TrainingOptions(),
) -> dict:
    """Train, evaluate against the tutorials' model, finalize, save and sign; return the card."""
    data_sha = sha256_of(data)
    if data_sha != CANONICAL_SHA256:
        log.warning("%s differs from the canonical data set (SHA-256 %s)", data, data_sha)
    with step(log, 1, STEPS, f"load and check {data.name}"):
        frame = load_data(data)
    with step(
        log, 2, STEPS, f"compare {len(options.candidates)} estimators by {options.folds}-fold CV"
    ):
        exp, model, estimator_id, cv, holdout = run_experiment(frame, None, options)
    log.info("chose %s: CV R² %.4f, holdout MAE %.2f", estimator_id, cv["r2"], holdout["mae"])
    with step(log, 3, STEPS, "calibrate the likely range"):
        likely_range = calibrate.calibrate(exp, model, options.interval_level)
    with step(log, 4, STEPS, "score the tutorials' model on the same split"):
        # PyCaret's own "lr" would move with the CPU (baseline.py says why); the same
        # least squares, well-conditioned, does not.
        _, base_model, _, base_cv, base_holdout = run_experiment(
            frame, baseline.LeastSquares(), options, **BASELINE["setup"]
        )
    with step(log, 5, STEPS, "refit on all rows and save the pipeline"):
        final = exp.finalize_model(model)
        out_dir.mkdir(parents=True, exist_ok=True)
        pipeline_path = out_dir / f"{MODEL_NAME}.pkl"
        exp.save_model(final, str(pipeline_path.with_suffix("")), verbose=False)
    features = frame[list(FIELD_NAMES)]  # what serving will be compared with (drift)
    card = card_writer.build(
        pipeline_path=pipeline_path,
        pipeline_sha256=sha256_of(pipeline_path),
        estimator=type(final.steps[-1][1]).__name__,
        estimator_id=estimator_id,
        trained_at=datetime.now(UTC),
        data_sha256=data_sha,
        rows=len(frame),
        training={
            "session_id": options.seed,
            "holdout_fraction": HOLDOUT_FRACTION,
            "cv_folds": options.folds,
            "sort_by": SORT_BY,
            "candidates": list(options.candidates),
            "pipeline_steps": [name for name, _ in final.steps],
        },
        metrics={"cv": cv, "holdout": holdout},
        baseline={
            **BASELINE,
            "rank": int(base_model.rank_),
            "columns": int(base_model.n_features_in_),
            "cv": base_cv,
            "holdout": base_holdout,
        },
        interval=likely_range,
        distribution=card_writer.distribution(features, final.predict(features)),
        drivers=card_writer.drivers(final, features),
        ranges={
            name: {"min": frame[name].min().item(), "max": frame[name].max().item()}
            for name in FIELD_NAMES
            if frame[name].dtype.kind in "if"
        },
    )
    with step(log, 6, STEPS, "write the model card and sign"):
        card_writer.write(card, model_card.path_for(pipeline_path))
        signature = model_signing.write_signature(
            signing_key, pipeline_path, model_card.path_for(pipeline_path)
        )
    log.info(
        "signed %s with key %s", signature.name, model_signing.key_id(signing_key.public_key())
    )
    return card


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="insurance.csv (default: download and verify)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--signing-key",
        type=Path,
        required=True,
        help="Ed25519 private key (PEM) that signs the model; the service refuses unsigned models",
    )
    parser.add_argument(
        "--candidates",
        default=",".join(TrainingOptions().candidates),
        help="comma-separated PyCaret regressors to compare (default: all %(default)s)",
    )
    parser.add_argument(
        "--folds", default=str(TrainingOptions().folds), help="cross-validation folds (2 to 20)"
    )
    args = parser.parse_args(argv)
    # Steps with their timing: plain on a terminal, JSON lines in a scheduler's task log.
    log_to(logging.getLogger("insurance_charges"))
    # Its one failure line goes the same way (status 1, as for data refused or a bad key).
    return cli_runner.run(lambda: _train_and_report(args), say=log.error)


def _train_and_report(args: argparse.Namespace) -> int:
    # Checked here, not as argparse types: a refused value is then the one Error: line.
    options = TrainingOptions(
        candidates=read_candidates(args.candidates), folds=read_folds(args.folds)
    )
    key = read_signing_key(args.signing_key)  # before minutes of training, not after
    if args.data is None:
        with tempfile.TemporaryDirectory() as tmp:
            card = train(download_canonical(Path(tmp)), args.out, key, options)
    else:
        card = train(args.data, args.out, key, options)
    m, b = card["metrics"]["holdout"], card["baseline"]["holdout"]
    log.info(
        "%s (%s): holdout MAE %.2f RMSE %.2f R² %.4f; tutorials' model MAE %.2f R² %.4f",
        card["model_version"],
        card["estimator"],
        m["mae"],
        m["rmse"],
        m["r2"],
        b["mae"],
        b["r2"],
    )
    likely = card["interval"]
    log.info(
        "%.0f%% interval (%s): holdout coverage %.3f (cross-fitted), over %d resampled splits %.3f",
        100 * likely["level"],
        likely["chosen"],
        likely["holdout"]["coverage"],
        likely["resampled"]["splits"],
        likely["resampled"]["mean"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
