"""gunicorn settings for Newsdesk; ``newsdesk serve`` and the Docker image use this file.

--bind and --workers on the command line win over what is set here.
"""

import os
import shutil
import tempfile

# Workers share Prometheus metrics through files in one directory (emptied in on_starting).
# prometheus_client decides when it is imported whether it works that way, and importing
# api.config below imports it: the directory is named first.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="newsdesk-metrics-")

# One BLAS thread per worker (read when numpy is first imported, so named before the app is):
# a sync worker serves one request at a time, and OpenBLAS's own threads, on a busy two-core
# machine, made a search's 2,000 x 512 product take 17 ms instead of 0.5 (bench/README.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from api.config import Config

_config = Config.from_env()

bind = _config.bind
workers = _config.workers
# Sync workers were steadier than gthread under load on this hardware (see ../shared/STYLE.md).
worker_class = "sync"
# Long enough for a bulk import of NEWSDESK_MAX_IMPORT_BYTES; larger loads: `newsdesk import`.
timeout = 120
graceful_timeout = 20
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
# The app is imported once, in the master; a worker (also one replacing a recycled or dead
# worker) is a fork of it, ready at once instead of after a second of imports. No database
# connection is opened before the fork: each request connects in its worker.
preload_app = True
accesslog = None
errorlog = "-"
loglevel = _config.log_level
wsgi_app = "api.wsgi:app"


def on_starting(server):
    """The metrics directory starts empty: counts of an earlier run would add up with ours."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
