"""Newsdesk benchmark: one command, ratios against a reference measured in the same run.

1. Builds a corpus of generated articles (100,000 by default) as NDJSON and loads it through
   the import path (`newsdesk import`), then `newsdesk related rebuild`.
2. Times the related computation a write triggers, in process, on 200 random articles.
3. Serves Newsdesk and a minimal Flask app (bench/reference.py, a fixed small JSON object) with
   the same gunicorn settings (gunicorn.conf.py, 2 workers of the same class: the default,
   gevent, or --worker-class), and loads each with wrk on 127.0.0.1:
   -t2 -c32 -d10s, median of 3 runs, for a cold list (every request a different page), detail
   (random ids), related, search (one word, two words, a phrase; with the answer cache, and
   on a second Newsdesk server without it) and a 304 revalidation; then
   the same Newsdesk endpoints at -c2 (one connection per worker) for latency without queueing.
   Every server is warmed up first (3 s of each scenario, not measured). The reference is
   measured again before each of a scenario's runs (all servers are up; the idle ones cost
   nothing): the machine's speed drifts, by 10-20% within minutes on a shared VM, and a ratio
   is only fair between figures measured side by side. The reference's req/s is the median of
   all those runs; a scenario's ratio is its median over the median of the reference runs
   beside it.

    .venv/bin/python bench/run.py [--articles 100000] [--reuse] [--duration 10] [--runs 3]
        [--worker-class gevent|sync]

Everything lives in bench/out/ (ignored by git); --reuse keeps a corpus already loaded there.
"""

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, OUT, ROOT, free_port, gunicorn, log, percentile

#: (row, scenario of bench/wrk.lua, label, answer cache on). Searches repeat (175 words, 31
#: phrases; two words make 30,625 pairs), so they are measured with the answer cache and, on a
#: second Newsdesk server, without it: what a query costs the first time.
SCENARIOS = [
    ("list", "list", "list, limit=20, cold", True),
    ("detail", "detail", "detail, random id", True),
    ("related", "related", "related", True),
    ("search1", "search1", "search, one word", True),
    ("search2", "search2", "search, two words", True),
    ("phrase", "phrase", "search, phrase", True),
    ("search1-cold", "search1", "search, one word, no answer cache", False),
    ("search2-cold", "search2", "search, two words, no answer cache", False),
    ("phrase-cold", "phrase", "search, phrase, no answer cache", False),
    ("revalidate", "revalidate", "304 revalidation", True),
]
#: Each list request is a page deep in the newest-first order (published_before stands for a
#: cursor), under one of these filters.
FILTERS = [
    "",
    "&source=daily-ledger",
    "&source=rundschau-24,le-quotidien",
    "&tag=politics",
    "&tag=energy",
    "&language=en",
    "&tag=analysis&language=en",
    "&language=de,fr",
]


