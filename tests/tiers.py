"""Test tiers by construction: what starts a process or trains a model is in the slow tier.

`make check` runs the unit tier (`-m "not slow"`): no servers, Docker, browser, training or child
processes, so it stays a loop of a minute or two. A test cannot land in it by forgetting a marker:
this plugin refuses, in every run, a test outside the slow tier that starts a process (anything
through `subprocess` or `os.fork`, which covers gunicorn, moto's server, Docker, Chromium, the
registry and the scorer's process pool) or fits a PyCaret experiment. Fixtures that start those
mark the tests that use them (`SLOW_FIXTURES`), so a test is slow by the fixture it asks for.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Fixtures that start a process or train: any test that asks for one, directly or through
# another fixture, is in the slow tier.
SLOW_FIXTURES = frozenset(
    {
        "image",
        "container",
        "serving",
        "task",
        "endpoint",  # Docker
        "browser",
        "page",  # Chromium
        "server",
        "metered",
        "prometheus",  # gunicorn, Prometheus
        "moto_endpoint",
        "moto_server",
        "aws",
        "s3",
        "locked_store",
        "registry",  # moto, the registry
        "sqs",
        "worker_fifo",
        "worker_sns",
        "worker_unpublishable",  # moto + gunicorn: EB worker
        "arrivals_queue",
        "worker_files",
        "training",
        "retrained",
        "releases",
        "committed_dir",
        "weeks",
        "released",  # trainings
        "retrained_again",
        "retrained_as_the_oldest_cpu",
        "kafka_broker",  # Tansu
    }
)

CURRENT_TEST = pytest.StashKey[pytest.Item]()

# The deprecations PyCaret's dependencies raise as PyCaret imports them, once, here, before any
# test: (message regex, module regex), the module being where each is raised from. Not ours
# to fix, and never raised again once imported; any other warning still fails the run
# (docs/testing.md#warnings).
IMPORT_WARNINGS = (
    # matplotlib 3.7's font-pattern and mathtext parsers call pyparsing 3.3's old, deprecated names.
    (r"'(parseString|resetCache|enablePackrat)' deprecated", "matplotlib"),
    # yellowbrick 1.5 compares matplotlib's version with distutils' LooseVersion.
    ("distutils Version classes are deprecated", r"yellowbrick|distutils\.version"),
    # scikit-plot 0.3.7's plotters module warns that it is deprecated as PyCaret imports it.
    ("This module was deprecated in version 0.3.0", "scikitplot"),
)


class OutsideItsTier(Exception):
    """A test outside the slow tier started a process or trained a model."""


def _is_slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None


def _guard(config: pytest.Config, what: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `original` so that calling it from a unit-tier test raises OutsideItsTier."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        item = config.stash.get(CURRENT_TEST, None)
        if item is not None and not _is_slow(item):
            raise OutsideItsTier(
                f"{item.nodeid} {what} but is in the unit tier: mark it @pytest.mark.slow "
                "(or use a fixture in tests/tiers.SLOW_FIXTURES), so `make check` stays fast"
            )
        return original(*args, **kwargs)

    return guarded


def pytest_configure(config: pytest.Config) -> None:
    """Guard process creation and PyCaret fitting for the whole run."""
    popen = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    subprocess.Popen._execute_child = _guard(config, "starts a process", popen)  # type: ignore[attr-defined]
    os.fork = _guard(config, "forks a process", os.fork)
    try:
        with warnings.catch_warnings():
            for message, module in IMPORT_WARNINGS:
                warnings.filterwarnings("ignore", message, DeprecationWarning, module)
            from pycaret.regression import RegressionExperiment
    except ImportError:  # the Airflow venv's tests do not have PyCaret
        return
    RegressionExperiment.setup = _guard(config, "trains a model", RegressionExperiment.setup)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a process-starting fixture as slow."""
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Remember which test is running (its fixtures' set-up included) for the guards."""
    item.config.stash[CURRENT_TEST] = item
    try:
        return (yield)
    finally:
        del item.config.stash[CURRENT_TEST]
