"""What the answers kept in Redis save: one-word hybrid searches computed by one worker, then
asked of a second worker, which answers them from Redis (in process: two apps stand for two
workers; no HTTP).

    .venv/bin/python bench/shared_answers.py sqlite:////path/to/100k.db redis://127.0.0.1:6379/7

The database is the bench corpus (bench/run.py builds it); the Redis database named is used for
this run's keys alone, under a prefix of their own, deleted at the end. Prints the median time
of each pass over 60 words from bench/out/words.txt.
"""

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api import create_app  # noqa: E402
from api.caching import SharedAnswers  # noqa: E402


def timed(client, words):
    """The median milliseconds of a hybrid search of each word."""
    times = []
    for word in words:
        started = time.perf_counter()
        answer = client.get(f"/v1/search?q={word}&mode=hybrid")
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.get_json()
    return statistics.median(times)


def main():
    database_url, redis_url = sys.argv[1], sys.argv[2]
    os.environ.setdefault("NEWSDESK_RATE_LIMIT", "100000000/minute")
    os.environ.setdefault("NEWSDESK_LOG_LEVEL", "warning")
    SharedAnswers.PREFIX = f"newsdesk-bench-{uuid.uuid4().hex}:answer:"
    words = (ROOT / "bench/out/words.txt").read_text().split()[:60]
    config = {"database_url": database_url, "redis_url": redis_url}
    one, two = (create_app(config).test_client() for _ in range(2))
    try:
        print(f"worker one, first (computed):   {timed(one, words):7.2f} ms")
        print(f"worker one, again (its own):    {timed(one, words):7.2f} ms")
        print(f"worker two, first (from Redis): {timed(two, words):7.2f} ms")
        print(f"worker two, again (its own):    {timed(two, words):7.2f} ms")
    finally:
        kept = redis.Redis.from_url(redis_url)
        names = list(kept.scan_iter(SharedAnswers.PREFIX + "*"))
        if names:
            kept.delete(*names)


if __name__ == "__main__":
    main()
