"""Load and integrity: 4 gunicorn workers under mixed reads and writes, then an audit.

For each database (SQLite always, PostgreSQL with --postgres URL) it starts Newsdesk with 4
workers on 127.0.0.1, runs client threads for --seconds doing creates, idempotent re-posts,
updates, deletes and reads, and then checks against the database that every acknowledged write
is stored exactly once (deleted ones gone) and that no answer was a 5xx. Scenarios
(``--scenario``, any of them, comma-separated):

- ``steady``: the load alone;
- ``kill9``: the whole server (master and workers) killed with SIGKILL ``--kills`` times
  mid-load, and started again each time: writes whose answer was lost may or may not be stored,
  every acknowledged one must be, once;
- ``outage`` (PostgreSQL): the database cut off for ``--outage`` seconds mid-load (every
  connection dropped, new ones refused, through a TCP forwarder): answers meanwhile must be
  503 problem+json at once, and the service must recover by itself.

    .venv/bin/python bench/integrity.py [--seconds 60] [--threads 16] [--postgres URL]
        [--scenario steady,kill9,outage] [--kills 8] [--outage 10]
"""

import argparse
import collections
import contextlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    OUT,
    ROOT,
    Proxy,
    create_key,
    free_port,
    gunicorn_command,
    newsdesk,
    postgres_database,
)

#: The statuses recorded for a request that got no answer (the server was killed under it),
#: and for one whose connection was refused (the server was down: nothing was sent).
NO_ANSWER = 0
REFUSED = -1


def call(url, method="GET", body=None, headers=None, details=None):
    """``(status, body)``; REFUSED or NO_ANSWER when the connection failed. ``details`` (a list) gets the
    answer's content type and seconds taken."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.status, response.read(), response.headers.get("Content-Type")
    except urllib.error.HTTPError as error:
        answer = error.code, error.read(), error.headers.get("Content-Type")
    except urllib.error.URLError as error:
        refused = isinstance(error.reason, ConnectionRefusedError)
        answer = REFUSED if refused else NO_ANSWER, b"", None
    except (OSError, http.client.HTTPException):  # reset, or closed before the whole answer
        answer = NO_ANSWER, b"", None
    if details is not None:
        details[:] = [answer[2], time.monotonic() - started]
    return answer[:2]


class Load:
    """Client threads and what the server acknowledged to them."""

    def __init__(self, base, key, seconds):
        self.base, self.seconds = base, seconds
        self.headers = {"X-API-Key": key}
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.acknowledged = {}  # external_id -> article id
        self.deleted = set()
        self.uncertain = set()  # writes answered 5xx or not at all: stored or not, either is right
        self.not_problems = 0  # error answers that were not problem+json
        self.slowest_503 = 0.0
        self.requests = 0

    def run(self, thread):
        rng = random.Random(thread)
        mine, number, details = [], 0, [None, 0.0]
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
                status, answer = call(
                    f"{self.base}/v1/articles", "POST", body, self.headers, details
                )
                if status in (200, 201):
                    mine.append(external_id)
                    with self.lock:
                        self.acknowledged[external_id] = json.loads(answer)["id"]
                elif status == NO_ANSWER or status >= 500:
                    with self.lock:
                        self.uncertain.add(external_id)
            elif roll < 0.45:
                external_id = rng.choice(mine)
                body = {
                    "source": "daily-ledger",
                    "external_id": external_id,
                    "title": "Re-posted",
                    "body_text": "Same story, sent again.",
                }
                status, answer = call(
                    f"{self.base}/v1/articles", "POST", body, self.headers, details
                )
                if status in (200, 201):
                    with self.lock:
                        assert self.acknowledged[external_id] == json.loads(answer)["id"]
            elif roll < 0.50:
                external_id = mine.pop(rng.randrange(len(mine)))
                article_id = self.acknowledged[external_id]
                status, _ = call(
                    f"{self.base}/v1/articles/{article_id}", "DELETE", None, self.headers, details
                )
                if status == 204:
                    with self.lock:
                        self.deleted.add(external_id)
                elif status == NO_ANSWER or status >= 500:
                    with self.lock:
                        self.uncertain.add(external_id)
                else:
                    mine.append(external_id)
            elif roll < 0.55:
                article_id = self.acknowledged[rng.choice(mine)]
                status, _ = call(
                    f"{self.base}/v1/articles/{article_id}",
                    "PATCH",
                    {"byline": "Desk"},
                    self.headers,
                    details,
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
                status, _ = call(self.base + path, details=details)
            if status in (NO_ANSWER, REFUSED):  # the server is down: a client waits a moment
                time.sleep(0.05)
            with self.lock:
                self.statuses[status] += 1
                self.requests += 1
                if status >= 400 and details[0] != "application/problem+json":
                    self.not_problems += 1
                if status == 503:
                    self.slowest_503 = max(self.slowest_503, details[1])


class Server:
    """gunicorn with 4 workers in a process group of its own, so that all of it can be killed."""

    def __init__(self, env, log):
        self.env, self.log = env, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            gunicorn_command(self.port, 4, "--log-level", "warning"),
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and call(self.base + "/healthz")[0] != 200:
            time.sleep(0.05)

    def kill(self):
        """SIGKILL to the master and every worker at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


