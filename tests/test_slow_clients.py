"""Slow clients, oversized requests and request deadlines: on real gunicorn servers started as
``make run`` and ``newsdesk serve`` start them (gunicorn.conf.py, its default worker class),
and through the test client."""

import contextlib
import json
import socket
import time

import pytest

from api.config import Config, ConfigError
from models import Comment, db, is_postgres
from tests.slow_app import SLOW_POSTGRES, SLOW_SQLITE, register
from tests.test_server import call, children, server

# Servers and workers of their own: run one at a time (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("processes")

#: Slow connections in the tests: three times the server's workers. (bench/slowloris.py
#: measures 200.)
SLOW = 6
COMMENT = json.dumps({"author_name": "Slow", "body": "Sent one byte at a time."}).encode()


def problem(status, headers, body):
    """The parts of a problem+json answer that the tests compare."""
    assert headers["Content-Type"] == "application/problem+json"
    document = json.loads(body)
    assert document["status"] == status
    return document


def slow_request(port, number, key, article_id):
    """A connection that has sent part of a request and stops there: the head of a GET
    (odd ``number``), or the whole head and part of the body of a comment (even)."""
    sock = socket.create_connection(("127.0.0.1", port))
    if number % 2:
        sock.sendall(b"GET /v1/articles HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
    else:
        head = (
            f"POST /v1/articles/{article_id}/comments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nX-API-Key: {key}\r\n"
            f"Content-Length: {len(COMMENT)}\r\n\r\n"
        )
        sock.sendall(head.encode() + COMMENT[:10])
    return sock


def answer_to(sock, timeout):
    """The status, headers and body the server sends on ``sock`` (within ``timeout`` s)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionError):
        while chunk := sock.recv(65536):
            data += chunk
            head, end, body = data.partition(b"\r\n\r\n")
            if not end:
                continue
            headers = dict(
                line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if line
            )
            if len(body) >= int(headers.get("Content-Length", -1)) >= 0:
                return int(head.split()[1]), headers, body
    raise AssertionError(f"no whole answer: {data!r}")


@pytest.fixture
def comment_key(make_key):
    return make_key("comment", header="x-api-key")["X-API-Key"]


def test_normal_requests_are_answered_while_slow_clients_trickle(
    app, database_url, tmp_path, make_article, comment_key
):
    article = make_article(title="Open for comments")
    with server(database_url, tmp_path) as (_, base):
        port = int(base.rsplit(":", 1)[1])
        slow = [slow_request(port, number, comment_key, article.id) for number in range(SLOW)]
        try:
            for number in range(10):
                path = "/v1/articles?limit=5" if number % 2 else f"/v1/articles/{article.id}"
                started = time.monotonic()
                status, _, body = call(base + path, timeout=5)
                assert status == 200, body
                assert time.monotonic() - started < 2
            for sock in slow[::2]:  # the comments are still being sent: nothing answered them
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for sock in slow:
                sock.close()
    assert Comment.select().count() == 0


def test_requests_past_their_deadline_are_503_problems(
    app, database_url, tmp_path, make_article, comment_key
):
    """Requests have 1 s here, and gunicorn's worker timeout is 31 s. The test-only views of
    tests/slow_app.py take minutes unless stopped: a statement (counting to a billion on
    SQLite, pg_sleep on PostgreSQL) and a sleep; a comment's body sent too slowly too."""
    article = make_article(title="Open for comments")
    environment = {"NEWSDESK_REQUEST_TIMEOUT": "1", "NEWSDESK_IMPORT_TIMEOUT": "1"}
    slow_app = "tests.slow_app:make_app()"
    with server(database_url, tmp_path, wsgi_app=slow_app, environment=environment) as (
        process,
        base,
    ):
        deadline = time.monotonic() + 20
        while len(children(process.pid)) < 2 and time.monotonic() < deadline:
            call(base + "/healthz")  # the second worker may still be booting
        workers = children(process.pid)
        for view in ("sql", "sleep"):
            started = time.monotonic()
            _, headers, body = call(base + f"/test-slow/{view}", timeout=30)
            elapsed = time.monotonic() - started
            assert problem(503, headers, body)["detail"] == (
                "The request took longer than 1 s; try again later."
            ), view
            assert headers["Retry-After"] == "5"
            assert elapsed < 31  # answered by the app, not cut off by gunicorn's worker timeout
        if is_postgres():
            running = db.execute_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE query = %s", (SLOW_POSTGRES,)
            ).fetchone()[0]
            assert running == 0  # cancelled on the server, not left running there
        sock = slow_request(int(base.rsplit(":", 1)[1]), 0, comment_key, article.id)
        with contextlib.closing(sock):
            _, headers, body = answer_to(sock, timeout=30)
        assert problem(503, headers, body)["detail"].startswith("The request took longer")
        for _ in range(4):  # both workers serve on, with fresh connections where needed
            assert call(base + "/v1/tags")[0] == 200
        assert children(process.pid) == workers  # and no worker was killed
    assert Comment.select().count() == 0


