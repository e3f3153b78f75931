import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest
import redis

from api import create_app
from api.limits import RETRY_SECONDS, WorkerCounters

from .servers import free_port

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
def test_an_ipv6_host_has_one_budget_for_its_64_network(client):
    def status(address):
        return client.get("/v1/tags", environ_base={"REMOTE_ADDR": address}).status_code

    assert [status(f"2001:db8:0:1::{n}") for n in range(1, 4)] == [200, 200, 429]
    assert status("2001:db8:0:2::1") == 200  # another network
    # IPv4 clients seen through an IPv6 socket keep an address each.
    assert [status(f"::ffff:192.0.2.{n}") for n in range(1, 4)] == [200, 200, 200]


@pytest.mark.parametrize("app_config", [{"rate_limit": "2/minute"}])
def test_wrong_keys_count_against_the_client_address(client):
    for _ in range(2):
        assert client.get("/v1/tags", headers={"X-API-Key": "nd_guess"}).status_code == 401
    assert client.get("/v1/tags", headers={"X-API-Key": "nd_guess"}).status_code == 429


@pytest.mark.parametrize("app_config", [{"rate_limit": "2/minute"}])
def test_keys_tried_on_metrics_count_and_readiness_looks_no_key_up(client, make_key):
    """/readyz is never limited, so it answers a wrong key as any other request; /metrics
    looks a key up, so tries count against the address, and a right key counts against the
    key (it counted against the address: anonymous requests from a scraper's address made the
    admin key's scrape a 429)."""
    outside = {"REMOTE_ADDR": "198.51.100.7"}
    for _ in range(3):
        ready = client.get("/readyz", headers={"X-API-Key": "nd_guess"}, environ_base=outside)
        assert ready.status_code == 200
    for _ in range(2):
        guess = client.get("/metrics", headers={"X-API-Key": "nd_guess"}, environ_base=outside)
        assert guess.status_code == 401
    refused = client.get("/metrics", headers={"X-API-Key": "nd_guess"}, environ_base=outside)
    assert refused.status_code == 429 and refused.content_type == "application/problem+json"
    admin = client.get("/metrics", headers=make_key("admin"), environ_base=outside)
    assert admin.status_code == 200 and admin.headers["RateLimit-Remaining"] == "1"
    assert client.get("/metrics").status_code == 200  # a listed address, no key: not counted
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "app_config",
    [
        {"rate_limit": "100/minute", "write_rate_limit": "2/minute"},
        {"rate_limit": "3/minute", "write_rate_limit": "2/minute"},  # both spent at once
    ],
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
    # The limit spent is the one named, not the other one nearest it.
    assert refused.headers["RateLimit-Limit"] == "2"
    assert refused.json["detail"] == (
        "Rate limit of 2 writes per 60 s spent by this key; retry in"
        f" {refused.headers['Retry-After']} s."
    )


@pytest.mark.parametrize(
    "app_config",
    [{"rate_limit": "2/minute", "write_rate_limit": "1/minute", "max_import_bytes": 100}],
)
def test_an_import_refused_for_its_type_or_size_is_not_counted(client, make_key):
    """The guards refuse an import of another type (415) or a Content-Length over the import
    limit (413) before the request is counted, as they do a JSON write's: the view refused
    them, after both limits had counted them."""
    headers = make_key("write")
    refusals = [
        ({"Content-Type": "text/plain"}, b"{}\n", 415),
        ({"Content-Type": "application/x-ndjson"}, b"{}\n" * 40, 413),
    ]
    for extra, body, status in refusals * 2:
        refused = client.post("/v1/import", data=body, headers={**headers, **extra})
        assert refused.status_code == status, refused.json
        assert refused.content_type == "application/problem+json"
        assert "RateLimit-Limit" not in refused.headers
    assert refused.json["detail"] == "The request body is larger than the 100 bytes allowed."
    counted = client.post(
        "/v1/import", data=b"", headers={**headers, "Content-Type": "application/x-ndjson"}
    )
    assert counted.status_code == 200, counted.json
    assert counted.headers["RateLimit-Limit"] == "1"
    assert counted.headers["RateLimit-Remaining"] == "0"


