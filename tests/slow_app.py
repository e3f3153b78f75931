"""A test-only blueprint of views that run too long, for tests of request deadlines, and one
that tells the order requests are served in: on a real server (``gunicorn ...
'tests.slow_app:make_app()'``) or on a test's own app (:func:`register`)."""

import itertools
import time

from flask import Blueprint, request

from api import create_app
from models import db, is_postgres

blueprint = Blueprint("slow", __name__, url_prefix="/test-slow")

#: A statement that runs for minutes unless stopped: counting to a billion (SQLite), or
#: sleeping (PostgreSQL).
SLOW_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
    "SELECT count(*) FROM c"
)
SLOW_POSTGRES = "SELECT pg_sleep(60)"


@blueprint.get("/sql")
def slow_sql():
    db.execute_sql(SLOW_POSTGRES if is_postgres() else SLOW_SQLITE)
    return {"finished": True}


@blueprint.get("/sleep")
def slow_sleep():
    time.sleep(60)
    return {"finished": True}


@blueprint.get("/cpu")
def slow_cpu():
    """Python computing for a minute without ever waiting: no deadline interrupts it."""
    ends = time.monotonic() + 60
    while time.monotonic() < ends:
        sum(range(1000))
    return {"finished": True}


#: This process's count of the requests /test-slow/turn has answered.
_turns = itertools.count(1)


@blueprint.get("/turn")
def turn():
    """Its place among the requests this worker answers here, after computing for ``ms``
    milliseconds (0 by default): what tests of the order of serving read."""
    ends = time.monotonic() + request.args.get("ms", 0, type=int) / 1000
    while time.monotonic() < ends:
        sum(range(1000))
    return {"turn": next(_turns)}


def register(app):
    """Add the slow views to ``app``."""
    app.register_blueprint(blueprint)
    return app


def make_app():
    """The app as gunicorn serves it (configured from the environment), with the slow views."""
    return register(create_app())
