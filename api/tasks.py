"""Background work on Huey: what must not run inside a request or a write transaction.

The queue's storage follows the database: a SQLite file beside the database's (embedded), the
database itself on PostgreSQL (Huey's Postgres storage, tables ``huey_*``), or Redis when
``NEWSDESK_REDIS_URL`` is set. ``newsdesk worker`` runs the consumer. What a task must do is
recorded durably by the write that calls for it, in the write's own transaction (for related
lists: ``models.related.RelatedQueue``; for embeddings and stories:
``models.embeddings.EmbeddingQueue``; for webhooks: the outbox, ``models.webhooks``); a task
only wakes the worker to do it, and a periodic sweep does it anyway, so a wake-up lost to a
crash loses nothing. Webhook retries and the leases of workers that died mid-attempt are due at
known times: the worker schedules a wake-up for the next one (within a minute; later ones are
the sweep's).
"""

import contextlib
import datetime
import logging
import sqlite3
import threading
import time
import zlib
from pathlib import Path

import peewee
import redis
from flask import current_app, has_app_context, request
from huey import MemoryHuey, PostgresHuey, RedisHuey, SqliteHuey, crontab
from huey.storage import RedisStorage
from redis.backoff import NoBackoff
from redis.retry import Retry

from models import backlog, connected, imports, related, stories, webhooks
from models.base import (
    checkpoint,
    db,
    file_lock,
    is_postgres,
    utcnow_exact,
    waited_for_a_writer,
)

from . import outbound
from .bulkload import import_items, ndjson_items
from .config import Config, ConfigError

log = logging.getLogger(__name__)


#: Seconds a worker thread's blocking pop waits on Redis for a task before it asks again.
QUEUE_WAIT = 0.1


def make_huey(config):
    """The Huey instance for ``config``'s database (in immediate mode: tasks run when called)."""
    if config.tasks_immediate:
        return MemoryHuey("newsdesk", immediate=True)
    if config.redis_url:
        # Every call has its timeouts, and none is retried: a frozen Redis holds a write's
        # answer (its worker wake-up, see after_write) for at most a blocking pop's wait plus
        # NEWSDESK_REDIS_TIMEOUT_MS, not until the request's deadline.
        seconds = config.redis_timeout_ms / 1000
        pool = redis.ConnectionPool.from_url(
            config.redis_url,
            socket_connect_timeout=seconds,
            socket_timeout=QUEUE_WAIT + seconds,
            retry=Retry(NoBackoff(), 0),
        )
        return RedisHuey("newsdesk", connection_pool=pool, read_timeout=QUEUE_WAIT)
    if config.is_postgres:
        # As the app's own connections (models.base): a database host that does not answer
        # fails a call in seconds, not after the system's TCP timeout of minutes (a server
        # process reads the queue as it starts, see gunicorn.conf.py).
        return PostgresHuey(
            "newsdesk", dsn=config.database_url, create_tables=False, connect_timeout=3
        )
    return SqliteHuey(
        "newsdesk",
        filename=str(tasks_file(config.database_url)),
        create_tables=False,
        factory=QueueConnection,
    )


class QueueConnection(sqlite3.Connection):
    """A connection to the queue's SQLite file that commits as the database's do (WAL with
    ``synchronous=NORMAL``): safe when a process is killed, and it may lose the last commits,
    never the file, when the machine loses power. The SQLite library's default (FULL, which
    Huey keeps) syncs the disk at every enqueue, inside each write's answer; and a lost
    task loses nothing here (see the module's docstring). Huey passes its storage's extra
    arguments to ``sqlite3.connect``, whose ``factory`` this is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA synchronous = NORMAL")


def tasks_file(database_url):
    """The SQLite file of the task queue: beside the database's, ``<name>-tasks.db``."""
    database = Path(database_url.removeprefix("sqlite:///"))
    return database.with_name(f"{database.stem}-tasks.db")


def _queue_config():
    """The configuration the queue is made with. When the environment holds a value that
    cannot be used, the defaults: importing the app must not fail, since making it (which the
    server and every command do before anything else) says what is wrong, in one line."""
    try:
        return Config.from_env()
    except ConfigError:
        return Config.from_env({})


config = _queue_config()
huey = make_huey(config)


def create_queue():
    """Create the queue's tables (part of ``newsdesk db init``); Redis needs none."""
    if isinstance(huey, SqliteHuey | PostgresHuey) and not huey.immediate:
        huey.storage.initialize_schema()


#: The key space of :func:`run_lock`'s advisory locks on PostgreSQL ("NR", two-int keys: a
#: space apart from the one-key locks of migrations and the change log).
RUN_LOCKS = 0x4E52


