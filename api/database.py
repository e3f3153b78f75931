"""A database connection for each request that needs one."""

from flask import g, request

from models import db, end_request

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


def connect():
    """before_request: connect (pooled on PostgreSQL; SQLite's connection stays open in its
    thread)."""
    if request.endpoint not in NO_DATABASE:
        g.opened_database = db.connect(reuse_if_open=True)


def close(exc):
    """teardown_request: hand the connection back, when this request opened it."""
    end_request(g.pop("opened_database", False))
