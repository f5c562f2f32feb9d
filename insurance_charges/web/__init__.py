"""The web layer: the Flask app factory and the one accessor for the served model."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app
from flask.json.provider import DefaultJSONProvider

from .. import settings as settings_module
from ..serving.model import Model, ModelLoadError, load_model
from ..settings import SettingsError

__all__ = ["create_app", "served_model", "ModelLoadError", "SettingsError"]
_MODEL_KEY = "insurance_charges.model"


def config_from(settings: settings_module.Settings) -> dict[str, Any]:
    """The app's config entries for checked settings."""
    return {
        "MODEL_PATH": str(settings.model_path),
        "MODEL_URI": settings.model_uri,
        "TRUSTED_KEYS": settings.trusted_keys,
        "LOG_LEVEL": settings.log_level,
        "MAX_BATCH": settings.max_batch,
        "API_KEYS": settings.api_keys,
        "MAX_CONTENT_LENGTH": settings_module.MAX_CONTENT_LENGTH,
        # SageMaker's /invocations (web/sagemaker.py): its body limit and the workers
        # gunicorn runs, which /execution-parameters advises as the job's concurrency.
        "MAX_PAYLOAD_MB": settings.max_payload_mb,
        "WORKERS": settings.workers,
        "METRICS_DIR": settings.metrics_dir,
        "WORKER_RESULTS": settings.worker_results,
        "WORKER_SCORED_URI": settings.worker_scored,
        "WORKER_MAX_FILE_MB": settings.worker_max_file_mb,
        "CAPTURE": settings.capture,
        "CAPTURE_PERCENT": settings.capture_percent,
        "OUTCOMES_REPORT": settings.outcomes_report,
    }


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: checked settings from the environment, then test overrides.

    ``test_config`` may hold ``MODEL``, an already loaded model (or a stand-in) to serve;
    otherwise the model at ``MODEL_URI`` (the registry's store) or ``MODEL_PATH`` is loaded and
    verified once, here. ``MONITORING`` False leaves out metrics and drift (the
    benchmark measures their cost that way).
    """
    app = Flask(__name__)
    app.config.from_mapping(config_from(settings_module.from_environ(os.environ)))
    app.config.from_mapping(test_config or {})
    # Flask reads FLASK_DEBUG from the environment; debug mode is never acceptable here.
    app.debug = False
    # Keep documented field order in responses (Flask's default provider sorts keys).
    json_provider = DefaultJSONProvider(app)
    json_provider.sort_keys = False
    app.json = json_provider

    from . import (
        api,
        capturing,
        drift_views,
        errors,
        form_views,
        logs,
        model_views,
        observe,
        openapi,
        sagemaker,
        security,
    )

    logs.init_app(app)
    started = time.perf_counter()
    app.extensions[_MODEL_KEY] = app.config.pop("MODEL", None) or _load(app.config)
    observe.init_app(app, time.perf_counter() - started)
    capturing.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(drift_views.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(form_views.bp)
    app.register_blueprint(sagemaker.bp)
    app.register_blueprint(model_views.bp)
    if app.config["WORKER_RESULTS"] is not None:  # an EB worker environment (web/worker.py)
        from . import worker

        worker.init_app(app, app.config["WORKER_RESULTS"])
    return app


def _load(config) -> Model:
    """The model MODEL_URI names in the store (downloaded once), else the file at MODEL_PATH."""
    if config.get("MODEL_URI"):
        from ..registry.loading import load_from_store

        return load_from_store(config["MODEL_URI"], config["TRUSTED_KEYS"])
    return load_model(config["MODEL_PATH"], config["TRUSTED_KEYS"])


def served_model(app: Flask | None = None) -> Model:
    """The model this app serves (the current app's, inside a request)."""
    return (app or current_app).extensions[_MODEL_KEY]
