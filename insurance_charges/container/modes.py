"""How the image was started: with no argument (Elastic Beanstalk, ECS) or ``serve`` (SageMaker).

(``train``, SageMaker's training start, runs no server: ``training_run.py``.)

The exec-form ENTRYPOINT hands the launcher ``docker run``'s arguments: none runs the service
on $PORT as before; ``serve`` is SageMaker's start (``docker run IMAGE serve``): nginx listens
on 8080 or SAGEMAKER_BIND_TO_PORT, the model is the one SageMaker extracted into
/opt/ml/model when it put one there, and a stop may drain for longer, since SageMaker sends
SIGKILL 30 s after SIGTERM where Docker's own default is 10 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..platforms.sagemaker import MODEL_DIR, ModelDirError, model_in
from ..settings import Settings, SettingsError

SERVE = "serve"
KAFKA = "kafka"  # the Kafka consumer instead of the web service (launcher.py)
RETRAIN = "retrain"  # one step of the weekly retraining DAG (launcher.py)
# nginx finishes in-flight requests for this long after SIGTERM, then the launcher stops it
# (1 s later) and gunicorn (under 1.5 s measured): 4 s fits Docker's and EB's 10 s ...
DRAIN_S = 4
# ... and 20 s SageMaker's 30 s: a full 6 MB /invocations costs a core about 0.5 s here
# (bench/invocations.py), so a 100 MB mini-batch about 8 s (16 times that; not measured): the
# largest request a job may send still ends, and 8 s remain before SIGKILL.
SERVE_DRAIN_S = 20


@dataclass(frozen=True)
class Mode:
    """Where nginx listens, the environment gunicorn gets, and how long a stop may drain."""

    port: int
    environ: dict
    drain_s: int
    port_name: str = "PORT"  # the variable that sets ``port``, for a line about it


def mode_for(
    args: list[str], settings: Settings, environ: Mapping[str, str], model_dir=MODEL_DIR
) -> Mode:
    """The mode ``docker run``'s arguments ask for; raise with one line if it cannot run."""
    if not args:
        return Mode(settings.port, dict(environ), DRAIN_S)
    if args != [SERVE]:
        raise UsageError(
            f"unknown arguments {' '.join(args)[:80]!r}; run the image with no "
            f"argument (Elastic Beanstalk, ECS), with `{SERVE}` (SageMaker "
            "endpoints, Batch Transform) or `train` (SageMaker training), or "
            f"`{KAFKA} --help` (the Kafka consumer), or `{RETRAIN} --help` (a step of "
            "the weekly retraining)"
        )
    if settings.api_keys:
        raise SettingsError(
            "API_KEYS=(hidden): SageMaker's InvokeEndpoint cannot send an API "
            "key, so every /invocations would be refused; unset API_KEYS "
            "(IAM authorizes who may invoke the endpoint)"
        )
    key = environ.get("MODEL_PUBLIC_KEY")
    if key and Path(key).resolve().is_relative_to(Path(model_dir).resolve()):
        # A key shipped in model.tar.gz would let whoever made the archive vouch for it.
        raise SettingsError(
            f"MODEL_PUBLIC_KEY={key[:80]!r}: lies in {model_dir}, inside the "
            "model archive it would vouch for; put the public key in the image "
            "and point MODEL_PUBLIC_KEY at it there"
        )
    children = dict(environ)
    if not environ.get("MODEL_PATH"):  # an explicit MODEL_PATH wins over /opt/ml/model
        try:
            found = model_in(model_dir)
        except ModelDirError as exc:
            raise SettingsError(str(exc)) from None
        if found is not None:
            children["MODEL_PATH"] = str(found)
    return Mode(settings.sagemaker_port, children, SERVE_DRAIN_S, "SAGEMAKER_BIND_TO_PORT")
