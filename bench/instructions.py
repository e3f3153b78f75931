"""Instructions per request, counted by valgrind: a measure that does not drift with the VM.

Timings on this machine move by 10-30% within minutes, more than most single changes save;
the number of instructions a request executes stays within 0.1% from run to run. It counts
no cache misses (a query that reads fewer rows can be faster while executing more
instructions), so it decides between versions of Python code, and wrk decides in the end.

    apt-get install -y valgrind
    .venv/bin/python bench/instructions.py [--scenario list] [--database sqlite:///bench/out/bench.db]

Each scenario (those of bench/inprocess.py, and the reference) runs twice under
``valgrind --tool=callgrind``, with 100 and with 600 requests after a warm-up; the
difference over 500 is what one request costs, start-up and imports cancelled out.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEW, MANY = 100, 600


def child(database, scenario, requests):
    """Run ``requests`` requests of ``scenario`` in this process (under valgrind)."""
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="newsdesk-metrics-"))
    import inprocess
    import reference

    if scenario == "reference":
        app, calls = reference.app, [("/", ())] * (requests + 50)
    else:
        from api import create_app

        app = create_app(
            {
                "database_url": database,
                "rate_limit": "100000000/minute",
                "log_level": "warning",
                "answer_cache_bytes": 0,
            }
        )
        make = inprocess.scenarios(app, random.Random(3))[scenario]
        calls = [make() for _ in range(requests + 50)]
    for path, headers in calls:  # the first 50 warm up, the same in both runs
        inprocess.call(app, path, headers)


def instructions(database, scenario, requests):
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        "--database",
        database,
        "--scenario",
        scenario,
        "--requests",
        str(requests),
    ]
    # A fixed hash seed: dict and set layouts, so instruction counts, repeat exactly.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stderr
    collected = [line for line in output.splitlines() if "Collected" in line]
    return int(collected[-1].split()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=f"sqlite:///{ROOT / 'bench' / 'out' / 'bench.db'}")
    parser.add_argument("--scenario", action="append")
    parser.add_argument("--requests", type=int, default=MANY)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.database, args.scenario[0], args.requests)
    names = ["reference", *(args.scenario or ["list", "detail", "related", "revalidate"])]
    runs = [(name, count) for name in names for count in (FEW, MANY)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # counts do not compete
        counts = dict(
            zip(runs, pool.map(lambda run: instructions(args.database, *run), runs), strict=True)
        )
    per = {name: (counts[name, MANY] - counts[name, FEW]) / (MANY - FEW) for name in names}
    for name in names:
        print(
            f"{name:12} {per[name]:12,.0f} instructions  {per[name] / per['reference']:5.2f}x reference"
        )


if __name__ == "__main__":
    main()