@contextlib.contextmanager
def run_lock(name):
    """Inside ``connected()``: whether this run holds the right to do the work ``name``, one run
    at a time across every worker thread, process and host. PostgreSQL: an advisory lock of the
    connection's session; SQLite (one host): a lock on the file ``<database>.<name>.lock``.
    Either is held by a connection or an open file, so it goes with the process however it
    ends: a worker killed in a run holds nothing up. (Huey's lock, kept in the queue's storage,
    stayed held there when the storage could not expire it, SQLite's, PostgreSQL's and Redis's
    before 7.4, until a worker started: the other workers skipped the work meanwhile.)"""
    if is_postgres():
        key = zlib.crc32(name.encode()) - 2**31
        held = db.execute_sql("SELECT pg_try_advisory_lock(%s, %s)", (RUN_LOCKS, key)).fetchone()
        try:
            yield held[0]
        finally:
            if held[0]:
                try:
                    db.execute_sql("SELECT pg_advisory_unlock(%s, %s)", (RUN_LOCKS, key))
                except peewee.PeeweeException:  # not back to the pool holding it: closed
                    db.obj.manual_close()
        return
    with file_lock(f"{name}.lock", wait=False) as held:
        yield held


#: The work one run at a time does (:func:`_drain`).
RELATED_RUN, EMBEDDINGS_RUN = "refresh-related", "refresh-embeddings"


#: Set once the worker is stopping (its consumer's stop flag): a run takes no next batch. (A
#: Ctrl-C waited for the whole of a queue: 50 minutes of embeddings after a large import.)
stopping = threading.Event()


def make_consumer(queue, workers):
    """The worker's consumer of ``queue``, with ``workers`` threads. An idle thread looks for
    new tasks at least every second (Huey's default backs off to 10)."""
    global stopping
    consumer = queue.create_consumer(workers=workers, worker_type="thread", max_delay=1.0)
    stopping = consumer.stop_flag
    return consumer


def checkpoint_every(seconds, stop):
    """Checkpoint the SQLite WAL (:func:`models.base.checkpoint`) every ``seconds`` until
    ``stop`` is set: the worker's thread that keeps the checkpoints out of served writes.
    Nothing on PostgreSQL, which checkpoints on its own."""
    if is_postgres():
        return
    while True:
        try:
            with connected():
                checkpoint()
        except Exception:
            log.exception("the WAL checkpoint failed; the next one tries again")
        if stop.wait(seconds):
            return


#: Seconds a run of queued work goes on before it gives its thread back, asking for another
#: run behind the tasks queued meanwhile: webhook deliveries, the sweep and an import to resume
#: wait that long at most, not for the whole of a large import's embeddings and related lists.
RUN_SECONDS = 10


def _out_of_time(started):
    """Whether a run started at ``started`` (monotonic) has had its time (never in immediate
    mode, where the run asked for would run at once, inside this one)."""
    return not huey.immediate and time.monotonic() - started >= RUN_SECONDS


def _drain(lock_name, refresh_queued):
    """Call ``refresh_queued`` (one batch of a queue, returning how many it took) until the
    queue is empty or the run has had its time (:data:`RUN_SECONDS`), one run at a time
    (:func:`run_lock` ``lock_name``: a run in progress takes what is queued meanwhile).
    Returns how many in all (0 when another run holds the lock) and whether any is left."""
    started = time.monotonic()
    total = 0
    with connected(), run_lock(lock_name) as held:
        while held and not stopping.is_set() and (done := refresh_queued()):
            total += done
            if _out_of_time(started):
                return total, True
    return total, False


#: Huey's key-value store holds the id of the run of each kind queued and not yet started:
#: who would queue another (a write waking the worker, a run out of time) leaves the work to
#: that one, so that the queue holds at most one run of each kind waiting, and the sweep and
#: the imports queued behind them wait for those alone. The run named deletes it as it
#: starts; a run not asked for so (the sweep's, a scheduled delivery) leaves it; the sweep and
#: a starting worker or server process delete one whose run is no longer queued
#: (:func:`forget_lost_asks`).
EMBED_ASKED, RELATE_ASKED, DELIVERIES_ASKED = "embed-asked", "relate-asked", "deliveries-asked"


def _ask(task, key):
    """Queue a run of ``task`` unless one is queued already and has not started (``key``)."""
    if huey.immediate:
        task()
        return
    run = task.s()
    if huey.put_if_empty(key, run.id):
        huey.enqueue(run)


def _started(key, task):
    """The run ``task`` starts: when it is the one ``key`` names, the next ask queues another."""
    if task is not None and huey.get(key, peek=True) == task.id:
        huey.delete(key)


