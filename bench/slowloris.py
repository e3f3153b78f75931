"""Slow clients against the default server: are normal GETs answered while many trickle?

Starts gunicorn with gunicorn.conf.py (2 workers, the configured worker class) on a SQLite
corpus (bench/out/slowloris.db, 2,000 demo articles, made when missing; or --database), makes a
key with the comment scope, then:

1. opens --slow connections (200), from a process of their own: half send a GET's request line
   and then a header a byte every --interval seconds, never ending it; half send a POST of a
   comment with that key and its Content-Length, then the body a byte every --interval
   seconds. A slow connection that the server closes or answers is opened again at once, as an
   attacker's would be;
2. meanwhile sends normal GETs, a list page and a detail in turn, at --rate a second for
   --seconds, each on a new connection, and prints p50/p99 of those answered and the errors
   (not a 200, or no answer within --timeout seconds);
3. closes the slow connections, waits until the server has worked off the connections queued
   behind them, and measures the same GETs again: the baseline.

    .venv/bin/python bench/slowloris.py [--slow 200] [--seconds 30] [--rate 20]
        [--worker-class sync|gevent] [--database sqlite:///path]

Bounded in time: about 2 * --seconds + 20 s, plus a minute to build the corpus the first time.
"""

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, create_key, free_port, gunicorn, log, newsdesk, percentile

COMMENT = json.dumps({"author_name": "Slow", "body": "A comment sent one byte at a time. " * 4})


class SlowClients:
    """Connections that trickle a request a byte at a time, opened again whenever closed."""

    def __init__(self, port, key, article_ids, interval):
        self.port = port
        self.key = key
        self.article_ids = article_ids
        self.interval = interval
        self.open = 0
        self.opened = 0
        self.answers = collections.Counter()
        self.stopping = False

    def heads(self, number):
        """The bytes sent at once, and those sent a byte every interval (never all of them)."""
        if number % 2:
            head = f"GET /v1/articles?limit=5 HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            return head.encode(), f"X-Slow-{number}: {'a' * 4000}\r\n".encode()
        article = self.article_ids[number % len(self.article_ids)]
        head = (
            f"POST /v1/articles/{article}/comments HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {self.key}\r\nContent-Length: {len(COMMENT)}\r\n\r\n"
        )
        return head.encode(), COMMENT.encode()

    async def client(self, number):
        # Spread the first byte of each connection over one interval, as a crowd would.
        await asyncio.sleep(random.random() * self.interval)
        while not self.stopping:
            writer = None
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.open += 1
                self.opened += 1
                try:
                    head, trickle = self.heads(number)
                    writer.write(head)
                    await writer.drain()
                    for byte in trickle[:-1]:
                        answer = await self.wait_for_answer(reader)
                        if answer is not None:
                            self.answers[answer] += 1
                            break
                        writer.write(bytes([byte]))
                        await writer.drain()
                finally:
                    self.open -= 1
            except OSError:
                await asyncio.sleep(0.1)
            finally:
                if writer is not None:
                    writer.close()

    async def wait_for_answer(self, reader):
        """What the server said within one interval: its status, 'closed', or None."""
        try:
            line = await asyncio.wait_for(reader.readline(), self.interval)
        except TimeoutError:
            return None
        if not line:
            return "closed"
        parts = line.split()
        return parts[1].decode() if len(parts) > 1 else "closed"


