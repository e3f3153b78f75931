"""API keys on requests: who is calling, and may they do this?

A key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. A request that presents
an unknown or revoked key, two different keys, or ``Bearer`` with no key, is refused with 401
on any endpoint (after it has counted against its address's rate limit); one without a key is
anonymous, and so is one whose ``Authorization`` has another scheme (a proxy's ``Basic``), but
a 401 for a missing key then says that header was not read.
"""

import datetime
import functools
import logging
import re

import peewee
from flask import current_app, g, request
from flask_smorest import abort

from models import ApiKey, utcnow

from .database import KEYED_WHEN_SENT, NO_DATABASE

log = logging.getLogger(__name__)

CHALLENGE = 'Bearer realm="newsdesk"'
SECURITY = [{"bearerAuth": []}, {"apiKeyHeader": []}]
#: Endpoints that look no key up: those without a database connection, and readiness, which
#: answers everyone alike (and is never rate limited, so it must not tell keys apart).
KEYLESS = NO_DATABASE | {"health.Ready"}
#: last_used_at is written at most this often per key, not on every request.
TOUCH_EVERY = datetime.timedelta(minutes=1)


def bearer_token(environ):
    """The token of a request's ``Authorization: Bearer`` header ("" when it has none), or
    None without one (another scheme is not Newsdesk's)."""
    scheme, *token = environ.get("HTTP_AUTHORIZATION", "").split(maxsplit=1) or [""]
    return "".join(token).strip() if scheme.lower() == "bearer" else None  # after a space or tab


#: The comma-separated parts of a header's value, a quoted string kept whole.
_PARTS = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
SENT_TWICE = "The API key header was sent more than once: send one key, once."

#: What an ``Authorization`` scheme's name looks like (RFC 9110's token, short): ``Basic``,
#: ``Token``. A value that is not one (a key sent without a scheme) is never repeated back.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9.+-]{0,19}")


def _later_bearer(value):
    """Whether an ``Authorization`` value holds a ``Bearer`` credential after a comma, outside
    a quoted string: the header came more than once (the server joins repeated headers with
    commas), and not first, as in ``Basic …, Bearer <key>``."""
    return any(part.split()[:1] == ["bearer"] for part in _PARTS.findall(value.lower())[1:])


def unread_authorization(environ):
    """Why a request's ``Authorization`` header gave no key, when it has one of another
    scheme than ``Bearer`` (None otherwise): said when a key is needed, since a key sent as
    ``Token <key>``, or with no scheme, was read as no key at all."""
    value = environ.get("HTTP_AUTHORIZATION", "").strip()
    if not value or bearer_token(environ) is not None:
        return None
    scheme, *credentials = value.split(maxsplit=1)
    named = f"'{scheme}' scheme" if credentials and _SCHEME.fullmatch(scheme) else "value"
    return (
        f"The Authorization header's {named} is not read here: send the key as"
        " 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
    )


def presented_key(environ):
    """The key a request (its WSGI environ) carries, or None."""
    return bearer_token(environ) or environ.get("HTTP_X_API_KEY", "").strip() or None


def identify():
    """before_request: find the key the request presents; ``g.api_key`` is it, or None (also
    for a key that is unknown or revoked, or two different keys, what ``g.bad_key`` says for
    :func:`authenticate`)."""
    g.api_key, g.bad_key = None, None
    if request.endpoint in KEYLESS and not (
        request.endpoint in KEYED_WHEN_SENT and presented_key(request.environ)
    ):
        return
    if _later_bearer(request.environ.get("HTTP_AUTHORIZATION", "")):
        g.bad_key = SENT_TWICE  # whichever came first, never an anonymous request
        return
    if bearer_token(request.environ) == "":  # whatever else is sent: an unset $KEY is a bug
        g.bad_key = "Authorization: Bearer carries no key (an empty variable?)."
        return
    if "HTTP_X_API_KEY" in request.environ and not request.environ["HTTP_X_API_KEY"].strip():
        g.bad_key = "X-API-Key carries no key (an empty variable?)."
        return
    token = presented_key(request.environ)
    if token is None:
        return
    other = request.environ.get("HTTP_X_API_KEY", "").strip()
    if other and other != token:
        g.bad_key = "Two different API keys were sent, in Authorization and X-API-Key: send one."
        return
    if "," in token:  # no key holds one: the header came twice, and the server joined them
        g.bad_key = SENT_TWICE
        return
    config = current_app.config["NEWSDESK"]
    key = ApiKey.find(token, config.key_for("api-keys"), config.legacy_api_key_peppers())
    if key is None:
        g.bad_key = "The API key is unknown or revoked."
        return
    g.api_key = key
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY:
        # Best effort: a read must not fail on a database that takes no writes (a full disk,
        # a read-only replica); the time is written at a later request.
        try:
            ApiKey.update(last_used_at=now).where(ApiKey.id == key.id).execute()
        except peewee.DatabaseError as error:
            log.debug("the key's last use was not written: %s", error)
        key.last_used_at = now


def authenticate():
    """before_request, after the rate limit: refuse an unknown key, and reads without a key
    when reads are private."""
    if g.bad_key:
        unauthorized(g.bad_key)
    if (
        not current_app.config["NEWSDESK"].public_read
        and request.method in ("GET", "HEAD")
        and request.path.startswith(("/v1/", "/feeds/"))
    ):
        check_scope("read")


def unauthorized(message):
    abort(401, message=message, headers={"WWW-Authenticate": CHALLENGE})


def current_key():
    """The authenticated ApiKey of this request, or None when anonymous."""
    return g.get("api_key")


def caller_may(scope):
    """Whether this request's key grants ``scope`` (False when anonymous)."""
    caller = current_key()
    return caller is not None and caller.grants(scope)


def drafts_shown():
    """Drafts (and what only they use) are shown to callers whose key may write."""
    return caller_may("write")


def check_scope(scope):
    key = current_key()
    if key is None:
        unread = unread_authorization(request.environ)
        message = f"This needs an API key with the '{scope}' scope."
        unauthorized(f"{message} {unread}" if unread else message)
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
