"""The environment variables gunicorn reads itself, checked before gunicorn is imported.

gunicorn 27.0.1 reads these on its own, out of settings.py's reach (found in its source):
WEB_CONCURRENCY, PORT and FORWARDED_ALLOW_IPS in gunicorn.config's class bodies, at import,
where a bad value is a 20-line traceback; GUNICORN_CMD_ARGS while it parses its command line,
before it reads gunicorn.conf.py, whose settings it then overrides (only a few tuning options
are let through, see ``TUNABLE``); LISTEN_FDS and LISTEN_PID (systemd's socket activation) and
GUNICORN_PID and GUNICORN_FD (its own re-exec on SIGUSR2) once the model is loaded, with
``int()``; SCRIPT_NAME for every request. SENDFILE
(any value is a yes or a no), NOTIFY_SOCKET (its errors are caught) and XDG_RUNTIME_DIR (for
the control socket, which gunicorn.conf.py turns off) cannot fail and are not checked.
PORT and WEB_CONCURRENCY are the service's own settings too (settings.py checks them).
What each may hold: docs/configuration.md#what-gunicorn-reads-itself.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Callable, Mapping

from ..settings import SettingsError

FORWARDED_DEFAULT = "127.0.0.1,::1"  # gunicorn's own default for FORWARDED_ALLOW_IPS
# gunicorn.conf.py's worker timeout. The slowest legitimate request, a full 10,000-record
# batch, measured 0.16 s here; a worker silent for 30 s is hung, not busy, and is killed and
# replaced. An EB worker environment raises it with GUNICORN_CMD_ARGS=--timeout N
# (deploy/eb-worker/.ebextensions), and the proxies in front follow (``request_timeout``).
REQUEST_TIMEOUT_S = 30


def _forwarded_allow_ips(text: str) -> None:
    for part in text.split(","):
        if part.strip() != "*":
            try:
                ipaddress.ip_network(part.strip())  # strict, as gunicorn: 10.0.0.1/8 is a typo
            except ValueError:
                raise ValueError(
                    f"{part.strip()[:40]!r} is not an IP address or network; set "
                    "FORWARDED_ALLOW_IPS to the comma-separated addresses or networks (e.g. "
                    "10.0.0.0/8) of the proxies whose X-Forwarded-* headers gunicorn may "
                    f"believe, or unset it for {FORWARDED_DEFAULT}"
                ) from None


def _refused(why: str) -> Callable[[str], None]:
    def parse(text: str) -> None:
        raise ValueError(why)

    return parse


# GUNICORN_CMD_ARGS may tune these (gunicorn.conf.py's values are defaults a run may change:
# the tests and the soak recycle workers sooner, or never). Every other option would override a
# setting the service checks itself, or how it is run (--reload, --env, --config...).
TUNABLE = (
    "--max-requests",
    "--max-requests-jitter",
    "--timeout",
    "--graceful-timeout",
    "--keep-alive",
    "--backlog",
)
# An option that overrides one of the service's own settings: which one to set instead.
INSTEAD = {
    "-b": "HOST and PORT",
    "--bind": "HOST and PORT",
    "-w": "WEB_CONCURRENCY",
    "--workers": "WEB_CONCURRENCY",
    "--log-level": "LOG_LEVEL",
    "--forwarded-allow-ips": "FORWARDED_ALLOW_IPS",
}


def _gunicorn_cmd_args(text: str) -> None:
    try:
        words = iter(shlex.split(text))  # as gunicorn splits it
    except ValueError as exc:
        raise ValueError(f"{str(exc).lower()}; quote as a shell would") from None
    allowed = ", ".join(TUNABLE)
    for word in words:
        option, equals, value = word.partition("=")
        if option in INSTEAD:
            raise ValueError(
                f"{option} would override a setting the service checks: set "
                f"{INSTEAD[option]} instead (GUNICORN_CMD_ARGS may only tune "
                f"{allowed})"
            )
        if option not in TUNABLE:
            raise ValueError(
                f"{option[:40]!r} is not one of the options GUNICORN_CMD_ARGS may "
                f"tune here ({allowed}, each a whole number); unset "
                "GUNICORN_CMD_ARGS for gunicorn.conf.py's values"
            )
        value = value if equals else next(words, "")
        try:
            if int(value) < 0:  # int(), as gunicorn reads it
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{option} {value[:40]!r}: not a whole number; give {option} a "
                "whole number of requests or seconds"
            ) from None


def _whole_numbers(fix: str, separator: str | None = None) -> Callable[[str], None]:
    def parse(text: str) -> None:
        for part in text.split(separator) if separator else [text]:
            try:
                if int(part) < 0:  # int(), as gunicorn reads it
                    raise ValueError
            except ValueError:
                raise ValueError(f"not a whole number; {fix}") from None

    return parse


SYSTEMD = "set by systemd's socket activation; unset it outside systemd"
REEXEC = "set by gunicorn itself when it re-executes on SIGUSR2; unset it"
CHECKS: Mapping[str, Callable[[str], None]] = {
    "FORWARDED_ALLOW_IPS": _forwarded_allow_ips,
    "GUNICORN_CMD_ARGS": _gunicorn_cmd_args,
    "SCRIPT_NAME": _refused(
        "gunicorn would answer every request outside that path, /health included, with its "
        "own HTML 500 page; the service answers at the root of its host: unset SCRIPT_NAME "
        "(a proxy in front may map a path prefix onto it)"
    ),
    "LISTEN_FDS": _whole_numbers(SYSTEMD),
    "LISTEN_PID": _whole_numbers(SYSTEMD),
    "GUNICORN_PID": _whole_numbers(REEXEC),
    "GUNICORN_FD": _whole_numbers(REEXEC, separator=","),  # one per listening socket
}
# Read with int() when set at all: empty is not "unset" to gunicorn, so it is removed first.
EMPTY_MEANS_UNSET = (
    "PORT",
    "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS",
    "GUNICORN_CMD_ARGS",
    "SCRIPT_NAME",
    "LISTEN_FDS",
    "LISTEN_PID",
    "GUNICORN_PID",
    "GUNICORN_FD",
)


def check(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Refuse the first unusable value (SettingsError); return the names set but empty.

    An empty value counts as unset, as for the service's own settings: the caller removes those
    names from the environment before gunicorn reads it.
    """
    for name, parse in CHECKS.items():
        text = environ.get(name)
        if text:
            try:
                parse(text)
            except ValueError as exc:
                raise SettingsError(f"{name}={text[:80]!r}: {exc}") from None
    if environ.get("GUNICORN_PID") and not environ.get("GUNICORN_FD"):
        raise SettingsError(
            f"GUNICORN_PID={environ['GUNICORN_PID'][:80]!r}: set without GUNICORN_FD; {REEXEC}"
        )
    return tuple(name for name in EMPTY_MEANS_UNSET if environ.get(name) == "")


def request_timeout(environ: Mapping[str, str]) -> int:
    """gunicorn's worker timeout in seconds: GUNICORN_CMD_ARGS's --timeout, else gunicorn.conf.py's.

    ``environ`` must have passed ``check``. The last --timeout wins, as in gunicorn's parser.
    """
    words = shlex.split(environ.get("GUNICORN_CMD_ARGS") or "")
    found = REQUEST_TIMEOUT_S
    for index, word in enumerate(words):
        option, equals, value = word.partition("=")
        if option == "--timeout":
            found = int(value if equals else words[index + 1])
    return found
