"""Microseconds per request, in process: the WSGI app called directly, no server, no network.

For finding where time goes between benchmark runs (wrk in bench/run.py is what counts):

    .venv/bin/python bench/inprocess.py [--database sqlite:///bench/out/bench.db] [--requests 3000]
    .venv/bin/python bench/inprocess.py --scenario list --cprofile    # top functions by own time

Scenarios are those of bench/run.py (a page deep in the list under a filter, a random detail,
related, a 304 revalidation), one-word searches in each mode (words of bench/out/words.txt,
written by bench/run.py; semantic modes need an embedded corpus), and the reference app of
bench/reference.py for scale:

    .venv/bin/python bench/inprocess.py --database sqlite:///bench/out/semantic.db \
        --no-answer-cache --scenario search-hybrid --requests 300
"""

import argparse
import cProfile
import datetime
import functools
import io
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from run import FILTERS  # noqa: E402


def environ(path, headers=()):
    target, _, query = path.partition("?")
    env = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": target,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for name, value in headers:
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def call(app, path, headers=()):
    statuses = []
    body = app(environ(path, headers), lambda status, _headers, *a: statuses.append(status))
    for _ in body:
        pass
    if hasattr(body, "close"):
        body.close()
    return statuses[0]


def scenarios(app, rng):
    from models import Article, db

    with db.connection_context():
        max_id = Article.select(Article.id).order_by(Article.id.desc()).first().id
        t0 = (
            Article.select(Article.published_at).order_by(Article.published_at).first().published_at
        )
        t1 = Article.select(Article.published_at).order_by(Article.published_at.desc()).first()
        t1 = t1.published_at
    etags = []
    for article_id in rng.sample(range(1, max_id + 1), 50):
        path = f"/v1/articles/{article_id}"
        headers = {}
        app(environ(path), lambda status, h, *a, headers=headers: headers.update(h))
        if "ETag" in headers:
            etags.append((path, headers["ETag"]))
    span = int((t1 - t0).total_seconds())

    def listing():
        before = t0 + datetime.timedelta(seconds=rng.randrange(span))
        return f"/v1/articles?limit=20&published_before={before:%Y-%m-%dT%H:%M:%SZ}" + rng.choice(
            FILTERS
        ), ()

    return {
        "list": listing,
        "detail": lambda: (f"/v1/articles/{rng.randint(1, max_id)}", ()),
        "related": lambda: (f"/v1/articles/{rng.randint(1, max_id)}/related", ()),
        "revalidate": lambda: (lambda p, e: (p, [("If-None-Match", e)]))(*rng.choice(etags)),
        **{
            f"search-{mode}": lambda mode=mode: (
                f"/v1/search?limit=20&mode={mode}&q={rng.choice(search_words())}",
                (),
            )
            for mode in ("keyword", "semantic", "hybrid")
        },
    }


@functools.cache
def search_words():
    """The words bench/run.py picked from the corpus (read when a search scenario runs)."""
    return (ROOT / "bench" / "out" / "words.txt").read_text().split()


def timed(app, make, requests, rounds=5, profile=None):
    """CPU microseconds per request: the best of ``rounds`` rounds (other work on the machine
    only ever adds time), and the statuses seen. ``profile`` (a cProfile.Profile) is enabled
    after the warm-up."""
    calls = [make() for _ in range(requests)]
    for path, headers in calls[:50]:  # warm up
        call(app, path, headers)
    if profile:
        profile.enable()
    best, statuses = float("inf"), set()
    size = max(1, requests // rounds)
    for start in range(0, requests, size):
        chunk = calls[start : start + size]
        started = time.process_time()
        statuses.update(call(app, path, headers) for path, headers in chunk)
        best = min(best, (time.process_time() - started) / len(chunk) * 1e6)
    if profile:
        profile.disable()
    return best, sorted(statuses)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=f"sqlite:///{ROOT / 'bench' / 'out' / 'bench.db'}")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--scenario", action="append")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument(
        "--no-answer-cache", action="store_true", help="every request does its work (searches)"
    )
    args = parser.parse_args()

    # As under gunicorn (gunicorn.conf.py): metrics shared through files.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="newsdesk-metrics-"))
    import reference

    from api import create_app

    app = create_app(
        {
            "database_url": args.database,
            "rate_limit": "100000000/minute",
            "log_level": "warning",
            **({"answer_cache_bytes": 0} if args.no_answer_cache else {}),
        }
    )
    rng = random.Random(3)
    make = scenarios(app, rng)
    reference_us, _ = timed(reference.app, lambda: ("/", ()), args.requests)
    print(f"{'reference':12} {reference_us:8.1f} us")
    for name in args.scenario or make:
        profile = cProfile.Profile() if args.cprofile else None
        us, statuses = timed(app, make[name], args.requests, profile=profile)
        print(f"{name:12} {us:8.1f} us  {us / reference_us:5.1f}x reference  statuses {statuses}")
        if profile:
            if os.environ.get("PROFILE_OUT"):
                profile.dump_stats(os.environ["PROFILE_OUT"])
            pstats.Stats(profile).sort_stats(os.environ.get("SORT", "tottime")).print_stats(
                int(os.environ.get("TOP", "25"))
            )


if __name__ == "__main__":
    main()
