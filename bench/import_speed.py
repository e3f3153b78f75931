"""Bulk import speed: the bench corpus through `newsdesk import` or `POST /v1/import`.

Builds the NDJSON corpus of bench/run.py if it is missing (bench/out/corpus.ndjson), loads its
first --articles lines into a fresh database (SQLite in bench/out/import.db, or the PostgreSQL
database --database names, whose tables it empties), and prints articles/s by wall clock and
by the importing process's CPU time (on a shared machine the wall clock also counts other
people's work). Then checks that every article is in the search index, and optionally times
`newsdesk related rebuild`.

    .venv/bin/python bench/import_speed.py [--articles 100000] [--via cli|http]
        [--database postgresql://...] [--rebuild] [--readers N] [--connections N]

Through the CLI, `--readers N` is `newsdesk import --readers N` (processes validating items
while one stores them; the command's own default when not given); `--readers 0` measures one
process doing all of it.

Over HTTP the corpus goes in bodies of at most NEWSDESK_IMPORT_SYNC_BYTES (4 MiB), each
imported within its request, one after the other (or `--connections N` at once), to a gunicorn
server of the default configuration.
"""

import argparse
import collections
import concurrent.futures
import contextlib
import json
import os
import resource
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import run

SYNC_BYTES = 4 * 1024 * 1024


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def corpus_lines(articles):
    corpus = common.OUT / "corpus.ndjson"
    if not corpus.exists() or sum(1 for _ in corpus.open("rb")) < articles:
        common.log(f"writing {corpus} ...")
        run.write_corpus(corpus, articles)
    part = common.OUT / f"corpus-{articles}.ndjson"
    with corpus.open("rb") as source, part.open("wb") as target:
        for number, line in enumerate(source):
            if number == articles:
                break
            target.write(line)
    return part


def fresh_database(env):
    url = env["NEWSDESK_DATABASE_URL"]
    if url.startswith("sqlite"):
        for stale in common.OUT.glob("import.db*"):
            stale.unlink()
        common.newsdesk(env, "db", "init")
    else:
        common.newsdesk(env, "db", "init")
        sys.path.insert(0, str(common.ROOT))
        from models import MODELS, DataVersion, bind_database, db

        bind_database(url)
        with db.connection_context():
            tables = ", ".join(model._meta.table_name for model in MODELS)
            db.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            DataVersion.ensure()
    common.newsdesk(env, "demo", "--articles", "0")  # the demo sources and tags


def indexed(env):
    """Articles, and documents in the search index."""
    sys.path.insert(0, str(common.ROOT))
    from models import Article, bind_database, db, is_postgres

    bind_database(env["NEWSDESK_DATABASE_URL"])
    with db.connection_context():
        table = "article_document" if is_postgres() else "article_search"
        documents = db.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        return Article.select().count(), documents


def via_cli(part, env, readers=None):
    cpu = children_cpu()
    options = [] if readers is None else ["--readers", str(readers)]
    seconds = run.timed(env, "import", *options, str(part))
    return seconds, children_cpu() - cpu


def bodies(part):
    body, size = [], 0
    with part.open("rb") as handle:
        for line in handle:
            if size + len(line) > SYNC_BYTES and body:
                yield b"".join(body)
                body, size = [], 0
            body.append(line)
            size += len(line)
    if body:
        yield b"".join(body)


def via_http(part, env, connections=1):
    key = common.create_key(env, "bench", "write")

    def send(body):
        request = urllib.request.Request(
            f"{base}/v1/import",
            data=body,
            headers={"Content-Type": "application/x-ndjson", "X-API-Key": key},
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            result = json.load(response)
        assert response.status == 200 and result["rejected"] == 0, result

    with common.gunicorn("api.wsgi:app", env, common.free_port()) as base:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(connections) as senders:
            # At most two bodies a connection read ahead: the corpus is not held whole.
            pending = collections.deque()
            for body in bodies(part):
                pending.append(senders.submit(send, body))
                if len(pending) >= 2 * connections:
                    pending.popleft().result()
            for sent in pending:
                sent.result()
        seconds = time.perf_counter() - started
    return seconds, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--via", choices=("cli", "http"), default="cli")
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in bench/out)")
    parser.add_argument("--rebuild", action="store_true", help="time `related rebuild` after")
    parser.add_argument("--readers", type=int, help="newsdesk import --readers N (CLI only)")
    parser.add_argument(
        "--connections", type=int, default=1, help="bodies sent at once (HTTP only)"
    )
    args = parser.parse_args()
    common.OUT.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "NEWSDESK_DATABASE_URL": args.database or f"sqlite:///{common.OUT / 'import.db'}",
        "NEWSDESK_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_WRITE_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_LOG_LEVEL": "warning",
        "PYTHONPATH": str(common.ROOT),
    }
    env.setdefault("NEWSDESK_SECRET_KEY", "bench-import-speed-secret")
    part = corpus_lines(args.articles)
    fresh_database(env)
    engine = "postgresql" if env["NEWSDESK_DATABASE_URL"].startswith("postgres") else "sqlite"
    common.log(f"importing {args.articles:,} articles via {args.via} into {engine} ...")
    if args.via == "cli":
        seconds, cpu = via_cli(part, env, args.readers)
    else:
        seconds, cpu = via_http(part, env, args.connections)
    articles, documents = indexed(env)
    line = (
        f"{engine}, {args.via}: {articles:,} articles in {seconds:.1f} s = "
        f"{articles / seconds:,.0f} articles/s"
    )
    if cpu:
        line += f" (importing processes: {cpu:.1f} s CPU = {articles / cpu:,.0f} articles/s of CPU)"
    line += f"; {documents:,} in the search index"
    print(line, flush=True)
    if args.rebuild:
        with contextlib.suppress(KeyboardInterrupt):
            rebuild = run.timed(env, "related", "rebuild")
            print(f"related rebuild of {articles:,}: {rebuild:.1f} s", flush=True)


if __name__ == "__main__":
    main()
