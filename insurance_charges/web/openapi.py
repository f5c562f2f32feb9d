"""The OpenAPI 3.1 document, generated from the schema, and a /docs page that renders it."""

from __future__ import annotations

import json
from functools import lru_cache

from flask import Blueprint, current_app, jsonify, render_template

from ..core.captures import INFERENCE_ID
from ..core.schema import CATEGORY, EXAMPLE_RECORD, FIELD_NAMES, FIELDS, INTEGER
from ..monitoring import drift as drift_rules
from ..monitoring.state import SOURCE as DRIFT_SOURCE
from ..monitoring.state import WINDOW_SECONDS
from .errors import PROBLEM_MEDIA_TYPE, PROBLEMS, problem_type
from .inline_markdown import code_spans

bp = Blueprint("openapi", __name__)
# The document's prose marks names as `code`; /docs shows them as code, not as backticks.
bp.add_app_template_filter(code_spans, "code_spans")
REF = "#/components/schemas/"


def _field_schema(field) -> dict:
    base = {"title": field.label, "description": field.help}
    if field.kind == CATEGORY:
        return {**base, "type": "string", "enum": list(field.choices)}
    kind = "integer" if field.kind == INTEGER else "number"
    return {**base, "type": kind, "minimum": field.minimum, "maximum": field.maximum}


def _json(schema: dict, example=None, media_type: str = "application/json") -> dict:
    content = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"content": {media_type: content}}


def _problems(*statuses: int) -> dict:
    return {
        str(s): {
            "description": f"{PROBLEMS[s].title} (problem type `{problem_type(s)}`)",
            **_json({"$ref": REF + "Problem"}, media_type=PROBLEM_MEDIA_TYPE),
        }
        for s in statuses
    }


def schemas(max_batch: int) -> dict:
    """Component schemas: the record, batches, responses and the problem format."""
    pointer_message = {
        "type": "object",
        "required": ["pointer", "message"],
        "properties": {
            "pointer": {"type": "string", "description": "JSON Pointer (RFC 6901) into the body"},
            "message": {"type": "string"},
        },
    }
    warnings = {
        "type": "array",
        "items": {"$ref": REF + "Notice"},
        "description": "Values outside the range seen in training (extrapolations).",
    }
    interval = {"$ref": REF + "Interval"}
    inference_id = {
        "type": "string",
        "pattern": INFERENCE_ID.pattern,
        "description": "Names this estimate, to match its bill later: the request id (the "
        "`X-Request-ID` header sent, if it is 1 to 128 of `A-Za-z0-9._:@/+=-`, "
        "else one the service makes, echoed in that response header).",
    }
    return {
        "Record": {
            "type": "object",
            "title": "Record",
            "required": list(FIELD_NAMES),
            "properties": {f.name: _field_schema(f) for f in FIELDS},
            "additionalProperties": False,
            "examples": [EXAMPLE_RECORD],
        },
        "Batch": {
            "type": "array",
            "items": {"$ref": REF + "Record"},
            "minItems": 1,
            "maxItems": max_batch,
        },
        "Notice": pointer_message,
        "Prediction": {
            "type": "object",
            "required": ["prediction", "model_version", "warnings", "inference_id"],
            "properties": {
                "prediction": {
                    "type": "number",
                    "description": "Estimated yearly charges in US dollars",
                },
                "model_version": {"type": "string"},
                "warnings": warnings,
                "interval": interval,
                "inference_id": inference_id,
            },
        },
        "BatchPrediction": {
            "type": "object",
            "required": ["predictions", "model_version", "warnings", "inference_ids"],
            "properties": {
                "predictions": {"type": "array", "items": {"type": "number"}},
                "model_version": {"type": "string"},
                "warnings": warnings,
                "intervals": {
                    "type": "array",
                    "items": interval,
                    "description": "One per record, in the order of predictions.",
                },
                "inference_ids": {
                    "type": "array",
                    "items": {"type": "string", "pattern": INFERENCE_ID.pattern},
                    "description": "One per record, in the order "
                    "of predictions: `R-0`, `R-1`, ... where `R` is "
                    "the request id (see `inference_id`).",
                },
            },
        },
        "Interval": {
            "type": "object",
            "required": ["lower", "upper", "level"],
            "description": "The likely range: the charges of about `level` (0.8: 8 "
            "in 10) of people with these facts fall between `lower` and `upper` US "
            "dollars. A split-conformal interval; its method and measured coverage "
            "are in the model card's `interval` section. Absent when the served "
            "model's card has no calibration.",
            "properties": {
                "lower": {"type": "number"},
                "upper": {"type": "number"},
                "level": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            },
        },
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "description": "RFC 9457 problem details",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {"type": "array", "items": {"$ref": REF + "Notice"}},
                "errors_total": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "How many problems were found, when "
                    "errors lists only some of them.",
                },
                "errors_total_is_lower_bound": {
                    "type": "boolean",
                    "description": "True when looking stopped once errors "
                    "was full: there are at least errors_total problems. "
                    "Present with errors_total.",
                },
            },
            "dependentRequired": {
                "errors_total": ["errors_total_is_lower_bound"],
                "errors_total_is_lower_bound": ["errors_total"],
            },
        },
        "ModelCard": {
            "type": "object",
            "required": ["model_version", "metrics", "versions"],
            "additionalProperties": True,
        },
        "Health": {
            "type": "object",
            "required": ["status", "model_version"],
            "properties": {"status": {"const": "ok"}, "model_version": {"type": "string"}},
        },
    }


