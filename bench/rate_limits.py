"""Rate limits on a real server: one limit across gunicorn workers, and a frozen Redis.

1. gunicorn with 2 workers at ``NEWSDESK_RATE_LIMIT=30/minute`` (counters in the host's file, as
   ``gunicorn.conf.py`` sets up), N requests from 8 threads, each on a connection of its own:
   how many were let through.
2. The same server with ``NEWSDESK_REDIS_URL`` naming a redis-server of its own (needs
   ``redis-server``), which is frozen with SIGSTOP halfway: each request's latency before,
   during and after, and what /readyz says while it is frozen.
3. What one hit costs in each storage, in process.

    .venv/bin/python bench/rate_limits.py [--requests 200]
"""

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, free_port, gunicorn_command, percentile


def call(url):
    """``(status, body, seconds)``."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read(), time.monotonic() - started


@contextlib.contextmanager
def server(folder, environment):
    port = free_port()
    env = {
        **os.environ,
        "NEWSDESK_DATABASE_URL": f"sqlite:///{folder}/newsdesk.db",
        "NEWSDESK_LOG_LEVEL": "error",
        **environment,
    }
    subprocess.run([str(BIN / "newsdesk"), "db", "init"], env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        gunicorn_command(port),
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if call(base + "/healthz")[0] == 200:
                break
    try:
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def one_limit(folder, requests):
    with (
        server(folder, {"NEWSDESK_RATE_LIMIT": "30/minute"}) as base,
        concurrent.futures.ThreadPoolExecutor(8) as pool,
    ):
        statuses = [s for s, _, _ in pool.map(call, [base + "/v1/tags"] * requests)]
    print(
        f"2 workers at 30/minute, {requests} requests: {statuses.count(200)} answered 200, "
        f"{statuses.count(429)} answered 429"
    )


def frozen_redis(folder, requests):
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed: the frozen-Redis run is skipped")
        return
    port = free_port()
    redis = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    environment = {
        "NEWSDESK_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "NEWSDESK_RATE_LIMIT": "1000000/minute",
    }
    try:
        with server(folder, environment) as base:
            phases = {}
            for phase in ("before", "frozen", "after"):
                if phase == "frozen":
                    redis.send_signal(signal.SIGSTOP)
                    ready = call(base + "/readyz")
                if phase == "after":
                    redis.send_signal(signal.SIGCONT)
                    time.sleep(1.5)  # past the second a failed storage is left alone
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    answers = list(pool.map(call, [base + "/v1/tags"] * requests))
                phases[phase] = answers
            for phase, answers in phases.items():
                times = [seconds * 1000 for _, _, seconds in answers]
                statuses = sorted({status for status, _, _ in answers})
                print(
                    f"Redis {phase}: {len(answers)} requests, statuses {statuses}, "
                    f"p50 {percentile(times, 0.5):.1f} ms, p99 {percentile(times, 0.99):.1f} ms, "
                    f"max {max(times):.1f} ms"
                )
            print(f"/readyz while frozen: {ready[0]} {json.loads(ready[1])}")
    finally:
        redis.send_signal(signal.SIGCONT)
        redis.terminate()
        redis.wait(timeout=10)


def hit_cost(folder):
    from limits import parse

    from api.limits import HostCounters, RateLimiter, WorkerCounters

    limit = parse("1000000/minute")
    storages = {
        "worker memory": WorkerCounters(),
        "host file": HostCounters(f"newsdesk+sqlite://{folder}/cost.sqlite"),
    }
    for name, storage in storages.items():
        started = time.perf_counter()
        for number in range(20000):
            RateLimiter._count(storage, limit, (f"ip:10.0.0.{number % 50}",))
        print(f"one hit in the {name}: {(time.perf_counter() - started) / 20000 * 1e6:.1f} µs")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        one_limit(folder, args.requests)
    with tempfile.TemporaryDirectory() as folder:
        frozen_redis(folder, args.requests)
    with tempfile.TemporaryDirectory() as folder:
        hit_cost(folder)


if __name__ == "__main__":
    main()
