"""Operations: liveness, readiness and metrics."""

from flask import current_app
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

from models import LATEST_VERSION, current_version

from .arguments import Blueprint

blp = Blueprint("health", __name__, description="Operations")
#: Health checks say how things are now: no cache may answer them.
NOT_STORED = {"Cache-Control": "no-store"}


class HealthSchema(Schema):
    status = fields.String()


class ReadySchema(Schema):
    status = fields.String()
    schema_version = fields.Integer()


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
        """Readiness: the database answers and its schema is current (503 otherwise)."""
        version = current_version()
        if version != LATEST_VERSION:
            abort(
                503,
                message=f"Schema version {version}, expected {LATEST_VERSION}: run `newsdesk db init`.",
                headers={"Retry-After": "5"},
            )
        return {"status": "ready", "schema_version": version}, NOT_STORED


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
    def get(self):
        """Prometheus metrics: requests and latency per endpoint and status, all workers."""
        directory = current_app.config["NEWSDESK"].metrics_dir
        registry = REGISTRY
        if directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)
        return current_app.response_class(
            generate_latest(registry), content_type=CONTENT_TYPE_LATEST
        )