def drift_schemas() -> dict:
    """Component schemas of the drift document."""
    statuses = [*drift_rules.SEVERITY, drift_rules.TOO_FEW]
    judged = {
        "type": "object",
        "required": ["psi", "status", "records", "bins"],
        "properties": {
            "psi": {
                "type": ["number", "null"],
                "description": "Population stability "
                "index against the training shares (null with no records).",
            },
            "status": {"type": "string", "enum": statuses},
            "records": {"type": "integer", "minimum": 0},
            "bins": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["bin", "training", "served"],
                    "properties": {
                        "bin": {"type": "string"},
                        "training": {
                            "type": "number",
                            "description": "Share of the training rows in this bin.",
                        },
                        "served": {
                            "type": "number",
                            "description": "Share of the records served in this bin.",
                        },
                    },
                },
            },
        },
    }
    share = {
        "type": "object",
        "required": ["values", "share"],
        "properties": {
            "values": {"type": "integer", "minimum": 0},
            "share": {"type": ["number", "null"]},
        },
    }
    period = {
        "type": "object",
        "required": ["since", "seconds", "records", "status", "fields", "estimate", "out_of_range"],
        "properties": {
            "since": {"type": "string", "format": "date-time"},
            "seconds": {"type": "number"},
            "records": {"type": "integer", "minimum": 0},
            "status": {
                "type": "string",
                "enum": statuses,
                "description": "The most severe status of any field or the estimates.",
            },
            "fields": {
                "type": "object",
                "required": list(FIELD_NAMES),
                "additionalProperties": False,
                "properties": {f.name: {"$ref": REF + "FieldDrift"} for f in FIELDS},
            },
            "estimate": {"$ref": REF + "FieldDrift"},
            "out_of_range": {
                "type": "object",
                "required": ["values", "fields"],
                "properties": {
                    "values": {"type": "integer", "minimum": 0},
                    "fields": {"type": "object", "additionalProperties": share},
                },
            },
        },
    }
    return {
        "FieldDrift": judged,
        "DriftPeriod": period,
        "Drift": {
            "type": "object",
            "required": [
                "model_version",
                "reference",
                "thresholds",
                "since_start",
                "recent",
                "window_seconds",
            ],
            "properties": {
                "model_version": {"type": "string"},
                "reference": {"type": "object"},
                "thresholds": {
                    "type": "object",
                    "required": ["watch", "drift", "min_records", "source"],
                },
                "since_start": {"$ref": REF + "DriftPeriod"},
                "recent": {"$ref": REF + "DriftPeriod"},
                "window_seconds": {"type": "integer"},
            },
        },
    }


def _body(schema: dict, example) -> dict:
    return {"required": True, **_json(schema, example)}


