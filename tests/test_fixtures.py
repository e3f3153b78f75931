"""The suite's own fixtures: a test that reuses an app made by an earlier one starts afresh."""

import shutil
import time

from api import errors
from models import LATEST_VERSION, ApiKey, bind_database, db
from models.base import binding

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


def test_a_reused_app_keeps_no_answer_of_the_test_before(sqlite_template, tmp_path):
    # The same writes on two databases: the same data version, so the same ETag for the same
    # search, and an answer kept from the first would be served on the second.
    found = []
    for title in ("First storm", "Second storm"):
        path = tmp_path / f"{title}.db"
        shutil.copyfile(sqlite_template, path)
        app = make_app(f"sqlite:///{path}", {})
        with app.app_context(), db.connection_context():
            _, token = ApiKey.issue("t", ["write"], app.config["NEWSDESK"].key_for("api-keys"))
        client, writer = app.test_client(), {"Authorization": f"Bearer {token}"}
        client.post("/v1/sources", json={"slug": "wire", "name": "Wire"}, headers=writer)
        article = {"source": "wire", "title": title, "body_text": "Storm news."}
        assert client.post("/v1/articles", json=article, headers=writer).status_code == 201
        search = client.get("/v1/search?q=storm&mode=keyword")
        found.append((search.headers["ETag"], [hit["title"] for hit in search.json["data"]]))
    assert found[0][0] == found[1][0]
    assert [titles for _, titles in found] == [["First storm"], ["Second storm"]]


def test_each_database_bound_is_named_apart(tmp_path):
    """The suite binds a database per test in each process: what a process keeps per database
    (the vector index, whether pgvector serves it, word frequencies) is keyed by ``binding()``,
    new at every bind, where ``id()`` of a freed database object could name the next one."""
    keys = []
    for number in range(20):
        bind_database(f"sqlite:///{tmp_path / str(number)}.db")
        keys.append(binding())
    assert len(set(keys)) == 20
    assert keys == sorted(keys)
