"""Contract fuzzing: schemathesis runs every operation of the committed openapi.yaml against the
app, with a key that has every scope, and checks that no answer is a server error and that each
status code, content type and body is one the document promises."""

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app, tasks
from api.demo import load_demo
from models import MODELS, ApiKey, DataVersion, close_all, db, init_db

from .conftest import BACKENDS

ROOT = Path(__file__).resolve().parent.parent
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")


@schemathesis.serializer("application/x-ndjson")
def ndjson(context, value):
    """Import bodies are documented as a string of NDJSON lines: send the string as it is."""
    return value.encode() if isinstance(value, str) else str(value).encode()


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_app(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('contract')}/newsdesk.db"
    else:
        url = request.getfixturevalue("postgres_url")
    app = create_app(
        {
            "database_url": url,
            "testing": True,
            "rate_limit": "1000000/minute",
            "write_rate_limit": "1000000/minute",
            # Webhook URLs the fuzzer makes up are neither resolved nor called: no network.
            "webhook_allow_private": True,
        }
    )
    immediate = tasks.huey.immediate
    tasks.huey.immediate = False
    with db.connection_context():
        init_db()
        if url.startswith("postgresql"):
            tables = ", ".join(model._meta.table_name for model in MODELS)
            db.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            DataVersion.ensure()
        load_demo(articles=60, seed=11)
        _, token = ApiKey.issue("contract", ["admin"], app.config["NEWSDESK"].key_for("api-keys"))
    # The WSGI transport does not decompress answers: ask for them uncompressed.
    yield app, {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
    tasks.huey.immediate = immediate
    close_all()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_the_contract(case, fuzz_app):
    app, headers = fuzz_app
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)
