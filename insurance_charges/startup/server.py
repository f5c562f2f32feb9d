"""Check every setting and the address, then run gunicorn in this process.

In this process, not a new one: the checks and the quiet Ctrl-C stay in force while gunicorn
imports, and gunicorn reads exactly the environment that was checked. gunicorn runs as its
own command would: ``gunicorn --config gunicorn.conf.py application:application``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import cli_runner
from ..errors import UsageError
from ..paths import PROJECT_ROOT
from ..settings import from_environ
from . import gunicorn_environ
from .address import check_address

CONFIG = PROJECT_ROOT / "gunicorn.conf.py"
SERVICE = "application:application"
UNIX_SOCKET = "--unix-socket"  # the image's launcher: gunicorn behind nginx, on this socket


def _unix_socket(args: list[str]) -> Path | None:
    if not args:
        return None
    if len(args) == 2 and args[0] == UNIX_SOCKET and Path(args[1]).is_absolute():
        return Path(args[1])
    raise UsageError(
        f"unknown arguments {' '.join(args)[:80]!r}; run `python -m "
        "insurance_charges.startup` with no argument (settings come from the "
        "environment: docs/configuration.md)"
    )


def main(args: list[str] | None = None) -> int:
    """Check, then serve until gunicorn stops; the exit status when a check fails."""
    return cli_runner.run(lambda: _serve(sys.argv[1:] if args is None else args))


def _serve(args: list[str]) -> int:
    socket_path = _unix_socket(args)  # an unknown argument: 2, an unusable setting: 1
    settings = from_environ(os.environ)
    unset = gunicorn_environ.check(os.environ)
    if socket_path is None:
        check_address(settings.host, settings.port)
    for name in unset:  # empty counts as unset, here as for every setting; gunicorn would not
        del os.environ[name]
    from gunicorn.app.wsgiapp import run  # only now: it reads WEB_CONCURRENCY at import

    # gunicorn's own command line. Its path comes first, as gunicorn re-executes
    # ``python argv[0] ...`` on SIGUSR2.
    sys.argv = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--config",
        str(CONFIG),
        *(["--bind", f"unix:{socket_path}"] if socket_path else []),
        SERVICE,
    ]
    run(prog="gunicorn")
    return 0
