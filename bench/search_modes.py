"""Cold one-word searches (the answer cache off) in each mode (keyword, semantic, hybrid) at
100k articles.

    .venv/bin/python bench/search_modes.py [--duration 10] [--connections 32 2]
        [--max-requests N]

Serves the corpus of bench/run.py (bench/out/bench.db, embedded with `newsdesk embed --all`)
with gunicorn.conf.py's 2 workers, the answer cache off, and loads it with wrk on 127.0.0.1:
each request a random word of the corpus (bench/wrk.lua's search1 scenario) with `mode=`. Before
each run the reference (bench/reference.py, a fixed small JSON object, served the same way) is
measured at the same connections, and the run's req/s is given as a ratio of it too: the
machine's speed drifts within minutes (bench/README.md). The master reads the vector index and
loads the model before it forks the workers (gunicorn.conf.py), and ``--warm`` seconds of the
same searches in every mode take what is left of each worker's first searches out of the
figures, its first search of each word included: they are what a search costs once a worker is
up, not its start. Each run starts once both servers have answered the last one's requests, and
its line gives how wrk's connections fell to the workers, as ``ss`` saw them halfway through: a
keep-alive connection stays with the worker that accepted it, so at -c32 a p99 is largely the
wait behind the busier worker's share (bench/README.md, thirty-fourth session). With
``--max-requests N`` gunicorn replaces each worker after N to 1.25 N requests, as
``max_requests`` does every 20,000 or so: what a replacement's start costs the requests.
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, ROOT, free_port, gunicorn, log
from run import prepare_requests, wrk

MODES = ("keyword", "semantic", "hybrid")
#: The workers of a server of bench/common.py's ``gunicorn``.
WORKERS = 2


def warm(base, seconds, env):
    """Run the measured searches (wrk, the ``search1`` scenario) for about ``seconds``, a
    third of them in each mode, so that both workers have searched every word of the bench in
    every mode before they are measured: a worker's first search of a word embeds it (its
    vector is kept per process, as a server up for a while keeps its frequent words') and
    reads its pages for the first time (bench/README.md, thirty-third session)."""
    if seconds <= 0:
        return
    each = max(1, round(seconds / len(MODES)))
    for mode in MODES:
        result = wrk(base, "search1", 32, each, {**env, "BENCH_MODE": mode})
        if result["errors"]:
            log(f"warm-up: {result['errors']} {mode} searches answered other than 2xx or 3xx")


def server_sockets(port, *states, processes=False):
    """``ss -tn``'s lines of the server's connections on ``port`` in ``states`` (with the
    processes holding them when ``processes``); None where ``ss`` cannot tell."""
    filters = [word for state in states for word in ("state", state)]
    try:
        return subprocess.run(
            ["ss", "-Htnp" if processes else "-Htn", *filters, f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None


def connections_per_worker(port):
    """The established connections to ``port`` each of the server's ``WORKERS`` holds, fewest
    first (a worker without any counts 0); None where ``ss`` cannot tell."""
    lines = server_sockets(port, "established", processes=True)
    if lines is None:
        return None
    held = collections.Counter(re.findall(r"pid=(\d+)", "\n".join(lines))).values()
    return sorted([*held, *[0] * (WORKERS - len(held))])


def drain(*bases, seconds=10):
    """Wait until the servers at ``bases`` have answered and closed every connection of the
    last wrk run (within ``seconds``): wrk stops without reading its last answers, and a worker
    still answering them takes CPU from the next run and fewer of its connections. Logs when
    it cannot tell or stops waiting."""
    ports = [urlparse(base).port for base in bases]
    deadline = time.monotonic() + seconds
    while True:
        still_open = [server_sockets(port, "established", "close-wait") for port in ports]
        if None in still_open:
            log("ss cannot list connections: runs start without waiting for the last one's")
            return
        if not any(still_open):
            return
        if time.monotonic() > deadline:
            log(f"connections of the last run still open after {seconds} s")
            return
        time.sleep(0.05)


def measure_run(base, scenario, connections, duration, env):
    """wrk's figures for ``connections`` connections of bench/wrk.lua's ``scenario`` (searches
    in ``env``'s ``BENCH_MODE``), with how its connections fell to the workers halfway through
    (``split``)."""
    seen = []
    port = urlparse(base).port
    look = threading.Timer(duration / 2, lambda: seen.append(connections_per_worker(port)))
    look.start()
    try:
        result = wrk(base, scenario, connections, duration, env)
    finally:
        look.cancel()
        look.join()
    return {**result, "split": seen[0] if seen else None}


def split_text(result):
    """How a run's connections fell to the workers (``measure_run``'s ``split``), as a line
    gives it: ``?`` where ``ss`` could not tell."""
    return "/".join(map(str, result["split"])) if result["split"] else "?"


def uncached_env(database):
    """The environment of a server of the SQLite file ``database`` with no answer cache and
    no rate limit to speak of, and of wrk's script reading its request lists."""
    return {
        **os.environ,
        # The server runs in bench/: a relative path is made absolute here, where it was given.
        "NEWSDESK_DATABASE_URL": f"sqlite:///{database.resolve()}",
        "NEWSDESK_RATE_LIMIT": "100000000/minute",
        "NEWSDESK_LOG_LEVEL": "warning",
        "NEWSDESK_ANSWER_CACHE_BYTES": "0",
        "BENCH_DATA": str(OUT),
        "PYTHONPATH": str(ROOT),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[32, 2])
    parser.add_argument("--modes", nargs="+", default=list(MODES))
    parser.add_argument("--warm", type=int, default=60, help="seconds of warm-up")
    parser.add_argument(
        "--database", type=Path, default=OUT / "bench.db", help="the embedded corpus to serve"
    )
    parser.add_argument(
        "--max-requests", type=int, help="replace each worker after this many requests or so"
    )
    args = parser.parse_args()
    env = uncached_env(args.database)
    options = ()
    if args.max_requests:
        jitter = args.max_requests // 4
        options = ("--max-requests", str(args.max_requests), "--max-requests-jitter", str(jitter))
    with (
        gunicorn("api.wsgi:app", env, free_port(), "/healthz", options=options) as base,
        gunicorn("reference:app", env, free_port(), "/") as reference_base,
    ):
        prepare_requests(base, 1000)
        log(f"warming up for {args.warm} s")
        warm(base, args.warm, env)
        wrk(reference_base, "reference", 32, 3, env)
        with open("/proc/loadavg") as file:
            log(f"load average before: {file.read().strip()}")
        for mode in args.modes:
            for connections in args.connections:
                drain(base, reference_base)
                beside = wrk(reference_base, "reference", connections, args.duration, env)
                drain(base, reference_base)
                result = measure_run(
                    base, "search1", connections, args.duration, {**env, "BENCH_MODE": mode}
                )
                print(
                    f"{mode:8} -c{connections:<3} {result['rate']:8.1f} req/s"
                    f" ({result['rate'] / beside['rate']:.3f} x the reference's"
                    f" {beside['rate']:,.0f})"
                    f"  p50 {result['p50']:8.2f} ms  p99 {result['p99']:8.2f} ms"
                    f"  errors {result['errors']}  connections per worker {split_text(result)}",
                    flush=True,
                )
        with open("/proc/loadavg") as file:
            log(f"load average after: {file.read().strip()}")


if __name__ == "__main__":
    main()
