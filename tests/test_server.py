"""A real gunicorn server with several workers: metrics across workers, a worker killed under
load, draining on SIGTERM, and the database going away and coming back."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from itertools import pairwise
from pathlib import Path

import pytest

from models import ApiKey

from .servers import Proxy, answers, gunicorn_command, listening_socket

# Servers and workers of their own: run one at a time (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("processes")

ROOT = Path(__file__).resolve().parent.parent
NEWSDESK = Path(sys.executable).parent / "newsdesk"


def call(url, data=None, headers=None, timeout=10):
    """``(status, headers, body)`` of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


@contextlib.contextmanager
def server(
    database_url,
    tmp_path,
    workers=2,
    metrics_dir=True,
    wsgi_app=None,
    environment=None,
    options=(),
    stderr=subprocess.DEVNULL,
    ready_path="/healthz",
):
    """gunicorn with gunicorn.conf.py and ``options``, serving ``wsgi_app`` (the file's:
    ``api.wsgi:app``), with ``environment`` added to the test's; ready once ``ready_path``
    answers. No ``database_url``: an app without a database (no ``newsdesk db init``)."""
    listener = listening_socket()
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        **({"NEWSDESK_DATABASE_URL": database_url} if database_url else {}),
        "NEWSDESK_RATE_LIMIT": "1000000/minute",
        "NEWSDESK_WRITE_RATE_LIMIT": "1000000/minute",
        "NEWSDESK_LOG_LEVEL": "warning",
        # As deployed: background work goes to the queue (the in-process tests run it at once).
        "NEWSDESK_TASKS_IMMEDIATE": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        **(environment or {}),
    }
    if not metrics_dir:  # left to gunicorn.conf.py, as `make run` and `newsdesk serve` do
        del env["PROMETHEUS_MULTIPROC_DIR"]
    # As a deployment does before serving: the schema is the fixture's, the task queue is new.
    if database_url:
        subprocess.run([str(NEWSDESK), "db", "init"], env=env, check=True, capture_output=True)
    with listener:
        process = subprocess.Popen(
            gunicorn_command(
                listener,
                workers,
                "--graceful-timeout",
                "20",
                *options,
                *([wsgi_app] if wsgi_app else []),
            ),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            pass_fds=(listener.fileno(),),
        )
    base = f"http://127.0.0.1:{port}"
    # A loaded machine starts gevent workers slowly.
    if not answers(base + ready_path, process, 60):
        process.kill()
        pytest.fail("gunicorn did not start")
    try:
        yield process, base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


@pytest.fixture
def write_key(app, dbconn):
    _, token = ApiKey.issue("server test", ["write"], app.config["NEWSDESK"].key_for("api-keys"))
    return {"X-API-Key": token}


@pytest.mark.parametrize(
    "metrics_dir", [True, False], ids=["metrics dir given", "metrics dir made"]
)
def test_metrics_add_up_across_workers(app, database_url, tmp_path, metrics_dir):
    with server(database_url, tmp_path, metrics_dir=metrics_dir) as (_, base):
        for _ in range(40):
            assert call(base + "/v1/tags")[0] == 200
        text = call(base + "/metrics")[2].decode()
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("newsdesk_requests_total{")
        and 'endpoint="/v1/tags"' in line
        and 'status="200"' in line
    )
    assert counted == 40


