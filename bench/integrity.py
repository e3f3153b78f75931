"""Load and integrity: 4 gunicorn workers under mixed reads and writes, then an audit.

For each database (SQLite always, PostgreSQL with --postgres URL) it starts Newsdesk with 4
workers on 127.0.0.1, runs client threads for --seconds doing creates, idempotent re-posts,
updates, deletes and reads, and then checks against the database that every acknowledged write
is stored exactly once (deleted ones gone) and that no answer was a 5xx.

    .venv/bin/python bench/integrity.py [--seconds 60] [--threads 16] [--postgres URL]
"""

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"


def call(url, method="GET", body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def newsdesk(env, *args):
    return subprocess.run(
        [str(BIN / "newsdesk"), *args], env=env, check=True, capture_output=True, text=True
    ).stdout


class Load:
    """Client threads and what the server acknowledged to them."""

    def __init__(self, base, key, seconds):
        self.base, self.seconds = base, seconds
        self.headers = {"X-API-Key": key}
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.acknowledged = {}  # external_id -> article id
        self.deleted = set()
        self.requests = 0

    def run(self, thread):
        rng = random.Random(thread)
        mine, number = [], 0
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            roll = rng.random()
            if roll < 0.35 or not mine:
                number += 1
                external_id = f"t{thread}-{number}"
                body = {
                    "source": "daily-ledger",
                    "external_id": external_id,
                    "title": f"Load story {thread} {number} about {rng.choice(['ports', 'rates', 'storms'])}",
                    "body_text": "First paragraph of the story.\n\nSecond paragraph with detail.",
                    "tags": [rng.choice(["economy", "climate", "politics"])],
                }
                status, answer = call(f"{self.base}/v1/articles", "POST", body, self.headers)
                if status in (200, 201):
                    mine.append(external_id)
                    with self.lock:
                        self.acknowledged[external_id] = json.loads(answer)["id"]
            elif roll < 0.45:
                external_id = rng.choice(mine)
                body = {
                    "source": "daily-ledger",
                    "external_id": external_id,
                    "title": "Re-posted",
                    "body_text": "Same story, sent again.",
                }
                status, answer = call(f"{self.base}/v1/articles", "POST", body, self.headers)
                if status in (200, 201):
                    with self.lock:
                        assert self.acknowledged[external_id] == json.loads(answer)["id"]
            elif roll < 0.50:
                external_id = mine.pop(rng.randrange(len(mine)))
                article_id = self.acknowledged[external_id]
                status, _ = call(
                    f"{self.base}/v1/articles/{article_id}", "DELETE", None, self.headers
                )
                if status == 204:
                    with self.lock:
                        self.deleted.add(external_id)
                else:
                    mine.append(external_id)
            elif roll < 0.55:
                article_id = self.acknowledged[rng.choice(mine)]
                status, _ = call(
                    f"{self.base}/v1/articles/{article_id}",
                    "PATCH",
                    {"byline": "Desk"},
                    self.headers,
                )
            else:
                path = rng.choice(
                    [
                        "/v1/articles?limit=20",
                        "/v1/articles?tag=economy&limit=10",
                        f"/v1/articles/{rng.randint(1, 300)}",
                        f"/v1/articles/{rng.randint(1, 300)}/related",
                        "/v1/search?q=storms",
                        "/v1/changes?limit=50",
                        "/v1/tags",
                    ]
                )
                status, _ = call(self.base + path)
            with self.lock:
                self.statuses[status] += 1
                self.requests += 1


@contextlib.contextmanager
def server(env, log_path):
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - open while the server runs
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "4",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if call(base + "/healthz")[0] == 200:
                break
    try:
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def audit(database_url, load):
    """Every acknowledged write stored exactly once; deleted ones gone."""
    sys.path.insert(0, str(ROOT))
    from models import Article, Source, bind_database, db

    bind_database(database_url)
    with db.connection_context():
        source = Source.get(Source.slug == "daily-ledger")
        rows = list(
            Article.select(Article.id, Article.external_id)
            .where((Article.source == source) & Article.external_id.startswith("t"))
            .tuples()
        )
    stored = collections.Counter(external_id for _, external_id in rows)
    ids = {external_id: article_id for article_id, external_id in rows}
    expected = set(load.acknowledged) - load.deleted
    problems = []
    if set(stored) != expected:
        problems.append(
            f"missing {len(expected - set(stored))}, unexpected {len(set(stored) - expected)}"
        )
    duplicates = [e for e, n in stored.items() if n > 1]
    if duplicates:
        problems.append(f"{len(duplicates)} stored more than once")
    moved = [e for e in expected if e in ids and ids[e] != load.acknowledged[e]]
    if moved:
        problems.append(f"{len(moved)} with another id than acknowledged")
    return len(rows), problems


def run(name, database_url, seconds, threads):
    env = {
        **os.environ,
        "NEWSDESK_DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        "NEWSDESK_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_WRITE_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_LOG_LEVEL": "warning",
    }  # server errors and warnings: bench/out/integrity-*.log
    newsdesk(env, "db", "init")
    newsdesk(env, "demo", "--articles", "300")
    key = (
        newsdesk(env, "keys", "create", "--name", "integrity", "--scopes", "write")
        .strip()
        .splitlines()[-1]
    )
    with server(env, OUT / f"integrity-{name}.log") as base:
        load = Load(base, key, seconds)
        workers = [threading.Thread(target=load.run, args=(n,)) for n in range(threads)]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.monotonic() - started
    stored, problems = audit(database_url, load)
    errors = sum(n for status, n in load.statuses.items() if status >= 500)
    print(
        f"{name}: {load.requests} requests in {elapsed:.0f} s ({load.requests / elapsed:.0f}/s), "
        f"statuses {dict(sorted(load.statuses.items()))}, 5xx: {errors}"
    )
    print(
        f"{name}: {len(load.acknowledged)} creates acknowledged, {len(load.deleted)} deleted, "
        f"{stored} stored: {'every acknowledged write exactly once' if not problems else '; '.join(problems)}"
    )
    return errors == 0 and not problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--postgres", help="postgresql://... of a server to create a database on")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "integrity.db"
    for stale in OUT.glob("integrity.db*"):
        stale.unlink()
    ok = run("sqlite", f"sqlite:///{path}", args.seconds, args.threads)
    if args.postgres:
        import psycopg2

        name = f"newsdesk_integrity_{os.getpid()}"
        admin = psycopg2.connect(args.postgres)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        try:
            url = urlunparse(urlparse(args.postgres)._replace(path="/" + name))
            ok = run("postgresql", url, args.seconds, args.threads) and ok
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
