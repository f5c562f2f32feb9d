"""Warnings fail the tests, in both tiers, except the third-party ones listed with a reason
(pyproject.toml's filterwarnings, tests/tiers.IMPORT_WARNINGS; docs/testing.md#warnings)."""

from __future__ import annotations

import warnings

import pytest

from .tiers import IMPORT_WARNINGS

LOOSE_VERSION = "distutils Version classes are deprecated. Use packaging.version instead."
BYTES_LIMIT = "bytes_limit argument has been deprecated. It will be removed in version 1.5."


def warn_from(module: str, message: str, category: type[Warning] = DeprecationWarning) -> None:
    """Warn as code in ``module`` would (filters match a warning by the module it comes from)."""
    warnings.warn_explicit(message, category, f"{module}.py", 1, module=module, registry={})


@pytest.mark.parametrize("tier", ["unit", pytest.param("slow", marks=pytest.mark.slow)])
@pytest.mark.parametrize(
    "category", [DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning]
)
def test_a_warning_from_the_projects_own_code_fails_the_test_in_either_tier(tier, category):
    with pytest.raises(category):
        warn_from("insurance_charges.serving.model", "old ways", category)


@pytest.mark.parametrize(
    "module, message",
    [
        ("pycaret.utils._dependencies", LOOSE_VERSION),  # every model load
        ("joblib.memory", BYTES_LIMIT),  # every training's setup
    ],
)
def test_only_the_listed_third_party_deprecations_pass_and_only_from_where_they_are_listed(
    module, message
):
    warn_from(module, message)  # let through
    with pytest.raises(DeprecationWarning):  # the same words from the project's code fail
        warn_from("insurance_charges.training.run", message)
    with pytest.raises(DeprecationWarning):  # as does anything else from the same module
        warn_from(module, "another deprecation")


@pytest.mark.parametrize(
    "module, message",
    [
        ("matplotlib._fontconfig_pattern", "'parseString' deprecated - use 'parse_string'"),
        ("matplotlib._mathtext", "'enablePackrat' deprecated - use 'enable_packrat'"),
        ("yellowbrick.style.colors", LOOSE_VERSION),
        ("distutils.version", LOOSE_VERSION),
        ("scikitplot.plotters", "This module was deprecated in version 0.3.0 and its functions"),
    ],
)
def test_pycarets_import_time_deprecations_are_silenced_by_message_and_module(module, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for listed, where in IMPORT_WARNINGS:
            warnings.filterwarnings("ignore", listed, DeprecationWarning, where)
        warn_from(module, message)
        with pytest.raises(DeprecationWarning):
            warn_from("insurance_charges.drawing", message)
