"""What a p99 of cold one-word searches at -c32 is made of, from inside the two workers.

    .venv/bin/python bench/search_rounds.py [--database bench/out/semantic.db] [--mode hybrid]
        [--connections 32] [--duration 10] [--warm 20] [--runs 1]

Serves the embedded corpus as bench/search_modes.py does (the answer cache off, warmed up in
every mode, each run started once the last one's connections are closed), no worker replaced
during the runs (``--max-requests 0``, as bench/reads_at_32.py), with bench/timing.conf.py: each
worker writes a line per request (start, end, CPU time, client port). After each wrk run, for
each worker, over the run less its first second and its last half second:

- its connections and requests, and a request's wall and CPU time (p50 / p99);
- how many requests of its other connections it answered between two of one connection's:
  with N connections, N - 1 is a round (each other connection answered once), and how many
  times it was more or fewer;
- a connection's cycle (from one of its answers to the next: the latency wrk sees, and the
  moment wrk takes to send the next request), p50 / p99, and the middle tenth (45th to 55th
  percentile) and the slowest 2% of cycles taken apart: the requests answered in them, and the
  CPU time each took.

And how much the two workers' CPU time per request moves together (the correlation of its mean
per 100 ms): near 1 when the host slows as a whole, near 0 when each worker's slow stretches
are its own. bench/README.md (thirty-fifth session) has what it showed.
"""

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, ROOT, free_port, gunicorn, log, percentile
from run import prepare_requests
from search_modes import drain, measure_run, split_text, uncached_env, warm

#: Seconds left out at the start and at the end of each run: wrk's connections being made
#: and its last requests, which it stops without reading.
LEAD, TAIL = 1.0, 0.5
#: The span (seconds) over which the workers' CPU time per request is compared.
SPAN = 0.1

#: A request as a worker's line gives it: seconds (``time.monotonic()``) and the client's port.
Request = collections.namedtuple("Request", "started ended cpu port")
#: A connection's cycle: from one of its answers to the next (ms), the requests the worker
#: answered in it (the connection's own included), and their CPU time (ms).
Cycle = collections.namedtuple("Cycle", "ms requests cpu_ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, default=OUT / "semantic.db")
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warm", type=int, default=20, help="seconds of warm-up")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newsdesk-timings-") as timings:
        env = {
            **uncached_env(args.database),
            "BENCH_TIMINGS": timings,
            "GUNICORN_CMD_ARGS": "--max-requests 0",
        }
        # A second --config: the last one given is the one gunicorn reads.
        config = ("--config", str(ROOT / "bench" / "timing.conf.py"))
        runs = []
        with gunicorn("api.wsgi:app", env, free_port(), "/healthz", options=config) as base:
            prepare_requests(base, 1000)
            log(f"warming up for {args.warm} s")
            warm(base, args.warm, env)
            for _ in range(args.runs):
                drain(base)
                started = time.monotonic()
                result = measure_run(
                    base,
                    "search1",
                    args.connections,
                    args.duration,
                    {**env, "BENCH_MODE": args.mode},
                )
                runs.append((started, time.monotonic(), result))
        # The server has stopped: each worker has closed its file (worker_exit).
        workers = [read_timings(path) for path in sorted(Path(timings).glob("*.txt"))]
    for started, ended, result in runs:
        print(
            f"{args.mode} -c{args.connections}: {result['rate']:.1f} req/s"
            f"  p50 {result['p50']:.2f} ms  p99 {result['p99']:.2f} ms"
            f"  errors {result['errors']}  connections per worker {split_text(result)}",
            flush=True,
        )
        served = [inside(requests, started + LEAD, ended - TAIL) for requests in workers]
        for number, requests in enumerate(served, start=1):
            for line in describe(requests):
                print(f"  worker {number}: {line}")
        spans = cpu_per_span([requests for requests in served if requests])
        if len(spans) == 2 and len(spans[0]) > 1:
            together = statistics.correlation(*spans)
            print(
                f"  the workers' CPU time per request, per {SPAN * 1000:.0f} ms: r = {together:.2f}"
            )
        else:
            print("  the workers' CPU time per request: too few spans answered by both to compare")


def read_timings(path):
    """A worker's :class:`Request` s, in the order they started."""
    requests = []
    with open(path) as file:
        for line in file:
            started, ended, cpu, port = line.split()
            requests.append(Request(float(started), float(ended), float(cpu), port))
    return sorted(requests)


def inside(requests, start, end):
    """The requests that started between ``start`` and ``end``."""
    return [request for request in requests if start <= request.started <= end]


def describe(requests):
    """The lines that say how one worker served its connections."""
    if not requests:
        return ["no requests in the run"]
    ms = 1000
    walls = [(request.ended - request.started) * ms for request in requests]
    cpus = [request.cpu * ms for request in requests]
    connections = len({request.port for request in requests})
    between = collections.Counter()  # others answered between two of a connection's: times
    cycles = []
    last = {}  # port: (index, end) of the connection's last request
    for index, request in enumerate(requests):
        if request.port in last:
            before, answered = last[request.port]
            between[index - before - 1] += 1
            span = requests[before + 1 : index + 1]
            cycles.append(
                Cycle((request.ended - answered) * ms, len(span), sum(r.cpu for r in span) * ms)
            )
        last[request.port] = (index, request.ended)
    lines = [
        f"{connections} connections, {len(requests)} requests; a request {percentile(walls, 0.5):.2f}"
        f" / {percentile(walls, 0.99):.2f} ms (p50 / p99), CPU {percentile(cpus, 0.5):.2f}"
        f" / {percentile(cpus, 0.99):.2f} ms"
    ]
    if not cycles:
        return [*lines, "no connection was answered twice"]
    round_ = connections - 1
    more = sum(times for others, times in between.items() if others > round_)
    fewer = sum(times for others, times in between.items() if others < round_)
    cycles.sort(key=lambda cycle: cycle.ms)
    count = len(cycles)
    middle = cycles[int(0.45 * count) : int(0.55 * count) + 1]
    slowest = cycles[count - max(1, count // 50) :]
    lines += [
        f"between two of a connection's requests, {round_} others (a round) {between[round_]}"
        f" times of {count}, more {more}, fewer {fewer}",
        f"a connection's cycle {percentile([c.ms for c in cycles], 0.5):.1f}"
        f" / {percentile([c.ms for c in cycles], 0.99):.1f} ms (p50 / p99);"
        f" the middle tenth {taken_apart(middle)}; the slowest 2% {taken_apart(slowest)}",
    ]
    return lines


def taken_apart(cycles):
    """The mean length of ``cycles``, the requests answered in them and each one's CPU time."""
    length = statistics.mean(cycle.ms for cycle in cycles)
    answered = statistics.mean(cycle.requests for cycle in cycles)
    cpu = statistics.mean(cycle.cpu_ms / cycle.requests for cycle in cycles)
    return f"{length:.1f} ms, {answered:.1f} requests of {cpu:.2f} ms CPU each"


def cpu_per_span(workers):
    """Each worker's mean CPU time per request in each :data:`SPAN` that every one of them
    answered in."""
    spans = []
    for requests in workers:
        by_span = collections.defaultdict(list)
        for request in requests:
            by_span[int(request.started / SPAN)].append(request.cpu)
        spans.append({key: statistics.mean(cpus) for key, cpus in by_span.items()})
    shared = sorted(set.intersection(*(set(each) for each in spans))) if spans else []
    return [[each[key] for key in shared] for each in spans]


if __name__ == "__main__":
    main()
