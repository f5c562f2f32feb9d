"""insurance-charges: predict yearly medical insurance charges from six facts."""
from __future__ import annotations

import os
from typing import Any, Mapping

from flask import Flask

from .model import DEFAULT_MODEL_PATH, ModelLoadError, load_model
from .security import parse_keys

__all__ = ["create_app", "ConfigError", "ModelLoadError"]

DEFAULTS: dict[str, Any] = {
    "MODEL_PATH": str(DEFAULT_MODEL_PATH),
    "LOG_LEVEL": "INFO",
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,  # 2 MiB: a full batch of 10,000 records fits
    "MAX_BATCH": 10_000,
    "API_KEYS": (),  # empty: the API is open (e.g. reachable only inside a VPC)
}
# Environment variables (EB passes its environment properties this way) and their types.
FROM_ENV = {"MODEL_PATH": str, "LOG_LEVEL": str, "MAX_BATCH": int, "API_KEYS": parse_keys}


class ConfigError(RuntimeError):
    """A setting from the environment is unusable; gunicorn prints it as one line."""


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read the settings that are present in the environment."""
    settings = {}
    for name, kind in FROM_ENV.items():
        if environ.get(name):
            try:
                settings[name] = kind(environ[name])
            except ValueError:
                raise ConfigError(f"{name}={environ[name]!r} is not a valid {kind.__name__}") from None
    return settings


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then environment, then test overrides; load the model once."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(config_from_env(os.environ))
    if test_config:
        app.config.from_mapping(test_config)
    # Flask reads FLASK_DEBUG from the environment; debug mode is never acceptable here.
    app.debug = False
    app.json.sort_keys = False  # keep documented field order in responses

    from . import api, errors, logs, openapi, security, views

    logs.init_app(app)
    # Tests may inject a model; otherwise load and verify the one at MODEL_PATH.
    model = app.config.get("MODEL") or load_model(app.config["MODEL_PATH"])
    app.extensions["insurance_model"] = model
    errors.init_app(app)
    security.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(views.bp)
    return app