@lru_cache(maxsize=4)
def build_document(max_batch: int, max_bytes: int) -> dict:
    """The whole OpenAPI 3.1 document for the given limits."""
    limits = (
        f"Bodies over {max_bytes // (1024 * 1024)} MiB or batches over {max_batch} records get 413."
    )
    bad_body = _problems(400, 413, 415, 422)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "insurance-charges",
            "version": "1",
            "description": "Predict yearly medical insurance charges from six facts. "
            "JSON types are strict and unknown fields are rejected. Errors are "
            f"`{PROBLEM_MEDIA_TYPE}` (RFC 9457). {limits} Unknown paths under /api/ get "
            "404 and wrong methods 405, both as problem+json.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/v1/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Predict one record or a batch",
                    "description": "An object gives `prediction`; an array of 1 to "
                    f"{max_batch} records gives `predictions`, in input order. "
                    "Each estimate comes with its likely range (80% prediction "
                    "interval): `interval`, or `intervals` for a batch, and its id: "
                    "`inference_id`, or `inference_ids` for a batch (derived from "
                    "`X-Request-ID`: `R`, or `R-0`, `R-1`, ...).",
                    "requestBody": _body(
                        {"oneOf": [{"$ref": REF + "Record"}, {"$ref": REF + "Batch"}]},
                        EXAMPLE_RECORD,
                    ),
                    "responses": {
                        "200": {
                            "description": "The estimate(s)",
                            **_json(
                                {
                                    "oneOf": [
                                        {"$ref": REF + "Prediction"},
                                        {"$ref": REF + "BatchPrediction"},
                                    ]
                                }
                            ),
                        },
                        **bad_body,
                    },
                }
            },
            "/predict_api": {
                "post": {
                    "operationId": "predictLegacy",
                    "summary": "Tutorial-compatible: the bare number",
                    "description": "Kept for clients of the tutorials' service: one record in, "
                    "the predicted charges out as a bare JSON number. Its inference "
                    "id is the request id, in the `X-Request-ID` response header.",
                    "requestBody": _body({"$ref": REF + "Record"}, EXAMPLE_RECORD),
                    "responses": {
                        "200": {
                            "description": "Estimated yearly charges in US dollars",
                            **_json({"type": "number"}),
                        },
                        **bad_body,
                    },
                }
            },
            "/api/v1/model": {
                "get": {
                    "operationId": "modelCard",
                    "summary": "The model card of the served model",
                    "responses": {
                        "200": {"description": "Model card", **_json({"$ref": REF + "ModelCard"})}
                    },
                }
            },
            "/api/v1/drift": {
                "get": {
                    "operationId": "drift",
                    "summary": "Input drift against the training data",
                    "description": "What the service has received (summed over all its worker "
                    f"processes) since it started and over the last {WINDOW_SECONDS // 60} "
                    "minutes, "
                    "compared with the training distribution kept in the model card: per input "
                    "and for the estimates, the population stability index (PSI) and a status: "
                    f"`ok` below {drift_rules.WATCH}, `watch` from {drift_rules.WATCH}, `drift` "
                    f"from {drift_rules.DRIFT} ({DRIFT_SOURCE}); "
                    f"`{drift_rules.TOO_FEW}` below {drift_rules.MIN_RECORDS} records. Also the "
                    "share of values outside the training range.",
                    "responses": {
                        "200": {"description": "The comparison", **_json({"$ref": REF + "Drift"})},
                        "404": {
                            "description": "The served model's card holds no "
                            "training distribution (retrain it)",
                            **_json({"$ref": REF + "Problem"}, media_type=PROBLEM_MEDIA_TYPE),
                        },
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Health check (the load balancer's probe)",
                    "responses": {
                        "200": {
                            "description": "The model is loaded",
                            **_json({"$ref": REF + "Health"}),
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {"description": "OpenAPI 3.1 document", **_json({"type": "object"})}
                    },
                }
            },
        },
        "components": {"schemas": {**schemas(max_batch), **drift_schemas()}},
    }


def document() -> dict:
    """The document for the running app's limits."""
    return build_document(current_app.config["MAX_BATCH"], current_app.config["MAX_CONTENT_LENGTH"])


@bp.get("/openapi.json")
def openapi_json():
    """Serve the OpenAPI document."""
    return jsonify(document())


@bp.get("/docs")
def docs():
    """Render the OpenAPI document as a page for people."""
    doc = document()
    return render_template(
        "docs.html",
        doc=doc,
        record=doc["components"]["schemas"]["Record"],
        problems=[(s, p, problem_type(s)) for s, p in PROBLEMS.items()],
        example=json.dumps(EXAMPLE_RECORD),
    )