def forget_lost_asks():
    """Delete each key naming a run no longer queued (queued by a process that failed before
    enqueuing it, or taken by a worker killed before it started): asks queue runs again.

    The keys are read before the queue: a run asked for and queued between the two reads is
    then in the queue read (read the other way round, a server process starting beside
    another that was serving writes forgot their asks). A key deleted whose run was between
    its noting and its queuing at that moment costs one run more, which finds its work done."""
    asked = {key: huey.get(key, peek=True) for key in (EMBED_ASKED, RELATE_ASKED, DELIVERIES_ASKED)}
    if not any(run is not None for run in asked.values()):
        return
    queued = {task.id for task in huey.pending()}
    for key, run in asked.items():
        if run is not None and run not in queued:
            huey.delete(key)


def ask_refresh():
    """Wake the worker for queued embeddings and stories, and related lists: a run of each,
    which the worker's threads take at once."""
    _ask(embed_queued, EMBED_ASKED)
    _ask(relate_queued, RELATE_ASKED)


def ask_deliveries():
    """Wake the worker for webhook events and deliveries."""
    _ask(deliver_webhooks, DELIVERIES_ASKED)


@huey.task()
def refresh_articles():
    """Embed every article queued for it and place it in its story (which queues its related
    list), and compute the queued related lists: asks for a run of each (in immediate mode,
    runs them, in that order). Also the name of the wake-up writes queued before there were
    two."""
    ask_refresh()


@huey.task(context=True)
def embed_queued(task=None):
    """A run of :func:`embed_some`."""
    _started(EMBED_ASKED, task)
    embed_some()


def embed_some():
    """Embed the articles queued for it and place them in their stories (which queues their
    related lists): one run at a time (a run in progress takes what is queued meanwhile),
    single writes first, whose related lists are computed after each batch (an article written
    during a large import is related within seconds, not after the import's work). Asks for the
    related lists, and for another run when it has had its time with articles left."""
    embedded, left = _drain(EMBEDDINGS_RUN, _embed_batch)
    if embedded:
        log.info("embedded and placed %d articles", embedded)
        _ask(relate_queued, RELATE_ASKED)
    if left:
        _ask(embed_queued, EMBED_ASKED)


@huey.task(context=True)
def relate_queued(task=None):
    """A run of :func:`relate_some`."""
    _started(RELATE_ASKED, task)
    relate_some()


def relate_some():
    """Compute the queued related lists (they use the vectors), one run at a time; asks for
    another run when it has had its time with lists left."""
    related_lists, left = _drain(RELATED_RUN, related.refresh_queued)
    if related_lists:
        log.info("computed the related lists of %d articles", related_lists)
    if left:
        _ask(relate_queued, RELATE_ASKED)


def _embed_batch():
    """One batch of embeddings, then the related lists that single writes queued (unless
    another run is computing related lists: it takes those first); how many embedded."""
    embedded = stories.refresh_queued()
    if embedded:
        _drain(RELATED_RUN, lambda: related.refresh_queued(bulk=False))
    return embedded


@huey.task()
def run_import(job_id):
    """Import the stored body of the job ``job_id``, resuming after its last committed batch
    (a job another run holds under a live lease is left to it). A run that fails hands the job
    back for another attempt, which the sweep starts."""
    with connected():
        job = imports.claim(job_id)
        if job is None:
            return
        try:
            import_items(ndjson_items(imports.lines_from(job), settings().max_body_bytes), job=job)
        except imports.LeaseLost:
            log.warning("import job %d: another run took it over; this one stopped", job_id)
            return
        except Exception:
            log.exception("import job %d stopped", job_id)
            imports.release(job, "The import stopped on an error in the server; retried.")
            return
        imports.finish(job, imports.SUCCEEDED)
    ask_refresh()
    wake_webhooks()


#: Huey's key-value store holds when the next scheduled webhook wake-up is due (a timestamp),
#: so that workers do not each schedule their own.
WAKE_KEY = "webhooks-wake"
#: Wake-ups further ahead than this are left to the sweep.
WAKE_HORIZON = 60


def settings():
    """The configuration deliveries follow: the app's when run inside a request (immediate
    mode), else the worker's environment."""
    return current_app.config["NEWSDESK"] if has_app_context() else config


@huey.task(context=True)
def deliver_webhooks(task=None):
    """A run of :func:`deliver_some`."""
    _started(DELIVERIES_ASKED, task)
    deliver_some()


def deliver_some():
    """Fan new outbox events out to their subscriptions, then send every due delivery, one
    claimed attempt at a time (several threads and processes may run this at once: a claim is
    theirs alone). A run that finds work asks for one more run, so a backlog spreads over the
    worker's threads, and ends once it has had its time (that run goes on). Returns nothing:
    Huey keeps no result of it."""
    current = settings()
    started = time.monotonic()
    attempts = 0
    with connected():
        while webhooks.fan_out():
            pass
        while (held := webhooks.claim(current.webhook_lease)) is not None:
            if not attempts and not huey.immediate:
                ask_deliveries()
            webhooks.finish(held, outbound.deliver(held, current), current.webhook_retry_schedule)
            attempts += 1
            if _out_of_time(started):
                break
        due = webhooks.next_due()
    _wake_at(due)
    if attempts:
        log.info("made %d webhook delivery attempts", attempts)


