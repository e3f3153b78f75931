"""A database connection for each request that needs one."""

from flask import g, request

from models import db, end_request, set_deadline

from .errors import DEADLINE

#: Endpoints that answer without the database (nor keys, nor rate limits), so they work while
#: it is down: liveness, metrics, the spec and the docs.
NO_DATABASE = frozenset(
    {
        "health.Health",
        "health.Metrics",
        "docs.docs",
        "docs.assets",
        "docs.static",
        "api-docs.openapi_json",
    }
)
#: ...but for these when a key is sent (the metrics, served to admin keys): it is looked up
#: (``auth.identify``), counted against (the limiter), and a 401 when it is wrong.
KEYED_WHEN_SENT = frozenset({"health.Metrics"})
#: The headers a key is sent in.
KEY_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_X_API_KEY")


def connect():
    """before_request: connect (pooled on PostgreSQL and under gevent workers; otherwise
    SQLite's connection stays open in its thread), its statements bounded by the request's
    deadline."""
    environ = request.environ
    if request.endpoint not in NO_DATABASE or (
        request.endpoint in KEYED_WHEN_SENT and any(name in environ for name in KEY_HEADERS)
    ):
        g.opened_database = db.connect(reuse_if_open=True)
        deadline = environ.get(DEADLINE)
        if deadline is not None:
            set_deadline(deadline[0])


def close(exc):
    """teardown_request: lift the deadline (the connection outlives the request) and hand the
    connection back, when this request opened it."""
    if "opened_database" in g:
        set_deadline(None)
        end_request(g.pop("opened_database"))