@pytest.mark.xdist_group("processes")
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


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of the test's own on a private port: ``(process, url)``."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("redis-server did not start")
    yield process, url
    process.send_signal(signal.SIGCONT)
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.xdist_group("processes")
def test_a_frozen_redis_neither_hangs_requests_nor_stops_limits(app, database_url, redis_server):
    process, url = redis_server
    config = {
        "database_url": database_url,
        "redis_url": url,
        "redis_timeout_ms": 50,
        "rate_limit": "5/minute",
        "testing": True,
    }
    client = create_app(config).test_client()

    def remaining():
        started = time.monotonic()
        response = client.get("/v1/tags")
        assert time.monotonic() - started < 0.5
        assert response.status_code == 200
        return int(response.headers["RateLimit-Remaining"])

    assert [remaining(), remaining()] == [4, 3]  # counted in Redis
    assert client.get("/readyz").json["status"] == "ready"
    process.send_signal(signal.SIGSTOP)
    # Each request answers at once, counted in memory from a fresh window; a search is run,
    # not waited for in the shared answer cache.
    assert [remaining() for _ in range(3)] == [4, 3, 2]
    started = time.monotonic()
    assert client.get("/v1/search?q=storm").status_code == 200
    assert time.monotonic() - started < 1  # a search, where a hang would be no answer at all
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["status"] == "degraded"
    port = url.rsplit(":", 1)[1].split("/")[0]
    (problem,) = ready.json["problems"]
    assert problem == (
        f"Rate limits: Redis at 127.0.0.1:{port} does not answer (no answer within 50 ms);"
        " counting in each worker's memory until it does."
    )
    assert client.get("/healthz").status_code == 200
    process.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 10
    while client.get("/readyz").json["status"] != "ready":
        assert time.monotonic() < deadline, "readyz never saw Redis again"
    # Counted in Redis again: after the two before, and the hit that was sent when it froze
    # (it ran when Redis woke, though its answer came too late to be waited for).
    assert remaining() == 1


@pytest.mark.xdist_group("processes")
def test_a_down_redis_is_tried_again_after_a_second(app, database_url, redis_server):
    process, url = redis_server
    config = {"database_url": database_url, "redis_url": url, "rate_limit": "9/minute"}
    client = create_app({**config, "testing": True}).test_client()
    assert client.get("/v1/tags").headers["RateLimit-Remaining"] == "8"
    process.send_signal(signal.SIGSTOP)
    assert client.get("/v1/tags").headers["RateLimit-Remaining"] == "8"  # in memory
    process.send_signal(signal.SIGCONT)
    assert client.get("/v1/tags").headers["RateLimit-Remaining"] == "7"  # still left alone
    deadline = time.monotonic() + RETRY_SECONDS + 5
    while client.get("/v1/tags").headers["RateLimit-Remaining"] not in ("6", "5", "4", "3"):
        assert time.monotonic() < deadline, "Redis was never tried again"


def counted_in_a_file(database_url, tmp_path, rate_limit):
    """The configuration of an app whose rate-limit counters are in a file in ``tmp_path``."""
    return {
        "database_url": database_url,
        "rate_limit_file": str(tmp_path / "counters.sqlite"),
        "rate_limit": rate_limit,
        "testing": True,
    }


