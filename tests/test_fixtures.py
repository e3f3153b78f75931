"""The suite's own fixtures: a test that reuses an app made by an earlier one starts afresh."""

import shutil
import time

from api import errors
from models import LATEST_VERSION

from .conftest import make_app


def test_a_reused_app_keeps_nothing_of_the_test_before(sqlite_template, tmp_path):
    config = {"rate_limit": "2/minute"}
    databases = []
    for name in ("first", "second"):
        shutil.copyfile(sqlite_template, tmp_path / f"{name}.db")
        databases.append(f"sqlite:///{tmp_path / name}.db")
    first = make_app(databases[0], config)
    client = first.test_client()
    assert [client.get("/v1/tags").status_code for _ in range(3)] == [200, 200, 429]
    first.extensions["newsdesk"][errors.DISK_FULL_AT] = time.monotonic()
    assert client.get("/readyz").json["status"] == "degraded"

    second = make_app(databases[1], config)
    assert second is first
    client = second.test_client()
    answer = client.get("/v1/tags")
    assert answer.status_code == 200 and answer.headers["RateLimit-Remaining"] == "1"
    assert client.get("/readyz").json == {
        "status": "ready",
        "schema_version": LATEST_VERSION,
        "problems": [],
    }
    assert second.config["NEWSDESK"].database_url == databases[1]