@contextlib.contextmanager
def server(env, log_path):
    with open(log_path, "w") as log:
        running = Server(env, log)
        running.start()
        try:
            yield running
        finally:
            running.stop()


def kill_repeatedly(running, seconds, kills, report):
    """The kill9 scenario: ``kills`` times, evenly over the load, SIGKILL the whole server and
    start it again; ``report`` gets the seconds each restart took to answer."""
    for _ in range(kills):
        time.sleep(seconds / (kills + 1))
        running.kill()
        started = time.monotonic()
        running.start()
        report.append(time.monotonic() - started)


def cut_database(running, forwarder, seconds, outage, report):
    """The outage scenario: cut the database off a third into the load for ``outage`` seconds;
    probe /v1/tags meanwhile and after, and report the slowest answer during the outage, its
    statuses, and how long after the database returned the first 200 came."""
    time.sleep(seconds / 3)
    forwarder.stop()
    statuses, slowest = collections.Counter(), 0.0
    ends = time.monotonic() + outage
    while time.monotonic() < ends:
        details = [None, 0.0]
        status, _ = call(running.base + "/v1/tags", details=details)
        statuses[(status, details[0])] += 1
        slowest = max(slowest, details[1])
        time.sleep(0.1)
    forwarder.start()
    back = time.monotonic()
    while call(running.base + "/v1/tags")[0] != 200:
        time.sleep(0.05)
    report.update(statuses=dict(statuses), slowest=slowest, recovered=time.monotonic() - back)


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
    expected = set(load.acknowledged) - load.deleted - load.uncertain
    problems = []
    certain = set(stored) - load.uncertain
    if certain != expected:
        problems.append(f"missing {len(expected - certain)}, unexpected {len(certain - expected)}")
    duplicates = [e for e, n in stored.items() if n > 1]
    if duplicates:
        problems.append(f"{len(duplicates)} stored more than once")
    moved = [e for e in expected if e in ids and ids[e] != load.acknowledged[e]]
    if moved:
        problems.append(f"{len(moved)} with another id than acknowledged")
    return len(rows), problems


