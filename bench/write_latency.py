"""Write latency with related articles off the request, and how soon they are current.

On a copy of a loaded database (bench/out/import.db, made by bench/import_speed.py, 100k
articles; its related queue emptied, as `related rebuild` leaves it), serves Newsdesk with gunicorn (gunicorn.conf.py: 2 gevent workers) beside an idle
`newsdesk worker`, then:

1. POSTs --writes new articles to /v1/articles, one at a time (one connection, no queueing),
   each a variation of a stored article, and prints p50/p99 of the answers;
2. POSTs --samples more, one at a time, each waiting until the worker is done with it: it is
   embedded and in neither queue, so its related list was computed with its vector (polled
   every 10 ms, 60 s at most); prints how long that took (p50, max) and how many of the lists
   /v1/articles/{id}/related shows are non-empty. With --backlog N,
   N more articles are first imported through POST /v1/import, so that the samples are
   written while the worker has the import's embeddings and related lists to do; what is
   left of that work after the samples is printed too.

    .venv/bin/python bench/write_latency.py [--writes 500] [--samples 20] [--no-worker]
        [--backlog 2000] [--idle-worker] [--worker-threads 2] [--database postgresql://...]

With --database, a PostgreSQL database that holds the corpus already (as bench/import_speed.py
--database leaves it) is used as it is: the new articles stay in it, under external ids of
their own run.
"""

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

#: Status codes of writes that failed.
FAILED = []


def post(base, key, article):
    request = urllib.request.Request(
        f"{base}/v1/articles",
        data=json.dumps(article).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:  # counted: a 503 is a finding, not a crash
        FAILED.append(error.code)
        return (time.perf_counter() - started) * 1000, None
    return (time.perf_counter() - started) * 1000, body["id"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="no worker beside the server (its work does not compete); only the POSTs are timed",
    )
    parser.add_argument("--database", help="a PostgreSQL URL (default: a copy of import.db)")
    parser.add_argument(
        "--backlog", type=int, default=0, help="articles imported just before the samples"
    )
    parser.add_argument(
        "--idle-worker",
        action="store_true",
        help="empty the embedding queue too (the corpus's articles stay without vectors): the"
        " worker has only the new writes' work, not the import's embeddings",
    )
    parser.add_argument(
        "--worker-threads",
        type=int,
        default=2,
        help="the worker's threads (`newsdesk worker --workers`; its default is 2)",
    )
    args = parser.parse_args()
    url = args.database
    if url is None:
        database = common.OUT / "write-latency.db"
        for stale in common.OUT.glob("write-latency*"):
            stale.unlink()
        shutil.copyfile(common.OUT / "import.db", database)
        url = f"sqlite:///{database}"
    env = {
        **os.environ,
        "NEWSDESK_DATABASE_URL": url,
        "NEWSDESK_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_WRITE_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_LOG_LEVEL": "warning",
        "NEWSDESK_SECRET_KEY": os.environ.get("NEWSDESK_SECRET_KEY", "bench-import-speed-secret"),
        "PYTHONPATH": str(common.ROOT),
    }
    common.newsdesk(env, "db", "init")
    key = common.create_key(env, "bench", "write")
    corpus = [json.loads(line) for line in (common.OUT / "corpus.ndjson").open() if line][:5000]
    rng = random.Random(5)
    run = int(time.time())  # new articles at every run, on a database kept between runs

    def variation(number):
        article = dict(rng.choice(corpus))
        article["external_id"] = f"latency-{run}-{number}"
        article["title"] = f"{article['title']} (update {number})"
        article.pop("published_at", None)
        return article

    sys.path.insert(0, str(common.ROOT))
    from models import ArticleEmbedding, EmbeddingQueue, RelatedQueue, bind_database, db

    def worker_done(article_id):
        """Embedded, and neither queue holds it: its related list used its vector."""
        with db.connection_context():
            return ArticleEmbedding.select().where(
                ArticleEmbedding.article == article_id
            ).exists() and not any(
                queue.select().where(queue.article == article_id).exists()
                for queue in (EmbeddingQueue, RelatedQueue)
            )

    bind_database(env["NEWSDESK_DATABASE_URL"])
    with db.connection_context():  # the corpus's own lists are `related rebuild`'s work
        RelatedQueue.delete().execute()
        if args.idle_worker:
            EmbeddingQueue.delete().execute()
    worker = None
    if not args.no_worker:
        command = [str(common.BIN / "newsdesk"), "worker", "--workers", str(args.worker_threads)]
        worker = subprocess.Popen(command, env=env, cwd=common.ROOT)
    try:
        with common.gunicorn("api.wsgi:app", env, common.free_port()) as base:
            for number in range(20):  # warm-up, not measured
                post(base, key, variation(-1 - number))
            timings = [post(base, key, variation(n))[0] for n in range(args.writes)]
            print(
                f"POST /v1/articles, {args.writes} one at a time: p50 "
                f"{statistics.median(timings):.1f} ms, p99 {common.percentile(timings, 0.99):.1f} ms, "
                f"max {max(timings):.1f} ms; failed: {len(FAILED)} {sorted(set(FAILED))}",
                flush=True,
            )
            if worker is None:
                return
            deadline_wait = 60
            caught_up = time.perf_counter() + 600
            while time.perf_counter() < caught_up:  # the worker catches up with the writes first
                with db.connection_context():
                    if not (RelatedQueue.select().exists() or EmbeddingQueue.select().exists()):
                        break
                time.sleep(0.05)
            if args.backlog:
                created = 0
                for start in range(0, args.backlog, 1000):  # answered at once, not as a job
                    lines = [
                        variation(f"backlog-{n}")
                        for n in range(start, min(start + 1000, args.backlog))
                    ]
                    request = urllib.request.Request(
                        f"{base}/v1/import",
                        data="\n".join(json.dumps(line) for line in lines).encode(),
                        headers={"Content-Type": "application/x-ndjson", "X-API-Key": key},
                    )
                    with urllib.request.urlopen(request, timeout=600) as answer:
                        created += json.load(answer)["created"]
                print(f"backlog: {created} articles imported", flush=True)
            waits = []
            for n in range(args.samples):
                _, article_id = post(base, key, variation(args.writes + n))
                if article_id is None:
                    continue
                started = time.perf_counter()
                while time.perf_counter() - started < deadline_wait:
                    if worker_done(article_id):
                        break
                    time.sleep(0.01)
                waited = time.perf_counter() - started
                with urllib.request.urlopen(f"{base}/v1/articles/{article_id}/related") as answer:
                    shown = len(json.load(answer)["data"])
                waits.append((waited, shown))
            seconds = [w for w, _ in waits]
            if args.backlog:
                with db.connection_context():
                    print(
                        f"backlog left after the samples: {EmbeddingQueue.select().count()} to"
                        f" embed, {RelatedQueue.select().count()} related lists; waits in order:"
                        f" {', '.join(f'{w:.1f}' for w in seconds)} s",
                        flush=True,
                    )
            worker_state = f"a backlog of {args.backlog}" if args.backlog else "idle worker"
            print(
                f"related list current after a write, {worker_state}, {args.samples} writes: p50 "
                f"{statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms; "
                f"{sum(1 for _, shown in waits if shown)} of {args.samples} lists non-empty",
                flush=True,
            )
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGINT)
            worker.wait(timeout=120)


if __name__ == "__main__":
    main()
