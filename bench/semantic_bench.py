"""Semantic features at 100k articles: nearest-neighbour queries, reading related lists.

    .venv/bin/python bench/semantic_bench.py [--database URL] [--queries 300]

Runs on the corpus of bench/run.py (bench/out/bench.db) after `newsdesk embed --all`, or on the
PostgreSQL database named by --database. Prints, in milliseconds: the time to load the
per-process index; the nearest-neighbour query (`models.embeddings.nearest`, ten results)
without and with a language filter, with its recall@10 against exact search (the queries are
stored vectors of random articles with a little noise added); the same for the search words
of bench/out/words.txt (a hundred results, recall@10 and @100); exact search over every
vector in numpy, for comparison; and reading a related list (`models.reading.related`).
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import percentile  # noqa: E402

from models import PUBLISHED, Article, bind_database, db, embeddings, reading  # noqa: E402


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def summary(timings):
    return f"p50 {statistics.median(timings):.2f}, p99 {percentile(timings, 0.99):.2f}"


def exact(matrix, index, query, allowed, limit=10):
    """The ``limit`` nearest published articles (among ``allowed`` ids, when given), by brute
    force."""
    found = set()
    for slot in np.argsort(-(matrix @ query)):
        article_id = int(index.ids[slot])
        if index.live[slot] and (allowed is None or article_id in allowed):
            found.add(article_id)
            if len(found) == limit:
                break
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=f"sqlite:///{ROOT}/bench/out/bench.db")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    bind_database(args.database)
    embeddings.configure("use")
    rng = random.Random(5)
    with db.connection_context():
        index = embeddings.VectorIndex()
        load_ms, _ = timed(index.refresh)
        embeddings._process_index[id(db.obj)] = index
        engine = "pgvector (HNSW)" if embeddings.has_pgvector() else "numpy index"
        print(f"vectors: {index.size:,}; nearest() through: {engine}")
        megabytes = index.vectors[: index.size].nbytes / 2**20
        print(f"numpy index load: {load_ms:,.0f} ms; {megabytes:.0f} MiB of vectors")
        matrix = index.vectors[: index.size]
        sample = rng.sample(range(index.size), args.queries)
        noise = np.random.default_rng(5).normal(0, 0.02, (args.queries, matrix.shape[1]))
        queries = embeddings.normalise((matrix[sample] + noise).astype(np.float32))
        german = {
            i
            for (i,) in Article.select(Article.id)
            .where((Article.language == "de") & (Article.status == PUBLISHED))
            .tuples()
        }
        for label, filters, allowed in (
            ("no filter", {}, None),
            ("language=de", {"languages": ["de"]}, german),
        ):
            timings, recalls = [], []
            for query in queries:
                ms, found = timed(embeddings.nearest, query, 10, **filters)
                timings.append(ms)
                truth = exact(matrix, index, query, allowed)
                recalls.append(len({i for i, _ in found} & truth) / max(1, len(truth)))
            print(
                f"nearest, {label}: {summary(timings)} ms; recall@10 {statistics.fmean(recalls):.3f}"
            )
        # Searches' queries are a word or two, far from any article: the codes that narrow the
        # candidates lose more of the nearest than for the queries above.
        words = (ROOT / "bench" / "out" / "words.txt").read_text().split()[: args.queries]
        timings, recalls = [], {10: [], 100: []}
        for word in words:
            query = np.asarray(embeddings.embed_query(word), dtype=np.float32).reshape(-1)
            ms, found = timed(embeddings.nearest, query, 100)
            timings.append(ms)
            ranked = [i for i, _ in found]
            for limit, kept in recalls.items():
                truth = exact(matrix, index, query, None, limit)
                kept.append(len(set(ranked[:limit]) & truth) / max(1, len(truth)))
        print(
            f"nearest 100 to a search word ({len(words)} words of bench/out/words.txt):"
            f" {summary(timings)} ms; recall@10 {statistics.fmean(recalls[10]):.3f},"
            f" recall@100 {statistics.fmean(recalls[100]):.3f}"
        )
        brute = [timed(lambda q: np.argpartition(-(matrix @ q), 10)[:10], q)[0] for q in queries]
        print(f"exact search over every vector (numpy): {summary(brute)} ms")
        top = Article.select(Article.id).order_by(Article.id.desc()).first().id
        reads = [timed(reading.related, rng.randint(1, top), 5)[0] for _ in range(2000)]
        print(f"related list read (limit 5, one query): {summary(reads)} ms")


if __name__ == "__main__":
    main()
