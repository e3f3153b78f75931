"""Operations: liveness, readiness and metrics."""

import ipaddress
import time

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from models import (
    backlog,
    current_version,
    database_file_problem,
    disk_space_problem,
    utcnow_exact,
)
from models.migrations import schema_problem

from . import errors, tasks
from .arguments import Blueprint
from .auth import current_key

blp = Blueprint("health", __name__, description="Operations")
#: Health checks say how things are now: no cache may answer them.
NOT_STORED = {"Cache-Control": "no-store"}
#: Seconds after a write failed on a full disk that /readyz still reports it.
DISK_FULL_MEMORY = 60
#: Seconds work may wait without the worker sweeping (it sweeps every minute) before /readyz
#: says that no worker runs.
WORKER_SILENCE = 180


class HealthSchema(Schema):
    status = fields.String()


class ReadySchema(Schema):
    status = fields.String(
        metadata={"description": "`ready`, or `degraded`: serving, but see `problems`"}
    )
    schema_version = fields.Integer()
    problems = fields.List(
        fields.String(),
        metadata={"description": "What does not work as it should, and what is done instead"},
    )


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """Liveness: the process answers (the database is not touched)."""
        return {"status": "ok"}, NOT_STORED


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self):
        """Readiness: the database answers, its schema is current and (SQLite) its file is still
        the one the server opened (503 otherwise).

        Degraded (still 200; `problems` says why and what is done instead) while the rate-limit
        storage or the task queue's Redis does not answer, the database's disk is full or
        nearly so, or work waits for the background worker and none has swept for 3 minutes.
        """
        gone = database_file_problem()
        if gone:
            abort(503, message=gone, headers={"Retry-After": "60"})
        version = current_version()
        problem = schema_problem(version)
        if problem:
            abort(503, message=f"{problem[0].upper()}{problem[1:]}.", headers={"Retry-After": "5"})
        config = current_app.config["NEWSDESK"]
        problems = current_app.extensions["newsdesk"]["limiter"].problems()
        queue = tasks.queue_problem()
        if queue:
            problems.append(queue)
        disk = disk_space_problem(config.min_free_disk_mb * 2**20)
        if disk:
            problems.append(disk)
        if not config.tasks_immediate:
            worker = worker_problem()
            if worker:
                problems.append(worker)
        refused_at = current_app.extensions["newsdesk"].get(errors.DISK_FULL_AT)
        if refused_at is not None and time.monotonic() - refused_at < DISK_FULL_MEMORY:
            ago = int(time.monotonic() - refused_at)
            problems.append(f"A write failed {ago} s ago: the database's disk is full.")
        status = "degraded" if problems else "ready"
        return {"status": status, "schema_version": version, "problems": problems}, NOT_STORED


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.response(200)
    @blp.doc(
        responses={
            "200": {
                "description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    def get(self):
        """Prometheus metrics: requests and latency per endpoint and status, all workers.

        Served to the addresses of NEWSDESK_METRICS_ALLOW (loopback by default) and to admin keys.
        """
        check_metrics_access(current_app.config["NEWSDESK"])
        directory = current_app.config["NEWSDESK"].metrics_dir
        registry = REGISTRY
        if directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)
        # The worker's backlog as its last sweep left it (the same from any worker).
        now = CollectorRegistry()
        now.register(Backlog())
        return current_app.response_class(
            generate_latest(registry) + generate_latest(now),
            content_type=CONTENT_TYPE_LATEST,
            headers=NOT_STORED,
        )


def worker_problem():
    """What /readyz says when work has waited longer than :data:`WORKER_SILENCE` and no worker
    has swept for as long, or None."""
    try:
        swept = tasks.last_backlog()
    except Exception:  # the queue's Redis away: tasks.queue_problem says so
        return None
    now = utcnow_exact()
    silent = None if swept is None else (now - swept["at"]).total_seconds()
    if silent is not None and silent < WORKER_SILENCE:
        return None  # the backlog is measured only then: load balancers ask often
    waiting = {name: oldest for name, (items, oldest) in backlog.measure().items() if items}
    if not waiting:
        return None
    oldest = (now - min(waiting.values())).total_seconds()
    if oldest < WORKER_SILENCE:
        return None
    since = (
        "no worker has swept yet" if silent is None else f"no worker has swept for {int(silent)} s"
    )
    return (
        f"Background work waits ({', '.join(sorted(waiting))}, the oldest for {int(oldest)} s)"
        f" and {since}: run `newsdesk worker` (it is all recorded: none is lost)."
    )


class Backlog:
    """A Prometheus collector of the worker's backlog as its last sweep measured it
    (:func:`api.tasks.last_backlog`: from Huey's store, not the database, whose pool a busy
    server may have spent), and of the time since that sweep; nothing when the store does not
    answer."""

    def collect(self):
        try:
            measured = tasks.last_backlog()
        except Exception:  # the queue's Redis away: /readyz says so
            return
        now = utcnow_exact()
        swept = GaugeMetricFamily(
            "newsdesk_worker_last_sweep_seconds",
            "Seconds since the worker's last sweep (it sweeps every minute; -1: none recorded)",
        )
        swept.add_metric([], (now - measured["at"]).total_seconds() if measured else -1)
        yield swept
        if not measured:
            return
        items = GaugeMetricFamily(
            "newsdesk_backlog_items",
            "Items waiting for the background worker, at its last sweep",
            labels=["queue"],
        )
        age = GaugeMetricFamily(
            "newsdesk_backlog_oldest_seconds",
            "How long the oldest item waiting at the last sweep has waited (0: none waited)",
            labels=["queue"],
        )
        for name, (count, oldest) in measured["queues"].items():
            items.add_metric([name], count)
            age.add_metric([name], (now - oldest).total_seconds() if oldest else 0)
        yield items
        yield age


def check_metrics_access(config):
    """403 unless the client's address is in ``NEWSDESK_METRICS_ALLOW`` or it presents an
    admin key (a key sent is looked up first, ``database.KEYED_WHEN_SENT``: an unknown one is a
    401 from any address)."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:  # no IP address (a Unix socket): only a key will do
        address = None
    if address is not None and any(address in network for network in config.metrics_allow):
        return
    key = current_key()
    if key is None:
        abort(403, message="Metrics are served to NEWSDESK_METRICS_ALLOW addresses or admin keys.")
    if not key.grants("admin"):
        abort(403, message="This API key lacks the 'admin' scope.")
