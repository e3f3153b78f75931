"""CORS, for browsers calling the API from the origins NEWSDESK_CORS_ORIGINS names (flask-cors),
and the OPTIONS requests they send first."""

from flask import current_app, request
from flask_cors import CORS

#: Request headers a browser may send: every one the API reads.
ALLOWED_HEADERS = [
    "Authorization",
    "X-API-Key",
    "Content-Type",
    "If-None-Match",
    "If-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Prefer",
    "Idempotency-Key",
    "X-Request-ID",
]
#: Answer headers a browser's script may read.
EXPOSED_HEADERS = [
    "ETag",
    "Link",
    "Location",
    "Retry-After",
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Idempotent-Replayed",
]


def init_app(app, origins):
    """Answer the CORS requests of ``origins``; call before any other ``after_request`` hook is
    registered (Flask runs them last registered first, and these two must see the answer last)."""
    app.after_request(allow_the_routes_methods)
    CORS(
        app,
        origins=list(origins),
        vary_header=False,  # every answer varies by Origin: api.caching says so itself
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )


def answer_options():
    """before_request, after the URL's checks: OPTIONS (mostly a CORS preflight) answered from
    the routes, as Flask would, before a database connection or a rate limit is taken. A
    preflight carries no key: counted, it spent its address's budget, and its 429 reads as a
    CORS failure in the browser, which never sends the request the key would have allowed."""
    if request.method != "OPTIONS":
        return None
    if request.routing_exception is not None:
        raise request.routing_exception  # no such route: its 404 problem, uncounted too
    return current_app.make_default_options_response()


def allow_the_routes_methods(response):
    """after_request, after flask-cors's (which names every method the API has): a preflight
    allows the methods of its URL's route, and nothing when the method asked for is not one of
    them, so the browser refuses the request rather than sending it for a 405."""
    asked = request.headers.get("Access-Control-Request-Method")
    if request.method != "OPTIONS" or asked is None:
        return response
    if "Access-Control-Allow-Origin" not in response.headers:
        return response  # an origin not allowed: flask-cors added nothing
    if asked in response.allow:
        response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(response.allow))
    else:
        for name in {n for n, _ in response.headers.items() if n.startswith("Access-Control-")}:
            del response.headers[name]
    return response
