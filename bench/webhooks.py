"""Webhooks: what the outbox costs a write, and how fast the worker delivers a backlog.

For each database (SQLite always, PostgreSQL with --postgres URL) it imports --articles articles
through ``POST /v1/import`` with the one webhook disabled, then as many again with it subscribed
to ``article.published`` (so each batch also renders and inserts its events), three times each,
timing the CPU the importing process spends (steadier than wall time on a shared machine); then
it starts ``newsdesk worker --workers --threads`` and times how long it takes to deliver the
events to a receiver on 127.0.0.1 that answers 204 at once, checking each signature. One single
write (``POST /v1/articles``) is made after the imports, before the worker starts: where its
event comes among the deliveries, and when, shows that it does not wait for the import's.

    .venv/bin/python bench/webhooks.py [--articles 1000] [--threads 4] [--postgres URL]
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, postgres_database

from tests.webhook_receiver import Receiver

ROUNDS = 3
BODY = " ".join(["The harbour ferry sails again after a winter of repairs."] * 30)


def environment(database_url):
    return {
        **os.environ,
        "NEWSDESK_DATABASE_URL": database_url,
        "NEWSDESK_TASKS_IMMEDIATE": "false",
        "NEWSDESK_WEBHOOK_ALLOW_PRIVATE": "true",
        "NEWSDESK_RATE_LIMIT": "1000000/minute",
        "NEWSDESK_WRITE_RATE_LIMIT": "1000000/minute",
        "NEWSDESK_LOG_LEVEL": "warning",
        # PostgreSQL needs one (every host the same); a throwaway database, a throwaway secret.
        "NEWSDESK_SECRET_KEY": os.environ.get("NEWSDESK_SECRET_KEY") or secrets.token_urlsafe(48),
    }


def run(database_url, articles, threads):
    env = environment(database_url)
    subprocess.run([str(BIN / "newsdesk"), "db", "init"], env=env, check=True, capture_output=True)
    os.environ.update(env)
    from standardwebhooks import Webhook as Verifier

    from api import create_app
    from models import ApiKey, Source, WebhookDelivery, db

    app = create_app()
    with app.app_context():
        db.connect(reuse_if_open=True)
        _, token = ApiKey.issue("bench", ["admin"], app.config["NEWSDESK"].key_for("api-keys"))
        Source.create(slug="wire", name="Wire")
        db.close()
    client = app.test_client()
    headers = {"X-API-Key": token}

    def import_(prefix, count=articles):
        lines = "\n".join(
            json.dumps({"source": "wire", "title": f"{prefix} {n}", "body_text": BODY})
            for n in range(count)
        )
        started = time.process_time()
        response = client.post(
            "/v1/import", data=lines, headers={**headers, "Content-Type": "application/x-ndjson"}
        )
        assert response.json["created"] == count, response.json
        return time.process_time() - started

    with Receiver() as receiver:
        created = client.post(
            "/v1/webhooks",
            json={"url": receiver.url, "events": ["article.published"], "enabled": False},
            headers=headers,
        ).json
        path = f"/v1/webhooks/{created['id']}"
        import_("Warm-up", count=50)
        without, with_events = [], []
        for round_ in range(ROUNDS):  # alternately, so drift on a shared machine hits both
            client.patch(path, json={"enabled": False}, headers=headers)
            without.append(import_(f"Plain {round_}"))
            client.patch(path, json={"enabled": True}, headers=headers)
            with_events.append(import_(f"Announced {round_}"))
        without, with_events = min(without), min(with_events)
        single = {"source": "wire", "title": "Breaking after the imports", "body_text": BODY}
        assert client.post("/v1/articles", json=single, headers=headers).status_code == 201
        articles = articles * ROUNDS + 1
        started = time.perf_counter()
        worker = subprocess.Popen(
            [str(BIN / "newsdesk"), "worker", "--workers", str(threads)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            breaking = None
            while breaking is None and time.perf_counter() - started < 600:
                for position, got in enumerate(list(receiver.received), start=1):
                    if single["title"].encode() in got.body:
                        breaking = (position, time.perf_counter() - started)
                time.sleep(0.01)
            receiver.wait_for(articles, timeout=600)
            delivered = time.perf_counter() - started
            with app.app_context():
                db.connect(reuse_if_open=True)
                done = WebhookDelivery.select().where(WebhookDelivery.status == "succeeded")
                while done.count() < articles:  # the last outcomes are being recorded
                    time.sleep(0.05)
                db.close()
        finally:
            worker.terminate()
            worker.wait(30)
        verifier = Verifier(created["secret"])
        for got in receiver.received:
            verifier.verify(got.body, got.headers)
        with app.app_context():
            db.connect(reuse_if_open=True)
            sent = WebhookDelivery.select().where(WebhookDelivery.status == "succeeded").count()
            db.close()
        ids = len({got.id for got in receiver.received})
    kind = urlparse(database_url).scheme
    print(
        f"{kind}: import of {articles // ROUNDS}, best of {ROUNDS}: {without:.2f} s of CPU without "
        f"a webhook, {with_events:.2f} s with one ({with_events / without:.2f}x)"
    )
    print(
        f"{kind}: {len(receiver.received)} deliveries ({ids} messages, {sent} logged succeeded, "
        f"signatures checked) in {delivered:.2f} s from starting the worker "
        f"({articles / delivered:.0f}/s, {threads} threads)"
    )
    position, after = breaking
    print(
        f"{kind}: the single write made after the imports was delivery {position} of {articles},"
        f" {after:.2f} s from starting the worker"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--postgres", help="a server to create a throwaway database on")
    parser.add_argument("--database", help=argparse.SUPPRESS)  # one run, in a process of its own
    args = parser.parse_args()
    if args.database:
        run(args.database, args.articles, args.threads)
        return

    def each(url):
        # The task queue is chosen when api.tasks is imported: one database per process.
        command = [sys.executable, __file__, "--articles", str(args.articles)]
        command += ["--threads", str(args.threads), "--database", url]
        subprocess.run(command, check=True)

    with tempfile.TemporaryDirectory() as folder:
        each(f"sqlite:///{folder}/newsdesk.db")
    if args.postgres:
        with postgres_database(args.postgres, "newsdesk_bench_webhooks") as url:
            each(url)


if __name__ == "__main__":
    main()
