"""gunicorn.conf.py's settings and hooks, and a line per request from each worker in a file of
the directory BENCH_TIMINGS names (``<pid>.txt``; bench/search_rounds.py reads them): when the
request started and ended (``time.monotonic()``, one clock for every process of the host), the
worker's CPU time in between, and its client's port (the connection). The CPU time is the
request's own where no other request of the worker ran meanwhile: on SQLite a request does not
wait, on PostgreSQL its greenlet waits on the database's socket while others run."""

import os
import runpy
import time
from pathlib import Path

_settings = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
globals().update({name: value for name, value in _settings.items() if not name.startswith("__")})

#: gunicorn.conf.py's own hooks, which these call after writing their line.
_served = {name: _settings.get(name) for name in ("pre_request", "post_request", "worker_exit")}
#: This worker's file, opened at its first answer.
_timings = []


def pre_request(worker, req):
    """When the request started, by the clock and in CPU time."""
    req.timing = (time.monotonic(), time.process_time())
    if _served["pre_request"]:
        _served["pre_request"](worker, req)


def post_request(worker, req, environ, resp):
    """The request's line, written before gunicorn.conf.py's hook waits its turn."""
    started, cpu = req.timing
    ended, cpu = time.monotonic(), time.process_time() - cpu
    if not _timings:  # open for as long as the worker lives (closed in worker_exit)
        path = Path(os.environ["BENCH_TIMINGS"]) / f"{os.getpid()}.txt"
        _timings.append(open(path, "w"))  # noqa: SIM115
    _timings[0].write(f"{started:.6f} {ended:.6f} {cpu:.6f} {environ['REMOTE_PORT']}\n")
    if _served["post_request"]:
        _served["post_request"](worker, req, environ, resp)


def worker_exit(server, worker):
    """The worker's file is complete."""
    if _timings:
        _timings[0].close()
    if _served["worker_exit"]:
        _served["worker_exit"](server, worker)