def run(name, database_url, seconds, threads, scenario="steady", kills=8, outage=10):
    env = {
        **os.environ,
        "NEWSDESK_DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        "NEWSDESK_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_WRITE_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_LOG_LEVEL": "warning",
        "NEWSDESK_SECRET_KEY": os.environ.get("NEWSDESK_SECRET_KEY") or "integrity-bench-secret",
    }  # server errors and warnings: bench/out/integrity-*.log
    newsdesk(env, "db", "init")
    newsdesk(env, "demo", "--articles", "300")
    key = create_key(env, "integrity", "write")
    served_url, forwarder = database_url, None
    if scenario == "outage":
        forwarder = Proxy(urlparse(database_url).port or 5432)
        forwarder.start()
        served_url = database_url.replace(f":{forwarder.target_port}/", f":{forwarder.port}/")
    label = f"{name} {scenario}"
    with server(
        {**env, "NEWSDESK_DATABASE_URL": served_url}, OUT / f"integrity-{name}.log"
    ) as running:
        load = Load(running.base, key, seconds)
        workers = [threading.Thread(target=load.run, args=(n,)) for n in range(threads)]
        restarts, outage_report = [], {}
        if scenario == "kill9":
            chaos = threading.Thread(
                target=kill_repeatedly, args=(running, seconds, kills, restarts)
            )
        elif scenario == "outage":
            chaos = threading.Thread(
                target=cut_database, args=(running, forwarder, seconds, outage, outage_report)
            )
        else:
            chaos = threading.Thread(target=lambda: None)
        started = time.monotonic()
        for worker in [*workers, chaos]:
            worker.start()
        for worker in [*workers, chaos]:
            worker.join()
        elapsed = time.monotonic() - started
    stored, problems = audit(database_url, load)
    # A 503 is the honest answer while the database is away; anything else 5xx is a fault.
    allowed = {503} if scenario == "outage" else set()
    errors = sum(
        n for status, n in load.statuses.items() if status >= 500 and status not in allowed
    )
    print(
        f"{label}: {load.requests} requests in {elapsed:.0f} s ({load.requests / elapsed:.0f}/s), "
        f"statuses {dict(sorted(load.statuses.items()))} (0: no answer, -1: refused), 5xx: {errors}, "
        f"errors not problem+json: {load.not_problems}"
    )
    if restarts:
        print(
            f"{label}: {len(restarts)} SIGKILLs of the whole server; answering again after "
            f"{min(restarts):.1f}-{max(restarts):.1f} s"
        )
    if outage_report:
        print(
            f"{label}: database cut off for {outage} s: probes answered "
            f"{outage_report['statuses']}, slowest {outage_report['slowest'] * 1000:.0f} ms "
            f"(slowest 503 of the load: {load.slowest_503 * 1000:.0f} ms); first 200 "
            f"{outage_report['recovered']:.2f} s after it returned"
        )
    print(
        f"{label}: {len(load.acknowledged)} creates acknowledged, {len(load.deleted)} deleted, "
        f"{len(load.uncertain)} writes answered 5xx or not at all, {stored} stored: "
        f"{'every acknowledged write exactly once' if not problems else '; '.join(problems)}"
    )
    return errors == 0 and not problems and load.not_problems == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--postgres", help="postgresql://... of a server to create a database on")
    parser.add_argument("--scenario", default="steady", help="steady, kill9, outage (comma list)")
    parser.add_argument("--kills", type=int, default=8, help="SIGKILLs of the kill9 scenario")
    parser.add_argument("--outage", type=int, default=10, help="seconds the database is away")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    ok = True
    for scenario in args.scenario.split(","):
        options = (args.seconds, args.threads, scenario, args.kills, args.outage)
        if scenario != "outage":  # SQLite has no server to lose
            path = OUT / "integrity.db"
            for stale in OUT.glob("integrity.db*"):
                stale.unlink()
            ok = run("sqlite", f"sqlite:///{path}", *options) and ok
        if args.postgres:
            ok = on_postgres(args.postgres, options) and ok
    sys.exit(0 if ok else 1)


def on_postgres(server_url, options):
    """One run on a database of its own on the PostgreSQL server, dropped after."""
    with postgres_database(server_url, "newsdesk_integrity") as url:
        return run("postgresql", url, *options)


if __name__ == "__main__":
    main()
