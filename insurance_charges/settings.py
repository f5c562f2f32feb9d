"""Every setting the service reads from the environment, parsed and checked in one place.

gunicorn.conf.py and the app factory both call ``from_environ``; an unusable value stops
start-up with one line ``Error: NAME=value: why; what to set instead`` (``SettingsError``
is a RuntimeError, which gunicorn prints as that one line and exits 1).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .aws.messages import Destination, parse_destination
from .aws.uri import BadS3Uri, S3Uri, is_s3, parse_s3_object
from .capture.destinations import Destination as CaptureDestination
from .capture.destinations import destination_of
from .core.estimates import MAX_BATCH_LIMIT
from .errors import UserError
from .paths import DEFAULT_MODEL_PATH

# A request body over this is refused: a full 10,000-record batch is about 1 MiB of JSON.
MAX_CONTENT_LENGTH = 2 * 1024 * 1024
# Sync workers are CPU-bound: beyond a few per core they only add memory and contention.
WORKERS_PER_CPU_LIMIT = 4
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# SageMaker (docs/deploy/sagemaker.md): `serve` listens on 8080 unless SageMaker names
# another port (multi-container endpoints and inference pipelines set SAGEMAKER_BIND_TO_PORT).
SAGEMAKER_PORT = 8080
# /invocations accepts SageMaker's real-time payload limit, 6 MB (Batch Transform's default
# mini-batch too); a job may set up to 100 (MaxPayloadInMB's own ceiling). 0, a streamed
# (chunked, unbounded) body, is refused: every body is read whole before it is estimated.
MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_MB_LIMIT = 100
MB = 1024 * 1024  # SageMaker's MB, as its own containers count it (MiB)
# /worker/files scores objects up to this size: 100 MB of CSV, about a million rows, scores in
# about 13 s at the scorer's measured rate (docs/scoring.md), well inside the worker
# environment's gunicorn timeout; a larger object is refused with a result message. The limit
# stops at 1,000: larger files belong to the scorer run as a job or to Batch Transform.
WORKER_MAX_FILE_MB = 100
WORKER_MAX_FILE_MB_LIMIT = 1000
# The metrics port has no authentication: unless told otherwise it answers this machine only.
METRICS_HOST = "127.0.0.1"
# A host name as RFC 1123 spells one: dot-separated labels of 1 to 63 letters, digits and
# inner hyphens, 253 characters at most (RFC 1035), the last label not all digits (so a
# mistyped IPv4 address such as 256.1.1.1 is refused rather than looked up).
_HOST_NAME = re.compile(
    r"(?=.{1,253}\.?$)(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)*"
    r"(?!-)(?=[A-Za-z0-9-]*[A-Za-z-])[A-Za-z0-9-]{1,63}(?<!-)\.?"
)


# A percentage in hundredths at most: sampling buckets are hundredths of a percent
# (core/captures.SAMPLING_BUCKETS), so a finer value would not mean what it says.
_PERCENT = re.compile(r"\d{1,3}(\.\d{1,2})?")


class SettingsError(UserError, RuntimeError):
    """A setting from the environment is unusable; the message is the one line to show.

    Also a RuntimeError: gunicorn prints one of those, raised while it loads the app, as
    ``Error: ...`` and exits 1."""


@dataclass(frozen=True)
class Settings:
    """The service's settings, every one checked."""

    port: int = 8000
    # Where it listens: this machine only unless HOST says otherwise (the image sets 0.0.0.0).
    host: str = "127.0.0.1"
    workers: int = 1
    model_path: Path = DEFAULT_MODEL_PATH
    log_level: str = "info"
    max_batch: int = MAX_BATCH_LIMIT
    api_keys: tuple[str, ...] = ()  # empty: the API is open (e.g. reachable only in a VPC)
    trusted_keys: tuple = ()  # public keys whose model signatures are accepted
    sagemaker_port: int = SAGEMAKER_PORT
    max_payload_mb: int = MAX_PAYLOAD_MB  # /invocations' body limit, in SageMaker's MB
    model_uri: str | None = None  # s3://bucket/prefix/VERSION|champion: served from the store
    model_store: str | None = None  # s3://bucket/prefix: the registry's store (its CLI)
    metrics_port: int | None = None  # Prometheus metrics on their own port; None: not served
    metrics_host: str = METRICS_HOST  # the interface the metrics port listens on
    # prometheus_client's multiprocess directory; None: one under the temp dir, per PORT
    metrics_dir: Path | None = None
    # An EB worker environment's result destination (an SQS queue or SNS topic); None: the
    # worker routes do not exist (the web tier).
    worker_results: Destination | None = None
    # Where /worker/files writes scored copies (s3://bucket/prefix); None: no such route.
    worker_scored: str | None = None
    # The largest object /worker/files scores; gunicorn's timeout in the worker environment
    # covers scoring one this size (docs/events.md#post-workerfiles).
    worker_max_file_mb: int = WORKER_MAX_FILE_MB
    # Where every estimate is captured (capture/destinations.py); None: not captured.
    capture: CaptureDestination | None = None
    capture_percent: float = 100.0  # the share of inference ids captured (a hash of each)
    # The latest outcome report the model page shows (a path or S3 object); None: no section.
    outcomes_report: Path | S3Uri | None = None