def test_a_metrics_directory_given_loses_only_old_metric_files(app, database_url, tmp_path):
    """gunicorn.conf.py emptied the directory PROMETHEUS_MULTIPROC_DIR names by removing it:
    pointed at a directory holding a SQLite database, it removed the database."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "notes.txt").write_text("keep")
    (directory / "counter_999999.db").write_bytes(b"an earlier run's counts")
    with server(database_url, tmp_path) as (_, base):
        assert call(base + "/v1/tags")[0] == 200
        text = call(base + "/metrics")[2].decode()
    assert (directory / "notes.txt").read_text() == "keep"
    assert not (directory / "counter_999999.db").exists()
    assert 'endpoint="/v1/tags",method="GET",status="200"} 1.0' in text


def test_the_temporary_directories_a_server_made_go_with_it(app, database_url, tmp_path):
    """Each server left its metrics and rate-limit directories behind in /tmp."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with server(
        database_url, tmp_path, metrics_dir=False, environment={"TMPDIR": str(temporary)}
    ) as (_, base):
        assert call(base + "/v1/tags")[0] == 200
        made = sorted(path.name.rsplit("-", 1)[0] for path in temporary.iterdir())
        assert made == ["newsdesk-metrics", "newsdesk-rate-limits"]
    assert list(temporary.iterdir()) == []