def _wake_at(due):
    """Schedule ``deliver_webhooks`` for ``due`` (naive UTC), unless a wake-up no later than it
    is scheduled already, or it is beyond the sweep's next round."""
    if due is None:
        return
    delay = max(0.0, (due - webhooks.now()).total_seconds())
    if delay > WAKE_HORIZON:
        return
    at = due.replace(tzinfo=datetime.UTC).timestamp()
    scheduled = huey.get(WAKE_KEY, peek=True)
    now = datetime.datetime.now(datetime.UTC).timestamp()
    if scheduled is not None and now < scheduled <= at:
        return
    huey.put(WAKE_KEY, at)
    deliver_webhooks.schedule(delay=delay)


def take_up():
    """What a worker does as it starts: forget the wake-up a killed worker may have taken with
    it (out of the queue, not yet in the schedule: while it is remembered, no other is
    scheduled before it, and the sweep's next round did what it was for), then take up at once
    whatever was left pending."""
    huey.delete(WAKE_KEY)
    forget_lost_asks()
    ask_deliveries()


def wake_webhooks():
    """Wake the worker when this context queued webhook deliveries."""
    if webhooks.take_queued():
        ask_deliveries()


@huey.periodic_task(crontab(minute="*"))
def sweep():
    """Once a minute, what a lost wake-up left undone (embeddings, stories and related lists,
    webhook deliveries, import jobs whose worker died), and old deliveries and jobs forgotten.
    Each part runs whatever became of those before it (one that failed is logged)."""
    parts = {  # each part has its time at most (RUN_SECONDS): the next is not held up
        "clean-up and import jobs": _clean_up_and_resume,
        "webhook deliveries": deliver_some,
        "embeddings and stories": embed_some,
        "related lists": relate_some,
    }
    for name, part in parts.items():
        try:
            part()
        except Exception as error:
            if not waited_for_a_writer(error):
                log.exception("the sweep's part '%s' failed; the next sweep runs it again", name)
                continue
            # Under a heavy import on SQLite, say: no fault to trace.
            log.warning(
                "the sweep's part '%s' waited too long for another writer (%s); the next sweep"
                " runs it again",
                name,
                str(error).strip().splitlines()[0],  # PostgreSQL's DETAIL and HINT follow
            )
    try:
        record_backlog()
    except Exception:
        log.exception("could not record the backlog")


#: The key in Huey's store of when the last sweep ended and what it left waiting: /readyz
#: tells by it whether a worker runs, and /metrics reads the backlog there (it needs no
#: connection of the database's pool, which a busy server may have spent).
BACKLOG = "backlog"


def record_backlog():
    """Record that a sweep ran, and what it left waiting for the worker, in Huey's store."""
    with connected():
        measured = backlog.measure()
    huey.put(BACKLOG, {"at": utcnow_exact(), "queues": measured})


def last_backlog():
    """When the last sweep ended and what it left: ``{"at": when, "queues": {name: (items,
    oldest)}}``, or None before the first."""
    return huey.get(BACKLOG, peek=True)


def _clean_up_and_resume():
    """Old deliveries and jobs forgotten; import jobs whose worker died taken up again; asks
    whose run was lost forgotten."""
    forget_lost_asks()
    with connected():
        webhooks.clean_up()
        imports.clean_up()
        waiting = imports.runnable()
    for job_id in waiting:
        run_import(job_id)


def queue_problem():
    """Why the task queue takes no task, as ``/readyz`` says it, or None. Only a queue in Redis
    can be away while the database answers (the others are in it, or in a file beside it)."""
    if not isinstance(huey.storage, RedisStorage):
        return None
    try:
        huey.storage.conn.ping()
    except redis.RedisError as error:
        return (
            f"Task queue: Redis does not answer ({error}); webhook deliveries, embeddings,"
            " related lists and background imports wait until it does (they are recorded in"
            " the database: none is lost)."
        )
    return None


def wake(*calls):
    """Make each of ``calls`` (enqueuing tasks: waking the worker), logging instead of raising
    when the queue does not take them (Redis down): what they start is recorded in the database
    already (queued articles, the outbox, an import job), and the worker's sweep does it within
    a minute of the queue's return. A committed write's answer stands."""
    try:
        for call in calls:
            call()
    except Exception:
        log.warning("could not wake the worker; its sweep will, within a minute", exc_info=True)


def after_write(response):
    """after_request: a successful write may have queued embeddings, related lists and webhook
    events: wake the worker."""
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and response.status_code < 300:
        wake(ask_refresh, wake_webhooks)
    return response