def _whole(low: int, high: int, fix: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"not a whole number; {fix}") from None
        if not low <= value <= high:
            raise ValueError(f"outside {low} to {high}; {fix}")
        return value

    return parse


def host_parser(name: str, fix: str = "") -> Callable[[str], str]:
    """A parser for ``name``: an IP address literal or a host name, normalized."""
    fix = fix or (
        f"set {name} to an address of this machine (127.0.0.1: this machine only; 0.0.0.0: "
        "every interface) or its hostname"
    )

    def parse(text: str) -> str:
        host = text.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # an IPv6 address as URLs write it
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            pass
        if not _HOST_NAME.fullmatch(host):
            raise ValueError(f"neither an IP address nor a hostname; {fix}")
        try:  # 0x7f000001: a name in form, which the C library would read as 127.0.0.1
            socket.inet_aton(host)
        except OSError:
            return host
        raise ValueError(
            f"an IPv4 address in an abbreviated form; {fix}, with an address in four decimal parts"
        )

    return parse


def _log_level(text: str) -> str:
    if text.strip().lower() not in LOG_LEVELS:
        raise ValueError("not a log level; set one of " + ", ".join(LOG_LEVELS))
    return text.strip().lower()


def _model_path(text: str, name: str = "MODEL_PATH") -> Path:
    path = Path(text).expanduser().resolve()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path  # the model loader says "not found" and how to make one
    except OSError as exc:
        raise ValueError(
            f"cannot be read ({exc.strerror}); set {name} to a readable trained pipeline file"
        ) from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a device or special file"
        raise ValueError(
            f"not a regular file ({kind}); set {name} to the trained "
            "pipeline's .pkl file, with its .card.json beside it"
        )
    return path


def _model_uri(text: str) -> str | Path:
    """An s3:// model URI, checked and normalized, or a local path (as MODEL_PATH)."""
    from .registry.uri import parse_model_uri

    if not text.strip().startswith("s3://"):
        return _model_path(text, "MODEL_URI")
    store, name = parse_model_uri(text)
    return store.model_uri(name)


def _model_store(text: str) -> str:
    from .registry.uri import parse_store

    return parse_store(text).uri()


def _scored_prefix(text: str) -> str:
    from .registry.uri import parse_prefix

    return parse_prefix(
        text, "WORKER_SCORED_URI to s3://bucket/prefix, where the worker writes scored files"
    ).uri()


def _trusted_keys(text: str) -> tuple:
    from .core.model_signing import read_public_keys

    try:
        pem = Path(text).expanduser().read_bytes()
    except OSError as exc:
        raise ValueError(
            f"cannot be read ({exc.strerror}); set MODEL_PUBLIC_KEY to the PEM file "
            "of the public key that signs your models"
        ) from None
    try:
        return read_public_keys(pem)
    except ValueError as exc:
        raise ValueError(
            f"{exc}; set MODEL_PUBLIC_KEY to a PEM file with one or more Ed25519 "
            "public keys (`openssl pkey -in KEY -pubout`)"
        ) from None


