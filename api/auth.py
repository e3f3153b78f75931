"""API keys on requests: who is calling, and may they do this?

A key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. A request that presents
an unknown or revoked key is refused with 401 on any endpoint; one without a key is anonymous.
"""

import datetime
import functools

from flask import current_app, g, request
from flask_smorest import abort

from models import ApiKey, utcnow

from .http import NO_DATABASE
from .observe import KEY_ID

CHALLENGE = 'Bearer realm="newsdesk"'
SECURITY = [{"bearerAuth": []}, {"apiKeyHeader": []}]
#: last_used_at is written at most this often per key, not on every request.
TOUCH_EVERY = datetime.timedelta(minutes=1)


def presented_key(environ):
    """The key a request (its WSGI environ) carries, or None."""
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return environ.get("HTTP_X_API_KEY", "").strip() or None


def unauthorized(message):
    abort(401, message=message, headers={"WWW-Authenticate": CHALLENGE})


def current_key():
    """The authenticated ApiKey of this request, or None when anonymous."""
    return g.get("api_key")


def lookup_key():
    """``(token, ApiKey or None)`` for this request, looked up once.

    The rate limiter calls this before :func:`authenticate`, so attempts with wrong keys count
    against the client address and cannot be made without limit.
    """
    context = g._get_current_object()  # see authenticate
    found = context.get("key_lookup")
    if found is None:
        token = presented_key(request.environ)
        key = None if token is None else ApiKey.find(token, current_app.config["NEWSDESK"].secret_key)
        found = context.key_lookup = (token, key)
    return found


def authenticate():
    """Identify the caller (before_request); refuse reads without a key when reads are private.

    The request and ``g`` are read through their objects, not Flask's proxies: each read
    through a proxy costs about 2 us here, and the hooks of every request made some 30.
    """
    req, context = request._get_current_object(), g._get_current_object()
    context.api_key = None
    if req.endpoint in NO_DATABASE:
        return
    token, key = lookup_key()
    if token is not None:
        if key is None:
            unauthorized("The API key is unknown or revoked.")
        context.api_key = key
        req.environ[KEY_ID] = key.id
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY:
            ApiKey.update(last_used_at=now).where(ApiKey.id == key.id).execute()
            key.last_used_at = now
    if (
        not current_app.config["NEWSDESK"].public_read
        and req.method in ("GET", "HEAD")
        and req.path.startswith(("/v1/", "/feeds/"))
    ):
        check_scope("read")


def check_scope(scope):
    key = current_key()
    if key is None:
        unauthorized(f"This needs an API key with the '{scope}' scope.")
    if not key.grants(scope):
        abort(403, message=f"This API key lacks the '{scope}' scope.")


def requires(blp, scope):
    """Decorate a view: only keys granting ``scope`` may call it; documented in the spec."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            check_scope(scope)
            return view(*args, **kwargs)

        wrapper = blp.alt_response(401, response="UNAUTHORIZED")(wrapper)
        wrapper = blp.alt_response(403, response="FORBIDDEN")(wrapper)
        return blp.doc(security=SECURITY)(wrapper)

    return decorator


def register_security_schemes(spec):
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "apiKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    )
