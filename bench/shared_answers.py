"""What the answer cache in Redis saves a second worker: milliseconds per search, in process.

Two apps on one database stand for two gunicorn workers (or hosts). The first asks
--searches one-word hybrid searches (words of bench/out/words.txt) twice: computed, then from
its own cache; the second asks them twice too: from Redis with --redis, computed without it,
then from its own cache. Prints the median of each round.

    .venv/bin/python bench/shared_answers.py --database sqlite:///bench/out/semantic2.db \
        --redis redis://127.0.0.1:6379/7 [--searches 60]

The Redis database given is emptied first and after: give it one of its own.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--redis", help="a Redis database of the run's own (without: no Redis)")
    parser.add_argument("--searches", type=int, default=60)
    args = parser.parse_args()
    os.environ.setdefault("NEWSDESK_LOG_LEVEL", "warning")
    import redis

    from api import create_app

    words = [w for w in (ROOT / "bench" / "out" / "words.txt").read_text().split() if w]
    words = words[: args.searches]
    config = {"database_url": args.database, "rate_limit": "100000000/minute"}
    if args.redis:
        config["redis_url"] = args.redis
        redis.Redis.from_url(args.redis).flushdb()
    workers = [create_app(config).test_client() for _ in range(2)]
    second = "from Redis" if args.redis else "computed (no Redis)"
    rounds = [
        (workers[0], "worker one, first: computed"),
        (workers[0], "worker one, again: its own cache"),
        (workers[1], f"worker two, first: {second}"),
        (workers[1], "worker two, again: its own cache"),
    ]
    try:
        for client, label in rounds:
            times = []
            for word in words:
                started = time.perf_counter()
                answer = client.get("/v1/search", query_string={"q": word, "mode": "hybrid"})
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.get_json()
            print(f"{label}: median {statistics.median(times):.2f} ms", flush=True)
    finally:
        if args.redis:
            redis.Redis.from_url(args.redis).flushdb()


if __name__ == "__main__":
    main()