def timed(env, *args):
    """Seconds ``newsdesk *args`` took (its standard output discarded)."""
    started = time.perf_counter()
    subprocess.run([str(BIN / "newsdesk"), *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def write_corpus(corpus, articles):
    """Write ``articles`` generated articles (the demo generator, fixed seeds) as NDJSON."""
    sys.path.insert(0, str(ROOT))
    from api.demo import generate

    rng = random.Random(2026)
    with corpus.open("w") as handle:
        for row in generate(rng, articles, seed=7):
            article = row["article"]
            line = {
                "source": article["source"],
                "external_id": article["external_id"],
                "title": article["title"],
                "body_text": row["body_text"],
                "tags": row["tags"],
                "published_at": article["published_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "url": article["url"],
                "image_url": article["image_url"],
                "byline": article["byline"],
                "language": article["language"],
            }
            handle.write(json.dumps(line) + "\n")


def import_corpus(corpus, env):
    """Load the NDJSON ``corpus`` through the import path into the database ``env`` names;
    returns the seconds the import took."""
    timed(env, "db", "init")
    timed(env, "demo", "--articles", "0")  # the demo sources and tags
    log(f"importing {corpus} ...")
    return timed(env, "import", str(corpus))


def build_corpus(articles, env):
    """Write the NDJSON corpus, load it through the import path, rebuild related articles."""
    corpus = OUT / "corpus.ndjson"
    write_corpus(corpus, articles)
    seconds = import_corpus(corpus, env)
    log("rebuilding related articles ...")
    rebuild = timed(env, "related", "rebuild")
    return {
        "import_seconds": seconds,
        "import_rate": articles / seconds,
        "rebuild_seconds": rebuild,
    }


def related_on_write(database_url, samples=200):
    """Milliseconds to compute and store one article's related articles, as a write does."""
    sys.path.insert(0, str(ROOT))
    from models import Article, bind_database, db, related

    bind_database(database_url)
    with db.connection_context():
        top = Article.select(Article.id).order_by(Article.id.desc()).first().id
        timings = []
        for article_id in random.Random(1).sample(range(1, top + 1), samples):
            started = time.perf_counter()
            related.refresh_many([article_id])
            timings.append((time.perf_counter() - started) * 1000)
    return {
        "p50": statistics.median(timings),
        "p99": percentile(timings, 0.99),
        "mean": statistics.fmean(timings),
    }


def corpus_bounds(env):
    """Tell bench/wrk.lua the corpus of ``env``'s database (its largest article id, and its
    first and last publication times: the ids and times its requests pick from); returns the
    largest id."""
    sys.path.insert(0, str(ROOT))
    from models import Article, bind_database, db

    bind_database(env["NEWSDESK_DATABASE_URL"])
    with db.connection_context():
        max_id = Article.select(Article.id).order_by(Article.id.desc()).first().id
        oldest = Article.select(Article.published_at).order_by(Article.published_at).first()
        newest = Article.select(Article.published_at).order_by(Article.published_at.desc()).first()
    env["BENCH_MAX_ID"] = str(max_id)
    env["BENCH_T0"] = str(int(oldest.published_at.timestamp()))
    env["BENCH_T1"] = str(int(newest.published_at.timestamp()))
    return max_id


def prepare_requests(base, max_id):
    """Word lists, list filters and (path, ETag) pairs for the wrk script."""
    sys.path.insert(0, str(ROOT))
    from api.demo import NOUNS, PLACES, TOPICS

    rng = random.Random(3)
    words = [w for w in NOUNS + PLACES if " " not in w]
    phrases = [s for _, _, subjects in TOPICS for s in subjects if " " in s]
    (OUT / "words.txt").write_text("\n".join(words) + "\n")
    (OUT / "phrases.txt").write_text("\n".join(phrases) + "\n")
    (OUT / "filters.txt").write_text("\n".join(FILTERS) + "\n")
    pairs = []
    for article_id in rng.sample(range(1, max_id + 1), 500):
        path = f"/v1/articles/{article_id}"
        with urllib.request.urlopen(base + path) as response:
            pairs.append(f"{path}\t{response.headers['ETag']}")
    (OUT / "etags.txt").write_text("\n".join(pairs) + "\n")


def wrk(base, scenario, connections, duration, env):
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(ROOT / "bench" / "wrk.lua"),
        base,
    ]
    output = subprocess.run(
        command, env={**env, "BENCH_SCENARIO": scenario}, capture_output=True, text=True, check=True
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {}
    for label in ("50%", "99%"):
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output).groups()
        latency[label] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rate": rate,
        "p50": latency["50%"],
        "p99": latency["99%"],
        "errors": int(errors.group(1)) if errors else 0,
    }


def median_of(results):
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def measure(base, scenario, connections, duration, runs, env):
    return median_of([wrk(base, scenario, connections, duration, env) for _ in range(runs)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="keep the corpus in bench/out")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker-class", help="NEWSDESK_WORKER_CLASS of every server")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    database = OUT / "bench.db"
    env = {
        **os.environ,
        "NEWSDESK_DATABASE_URL": f"sqlite:///{database}",
        "NEWSDESK_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_LOG_LEVEL": "warning",
        "BENCH_DATA": str(OUT),
        "PYTHONPATH": str(ROOT),
    }
    if args.worker_class:  # gunicorn.conf.py prepares each server's processes for it
        env["NEWSDESK_WORKER_CLASS"] = args.worker_class
    worker_class = env.get("NEWSDESK_WORKER_CLASS") or "gevent"
    report = {"articles": args.articles}
    if not (args.reuse and database.exists()):
        for stale in OUT.glob("bench.db*"):
            stale.unlink()
        report.update(build_corpus(args.articles, env))
    else:
        timed(env, "db", "init")  # a corpus built by older code gets the current schema
    report["related_on_write_ms"] = related_on_write(env["NEWSDESK_DATABASE_URL"])

    max_id = corpus_bounds(env)

    rows, references = {}, []
    uncached = {**env, "NEWSDESK_ANSWER_CACHE_BYTES": "0"}
    with (
        gunicorn("reference:app", env, free_port(), "/") as reference_base,
        gunicorn("api.wsgi:app", env, free_port(), "/healthz") as cached_base,
        gunicorn("api.wsgi:app", uncached, free_port(), "/healthz") as uncached_base,
    ):
        prepare_requests(cached_base, max_id)
        log("warming up ...")
        # Fresh workers run slower for their first few thousand requests (SQLite's page cache
        # and the pages of the mapped database file are per process): every server gets 3 s of
        # each scenario, unmeasured, before anything is measured.
        wrk(reference_base, "reference", 32, 3, env)
        for _, scenario, _, cache in SCENARIOS:
            wrk(cached_base if cache else uncached_base, scenario, 32, 3, env)
        for row, scenario, label, cache in SCENARIOS:
            log(f"{label} ...")
            base = cached_base if cache else uncached_base
            runs, beside = [], []
            for _ in range(args.runs):
                beside.append(wrk(reference_base, "reference", 32, args.duration, env))
                runs.append(wrk(base, scenario, 32, args.duration, env))
            references += beside
            rows[row] = median_of(runs)
            rows[row]["ratio"] = rows[row]["rate"] / median_of(beside)["rate"]
            rows[row]["unloaded"] = measure(base, scenario, 2, args.duration, 1, env)

    reference = median_of(references)
    spread = f"{min(r['rate'] for r in references):,.0f}-{max(r['rate'] for r in references):,.0f}"
    table = [
        "| endpoint | req/s | p50 ms | p99 ms | × reference | errors | p50 / p99 ms at -c2 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        (
            f"| reference (fixed JSON) | {reference['rate']:,.0f} | {reference['p50']:.2f} | "
            f"{reference['p99']:.2f} | 1.00 | {sum(r['errors'] for r in references):.0f} | |"
        ),
    ]
    for name, _, label, _ in SCENARIOS:
        row = rows[name]
        unloaded = row["unloaded"]
        table.append(
            f"| {label} | {row['rate']:,.0f} | {row['p50']:.2f} | {row['p99']:.2f} | "
            f"{row['ratio']:.2f} | {row['errors']:.0f} | "
            f"{unloaded['p50']:.2f} / {unloaded['p99']:.2f} |"
        )
    lines = [f"Corpus: {args.articles:,} articles (SQLite, {os.cpu_count()} cores)."]
    if "import_rate" in report:
        lines.append(
            f"Import (NDJSON through the import path): {report['import_rate']:,.0f} articles/s "
            f"({report['import_seconds']:.0f} s); related rebuild: {report['rebuild_seconds']:.0f} s."
        )
    write = report["related_on_write_ms"]
    lines.append(
        f"Related computation on write: p50 {write['p50']:.1f} ms, p99 {write['p99']:.1f} ms, "
        f"mean {write['mean']:.1f} ms (200 articles)."
    )
    lines.append(
        f"wrk -t2 -c32 -d{args.duration}s, median of {args.runs}; gunicorn, 2 {worker_class} "
        "workers each; "
        f"the reference run {len(references)} times, beside each scenario's runs: {spread} req/s."
    )
    text = "\n".join(lines) + "\n\n" + "\n".join(table) + "\n"
    (OUT / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