def _metrics_dir(text: str) -> Path:
    path = Path(text).expanduser().resolve()
    fix = (
        "set PROMETHEUS_MULTIPROC_DIR to a writable directory of this service's own (its "
        "metric files are removed at start), or unset it for one under the temp dir"
    )
    if path.exists() and not path.is_dir():
        raise ValueError(f"not a directory; {fix}")
    if path.exists() and not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"not writable; {fix}")
    return path


def _capture_percent(text: str) -> float:
    fix = (
        "set CAPTURE_PERCENT from 0 to 100, in hundredths at most (e.g. 100, 12.5 or "
        "0.25), or unset it for 100"
    )
    if not _PERCENT.fullmatch(text.strip()):
        raise ValueError(f"not a percentage; {fix}")
    value = float(text.strip())
    if value > 100:
        raise ValueError(f"over 100; {fix}")
    return value


def _outcomes_report(text: str) -> Path | S3Uri:
    """An S3 object URI, or a path that is not a directory (it may not exist yet: the model
    page says so until the first report is written)."""
    fix = (
        "set OUTCOMES_REPORT_URI to the JSON file `python -m insurance_charges.outcomes "
        "report --format json` writes, as a path or s3://bucket/key, or unset it"
    )
    value = text.strip()
    if is_s3(value):
        try:
            return parse_s3_object(value)
        except BadS3Uri as exc:
            raise ValueError(f"{exc}; {fix}") from None
    path = Path(value).expanduser().resolve()
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "a device or special file"
        raise ValueError(f"not a regular file ({kind}); {fix}")
    return path


def parse_api_keys(text: str) -> tuple[str, ...]:
    """Split a comma-separated API_KEYS value; set but holding no key is refused."""
    keys = tuple(key.strip() for key in text.split(",") if key.strip())
    if not keys:
        raise ValueError(
            "holds no key, which would leave the API open; set one or more "
            "comma-separated keys (e.g. `openssl rand -hex 24`), or unset API_KEYS"
        )
    return keys


def _parsers(cpus: int) -> dict[str, tuple[str, Callable]]:
    """Environment variable -> (Settings field, parser)."""
    most = WORKERS_PER_CPU_LIMIT * cpus
    return {
        "PORT": ("port", _whole(1, 65535, "set PORT to a TCP port from 1 to 65535")),
        "HOST": ("host", host_parser("HOST")),
        "WEB_CONCURRENCY": (
            "workers",
            _whole(
                1,
                most,
                f"set WEB_CONCURRENCY from 1 to {most} "
                f"({WORKERS_PER_CPU_LIMIT} per CPU; one per CPU "
                "is the default)",
            ),
        ),
        "MODEL_PATH": ("model_path", _model_path),
        "LOG_LEVEL": ("log_level", _log_level),
        "MAX_BATCH": (
            "max_batch",
            _whole(1, MAX_BATCH_LIMIT, f"set MAX_BATCH from 1 to {MAX_BATCH_LIMIT}"),
        ),
        "API_KEYS": ("api_keys", parse_api_keys),
        "MODEL_PUBLIC_KEY": ("trusted_keys", _trusted_keys),
        "SAGEMAKER_BIND_TO_PORT": (
            "sagemaker_port",
            _whole(
                1,
                65535,
                "set SAGEMAKER_BIND_TO_PORT to a TCP port from 1 to 65535, or unset it "
                f"for {SAGEMAKER_PORT}",
            ),
        ),
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": (
            "max_payload_mb",
            _whole(
                1,
                MAX_PAYLOAD_MB_LIMIT,
                "set the job's MaxPayloadInMB (which SageMaker passes "
                f"as this variable) from 1 to {MAX_PAYLOAD_MB_LIMIT}; 0, a "
                "streamed body, is not supported",
            ),
        ),
        "MODEL_URI": ("model_uri", _model_uri),
        "MODEL_STORE": ("model_store", _model_store),
        "METRICS_PORT": (
            "metrics_port",
            _whole(
                1,
                65535,
                "set METRICS_PORT to a TCP port from 1 to 65535 other than PORT (e.g. 9100)",
            ),
        ),
        "METRICS_HOST": (
            "metrics_host",
            host_parser(
                "METRICS_HOST",
                f"set METRICS_HOST to {METRICS_HOST} (the default: this machine only), 0.0.0.0 "
                "(every interface, for a Prometheus on another host) or another address of "
                "this machine, without a port (that is METRICS_PORT)",
            ),
        ),
        "PROMETHEUS_MULTIPROC_DIR": ("metrics_dir", _metrics_dir),
        "WORKER_RESULTS": ("worker_results", parse_destination),
        "WORKER_SCORED_URI": ("worker_scored", _scored_prefix),
        "WORKER_MAX_FILE_MB": (
            "worker_max_file_mb",
            _whole(
                1,
                WORKER_MAX_FILE_MB_LIMIT,
                f"set WORKER_MAX_FILE_MB from 1 to {WORKER_MAX_FILE_MB_LIMIT} (megabytes)",
            ),
        ),
        "CAPTURE_URI": ("capture", destination_of),
        "CAPTURE_PERCENT": ("capture_percent", _capture_percent),
        "OUTCOMES_REPORT_URI": ("outcomes_report", _outcomes_report),
    }


