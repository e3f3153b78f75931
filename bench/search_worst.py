"""The worst search shapes, timed on SQLite and PostgreSQL: every one must answer in bounded time.

Each shape is the longest, broadest query the limits of models/query.py allow (most OR
alternatives, most exclusions, longest phrases, most words, of the corpus's commonest words),
asked with both sorts, with and without every filter and facet, and from a cursor deep in the
hits. Requests go through the whole app in process (Flask's test client; no answer cache, no
rate limit), so a time is what the answer costs the server, SQL and Python together.

    .venv/bin/python bench/search_worst.py [--postgres postgresql://postgres@127.0.0.1:5432/db]
                                           [--repeat 3] [--articles 100000] [--sqlite URL]

The SQLite corpus is bench/out/bench.db when bench/run.py has built it, else bench/out/search.db,
built here the way bench/run.py builds its corpus (the demo generator's articles written as
NDJSON, loaded by `newsdesk import`; no related articles, which searches do not read). With
--postgres, that database gets the same NDJSON imported when it has no articles yet.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import run  # noqa: E402 - bench/run.py builds the corpus

#: Words nearly every English article of the corpus has (SQLite indexes every word).
STOPWORDS = ["the", "a", "of", "to", "in", "on", "has", "been", "for", "was", "over", "and"]
#: Words many articles have that PostgreSQL's English configuration does not drop.
COMMON = ["said", "officials", "critics", "analysts", "residents", "supporters", "questions"]
COMMON += ["decision", "weeks", "debate", "public", "year", "plan", "comment", "move", "end"]
#: Rarer words: places of the demo generator.
PLACES = ["lisbon", "nairobi", "osaka", "toronto", "melbourne", "hamburg", "lyon", "valencia"]
PLACES += ["chicago", "manchester", "seoul", "santiago", "oslo", "cairo", "mumbai", "denver"]
#: Phrases of the generator's English sentences: each is in many articles.
PHRASES = [
    "would be reviewed before the end of the",
    "the decision comes after weeks of debate over",
    "has been handled poorly from the start",
    "supporters say the plan could reshape the",
    "to dominate headlines in the coming weeks",
    "said the priority now was to explain the",
]


def _or(words):
    return " OR ".join(words)


def _not(words):
    return " ".join(f"-{word}" for word in words)


def _phrase(words):
    return '"' + " ".join(words) + '"'


def shapes():
    """``{name: q}``: the worst queries within the limits of models/query.py."""
    from models.query import (
        MAX_ALTERNATIVES,
        MAX_EXCLUDED,
        MAX_PHRASE_WORDS,
        MAX_WORDS,
    )

    alternatives, excluded, phrase = MAX_ALTERNATIVES, MAX_EXCLUDED, MAX_PHRASE_WORDS
    required = max(0, MAX_WORDS - MAX_ALTERNATIVES - MAX_EXCLUDED)
    phrases, words = [], 0  # as many of PHRASES as MAX_WORDS allows
    for text in PHRASES:
        words += len(text.split()[:phrase])
        if words > MAX_WORDS or len(phrases) == alternatives:
            break
        phrases.append(_phrase(text.split()[:phrase]))
    return {
        "one common word": "said",
        "one stopword": "the",
        "most ORs, common": _or(COMMON[:alternatives]),
        "most ORs, stopwords": _or(STOPWORDS[:alternatives]),
        "most exclusions, common": f"said {_not(COMMON[1 : excluded + 1])}",
        "most exclusions, stopwords": f"the {_not((STOPWORDS[1:] + COMMON)[:excluded])}",
        "most exclusions, rare": f"said {_not(PLACES[:excluded])}",
        "longest phrase, found": phrases[0],
        "longest phrase, stopwords": _phrase(["the"] * phrase),
        "most words, phrases ANDed": " ".join(phrases),
        "most words, phrases ORed": _or(phrases),
        "most words": " ".join(
            [_or(COMMON[:alternatives]), *STOPWORDS[:required], _not(PLACES[:excluded])]
        ),
        "most ORs and exclusions": f"{_or(COMMON[:alternatives])} {_not(PLACES[:excluded])}",
    }


#: Filter sets: (query string parameters, the same as Article.filtered takes them).
FILTERS = {
    "": ({}, {}),
    "every filter": (
        {
            "source": "daily-ledger,northern-post,rundschau-24",
            "tag": "politics,economy,analysis",
            "language": "en,de",
            "published_after": "2025-01-01T00:00:00Z",
            "published_before": "2026-11-20T00:00:00Z",
            "updated_since": "2020-01-01T00:00:00Z",
        },
        {
            "sources": ["daily-ledger", "northern-post", "rundschau-24"],
            "tags": ["politics", "economy", "analysis"],
            "languages": ["en", "de"],
            "published_after": "2025-01-01 00:00:00",
            "published_before": "2026-11-20 00:00:00",
            "updated_since": "2020-01-01 00:00:00",
        },
    ),
}
VARIANTS = [
    # (label, filter set, facets, deep cursor)
    ("", "", False, False),
    ("facets", "", True, False),
    ("every filter + facets", "every filter", True, False),
    ("deep cursor", "", False, True),
    ("every filter, deep cursor", "every filter", False, True),
]
#: How deep in the hits a deep cursor starts.
DEPTH = 2000


def deep_cursor(app, q, sort, criteria):
    """The cursor of the hit DEPTH deep (or the last one), as a client paging there holds it."""
    import datetime

    from api import paging
    from models import search as search_index
    from models.base import connected
    from models.query import parse_query

    criteria = {
        name: datetime.datetime.fromisoformat(value) if isinstance(value, str) else value
        for name, value in criteria.items()
    }
    with app.app_context(), connected():
        rows = list(search_index.search(parse_query(q), sort=sort, **criteria).tuples())
    if not rows:
        return None
    article_id, score, published_at = rows[min(DEPTH, len(rows) - 1)]
    with app.app_context():
        return paging.encode_cursor(
            f"search{sort}", (score if sort == "relevance" else published_at, article_id)
        )


def measure(database_url, repeat, only=None, mode="keyword"):
    """``[(worst seconds, median seconds, least CPU seconds in this process, status, hits,
    label)]`` of every shape and variant, slowest first."""
    from api import create_app

    app = create_app(
        {
            "database_url": database_url,
            "answer_cache_bytes": 0,
            "rate_limit": "100000000/minute",
            "log_level": "warning",
        }
    )
    client = app.test_client()
    results = []
    for name, q in shapes().items():
        if only and only not in name:
            continue
        for sort in ("relevance", "-published_at"):
            for label, filter_set, with_facets, deep in VARIANTS:
                params, criteria = FILTERS[filter_set]
                query = {"q": q, "sort": sort, "limit": 20, "mode": mode, **params}
                if with_facets:
                    query["facets"] = "source,tag,language"
                if deep:
                    cursor = deep_cursor(app, q, sort, criteria)
                    if cursor is None:
                        continue
                    query["cursor"] = cursor
                timings, cpu = [], []
                for _ in range(repeat):
                    started, started_cpu = time.perf_counter(), time.process_time()
                    response = client.get("/v1/search", query_string=query)
                    timings.append(time.perf_counter() - started)
                    cpu.append(time.process_time() - started_cpu)
                body = response.get_json() or {}
                what = f"{name} | {sort}" + (f" | {label}" if label else "")
                results.append(
                    (
                        max(timings),
                        statistics.median(timings),
                        min(cpu),
                        response.status_code,
                        len(body.get("data", [])),
                        what,
                    )
                )
                print(
                    f"  {max(timings) * 1000:8.1f} ms  cpu {min(cpu) * 1000:8.1f} ms"
                    f"  {response.status_code}  {what}",
                    file=sys.stderr,
                    flush=True,
                )
    return sorted(results, reverse=True)


def ensure_sqlite(articles):
    """The SQLite corpus's URL, building it when there is none (and the build's seconds)."""
    if (run.OUT / "bench.db").exists():
        return f"sqlite:///{run.OUT / 'bench.db'}", None
    database = run.OUT / "search.db"
    if database.exists():
        return f"sqlite:///{database}", None
    return f"sqlite:///{database}", import_corpus(f"sqlite:///{database}", articles)


def import_corpus(database_url, articles):
    """Load the NDJSON corpus (written first if missing) into ``database_url``; seconds."""
    run.OUT.mkdir(parents=True, exist_ok=True)
    corpus = run.OUT / "corpus.ndjson"
    if not corpus.exists():
        run.log(f"writing {articles} articles to {corpus} ...")
        run.write_corpus(corpus, articles)
    env = {
        **os.environ,
        "NEWSDESK_DATABASE_URL": database_url,
        "NEWSDESK_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    return run.import_corpus(corpus, env)


def article_count(database_url):
    from models import Article, bind_database, db, init_db

    bind_database(database_url)
    with db.connection_context():
        init_db()
        return Article.select().count()


def report(backend, database_url, results, built):
    count = article_count(database_url)
    lines = [f"{backend}: {count:,} articles" + (f" (imported in {built:.0f} s)" if built else "")]
    slowest = results[0]
    over = [r for r in results if r[3] != 200]
    by_cpu = max(results, key=lambda r: r[2])
    lines.append(
        f"{len(results)} requests; slowest {slowest[0] * 1000:.0f} ms ({slowest[5]}); most"
        f" CPU in this process {by_cpu[2] * 1000:.0f} ms ({by_cpu[5]}); not 200: {len(over)}"
    )
    lines.append("| worst ms | median ms | CPU ms | status | hits | shape |")
    lines.append("|---:|---:|---:|---:|---:|---|")
    for worst, median, cpu, status, hits, what in results[:12]:
        lines.append(
            f"| {worst * 1000:.0f} | {median * 1000:.0f} | {cpu * 1000:.0f} | {status} | {hits}"
            f" | {what} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", help="a SQLite database URL instead of the bench corpus")
    parser.add_argument("--postgres", help="a PostgreSQL database URL to measure too")
    parser.add_argument("--articles", type=int, default=100_000, help="articles of a new corpus")
    parser.add_argument("--repeat", type=int, default=3, help="times each request is made")
    parser.add_argument("--only", help="only the shapes whose name holds this")
    parser.add_argument(
        "--mode",
        default="keyword",
        choices=["keyword", "hybrid", "semantic"],
        help="search mode (keyword pages through every match: the costliest)",
    )
    args = parser.parse_args()
    backends = [
        ("SQLite", args.sqlite, None) if args.sqlite else ("SQLite", *ensure_sqlite(args.articles))
    ]
    if args.postgres:
        built = None
        if article_count(args.postgres) == 0:
            built = import_corpus(args.postgres, args.articles)
        backends.append(("PostgreSQL", args.postgres, built))
    texts = []
    for backend, url, built in backends:
        run.log(f"{backend} ...")
        texts.append(report(backend, url, measure(url, args.repeat, args.only, args.mode), built))
    print("\n\n".join(texts))


if __name__ == "__main__":
    main()
