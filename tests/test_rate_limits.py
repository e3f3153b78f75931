import os
import uuid

import pytest

from api import create_app
from api.limits import WorkerCounters

REDIS_URL = os.environ.get("NEWSDESK_TEST_REDIS_URL")


@pytest.mark.parametrize("app_config", [{"rate_limit": "3/minute"}])
def test_rate_limit_headers_and_429(client):
    remaining = []
    for _ in range(3):
        response = client.get("/v1/tags")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    refused = client.get("/v1/tags")
    assert refused.status_code == 429
    assert refused.content_type == "application/problem+json"
    assert refused.json["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    # Health checks are never limited.
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("app_config", [{"rate_limit": "2/minute"}])
def test_each_key_has_its_own_budget(client, make_key):
    first, second = make_key("read"), make_key("read")
    for _ in range(2):
        assert client.get("/v1/tags", headers=first).status_code == 200
    assert client.get("/v1/tags", headers=first).status_code == 429
    assert client.get("/v1/tags", headers=second).status_code == 200
    assert client.get("/v1/tags").status_code == 200  # anonymous: by client address


@pytest.mark.parametrize("app_config", [{"rate_limit": "2/minute"}])
def test_wrong_keys_count_against_the_client_address(client):
    for _ in range(2):
        assert client.get("/v1/tags", headers={"X-API-Key": "nd_guess"}).status_code == 401
    assert client.get("/v1/tags", headers={"X-API-Key": "nd_guess"}).status_code == 429


@pytest.mark.parametrize(
    "app_config", [{"rate_limit": "100/minute", "write_rate_limit": "2/minute"}]
)
def test_writes_have_a_stricter_limit(client, make_key):
    headers = make_key("write")
    for number in range(2):
        response = client.post(
            "/v1/sources", json={"slug": f"s{number}", "name": "S"}, headers=headers
        )
        assert response.status_code == 201
    refused = client.post("/v1/sources", json={"slug": "s9", "name": "S"}, headers=headers)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert client.get("/v1/sources", headers=headers).status_code == 200


@pytest.mark.skipif(not REDIS_URL, reason="NEWSDESK_TEST_REDIS_URL is not set")
def test_redis_shares_the_budget_between_workers(app, database_url):
    # Two apps stand for two gunicorn workers (or hosts); a client address of its own per run
    # keeps counters of earlier runs out.
    config = {
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "rate_limit": "3/minute",
        "testing": True,
    }
    workers = [create_app(config).test_client() for _ in range(2)]
    address = {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}
    statuses = [workers[n % 2].get("/v1/tags", environ_base=address).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.skipif(not REDIS_URL, reason="NEWSDESK_TEST_REDIS_URL is not set")
def test_memory_storage_is_per_worker(app, database_url):
    config = {"database_url": database_url, "rate_limit": "3/minute", "testing": True}
    workers = [create_app(config).test_client() for _ in range(2)]
    statuses = [workers[n % 2].get("/v1/tags").status_code for n in range(4)]
    assert statuses == [200, 200, 200, 200]


def test_unreachable_redis_counts_in_memory(app, database_url):
    # Nothing listens on port 1: every worker keeps serving and limiting on its own.
    config = {
        "database_url": database_url,
        "redis_url": "redis://127.0.0.1:1/0",
        "rate_limit": "2/minute",
        "testing": True,
    }
    client = create_app(config).test_client()
    statuses = [client.get("/v1/tags").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_worker_counters_start_a_new_window_when_one_ends():
    counters = WorkerCounters(max_keys=2)
    assert [counters.incr("a", 60) for _ in range(3)] == [1, 2, 3]
    assert counters.incr("b", 0) == 1
    assert counters.incr("b", 0) == 1  # a window of no length is over at once
    counters.incr("c", 60)  # the table is full: windows that are over are dropped
    assert set(counters.windows) == {"a", "c"}
