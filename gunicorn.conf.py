"""gunicorn settings for Newsdesk; ``newsdesk serve`` and the Docker image use this file.

--bind and --workers on the command line win over what is set here. Choose the worker class
with NEWSDESK_WORKER_CLASS, not --worker-class: this file prepares the process for it.
"""

import collections
import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

#: The temporary directories this server made, removed when it exits (on_exit).
_made = []

# Workers share Prometheus metrics through files in one directory (its metric files removed in
# on_starting). prometheus_client decides when it is imported whether it works that way, and
# importing api below imports it: the directory is named first.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made.append(tempfile.mkdtemp(prefix="newsdesk-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made[-1]

# The workers of this server share rate-limit counters in one SQLite file (api/limits.py), so
# a limit holds for the host, not for each worker, and a recycled worker forgets nothing. Named
# before the app is imported (in the master, below), which creates the file.
if not os.environ.get("NEWSDESK_RATE_LIMIT_FILE"):
    _made.append(tempfile.mkdtemp(prefix="newsdesk-rate-limits-"))
    os.environ["NEWSDESK_RATE_LIMIT_FILE"] = os.path.join(_made[-1], "counters.sqlite")

# One BLAS thread per worker (read when numpy is first imported, so named before the app is):
# a worker computes for one request at a time (sync, or gevent's greenlets in one thread), and
# OpenBLAS's own threads, on a busy two-core machine, made a search's 2,000 x 512 product take
# 17 ms instead of 0.5 (bench/README.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# gevent workers (the default) serve each connection in a greenlet, so a client that sends its
# request slowly holds a greenlet, not the worker. The app is loaded here in the master
# (preload_app) and creates its locks and thread-locals (the database connection of each
# request) as it loads: the standard library is patched first, or every greenlet of a worker
# would share one connection. The choice is read here because importing api imports the app.
if (os.environ.get("NEWSDESK_WORKER_CLASS") or "gevent").strip().lower() == "gevent":
    import gevent
    from gevent import monkey

    monkey.patch_all()

    from api import green

    green.patch_psycopg2()

import gunicorn.glogging
import gunicorn.util

from api import observe
from api.config import Config, ConfigError
from api.errors import WorkerTimeout, write_unreadable_request_error
from api.guards import MAX_HEADERS_BYTES

# A request gunicorn cannot read (a malformed request line or header, raw UTF-8 in a URL as
# curl sends what is typed) is answered by gunicorn, not the app, with an HTML page written by
# this one function: problem+json instead, from here on and in the workers this master forks.
# gunicorn offers no setting for it; tests/test_server.py fails if this stops holding.
gunicorn.util.write_error = write_unreadable_request_error

try:
    _config = Config.from_env()
except ConfigError as error:  # one line naming the variable, not gunicorn's traceback
    sys.exit(f"newsdesk: {error}")

bind = _config.bind
workers = _config.workers
worker_class = _config.worker_class
# Connections a gevent worker serves at once (gunicorn's default); slow ones included.
worker_connections = 1000
# Above every request's deadline (NEWSDESK_REQUEST_TIMEOUT, NEWSDESK_IMPORT_TIMEOUT): a request
# that runs too long is answered 503 problem+json by the app, not cut off by gunicorn.
timeout = _config.worker_timeout
graceful_timeout = 20
# Also how long a gevent worker waits for a request's head: slower ones are closed.
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
# gunicorn's own limits sit above the app's (api/guards.py), so that the app answers first,
# with problem+json: a request line up to gunicorn's hard maximum (8190 bytes; the app refuses
# URLs over MAX_URL_LENGTH with a 414), a header field as large as all the headers the app
# takes (it refuses one over 8 KiB, or all over 16 KiB, with a 431), twice gunicorn's default
# number of fields.
limit_request_line = 8190
limit_request_field_size = MAX_HEADERS_BYTES + 2
limit_request_fields = 200
# Forwarded headers are believed by the app alone (NEWSDESK_TRUSTED_PROXIES, api/proxies.py):
# gunicorn's own default believes X-Forwarded-Proto from 127.0.0.1, so that behind a local proxy
# a client could turn the scheme of every Link and Location to https, or back.
forwarded_allow_ips = ""
# The app is imported once, in the master; a worker (also one replacing a recycled or dead
# worker) is a fork of it, ready at once instead of after a second of imports. No database
# connection is opened before the fork: each request connects in its worker.
preload_app = True
# gunicorn's control socket (for gunicornc) is one path per user, ~/.gunicorn/gunicorn.ctl, which
# every server on the host would take from the one before: none is made.
control_socket_disable = True
accesslog = None
errorlog = "-"
loglevel = _config.log_level