def test_workers_of_a_host_share_counters_in_a_file(app, database_url, tmp_path):
    config = counted_in_a_file(database_url, tmp_path, "3/minute")
    workers = [create_app(config).test_client() for _ in range(2)]
    statuses = [workers[n % 2].get("/v1/tags").status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    # A worker started later (one recycled) counts on where the others left off.
    assert create_app(config).test_client().get("/v1/tags").status_code == 429


@pytest.mark.parametrize("where", ["memory", "file"])
def test_me_shows_what_is_left_of_the_write_limit(app, database_url, tmp_path, make_key, where):
    # It showed the limit /v1/me itself counted against alone: a client spent its writes
    # with no way to see them go.
    headers = make_key("write")
    config = counted_in_a_file(database_url, tmp_path, "100/minute")
    if where == "memory":
        del config["rate_limit_file"]
    client = create_app({**config, "write_rate_limit": "5/minute"}).test_client()
    me = client.get("/v1/me", headers=headers).json
    assert me["write_rate_limit"] == {"limit": 5, "remaining": 5, "reset": 0}
    assert me["rate_limit"]["limit"] == 100
    for number in range(2):
        body = {"slug": f"s{number}", "name": "S"}
        assert client.post("/v1/sources", json=body, headers=headers).status_code == 201
    for _ in range(2):  # reading it spends none of it
        state = client.get("/v1/me", headers=headers).json["write_rate_limit"]
        assert (state["limit"], state["remaining"]) == (5, 3)
        assert 55 <= state["reset"] <= 60


def test_an_unusable_counter_file_falls_back_to_memory(app, database_url, tmp_path):
    client = create_app(counted_in_a_file(database_url, tmp_path, "2/minute")).test_client()
    assert client.get("/v1/tags").headers["RateLimit-Remaining"] == "1"
    (tmp_path / "counters.sqlite").unlink()
    (tmp_path / "counters.sqlite").mkdir()  # the file's place taken: it cannot be opened again
    limiter = client.application.extensions["newsdesk"]["limiter"]
    limiter.tiers[0].storage.connection.close()
    limiter.tiers[0].storage.connection = None
    statuses = [client.get("/v1/tags").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    ready = client.get("/readyz").json
    assert ready["status"] == "degraded"
    assert ready["problems"][0].startswith("Rate limits: the host's counter file does not answer")


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "counted_as"),
    [
        (0, "127.0.0.1", "203.0.113.5", "127.0.0.1"),
        (1, "127.0.0.1", "203.0.113.5", "203.0.113.5"),
        (1, "127.0.0.1", "198.51.100.1, 203.0.113.5", "203.0.113.5"),
        (2, "127.0.0.1", "198.51.100.1, 203.0.113.5", "198.51.100.1"),
        ("10.0.0.0/8", "10.1.2.3", "203.0.113.5", "203.0.113.5"),
        ("10.0.0.0/8", "10.1.2.3", "198.51.100.1, 203.0.113.5, 10.9.9.9", "203.0.113.5"),
        ("10.0.0.0/8", "192.0.2.8", "203.0.113.5", "192.0.2.8"),
    ],
)
def test_forwarded_for_decides_the_address_only_from_trusted_proxies(
    app, database_url, trusted, remote, forwarded, counted_as
):
    from api.config import Config

    proxies = Config.from_env({"NEWSDESK_TRUSTED_PROXIES": str(trusted)}).trusted_proxies
    config = {
        "database_url": database_url,
        "rate_limit": "1/minute",
        "trusted_proxies": proxies,
        "testing": True,
    }
    client = create_app(config).test_client()
    sent = {"REMOTE_ADDR": remote}
    first = client.get("/v1/tags", environ_base=sent, headers={"X-Forwarded-For": forwarded})
    assert first.status_code == 200
    # The budget spent is the address counted: the same address is refused whatever it forwards.
    direct = client.get("/v1/tags", environ_base={"REMOTE_ADDR": counted_as})
    assert direct.status_code == 429
    other = client.get("/v1/tags", environ_base={"REMOTE_ADDR": "192.0.2.200"})
    assert other.status_code == 200


@pytest.mark.xdist_group("processes")
def test_the_task_queue_on_a_frozen_redis_fails_fast(redis_server):
    # With NEWSDESK_REDIS_URL, Huey's queue is in Redis too: waking the worker after a write
    # must not hold the write's answer while Redis is frozen.
    from api.config import Config
    from api.tasks import make_huey

    process, url = redis_server
    queue = make_huey(Config.from_env({"NEWSDESK_REDIS_URL": url, "NEWSDESK_TASKS_IMMEDIATE": "0"}))

    @queue.task()
    def echo(value):
        return value

    echo(1)
    assert queue.pending_count() == 1
    process.send_signal(signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        echo(2)
    assert time.monotonic() - started < 0.5
    process.send_signal(signal.SIGCONT)
    echo(3)
    assert queue.pending_count() == 3  # the frozen call's push ran when Redis woke


@pytest.mark.parametrize("where", ["memory", "file", "redis"])
def test_a_client_that_waits_as_told_finds_the_window_over(app, database_url, tmp_path, where):
    # The seconds were rounded down (and Redis's TTL is whole seconds, rounded): a client
    # that waited as long as Retry-After said was refused again, up to 1.5 s short.
    if where == "redis" and not REDIS_URL:
        pytest.skip("NEWSDESK_TEST_REDIS_URL is not set")
    config = counted_in_a_file(database_url, tmp_path, "2/minute")
    if where != "file":
        del config["rate_limit_file"]
    if where == "redis":
        config["redis_url"] = REDIS_URL
    client = create_app(config).test_client()
    address = {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.9"}
    started = time.time()  # the window starts after this
    first = client.get("/v1/tags", environ_base=address)
    assert first.headers["RateLimit-Reset"] in (["60", "61"] if where == "redis" else ["60"])
    assert client.get("/v1/tags", environ_base=address).status_code == 200
    refused = client.get("/v1/tags", environ_base=address)
    refused_at = time.time()
    assert refused.status_code == 429
    assert refused_at + int(refused.headers["Retry-After"]) >= started + 60
    assert refused.headers["RateLimit-Reset"] == refused.headers["Retry-After"]
