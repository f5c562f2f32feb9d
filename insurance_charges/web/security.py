"""Security: strict response headers everywhere, optional API keys on the JSON API."""

from __future__ import annotations

import hmac

from flask import Flask, current_app, request

from .errors import HttpProblem

# Everything the pages need is served by the app itself; nothing inline is allowed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# /invocations too, so the image never serves estimates unguarded when API_KEYS is set (on
# SageMaker, IAM guards InvokeEndpoint and API_KEYS stays unset:
# docs/deploy/sagemaker.md#the-model-the-settings-stopping).
PROTECTED_PREFIXES = ("/api/", "/predict_api", "/invocations")


def presented_key() -> str | None:
    """The key the client sent, as a Bearer token or an X-API-Key header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-API-Key") or None


def key_is_valid(given: str, keys: tuple[str, ...]) -> bool:
    """Compare against every key in constant time, without stopping at a match."""
    given_bytes = given.encode("utf-8", "surrogateescape")
    matches = [hmac.compare_digest(given_bytes, key.encode()) for key in keys]
    return any(matches)


def init_app(app: Flask) -> None:
    """Install the header policy and, when API_KEYS is set, the key check."""

    @app.before_request
    def require_api_key():
        keys = current_app.config["API_KEYS"]
        if not keys or not request.path.startswith(PROTECTED_PREFIXES):
            return None
        given = presented_key()
        if given is None or not key_is_valid(given, keys):
            raise HttpProblem(
                401,
                "send a valid API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="insurance-charges"'},
            )
        return None

    @app.after_request
    def set_security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith(PROTECTED_PREFIXES) or request.method == "POST":
            # Estimates describe a person's health: no shared cache may keep them.
            response.headers["Cache-Control"] = "no-store"
        return response