class Logger(gunicorn.glogging.Logger):
    """gunicorn's own lines (start, stop, a worker replaced) in the app's format
    (NEWSDESK_LOG_FORMAT): a log collector reading JSON read gunicorn's as lines it could not
    parse. An API key in a URL they quote shows as REDACTED."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(observe.formatter(_config.log_format))
            handler.addFilter(observe.KeysOut())  # a request line it quotes holds no key


logger_class = Logger
wsgi_app = "api.wsgi:app"


#: The files prometheus_client's multiprocess mode writes: ``counter_<pid>.db``,
#: ``gauge_<mode>_<pid>.db`` and so on (its documentation: the directory holds those alone).
METRIC_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def on_starting(server):
    """The metrics directory holds no metric files: counts of an earlier run would add up with
    ours. Only those go: a directory given may hold other files (an operator's data)."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for pattern in METRIC_FILES:
        for stale in directory.glob(pattern):
            stale.unlink(missing_ok=True)


def on_exit(server):
    """The temporary directories this server made go with it."""
    for directory in _made:
        shutil.rmtree(directory, ignore_errors=True)


if worker_class == "gevent":
    import gevent.event

    #: A request that took this long (seconds, from pre_request) waits its turn behind every
    #: connection that is ready. (A lower one, which more searches reach, cost list pages and
    #: details throughput: bench/README.md, thirty-fifth session.)
    LONG_REQUEST = 0.005
    #: The greenlets of this worker waiting in post_request for their turn, in the order they
    #: came: an event each, set in that order once the event loop has nothing else to run.
    _turns = collections.deque()

    def pre_request(worker, req):
        """When the request started. (In place of gunicorn's default, a debug line of the method
        and path: the app logs every request, api/observe.py.)"""
        req.started = time.monotonic()

    def post_request(worker, req, environ, resp):
        """After each answer the worker's other greenlets get their turn: a keep-alive client
        whose next request is already there would otherwise keep the worker to itself. A sleep
        longer than 0 waits for the event loop's next turn, which polls every socket first
        (gevent's docs: ``sleep(0)`` may resume the greenlet before the loop cycles). After a
        long request (a search the cache has not seen) the greenlet waits its turn
        (:func:`_wait_turn`): resumed as a timer, it could be served again ahead of connections
        that waited through the whole request. Waiting so after every request costs cheap reads
        throughput (figures in bench/README.md).

        While one greenlet waits its turn, every other waits after its own request too: the
        loop is never idle while other connections' cheap requests follow one another, each
        behind a short sleep, and the connection that made a long request waited for seconds (a
        p99 up to 1.3 s for details, related lists and list pages at 32 connections,
        bench/reads_at_32.py). From the moment the waiting ones are let go until one waits
        again, a greenlet after a cheap request only sleeps (before, every one waited until
        the last waiting one had gone on).

        A connection's first request counts as long. A worker polls its sockets once a round
        when it answers in rounds, and takes one new connection a poll (gunicorn's
        ``max_accept = 1`` with more than one worker); while greenlets wait their turn it polls
        after every request, since the waiting ones read nothing. So in a burst of new
        connections (wrk opening its 32 at once), the worker that waited its turn took one a
        request and the other one a round: the worker whose first request happened to take
        over 5 ms took up to 26 of the 32, and kept them for the run (bench/README.md,
        thirty-ninth session). Waiting after a first answer, each worker takes one a request.
        Not when the connection is closed after its answer: it has no next request to be fair
        to, and with one request a connection every request waited its turn (a p99 25% higher,
        bench/README.md); not with one worker, which takes every waiting connection at each
        poll (``max_accept`` stays gevent's 100) and has no other to share them with; and not
        when no answer was begun (gunicorn or the app failed first: ``resp`` is None, or has no
        status, and ``should_close`` cannot say)."""
        first = (
            req.req_number == 1
            and worker.cfg.workers > 1
            and resp is not None
            and resp.status is not None
            and not resp.should_close()
        )
        if _turns or first or time.monotonic() - req.started >= LONG_REQUEST:
            _wait_turn()
        else:
            gevent.sleep(0.0001)

    def _wait_turn():
        """Wait until the event loop has nothing else to run, and then until every greenlet that
        came to wait before this one has gone on: connections are answered in rounds, one
        request of each ready one a round. The first to come waits for the idle loop (one
        ``gevent.idle()``), then lets each go in the order they came: gevent resumes the
        waiters of events in the order the events are set (tests/test_server.py holds it to
        that). With a ``gevent.idle()`` each, the order moved from round to round: a connection
        was answered twice in a round and others waited a request more (bench/README.md,
        thirty-fifth session)."""
        turn = gevent.event.Event()
        _turns.append(turn)
        if len(_turns) == 1:
            try:
                gevent.idle()
            finally:  # even when this greenlet is stopped, the others go on
                ready = list(_turns)
                _turns.clear()
                for each in ready:
                    each.set()
        turn.wait()


#: How long (seconds) the master waits for the database before it forks a worker without the
#: vector index (that worker's first search by meaning reads it), and how long after such a wait
#: it forks workers without trying: a database that is down or hangs holds up one replacement,
#: not each of them, and gunicorn's master handles no signal while it waits.
PREPARE_TIMEOUT = _config.request_timeout
PREPARE_RETRY = 300
#: Until when (``time.monotonic()``) the master does not try.
_unprepared_until = 0.0


def pre_fork(server, worker):
    """Before it forks a worker the master loads the embedding model and brings its vector
    index up to date (``models.embeddings.prepare_index``: all of it the first time, what
    changed since after that), and the worker starts with both, sharing their memory with the
    master and the other workers until it writes its own changes. Left to a worker's first
    search by meaning, every connection that worker had taken waited while it read the index,
    each time a worker was replaced (``max_requests``), and each worker held a copy of its own
    (bench/README.md). It asks again whether the database has pgvector's table (``newsdesk db
    init`` may have made it since): a worker uses it once it is there, as before."""
    if _serves_newsdesk() and time.monotonic() >= _unprepared_until:
        _prepare_index(server)
    # What the master holds now is never collected in the worker: its collections would write
    # to those objects (the app's and the model's, about a hundred thousand), and so copy their
    # pages (the gc module's documentation; 45 of 825 MB at 100k articles, bench/README.md).
    # Collected first: garbage frozen would stay in the master for good.
    gc.collect()
    gc.freeze()


def _serves_newsdesk():
    """Whether the app served is Newsdesk's, which sets up the models' database as it is made
    (``api.create_app``); the benchmark's reference app (bench/reference.py) has none, nor a
    task queue."""
    from models import db

    return db.obj is not None


def _prepare_index(server):
    """The embedding model loaded and the vector index brought up to date in the master, within
    PREPARE_TIMEOUT; after a failure, no try for PREPARE_RETRY seconds."""
    global _unprepared_until
    from models import close_all, db, embeddings
    from models.base import time_limit

    try:
        with (
            _bounded(PREPARE_TIMEOUT),
            db.connection_context(),
            time_limit(PREPARE_TIMEOUT * 1000),
        ):
            embeddings.has_pgvector(fresh=True)
            embeddings.prepare_index()
    except Exception:  # down, hung, or more index than the master reads in PREPARE_TIMEOUT
        _unprepared_until = time.monotonic() + PREPARE_RETRY
        server.log.warning("could not prepare the vector index for a new worker", exc_info=True)
    finally:
        close_all()  # no connection of the master's goes to the worker


def _bounded(seconds):
    """A wait on the database ends after ``seconds`` with TimeoutError. Under gevent a
    connection is made through psycopg2's wait callback (``api.green``), where libpq's
    ``connect_timeout`` does not apply; otherwise it does, and ``time_limit`` bounds the
    statements."""
    if worker_class == "gevent":
        return gevent.Timeout(seconds, TimeoutError)
    return contextlib.nullcontext()


def post_worker_init(worker):
    """A worker ignores SIGINT. Ctrl-C in a terminal signals every process of the group: the
    master stops the workers (SIGQUIT) when it gets it, and a worker that quit on its own SIGINT
    too quit twice, the second time printing a traceback of SystemExit under gevent.

    And it forgets the asks for background work that a killed server process may have left
    noted but never queued (``api.tasks.forget_lost_asks``): while one is noted, writes queue
    no run, and a server back from a crash woke the worker only at its sweep, up to a minute
    later."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _serves_newsdesk():
        return
    from api import tasks

    try:
        tasks.forget_lost_asks()
    except Exception:  # the queue does not answer (Redis away): the worker's sweep does it
        worker.log.warning("could not read the task queue to forget lost asks", exc_info=True)


def worker_abort(worker):
    """gunicorn's worker timeout struck (Python code computing that long without waiting, which
    the request deadline cannot interrupt): the exception ends the request where it runs, so its
    client gets a 503 problem+json rather than a dropped connection; the worker, no longer
    alive, exits after answering (or gunicorn kills it a second later)."""
    raise WorkerTimeout(worker.cfg.timeout)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
