"""gunicorn.conf.py's settings and hooks, and a line per request from each worker in a file of
the directory BENCH_TIMINGS names (``<pid>.txt``; bench/search_rounds.py reads them): when the
request started and ended (``time.monotonic()``, one clock for every process of the host), the
CPU time the worker spent on it, and its client's port (the connection)."""

import os
import runpy
import time
from pathlib import Path

globals().update(runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py")))

_served = {
    "pre_request": globals().get("pre_request"),
    "post_request": globals().get("post_request"),
}
#: This worker's file, opened at its first answer.
_timings = []


def pre_request(worker, req):
    req.timing = (time.monotonic(), time.process_time())
    if _served["pre_request"]:
        _served["pre_request"](worker, req)


def post_request(worker, req, environ, resp):
    started, cpu = req.timing
    ended, cpu = time.monotonic(), time.process_time() - cpu
    if not _timings:  # open for as long as the worker lives (closed in worker_exit)
        path = Path(os.environ["BENCH_TIMINGS"]) / f"{os.getpid()}.txt"
        _timings.append(open(path, "w"))  # noqa: SIM115
    _timings[0].write(f"{started:.6f} {ended:.6f} {cpu:.6f} {environ['REMOTE_PORT']}\n")
    if _served["post_request"]:
        _served["post_request"](worker, req, environ, resp)


def worker_exit(server, worker):
    if _timings:
        _timings[0].close()