async def get(port, path, timeout):
    """(status or error, seconds) of one GET on a new connection."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                request = (
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                )
                writer.write(request.encode())
                await writer.drain()
                status_line = await reader.readline()
                await reader.read()
            finally:
                writer.close()
    except TimeoutError:
        return "timeout", time.perf_counter() - started
    except OSError as error:
        return type(error).__name__, time.perf_counter() - started
    parts = status_line.split()
    status = parts[1].decode() if len(parts) > 1 else "no status"
    return status, time.perf_counter() - started


async def measure(port, article_ids, seconds, rate, timeout):
    """Normal GETs at a fixed rate, a list page and a detail in turn (open loop)."""
    paths = [
        "/v1/articles?limit=20",
        *(f"/v1/articles/{article_id}" for article_id in article_ids),
    ]
    rng = random.Random(5)
    tasks = []
    started = time.monotonic()
    for number in range(int(seconds * rate)):
        await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
        path = paths[0] if number % 2 == 0 else rng.choice(paths[1:])
        tasks.append(asyncio.create_task(get(port, path, timeout)))
    return await asyncio.gather(*tasks)


async def drained(port, limit=60):
    """Wait (at most ``limit`` seconds) until five health checks in a row take under 50 ms:
    connections queued behind the slow ones, their clients long gone, are worked off first."""
    deadline = time.monotonic() + limit
    quick = 0
    while quick < 5 and time.monotonic() < deadline:
        status, seconds = await get(port, "/healthz", 1)
        quick = quick + 1 if status == "200" and seconds < 0.05 else 0
        await asyncio.sleep(0.1)


def summary(results):
    answered = sorted(seconds * 1000 for status, seconds in results if status == "200")
    errors = collections.Counter(status for status, _ in results if status != "200")
    line = f"{len(answered)} of {len(results)} answered 200"
    if answered:
        line += (
            f"; p50 {statistics.median(answered):.1f} ms, p99 {percentile(answered, 0.99):.1f} ms,"
            f" max {answered[-1]:.1f} ms"
        )
    if errors:
        line += "; errors: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
    return line


def slow_process(args, port, key, article_ids, ready, stop, results):
    """The slow connections, in a process of their own so that they do not delay the
    measuring client's event loop: open them, say when they are all under way, hold them
    until told to stop, and report what became of them."""

    async def hold():
        slow = SlowClients(port, key, article_ids, args.interval)
        clients = [asyncio.create_task(slow.client(number)) for number in range(args.slow)]
        deadline = time.monotonic() + args.interval + 10
        while slow.opened < args.slow and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(args.interval)  # every slow connection has sent its head and a byte
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        results.put((slow.open, slow.opened, dict(slow.answers)))
        slow.stopping = True
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)

    asyncio.run(hold())


def run(args, port, key, article_ids):
    ready, stop, results = multiprocessing.Event(), multiprocessing.Event(), multiprocessing.Queue()
    holder = multiprocessing.Process(
        target=slow_process, args=(args, port, key, article_ids, ready, stop, results)
    )
    holder.start()
    if not ready.wait(args.interval * 2 + 20):
        holder.kill()
        raise SystemExit("the slow connections could not be opened")
    log(f"{args.slow} slow connections under way; measuring for {args.seconds} s ...")
    loaded = asyncio.run(measure(port, article_ids, args.seconds, args.rate, args.timeout))
    stop.set()
    still_open, opened, answers = results.get(timeout=30)
    holder.join(timeout=30)
    log("slow connections closed; waiting for the server to drain what they left queued ...")
    asyncio.run(drained(port))
    log(f"baseline for {args.seconds} s ...")
    baseline = asyncio.run(measure(port, article_ids, args.seconds, args.rate, args.timeout))
    return loaded, baseline, still_open, opened, answers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=200, help="slow connections")
    parser.add_argument("--seconds", type=float, default=30, help="each measurement")
    parser.add_argument("--rate", type=float, default=20, help="normal GETs a second")
    parser.add_argument("--interval", type=float, default=3, help="seconds between slow bytes")
    parser.add_argument("--timeout", type=float, default=5, help="a GET's time to answer")
    parser.add_argument("--worker-class", help="NEWSDESK_WORKER_CLASS for the server")
    parser.add_argument("--database", help="a SQLite URL (default: bench/out/slowloris.db)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    database_url = args.database or f"sqlite:///{OUT / 'slowloris.db'}"
    env = {
        **os.environ,
        "NEWSDESK_DATABASE_URL": database_url,
        "NEWSDESK_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_WRITE_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_LOG_LEVEL": "warning",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # made by gunicorn.conf.py, as in `make run`
    if args.worker_class:
        env["NEWSDESK_WORKER_CLASS"] = args.worker_class
    newsdesk(env, "db", "init")
    if not args.database:
        log("2,000 demo articles, when the database is empty ...")
        newsdesk(env, "demo", "--if-empty", "--no-related", "--articles", "2000")
    key = create_key(env, "slowloris", "comment")
    port = free_port()
    with gunicorn("api.wsgi:app", env, port) as base:
        with urllib.request.urlopen(base + "/v1/articles?limit=100&fields=id") as response:
            article_ids = [item["id"] for item in json.load(response)["data"]]
        loaded, baseline, still_open, opened, answers = run(args, port, key, article_ids)
    worker_class = args.worker_class or os.environ.get("NEWSDESK_WORKER_CLASS") or "default"
    print(
        f"gunicorn.conf.py, 2 workers, worker class: {worker_class}; {args.slow} slow "
        f"connections (a byte every {args.interval:g} s; half headers, half comment bodies); "
        f"GETs (list, detail) at {args.rate:g}/s for {args.seconds:g} s, {args.timeout:g} s timeout"
    )
    print(f"with slow connections: {summary(loaded)}")
    print(
        f"  slow connections open at the end: {still_open}; opened in all: {opened}; "
        f"what they got: {answers or 'nothing'}"
    )
    print(f"baseline:              {summary(baseline)}")


if __name__ == "__main__":
    main()