ENVIRONMENT = tuple(_parsers(1))  # every variable the service reads


def registry_environ(environ: Mapping[str, str] = os.environ) -> tuple[str | None, tuple]:
    """MODEL_STORE and the trusted keys (MODEL_PUBLIC_KEY), checked, for the registry's CLI."""
    values = {}
    for name in ("MODEL_STORE", "MODEL_PUBLIC_KEY"):
        field, parse = _parsers(1)[name]
        if environ.get(name):
            try:
                values[field] = parse(environ[name])
            except ValueError as exc:
                raise SettingsError(f"{name}={_shown(name, environ[name])}: {exc}") from None
    if "trusted_keys" not in values:
        from .core.model_signing import TRUSTED_KEYS

        values["trusted_keys"] = _trusted_keys(str(TRUSTED_KEYS))
    return values.get("model_store"), values["trusted_keys"]


def from_environ(environ: Mapping[str, str] = os.environ, cpus: int | None = None) -> Settings:
    """Defaults overridden by the environment; refuse the first unusable value."""
    cpus = cpus or os.cpu_count() or 1
    values = {}
    for name, (field, parse) in _parsers(cpus).items():
        text = environ.get(name)
        if text is None or (text == "" and name != "API_KEYS"):
            continue  # unset (an empty value counts as unset, except for keys)
        try:
            values[field] = parse(text)
        except ValueError as exc:
            raise SettingsError(f"{name}={_shown(name, text)}: {exc}") from None
    if "model_uri" in values and "model_path" in values:
        raise SettingsError(
            f"MODEL_URI={_shown('MODEL_URI', environ['MODEL_URI'])}: MODEL_PATH "
            "is set too, so which model to serve is unclear; set only one"
        )
    if isinstance(values.get("model_uri"), Path):  # a local MODEL_URI is a MODEL_PATH
        values["model_path"] = values.pop("model_uri")
    if values.get("metrics_port") == values.get("port", Settings.port):
        raise SettingsError(
            f"METRICS_PORT={environ['METRICS_PORT']!r}: the app's own port; set "
            "METRICS_PORT to another port (e.g. 9100), so no route to the app "
            "exposes the metrics"
        )
    values.setdefault("workers", cpus)  # one sync worker per CPU: predictions are CPU-bound
    if "trusted_keys" not in values:  # the key whose public half ships with the code
        from .core.model_signing import TRUSTED_KEYS

        values["trusted_keys"] = _trusted_keys(str(TRUSTED_KEYS))
    return Settings(**values)


def _shown(name: str, text: str) -> str:
    """The value as it may appear in a log: API keys never do."""
    if name == "API_KEYS":
        return "(hidden)" if text.strip(" ,") else repr(text)
    return repr(text[:80])