def test_the_servers_settings_serve_an_app_other_than_newsdesks(tmp_path):
    """The benchmark serves its reference app (bench/reference.py) with gunicorn.conf.py: the
    master, preparing a vector index before it forked a worker, failed on a database the app
    never set up, and no worker started; and each worker logged a traceback as it read a task
    queue the app has not."""
    log = tmp_path / "server.log"
    with (
        log.open("wb") as stderr,
        server(
            None,
            tmp_path,
            wsgi_app="reference:app",
            environment={"PYTHONPATH": str(ROOT / "bench")},
            stderr=stderr,
            ready_path="/",
        ) as (process, base),
    ):
        status, _, body = call(base + "/")
        assert status == 200
        assert json.loads(body) == {"service": "reference", "status": "ok"}
        deadline = time.monotonic() + 30  # the master forks the second worker after the first
        while len(children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(children(process.pid)) == 2
    assert "Traceback" not in log.read_text()


def test_gunicorns_own_lines_are_in_the_apps_format(app, database_url, tmp_path):
    """A log collector reading JSON met gunicorn's own lines (start, workers booted, stop) in
    gunicorn's text format."""
    log = tmp_path / "server.log"
    with (
        log.open("wb") as stderr,
        server(
            database_url,
            tmp_path,
            environment={"NEWSDESK_LOG_FORMAT": "json", "NEWSDESK_LOG_LEVEL": "info"},
            stderr=stderr,
        ) as (_, base),
    ):
        assert call(base + "/v1/tags", headers={"X-Request-ID": "json-1"})[0] == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(
        line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines
    )
    assert any(line.get("request_id") == "json-1" and line["status"] == 200 for line in lines)


def test_no_log_line_holds_a_key_sent_in_a_url(app, database_url, tmp_path):
    """The app refuses a key in the URL and logs it REDACTED; gunicorn's own line about a
    request line it cannot read quoted the key as sent."""
    log = tmp_path / "server.log"
    info = {"NEWSDESK_LOG_LEVEL": "info"}  # the request log's lines too
    with (
        log.open("wb") as stderr,
        server(database_url, tmp_path, environment=info, stderr=stderr) as (_, base),
    ):
        for head in (
            b"GET /v1/articles?api_key=SECRET-ONE&q=caf\xc3\xa9 HTTP/1.1\nHost: localhost\n",
            b"GET /v1/articles?token=SECRET-TWO HTTP/1.1\nHost: localhost\n",
        ):
            assert raw_request(base, head)[0].startswith(b"HTTP/1.1 400 ")
    text = log.read_text()
    assert "api_key=REDACTED" in text and "token=REDACTED" in text
    assert "SECRET" not in text


def test_a_killed_worker_is_replaced_and_nothing_fails(
    app, database_url, tmp_path, write_key, source
):
    with server(database_url, tmp_path) as (process, base):
        deadline = time.monotonic() + 20
        while len(children(process.pid)) < 2 and time.monotonic() < deadline:
            call(base + "/healthz")  # the second worker may still be booting
        workers = children(process.pid)
        assert len(workers) == 2
        statuses = []
        victim = min(workers)
        for number in range(60):
            if number == 20:
                os.kill(victim, signal.SIGKILL)
            body = json.dumps(
                {
                    "source": "daily",
                    "title": f"Story {number}",
                    "body_text": "Text.",
                    "external_id": str(number),
                }
            )
            status, _, _ = call(
                base + "/v1/articles",
                body.encode(),
                {**write_key, "Content-Type": "application/json"},
            )
            statuses.append(status)
            statuses.append(call(base + "/v1/articles?limit=5")[0])
        deadline = time.monotonic() + 20
        while len(children(process.pid) - {victim}) < 2 and time.monotonic() < deadline:
            call(base + "/healthz")
        replaced = children(process.pid)
    assert victim not in replaced and len(replaced) == 2
    assert set(statuses) <= {200, 201}, statuses
    assert statuses.count(201) == 60


def forked_after(process, worker, seconds):
    """The server's workers other than ``worker`` (killed), once there is one, within
    ``seconds``."""
    deadline = time.monotonic() + seconds
    while not children(process.pid) - {worker} and time.monotonic() < deadline:
        time.sleep(0.05)
    return children(process.pid) - {worker}


def log_messages(path):
    """The messages of a JSON log so far (a line still being written is left out)."""
    messages = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            messages.append(json.loads(line).get("message", ""))
    return messages


def test_workers_start_with_the_vector_index_the_master_read(
    app, client, writer, source, database_url, tmp_path
):
    """The master reads the vector index before it forks a worker, and brings it up to date
    before it forks a replacement: no worker reads it all for its first search by meaning (at
    100k articles each one did, for seconds while its connections waited), and what was
    written since the master read it is found all the same."""

    def post(title, body):
        article = {"source": source.slug, "title": title, "body_text": body}
        response = client.post("/v1/articles", json=article, headers=writer)
        assert response.status_code == 201, response.json
        return response.json["id"]

    post("Harbour cranes idle", "The harbour cranes stood idle through the strike.")
    post("Orchard frost", "A late frost hit the apple orchards in the valley.")
    log = tmp_path / "server.log"

    def full_reads():
        return [m for m in log_messages(log) if m.startswith("vector index: read")]

    with (
        log.open("wb") as stderr,
        server(
            database_url,
            tmp_path,
            workers=1,  # every search goes to the worker, then to its replacement
            environment={"NEWSDESK_LOG_FORMAT": "json", "NEWSDESK_LOG_LEVEL": "info"},
            stderr=stderr,
        ) as (process, base),
    ):
        messages = log_messages(log)
        booted = next(i for i, m in enumerate(messages) if m.startswith("Booting worker"))
        assert [m for m in messages[:booted] if m.startswith("vector index: read 2 vectors")]
        [worker] = children(process.pid)
        written = post("Glacier retreat measured", "The glacier retreated forty metres.")
        os.kill(worker, signal.SIGKILL)
        forked_after(process, worker, 20)
        assert call(base + "/healthz")[0] == 200  # the replacement serves
        for _ in range(3):
            status, _, body = call(base + "/v1/search?q=glacier+retreat&mode=semantic")
            assert status == 200
            assert written in [hit["id"] for hit in json.loads(body)["data"]]
        assert len(children(process.pid)) == 1
    assert len(full_reads()) == 1


def proxied_postgres(database_url, why):
    """A started :class:`Proxy` in front of the test's PostgreSQL database, and the database's
    URL through it; on SQLite the test is skipped, ``why``."""
    if not database_url.startswith("postgresql"):
        pytest.skip(why)
    real_port = int(database_url.split("@127.0.0.1:")[1].split("/")[0])
    proxy = Proxy(real_port)
    proxy.start()
    return proxy, database_url.replace(f":{real_port}/", f":{proxy.port}/")


@pytest.mark.postgres
def test_a_worker_is_forked_while_the_database_hangs(app, database_url, tmp_path):
    """Before it forks a worker the master reads the vector index: from a database that takes
    connections and never answers it gives up after its timeout (the request timeout), and
    forks the worker; under gevent libpq's connect timeout does not hold, and the master,
    which handles no signal meanwhile, waited for good."""
    proxy, proxied = proxied_postgres(database_url, "hangs a PostgreSQL connection")
    log = tmp_path / "server.log"
    environment = {"NEWSDESK_LOG_FORMAT": "json", "NEWSDESK_REQUEST_TIMEOUT": "2"}
    with (
        log.open("wb") as stderr,
        server(proxied, tmp_path, workers=1, environment=environment, stderr=stderr) as (
            process,
            base,
        ),
    ):
        [worker] = children(process.pid)
        proxy.stop()
        hung = socket.socket()  # takes connections (its backlog) and never answers
        hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hung.bind(("127.0.0.1", proxy.port))
        hung.listen(16)
        with hung:
            os.kill(worker, signal.SIGKILL)
            assert forked_after(process, worker, 15), "no worker forked within 15 s"
            assert call(base + "/healthz")[0] == 200
    assert "could not prepare the vector index for a new worker" in log_messages(log)


def test_sigterm_drains_requests_in_flight(app, database_url, tmp_path, write_key, source, dbconn):
    from models import Article

    lines = "\n".join(
        json.dumps(
            {
                "source": "daily",
                "title": f"Bulk {n}",
                "body_text": "Body text. " * 20,
                "external_id": f"b{n}",
            }
        )
        for n in range(300)
    )
    result = {}
    with server(database_url, tmp_path) as (process, base):

        def post():
            result["answer"] = call(
                base + "/v1/import",
                lines.encode(),
                {**write_key, "Content-Type": "application/x-ndjson"},
                timeout=120,
            )

        thread = threading.Thread(target=post)
        thread.start()
        deadline = time.monotonic() + 60
        while Article.select().count() == 0 and time.monotonic() < deadline:
            pass  # the import has begun once its first batch is committed
        process.send_signal(signal.SIGTERM)
        thread.join(timeout=120)
        assert process.wait(timeout=60) == 0
    status, _, body = result["answer"]
    assert status == 200
    assert json.loads(body)["created"] == 300
    assert Article.select().count() == 300


@pytest.mark.postgres
def test_database_outage_gives_fast_503_and_recovery(app, database_url, tmp_path):
    proxy, proxied = proxied_postgres(database_url, "cuts a PostgreSQL connection")
    with server(proxied, tmp_path) as (_, base):
        assert call(base + "/v1/tags")[0] == 200
        proxy.stop()
        for _ in range(4):  # both workers, with and without a pooled connection
            started = time.monotonic()
            status, headers, body = call(base + "/v1/tags")
            assert status == 503, body
            assert time.monotonic() - started < 1.0
            assert headers["Retry-After"] == "1"
            assert headers["Content-Type"] == "application/problem+json"
        assert call(base + "/readyz")[0] == 503
        assert call(base + "/healthz")[0] == 200
        proxy.start()
        statuses = [call(base + "/v1/tags")[0] for _ in range(6)]
        assert statuses[-4:] == [200, 200, 200, 200], statuses


def test_workers_share_one_rate_limit(app, database_url, tmp_path):
    # Left to gunicorn.conf.py, as `make run` and `newsdesk serve` do: a counter file of its own.
    environment = {"NEWSDESK_RATE_LIMIT": "30/minute"}
    with server(database_url, tmp_path, environment=environment) as (process, base):
        statuses = [call(base + "/v1/tags")[0] for _ in range(40)]
        workers = children(process.pid)
        os.kill(min(workers), signal.SIGKILL)  # a worker dies; its replacement forgets nothing
        deadline = time.monotonic() + 20
        while len(children(process.pid) - workers) < 1:
            assert time.monotonic() < deadline, "the worker was not replaced"
        statuses += [call(base + "/v1/tags")[0] for _ in range(40)]
    assert statuses.count(200) == 30, statuses
    assert statuses.count(429) == 50


@pytest.mark.parametrize("worker_class", ["gevent", "sync"])
def test_a_worker_timeout_answers_problem_json(app, database_url, tmp_path, worker_class):
    environment = {"NEWSDESK_WORKER_CLASS": worker_class}
    with server(
        database_url,
        tmp_path,
        wsgi_app="tests.slow_app:make_app()",
        environment=environment,
        options=("--timeout", "2"),
    ) as (_, base):
        started = time.monotonic()
        status, headers, body = call(base + "/test-slow/cpu", timeout=30)
        assert time.monotonic() - started < 10
        assert status == 503, body
        assert headers["Content-Type"] == "application/problem+json"
        assert headers["Retry-After"] == "5"
        assert json.loads(body)["detail"] == (
            "The request ran past the server's limit of 2 s and was stopped; try again later."
        )
        assert call(base + "/v1/tags")[0] == 200  # the worker that timed out is replaced


def pipelined(base, paths):
    """A connection on which the GET requests of ``paths`` are all sent at once (HTTP/1.1
    pipelining: each next request is there before the one before is answered), and the file
    its answers are read from."""
    host, port = base.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=60)
    connection.sendall(
        b"".join(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for path in paths)
    )
    return connection, connection.makefile("rb")


