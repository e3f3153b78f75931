"""Reads at 32 connections on one server: details, related, list pages and searches in turn.

    .venv/bin/python bench/reads_at_32.py [--database bench/out/semantic.db]
        [--scenarios detail related list search1] [--connections 32] [--duration 10]

Serves a 100k corpus (bench/run.py's bench.db, or the embedded semantic.db) with
gunicorn.conf.py's 2 workers, the answer cache off and no worker recycled during the runs
(gunicorn's `--max-requests 0`: at some 2,000 requests a second a worker reached
`max_requests` inside a run, and its replacement's first searches load the vector index), warms
both workers up with searches, then loads each scenario of bench/wrk.lua with wrk on 127.0.0.1
over every article id and the corpus's whole time span, one after the other on the same server,
each once the workers have answered and closed the last one's connections (bench/search_modes.py's
`drain`). Searches use `mode=hybrid`. The tail of cheap reads served beside long ones is what it
shows; each line says how the run's connections fell to the two workers.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, free_port, gunicorn, log
from run import corpus_bounds, prepare_requests
from search_modes import drain, measure_run, split_text, uncached_env, warm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, default=OUT / "semantic.db")
    parser.add_argument("--scenarios", nargs="+", default=["detail", "related", "list", "search1"])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warm", type=int, default=20, help="seconds of warm-up")
    args = parser.parse_args()
    env = {
        **uncached_env(args.database),
        "GUNICORN_CMD_ARGS": "--max-requests 0",
        "BENCH_MODE": "hybrid",
    }
    max_id = corpus_bounds(env)
    OUT.mkdir(exist_ok=True)  # the request lists for wrk go there
    with gunicorn("api.wsgi:app", env, free_port(), "/healthz") as base:
        prepare_requests(base, max_id)
        log(f"warming up for {args.warm} s")
        warm(base, args.warm, env)
        for scenario in args.scenarios:
            drain(base)
            result = measure_run(base, scenario, args.connections, args.duration, env)
            print(
                f"{scenario:8} -c{args.connections:<3} {result['rate']:8.1f} req/s"
                f"  p50 {result['p50']:8.2f} ms  p99 {result['p99']:8.2f} ms"
                f"  errors {result['errors']}  connections per worker {split_text(result)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
