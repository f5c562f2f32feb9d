"""The commands behind `make`'s targets, built as argument lists from make's variables.

The Makefile exports every variable a caller may set (IN, OUT, ARGS, ...) as literal text and
runs ``python -m devtools.make_targets TARGET``: this reads them from the environment, builds
the command's arguments and becomes that command (``os.execv``). No value is ever shell text:
spaces, quotes, ``;``, ``$(...)``, backticks and newlines stay inside the one argument they
belong to, and a value that starts with ``-`` is still a value, never an option.

ARGS and PYTEST_ARGS hold several arguments. They are split as a POSIX shell splits words:
blanks separate them, quotes group (``ARGS='--rejects "my rejects.csv"'``), a backslash
escapes; ``shlex.split`` does only that, nothing is expanded or run.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Mapping

from insurance_charges.settings import SettingsError

Environ = Mapping[str, str]


def _split(environ: Environ, name: str) -> list[str]:
    text = environ.get(name, "")
    try:
        return shlex.split(text)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise SettingsError(
            f"{name}={text[:80]!r}: {str(exc).lower()}; quote an argument that "
            f"holds blanks as a shell would, e.g. {name}='--rejects \"my "
            "rejects.csv\"'"
        ) from None


def _option(environ: Environ, name: str, option: str) -> list[str]:
    """``--option=value`` when ``name`` is set: one argument, whatever the value starts with."""
    return [f"{option}={environ[name]}"] if environ.get(name) else []


def _score(environ: Environ) -> list[str]:
    if not environ.get("IN") or not environ.get("OUT"):
        raise SettingsError(
            "make score needs IN and OUT: make score IN=path|s3://bucket/key|- "
            "OUT=path|s3://bucket/key|- [ARGS='--max-rejects 10']"
        )
    # The input after "--": a path that starts with "-" is a path, not an option.
    return [
        "insurance_charges.scoring",
        *_split(environ, "ARGS"),
        *_option(environ, "OUT", "--output"),
        "--",
        environ["IN"],
    ]


def _registry(environ: Environ) -> list[str]:
    return ["insurance_charges.registry", *_split(environ, "ARGS")]


def _release(environ: Environ) -> list[str]:
    ecr = _option(environ, "ECR_REPOSITORY", "--ecr-repository")
    region = [f"--region={environ.get('AWS_REGION', '')}"] if ecr else []
    return ["insurance_charges.release", *_option(environ, "REGISTRY", "--registry"), *ecr, *region]


def _model_archive(environ: Environ) -> list[str]:
    return [
        "insurance_charges.platforms.sagemaker",
        "archive",
        *_option(environ, "MODEL", "--model"),
        *_option(environ, "OUT", "--output"),
        *_option(environ, "UPLOAD", "--upload"),
    ]


def _train(environ: Environ) -> list[str]:
    if not environ.get("SIGNING_KEY"):
        raise SettingsError(
            "make train needs SIGNING_KEY: the Ed25519 private key (PEM) that "
            "signs the model (docs/training.md)"
        )
    return [
        "insurance_charges.training",
        *_option(environ, "SIGNING_KEY", "--signing-key"),
        *_option(environ, "DATA", "--data"),
    ]


def _test(environ: Environ) -> list[str]:
    return ["pytest", *_split(environ, "PYTEST_ARGS")]


def _check(environ: Environ) -> list[str]:
    # The unit tier (tests/tiers.py): nothing that starts a process or trains a model.
    return [
        "pytest",
        "-m",
        "not slow",
        "-q",
        "-p",
        "no:cacheprovider",
        *_split(environ, "PYTEST_ARGS"),
    ]


TARGETS: Mapping[str, Callable[[Environ], list[str]]] = {
    "score": _score,
    "registry": _registry,
    "release": _release,
    "model-archive": _model_archive,
    "train": _train,
    "test": _test,
    "check": _check,
}


def command(target: str, environ: Environ) -> list[str]:
    """``python -m`` and the arguments that run ``target`` with the variables in ``environ``."""
    return ["-m", *TARGETS[target](environ)]


def main(args: list[str] | None = None) -> int:
    """Become the target's command; on a bad variable, one ``Error:`` line and exit 2."""
    args = sys.argv[1:] if args is None else args
    if len(args) != 1 or args[0] not in TARGETS:
        sys.stderr.write(
            f"Error: no target {' '.join(args)[:80]!r}; the Makefile runs this "
            f"with one of {', '.join(TARGETS)}\n"
        )
        return 2
    try:
        argv = command(args[0], os.environ)
    except SettingsError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 2
    os.execv(sys.executable, [sys.executable, *argv])  # an argument list: no shell reads it
    return 0  # not reached: execv replaced this process


if __name__ == "__main__":
    sys.exit(main())