def turns(answers, count):
    """The ``turn`` of each of the next ``count`` answers of /test-slow/turn read from
    ``answers``."""
    found = []
    for _ in range(count):
        assert answers.readline().startswith(b"HTTP/1.1 200")
        length = None
        while (line := answers.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        found.append(json.loads(answers.read(length))["turn"])
    return found


def test_a_long_request_waits_a_round_of_the_others_not_all_their_requests(
    app, database_url, tmp_path
):
    # One gevent worker; four connections, each with 200 cheap requests sent at once, keep it
    # busy without a pause. A connection whose request computed long (50 ms) has its next one
    # answered after a round or two of theirs (each of the four answers the request it had
    # begun, then one more), not after every request they have queued (before: 594 of them,
    # on SQLite; on PostgreSQL each request waits on the database's socket, where the loop
    # goes idle, and it held).
    with server(database_url, tmp_path, workers=1, wsgi_app="tests.slow_app:make_app()") as (
        _,
        base,
    ):
        cheap = [pipelined(base, ["/test-slow/turn"] * 200) for _ in range(4)]
        for _, answers in cheap:
            turns(answers, 1)  # each is being served
        long = pipelined(base, ["/test-slow/turn?ms=50", "/test-slow/turn"])
        long_turn, next_turn = turns(long[1], 2)
        left = [turns(answers, 199) for _, answers in cheap]
        for connection, answers in [*cheap, long]:
            answers.close()
            connection.close()
    assert max(turn for each in left for turn in each) == 4 * 200 + 2  # all were answered
    assert max(turn for each in left for turn in each) - long_turn > 100  # they were queued
    assert next_turn - long_turn <= 16


def test_connections_of_long_requests_are_answered_in_rounds(app, database_url, tmp_path):
    # One gevent worker; four connections, each with 30 requests that compute 6 ms (past
    # gunicorn.conf.py's LONG_REQUEST) sent at once. While all four are being served, each is
    # answered once a round: between two answers of one, one of each other (before: steps of 1
    # and 5, as a round answered one of them twice and the others waited a request more).
    with server(database_url, tmp_path, workers=1, wsgi_app="tests.slow_app:make_app()") as (
        _,
        base,
    ):
        connections = [pipelined(base, ["/test-slow/turn?ms=6"] * 30) for _ in range(4)]
        answered = [turns(answers, 30) for _, answers in connections]
        for connection, answers in connections:
            answers.close()
            connection.close()
    assert sorted(turn for each in answered for turn in each) == list(range(1, 121))
    # From the last connection's first answer to the first connection's last one.
    start, end = max(each[0] for each in answered), min(each[-1] for each in answered)
    assert end - start > 60, answered  # most of the requests are in the rounds checked
    steps = [
        later - earlier
        for each in answered
        for earlier, later in pairwise(turn for turn in each if start <= turn <= end)
    ]
    assert set(steps) == {4}, answered


def test_a_burst_of_new_connections_is_taken_one_a_request(app, database_url, tmp_path):
    # Two gevent workers, one of them stopped (SIGSTOP), so that the other takes every
    # connection, one each time its loop polls (gunicorn's max_accept = 1 with more than one
    # worker). Eight connections keep it answering in rounds (100 requests each sent at once,
    # each computing 2 ms, under gunicorn.conf.py's LONG_REQUEST). Eight new connections opened
    # at once are taken one a request: from the first new one's first answer to the last's, 15
    # answers on SQLite and 7 on PostgreSQL here (7-15 with two other processes computing
    # without a pause). Before, it took one a round, 63 answers on SQLite (on PostgreSQL the
    # loop also polls while a request waits on the database's socket), while a worker that
    # happened to be waiting turns took one a request: of a burst (wrk opening its 32
    # connections), that worker took most.
    with server(database_url, tmp_path, wsgi_app="tests.slow_app:make_app()") as (process, base):
        deadline = time.monotonic() + 20
        while len(children(process.pid)) < 2 and time.monotonic() < deadline:
            call(base + "/healthz")  # the second worker may still be booting
        workers = children(process.pid)
        assert len(workers) == 2
        stopped = min(workers)
        os.kill(stopped, signal.SIGSTOP)
        try:
            busy = [pipelined(base, ["/test-slow/turn?ms=2"] * 100) for _ in range(8)]
            # Each answered ten times: past the rounds in which they were new.
            started = [turn for _, answers in busy for turn in turns(answers, 10)]
            new = [pipelined(base, ["/test-slow/turn?ms=2"]) for _ in range(8)]
            firsts = [turns(answers, 1)[0] for _, answers in new]
            left = [turn for _, answers in busy for turn in turns(answers, 90)]
        finally:
            os.kill(stopped, signal.SIGCONT)
        for connection, answers in [*busy, *new]:
            answers.close()
            connection.close()
    assert sorted([*started, *firsts, *left]) == list(range(1, 8 * 100 + 8 + 1))
    assert max(firsts) - min(firsts) <= 32, sorted(firsts)


def raw_request(base, head, body=b""):
    """The status line and the rest of the answer to a request sent byte for byte."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.replace(b"\n", b"\r\n") + b"\r\n" + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    return status, rest


@pytest.mark.parametrize("worker_class", ["gevent", "sync"])
def test_what_gunicorn_reads_of_a_request_the_app_answers(
    app, database_url, tmp_path, write_key, make_source, worker_class
):
    """A malformed chunked body is the client's fault (a 400 problem, not a 500 with a
    traceback logged), and gunicorn believes no forwarded header: the app alone does, as
    NEWSDESK_TRUSTED_PROXIES says (none by default)."""
    with server(
        database_url, tmp_path, workers=1, environment={"NEWSDESK_WORKER_CLASS": worker_class}
    ) as (_, base):
        head = (
            b"POST /v1/sources HTTP/1.1\nHost: localhost\nConnection: close\n"
            b"Content-Type: application/json\nTransfer-Encoding: chunked\n"
            b"X-API-Key: " + write_key["X-API-Key"].encode() + b"\n"
        )
        status, rest = raw_request(base, head, b"zz\r\n")
        assert status.upper() == b"HTTP/1.1 400 BAD REQUEST"
        assert b"Content-Type: application/problem+json" in rest
        assert b"The request body is malformed: Invalid chunk size" in rest

        make_source(slug="first")
        make_source(slug="second")
        status, headers, _ = call(
            base + "/v1/sources?limit=1", headers={"X-Forwarded-Proto": "https"}
        )
        assert status == 200 and headers["Link"].startswith("<http://127.0.0.1:")


def test_what_gunicorn_cannot_read_is_answered_problem_json(app, database_url, tmp_path):
    """Requests gunicorn refuses before the app sees them were answered with its HTML page."""
    with server(database_url, tmp_path, workers=1) as (_, base):
        unencoded = b"GET /v1/search?q=caf\xc3\xa9 HTTP/1.1\nHost: localhost\n"
        many = b"GET /v1/tags HTTP/1.1\nHost: localhost\n" + b"X-A: 1\n" * 201
        for head, status in ((unencoded, 400), (many, 431)):
            line, rest = raw_request(base, head)
            assert line.startswith(f"HTTP/1.1 {status} ".encode()), line
            headers, _, body = rest.partition(b"\r\n\r\n")
            assert b"Content-Type: application/problem+json" in headers
            assert b"Cache-Control: no-store" in headers
            problem = json.loads(body)
            assert problem["status"] == status and problem["detail"]
        detail = json.loads(raw_request(base, unencoded)[1].partition(b"\r\n\r\n")[2])["detail"]
        assert "/v1/search?q=café " in detail and "percent-encode" in detail
        # A header's name is not a URL: the advice is about names. (É is the bytes C3 89,
        # the second of which gunicorn quotes escaped.)
        named = b"GET /v1/tags HTTP/1.1\nHost: localhost\n\xc3\x89tag: 1\n"
        detail = json.loads(raw_request(base, named)[1].partition(b"\r\n\r\n")[2])["detail"]
        assert "'Étag'" in detail and "A header's name holds ASCII letters" in detail
        assert "percent-encode" not in detail
        # A transfer coding gunicorn does not know: its status line and title said Bad Request.
        unknown = b"POST /v1/tags HTTP/1.1\nHost: localhost\nTransfer-Encoding: xchunked\n"
        line, rest = raw_request(base, unknown)
        assert line == b"HTTP/1.1 501 Not Implemented"
        assert json.loads(rest.partition(b"\r\n\r\n")[2])["title"] == "Not Implemented"


def test_a_transfer_coding_gunicorn_passes_on_undecoded_is_501(
    app, database_url, tmp_path, write_key, make_source
):
    """gunicorn takes gzip, deflate or compress before chunked and leaves them undecoded: the
    body was read as if none was applied, and a plain one was stored."""
    make_source(slug="daily")
    body = json.dumps({"source": "daily", "title": "Coded", "body_text": "Words."}).encode()
    with server(database_url, tmp_path, workers=1) as (_, base):
        for coding in (b"gzip, chunked", b"deflate, chunked"):
            head = (
                b"POST /v1/articles HTTP/1.1\nHost: localhost\nConnection: close\n"
                b"Content-Type: application/json\nTransfer-Encoding: " + coding + b"\n"
                b"X-API-Key: " + write_key["X-API-Key"].encode() + b"\n"
            )
            chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            line, rest = raw_request(base, head, chunked)
            assert line.upper() == b"HTTP/1.1 501 NOT IMPLEMENTED", line
            problem = json.loads(rest.partition(b"\r\n\r\n")[2])
            assert list(problem["errors"]) == ["Transfer-Encoding"]
        assert call(base + "/v1/articles")[2].count(b'"Coded"') == 0


def test_ctrl_c_stops_the_server_without_a_traceback(app, database_url, tmp_path):
    """Ctrl-C in a terminal (`make run`) signals every process of the group: the master stops
    its workers, and a gevent worker that also quit on its own SIGINT printed a traceback."""
    listener = listening_socket()
    port = listener.getsockname()[1]
    env = {**os.environ, "NEWSDESK_DATABASE_URL": database_url, "NEWSDESK_LOG_LEVEL": "info"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    subprocess.run([str(NEWSDESK), "db", "init"], env=env, check=True, capture_output=True)
    log = tmp_path / "server.log"
    with log.open("wb") as output, listener:
        process = subprocess.Popen(
            gunicorn_command(listener),
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(listener.fileno(),),
        )
    try:
        assert answers(f"http://127.0.0.1:{port}/healthz", process, 60), log.read_text()
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = log.read_text()
    assert "Shutting down: Master" in text and "Traceback" not in text, text