def test_oversized_urls_and_headers_are_problems_from_the_app(app, database_url, tmp_path):
    """gunicorn's limits are above the app's, so the app answers, with problem+json."""
    with server(database_url, tmp_path) as (_, base):
        _, headers, body = call(base + "/v1/articles?q=" + "a" * 5000)
        assert problem(414, headers, body)["detail"] == ("The URL is longer than 4096 characters.")
        _, headers, body = call(base + "/v1/tags", headers={"X-Big": "a" * 9000})
        assert problem(431, headers, body)["title"] == "Request Header Fields Too Large"
        many = {f"X-Many-{n}": "a" * 1000 for n in range(20)}
        _, headers, body = call(base + "/v1/tags", headers=many)
        assert problem(431, headers, body)["status"] == 431
        assert call(base + "/v1/tags", headers={"X-Big": "a" * 8000})[0] == 200


def test_sync_workers_serve_when_chosen(app, database_url, tmp_path):
    """NEWSDESK_WORKER_CLASS=sync, for a proxy that buffers requests in front."""
    environment = {"NEWSDESK_WORKER_CLASS": "sync"}
    with server(database_url, tmp_path, environment=environment) as (_, base):
        assert call(base + "/v1/tags")[0] == 200
        _, headers, body = call(base + "/v1/tags", headers={"X-Big": "a" * 9000})
        assert problem(431, headers, body)["status"] == 431


def test_worker_class_and_deadlines_come_from_the_environment():
    config = Config.from_env(
        {
            "NEWSDESK_WORKER_CLASS": "Sync",
            "NEWSDESK_REQUEST_TIMEOUT": "10",
            "NEWSDESK_IMPORT_TIMEOUT": "200",
        }
    )
    assert (config.worker_class, config.request_timeout, config.import_timeout) == ("sync", 10, 200)
    assert config.worker_timeout == 230
    defaults = Config.from_env({})
    assert (defaults.worker_class, defaults.worker_timeout) == ("gevent", 120)
    with pytest.raises(ConfigError, match="NEWSDESK_WORKER_CLASS"):
        Config.from_env({"NEWSDESK_WORKER_CLASS": "gthread"})
    with pytest.raises(ConfigError, match="NEWSDESK_REQUEST_TIMEOUT"):
        Config.from_env({"NEWSDESK_REQUEST_TIMEOUT": "0"})


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"X-Big": "a" * (8192 - len("X-Big: "))}, 200),
        ({"X-Big": "a" * (8192 - len("X-Big: ") + 1)}, 431),
        ({f"X-Many-{n}": "a" * 4000 for n in range(4)}, 200),
        ({f"X-Many-{n}": "a" * 4000 for n in range(5)}, 431),
    ],
    ids=["one at the limit", "one over it", "all under the limit", "all over it"],
)
def test_header_limits(client, headers, status):
    response = client.get("/v1/tags", headers=headers)
    assert response.status_code == status
    if status == 431:
        assert response.mimetype == "application/problem+json"
        assert response.json["detail"] == (
            "A header is longer than 8192 bytes, or all of them are longer than 16384."
        )


@pytest.fixture
def short_deadline_app(app, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("through the test client only SQLite statements stop at the deadline")
    return register(app)


@pytest.mark.parametrize("app_config", [{"request_timeout": 1}])
def test_a_statement_past_the_deadline_stops_and_the_connection_serves_on(
    short_deadline_app, dbconn
):
    client = short_deadline_app.test_client()
    response = client.get("/test-slow/sql")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    assert response.json["detail"] == "The request took longer than 1 s; try again later."
    assert client.get("/v1/tags").status_code == 200
    # Past the request, its deadline is lifted from the connection (the test's own, which the
    # requests used too): a statement of many steps runs to its end.
    counted = db.execute_sql(SLOW_SQLITE.replace("1000000000", "300000")).fetchone()[0]
    assert counted == 300_000
