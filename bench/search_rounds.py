"""What a p99 of cold one-word searches at -c32 is made of, from inside the two workers.

    .venv/bin/python bench/search_rounds.py [--database bench/out/semantic.db] [--mode hybrid]
        [--connections 32] [--duration 10] [--warm 20] [--runs 1]

Serves the embedded corpus as bench/search_modes.py does (the answer cache off, warmed up in
every mode, each run started once the last one's connections are closed), with
bench/timing.conf.py: each worker writes a line per request (start, end, CPU time, client
port). After each wrk run, for each worker, over the run less its first second and its last
half second:

- its connections and requests, and a request's wall and CPU time (p50 / p99);
- how many requests of its other connections it answered between two of one connection's:
  with N connections, N - 1 is a round (each other connection answered once);
- a connection's cycle (from one of its answers to the next: the latency wrk sees, and the
  moment wrk takes to send the next request), p50 / p99, and the median and slowest 2% of cycles
  taken apart: the requests answered in them, and the CPU time each took.

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

from common import OUT, ROOT, free_port, gunicorn, log
from run import prepare_requests
from search_modes import drain, measure_run, uncached_env, warm

#: Seconds left out at the start and at the end of each run: wrk's connections being made
#: and its last requests, which it stops without reading.
LEAD, TAIL = 1.0, 0.5
#: The span (seconds) over which the workers' CPU time per request is compared.
SPAN = 0.1


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
        env = {**uncached_env(args.database), "BENCH_TIMINGS": timings}
        config = ("--config", str(ROOT / "bench" / "timing.conf.py"))
        runs = []
        with gunicorn("api.wsgi:app", env, free_port(), "/healthz", options=config) as base:
            prepare_requests(base, 1000)
            log(f"warming up for {args.warm} s")
            warm(base, args.warm, env)
            for _ in range(args.runs):
                drain(base)
                started = time.monotonic()
                result = measure_run(base, args.mode, args.connections, args.duration, env)
                runs.append((started, time.monotonic(), result))
        # The server has stopped: each worker has closed its file (worker_exit).
        workers = [read_timings(path) for path in sorted(Path(timings).glob("*.txt"))]
    for started, ended, result in runs:
        split = "/".join(map(str, result["split"])) if result["split"] else "?"
        print(
            f"{args.mode} -c{args.connections}: {result['rate']:.1f} req/s"
            f"  p50 {result['p50']:.2f} ms  p99 {result['p99']:.2f} ms"
            f"  errors {result['errors']}  connections per worker {split}",
            flush=True,
        )
        window = (started + LEAD, ended - TAIL)
        served = [inside(requests, *window) for requests in workers]
        served = [requests for requests in served if requests]
        for number, requests in enumerate(served, start=1):
            for line in describe(requests):
                print(f"  worker {number}: {line}")
        if len(served) == 2:
            together = statistics.correlation(*cpu_per_span(served))
            print(
                f"  the workers' CPU time per request, per {SPAN * 1000:.0f} ms: r = {together:.2f}"
            )


def read_timings(path):
    """A worker's requests as ``(start, end, cpu, port)``, in the order they started."""
    requests = []
    with open(path) as file:
        for line in file:
            started, ended, cpu, port = line.split()
            requests.append((float(started), float(ended), float(cpu), port))
    return sorted(requests)


def inside(requests, start, end):
    return [request for request in requests if start <= request[0] <= end]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[round(fraction * (len(ordered) - 1))]


def describe(requests):
    """The lines that say how one worker served its connections."""
    ms = 1000
    walls = [(ended - started) * ms for started, ended, _, _ in requests]
    cpus = [cpu * ms for _, _, cpu, _ in requests]
    connections = len({port for *_, port in requests})
    between = collections.Counter()
    cycles = []  # (ms from the connection's last answer, requests answered, their CPU ms)
    last = {}
    for index, (_, ended, _, port) in enumerate(requests):
        if port in last:
            before, answered = last[port]
            between[index - before - 1] += 1
            span = requests[before + 1 : index + 1]
            cycles.append(((ended - answered) * ms, len(span), sum(r[2] for r in span) * ms))
        last[port] = (index, ended)
    rounds = between[connections - 1] / max(1, sum(between.values()))
    cycles.sort()
    count = len(cycles)
    median = cycles[int(0.45 * count) : int(0.55 * count) + 1]
    slowest = cycles[count - max(1, count // 50) :]
    return [
        f"{connections} connections, {len(requests)} requests; a request {percentile(walls, 0.5):.2f}"
        f" / {percentile(walls, 0.99):.2f} ms (p50 / p99), CPU {percentile(cpus, 0.5):.2f}"
        f" / {percentile(cpus, 0.99):.2f} ms",
        f"{rounds:.0%} of a connection's requests came a round after its last"
        f" ({connections - 1} others answered between);"
        f" fewer others {share(between, lambda n: n < connections - 1):.0%},"
        f" more {share(between, lambda n: n > connections - 1):.0%}",
        f"a connection's cycle {percentile([c[0] for c in cycles], 0.5):.1f}"
        f" / {percentile([c[0] for c in cycles], 0.99):.1f} ms (p50 / p99);"
        f" the median cycles {taken_apart(median)}; the slowest 2% {taken_apart(slowest)}",
    ]


def share(between, which):
    return sum(count for n, count in between.items() if which(n)) / max(1, sum(between.values()))


def taken_apart(cycles):
    length = statistics.mean(c[0] for c in cycles)
    answered = statistics.mean(c[1] for c in cycles)
    cpu = statistics.mean(c[2] / c[1] for c in cycles)
    return f"{length:.1f} ms, {answered:.1f} requests of {cpu:.2f} ms CPU each"


def cpu_per_span(workers):
    """Each worker's mean CPU time per request in each :data:`SPAN` both answered in."""
    spans = []
    for requests in workers:
        by_span = collections.defaultdict(list)
        for started, _, cpu, _ in requests:
            by_span[int(started / SPAN)].append(cpu)
        spans.append({key: statistics.mean(cpus) for key, cpus in by_span.items()})
    shared = sorted(set(spans[0]) & set(spans[1]))
    return [[each[key] for key in shared] for each in spans]


if __name__ == "__main__":
    main()
