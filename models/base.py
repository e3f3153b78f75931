"""The database proxy, the base model and how a database URL becomes a peewee database."""

import contextlib
import datetime
import fcntl
import functools
import itertools
import logging
import os
import random
import shutil
import sqlite3
import threading
import time
from urllib.parse import urlparse

import peewee
import psycopg2.extras
from playhouse import db_url
from playhouse.pool import PooledDatabase, PooledPostgresqlDatabase, PooledSqliteDatabase

#: Bound to a real database by :func:`bind_database` at start-up.
db = peewee.DatabaseProxy()

log = logging.getLogger(__name__)
#: The statements :func:`execute_many` runs, each logged once as peewee logs its own.
sql_log = logging.getLogger("models.sql")

SQLITE_PRAGMAS = {
    # WAL lets readers in several gunicorn workers go on while one worker writes.
    "journal_mode": "wal",
    # A writer waits this long (ms) for another worker's write lock instead of failing.
    "busy_timeout": 5000,
    "synchronous": "normal",
    # The worker checkpoints the WAL every second (checkpoint()), so that a request's commit
    # does not: one in every 64 served writes at 100k articles took 20 ms more for it (see
    # bench/README.md). SQLite's default is 1,000 pages; 10,000 (40 MB with 4 KiB pages)
    # still bounds the WAL when no worker runs.
    "wal_autocheckpoint": 10_000,
    "foreign_keys": 1,
    "cache_size": -32 * 1024,
    # Reads through a memory map instead of a read() call per page (see bench/README.md).
    "mmap_size": 1024**3,
    "temp_store": "memory",
}
#: Connections of one process's pool, and how long (s) a request waits for one when all are in
#: use (then MaxConnectionsExceeded: a 503).
POOL_SIZE = 32
POOL_WAIT = 10
#: SQLite virtual-machine steps between two looks at the deadline (see set_deadline).
DEADLINE_STEPS = 50_000


def utcnow():
    """The current time in UTC, naive, to the second (what every timestamp column stores)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


def utcnow_exact():
    """The current time in UTC, naive, to the microsecond: for queue times, webhook retries and
    timings, where a second is too coarse."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


EPOCH = datetime.datetime(1970, 1, 1)


def epoch_seconds(moment):
    """Seconds since 1970 of a stored (naive, UTC) time, or of its ISO text as SQLite returns
    it in plain SQL. ``datetime.timestamp`` would read it as the machine's local time, and
    fails in the calendar's first year."""
    return epoch_microseconds(moment) / 1_000_000


def epoch_microseconds(moment):
    """Whole microseconds since 1970 of a stored time (see :func:`epoch_seconds`): exact,
    where a float of seconds is not in every year."""
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment)
    return (moment - EPOCH) // datetime.timedelta(microseconds=1)


def shifted(moment, delta):
    """``moment + delta``, held within the calendar: rows stored before times were bounded
    (to the years 1000-8999) may lie at its ends."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.datetime.max if delta > datetime.timedelta(0) else datetime.datetime.min


def make_database(url, greenlets=False):
    """Return an unconnected peewee database for ``url`` (``sqlite:///path`` or ``postgresql://``).

    PostgreSQL connections are pooled: :func:`end_request` hands one back. A SQLite
    connection stays open in its thread; with ``greenlets`` (gevent workers: each request a
    greenlet with connection state of its own) SQLite's are pooled too.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql"):
        params = db_url.parse(url)
        name = params.pop("database")
        params.setdefault("connect_timeout", 3)
        return PooledPostgresqlDatabase(
            name,
            max_connections=POOL_SIZE,
            timeout=POOL_WAIT,
            stale_timeout=300,
            autoconnect=False,
            **params,
        )
    if parsed.scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
        path = url[len("sqlite:///") :]
        if not path:
            raise ValueError("a SQLite URL needs a file path: sqlite:///instance/newsdesk.db")
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        options = {
            "pragmas": SQLITE_PRAGMAS,
            "autoconnect": False,
            "check_same_thread": False,
            "returning_clause": True,
        }
        if greenlets:
            # A request's greenlet ends with it: its connection goes back to a pool instead.
            return PooledSqliteDatabase(
                path, max_connections=POOL_SIZE, timeout=POOL_WAIT, **options
            )
        # One connection per thread, kept open from request to request (see end_request): a
        # sync worker serves one request at a time, so a pool would only add work.
        return peewee.SqliteDatabase(path, **options)
    raise ValueError(f"unsupported database URL scheme {parsed.scheme!r} (sqlite or postgresql)")


def end_request(opened):
    """At the end of a request that ``opened`` the connection: a pooled connection goes back to
    its pool; SQLite's stays open for the thread's next request."""
    if opened and isinstance(db.obj, PooledDatabase) and not db.is_closed():
        db.close()


def drop_connection():
    """Close this thread's connection for good (the server may have dropped it): the next
    request opens a fresh one."""
    if db.is_closed():
        return
    if isinstance(db.obj, PooledDatabase):
        db.manual_close()  # not back into the pool
    else:
        db.close()


def close_all():
    """Close the connections: every pooled one, or this thread's SQLite connection."""
    if isinstance(db.obj, PooledDatabase):
        db.close_all()
    else:
        drop_connection()


def file_lock(name, wait=True):
    """SQLite: a lock on the file ``<database>.<name>`` beside the database, held until the
    block ends, or its process does however it ends; yields whether it is held (without
    ``wait``, False when another holds it). A database in memory has one process: held."""
    if db.obj.database == ":memory:":
        return contextlib.nullcontext(True)
    return _file_lock(f"{db.obj.database}.{name}", wait)


@contextlib.contextmanager
def _file_lock(path, wait):
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True  # released when the file is closed


@contextlib.contextmanager
def connected():
    """The block runs connected; a connection it had to open is closed after it."""
    opened = db.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened:
            db.close()


#: PostgreSQL's SQLSTATE of a full disk (class 53, insufficient resources).
PG_DISK_FULL = "53100"


def is_disk_full(error):
    """Whether a database error (peewee's, or what it wraps) says the disk is full: SQLite's
    ``SQLITE_FULL`` ("database or disk is full", also at ``max_page_count``) or PostgreSQL's
    ``53100 disk_full``."""
    return any(
        getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or getattr(cause, "pgcode", None) == PG_DISK_FULL
        for cause in _driver_errors(error)
    )


def sqlstate(error):
    """The SQLSTATE of the PostgreSQL error behind a database error (peewee's), or None."""
    return next((c.pgcode for c in _driver_errors(error) if getattr(c, "pgcode", None)), None)


def broke_a_foreign_key(error):
    """Whether an integrity error is a foreign key's: a row referring to one that is gone."""
    return sqlstate(error) == "23503" or "FOREIGN KEY constraint failed" in str(error)


def keep_unless_gone(query):
    """Run ``query``, which keeps what a read computed of a row (an article's summary, say), in
    a write transaction of its own; nothing is kept when that row was deleted meanwhile (its
    foreign key broken): the read answers what it found."""
    try:
        with write_transaction():
            query.execute()
    except peewee.IntegrityError as error:
        if not broke_a_foreign_key(error):
            raise


def _driver_errors(error):
    """``error`` and the errors it wraps: what peewee raised over the driver's."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        inner = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
        error = inner or error.__cause__ or error.__context__


def disk_space_problem(min_free_bytes):
    """On SQLite, why the database may soon refuse writes: its disk has less than
    ``min_free_bytes`` free, or the file is at this connection's ``max_page_count``; else None.
    (A PostgreSQL server's disk is not visible from here.)"""
    if is_postgres():
        return None
    path = db.obj.database
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    if free < min_free_bytes:
        return f"Only {free // 2**20} MB free on the database's disk; writes fail when it is full."
    pages = db.execute_sql("PRAGMA page_count").fetchone()[0]
    if pages >= db.execute_sql("PRAGMA max_page_count").fetchone()[0]:
        return "The database file is at its largest allowed size (max_page_count); writes fail."
    return None


#: The request's deadline on SQLite (see set_deadline), kept per thread (per greenlet under
#: gevent, which patches threading.local) so that time_limit can restore it.
_request = threading.local()


def set_deadline(deadline):
    """SQLite: the connection's statements fail (``peewee.OperationalError``, "interrupted")
    once ``time.monotonic()`` passes ``deadline``; None lifts it. PostgreSQL's statements are
    bounded by the server's ``statement_timeout`` and, under gevent, by the request's own
    deadline (``api.green``)."""
    _request.deadline = deadline
    if db.is_closed() or not isinstance(db.obj, peewee.SqliteDatabase):
        return
    check = None if deadline is None else functools.partial(_past, deadline)
    db.connection().set_progress_handler(check, DEADLINE_STEPS)


def _past(deadline):
    return time.monotonic() > deadline


def bind_database(url, greenlets=False):
    """Point the models at the database behind ``url`` and return it."""
    database = make_database(url, greenlets)
    db.initialize(database)
    global _database_file, _binding
    _database_file = _file_identity()
    _binding = next(_bindings)
    return database


_bindings = itertools.count(1)
_binding = 0


def binding():
    """A number naming the database bound now, never another in this process: the key of
    what a process keeps per database (not ``id()`` of the database object, which a later
    object may get once the first is freed: a process that binds several, as the tests do)."""
    return _binding


def write_transaction():
    """A transaction for a write. On SQLite it takes the write lock at BEGIN (IMMEDIATE), so two
    workers that both read before writing wait for each other instead of failing with SQLITE_BUSY;
    and it is refused (:class:`DatabaseFileGone`) when the file was moved or deleted.
    """
    if isinstance(db.obj, peewee.SqliteDatabase):
        problem = database_file_problem()
        if problem:
            raise DatabaseFileGone(problem)
        return db.atomic(lock_type="IMMEDIATE")
    return db.atomic()


def checkpoint():
    """On SQLite, copy what the WAL holds into the database file as far as no reader still
    needs it (a PASSIVE checkpoint: it waits for no one); returns ``(frames in the WAL,
    frames checkpointed)``. None on PostgreSQL."""
    if not isinstance(db.obj, peewee.SqliteDatabase):
        return None
    _, frames, done = db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return frames, done


class DatabaseFileGone(peewee.OperationalError):
    """The SQLite file at the database's path is no longer the one there when it was bound."""


#: The (device, inode) of the SQLite file at the database's path when it was bound (None when
#: there was none yet: the first look that finds one takes it).
_database_file = None


def _file_identity():
    if not isinstance(db.obj, peewee.SqliteDatabase) or db.obj.database == ":memory:":
        return None
    try:
        found = os.stat(db.obj.database)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def database_file_problem():
    """On SQLite, why a write would not reach the file at the database's path: the file there
    when the database was bound (or first made) was deleted, moved or replaced since. A
    connection kept open goes on writing to the file it opened, where nothing would read it
    again. None when all is well, and on PostgreSQL."""
    global _database_file
    if not isinstance(db.obj, peewee.SqliteDatabase):
        return None
    identity = _file_identity()
    if _database_file is None or identity == _database_file:
        _database_file = identity
        return None
    what = "deleted or moved" if identity is None else "replaced by another file"
    return (
        f"The database file {db.obj.database} was {what} while the server ran: writes are"
        " refused so that none is lost. Put the file back, or restart the server on the file"
        " now there."
    )


def execute_many(sql, params):
    """Run one statement for each of ``params``, prepared once (``{0}`` stands for the
    database's parameter mark): peewee builds no SQL per row or value, which cost more than
    the database's own work for a batch of inserts."""
    if not params:
        return
    sql_log.debug("%s -- run for %d rows", sql, len(params))
    cursor = db.cursor()
    try:
        if is_postgres():  # many statements a round trip (psycopg2's executemany sends each alone)
            psycopg2.extras.execute_batch(cursor, sql.format(db.obj.param), params, page_size=200)
        else:
            cursor.executemany(sql.format(db.obj.param), params)
    except (sqlite3.Error, psycopg2.Error) as error:
        raise as_peewee_error(error) from error


def as_peewee_error(error):
    """The peewee exception for a DB-API driver's ``error`` (peewee names its exceptions as
    DB-API does): what peewee raises for its own statements, and what callers catch."""
    for kind in type(error).__mro__:
        wrapped = getattr(peewee, kind.__name__, None)
        if isinstance(wrapped, type) and issubclass(wrapped, peewee.PeeweeException):
            return wrapped(*error.args)
    return error


def insert_rows(model, rows, suffix=""):
    """Insert ``rows`` (dicts with the same keys: field names) into ``model``'s table, in the
    order given (``suffix``: an ON CONFLICT clause), values as the fields store them and the
    fields' defaults for the others, as peewee's own inserts do: on SQLite one prepared INSERT
    run for each row, on PostgreSQL one INSERT of many rows for each page of 500."""
    if not rows:
        return
    fields = [model._meta.fields[name] for name in rows[0]]
    defaults = [
        field
        for field in model._meta.sorted_fields
        if field.default is not None and field.name not in rows[0]
    ]
    fields += defaults
    rows = [
        {
            **row,
            **{f.name: f.default() if callable(f.default) else f.default for f in defaults},
        }
        for row in rows
    ]
    columns = ", ".join(f'"{field.column_name}"' for field in fields)
    values = [tuple(field.db_value(row[field.name]) for field in fields) for row in rows]
    if not is_postgres():
        marks = ", ".join(["{0}"] * len(fields))
        execute_many(
            f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({marks}){suffix}', values
        )
        return
    # Many rows a statement: the server parses and plans one INSERT for each page, where
    # execute_many's statements are each parsed and planned (half the time of an import's
    # inserts). Rows are inserted in the order given; two of them must not share a key that
    # ``suffix``'s ON CONFLICT ... DO UPDATE names (one statement cannot update a row twice).
    sql_log.debug("INSERT INTO %s -- %d rows", model._meta.table_name, len(values))
    try:
        psycopg2.extras.execute_values(
            db.cursor(),
            f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES %s{suffix}',
            values,
            page_size=500,
        )
    except psycopg2.Error as error:
        raise as_peewee_error(error) from error


def each_apart(work, ids, give_up=lambda article_id: None):
    """``work(ids)``, a worker's batch of articles; when it fails other than in the database,
    ``work([id])`` for each id alone, and for each that fails alone, the error logged,
    ``give_up(id)``. One article the worker cannot process must not hold up every other: a
    failing batch stays queued and fails again at every run. Errors of the database (it is
    down or locked) fail the whole run, to be retried."""
    try:
        work(ids)
    except peewee.PeeweeException:
        raise
    except Exception:
        for article_id in ids:
            try:
                work([article_id])
            except peewee.PeeweeException:
                raise
            except Exception:
                log.exception("%s left article %d out", work.__qualname__, article_id)
                give_up(article_id)


def is_postgres():
    return isinstance(db.obj, peewee.PostgresqlDatabase)


#: How long after the time it stamps (``updated_at``, ``modified_at``, ``embedded_at``: taken
#: inside its transaction) a write may commit: who reads what changed since a time, or relies on
#: nothing more changing within a second, looks back this far.
COMMIT_LAG = datetime.timedelta(seconds=60)


def runs_again_on_conflict(transaction):
    """Decorator: the function ``transaction`` (one transaction) runs again when it lost a race
    to a concurrent writer (:func:`lost_race`), three times at most.

    After a deadlock it waits a few milliseconds first: the rows it let go are not handed to
    the writer waiting for them, and run again at once it could lock them first and deadlock
    with that writer once more (PostgreSQL's log showed it: the ended writer's next
    transaction holding the row the other still waited for)."""

    @functools.wraps(transaction)
    def run(*args, **kwargs):
        for attempt in range(3):
            try:
                return transaction(*args, **kwargs)
            except (peewee.IntegrityError, peewee.OperationalError) as error:
                if not lost_race(error) or attempt == 2:
                    raise
                if sqlstate(error) in LOST_RACE:
                    time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))

    return run


#: PostgreSQL's SQLSTATEs for a transaction it ended so that another could go on: a deadlock,
#: a serialization failure.
LOST_RACE = ("40P01", "40001")


def lost_race(error):
    """Whether a transaction that failed on ``error`` may have lost a race to a concurrent
    writer, so that running it again is right: an integrity error (a unique key taken
    meanwhile: the next run sees the other row; any other fails again, and is raised then), or
    a deadlock PostgreSQL broke by ending it."""
    if isinstance(error, peewee.IntegrityError):
        return True
    return sqlstate(error) in LOST_RACE


#: PostgreSQL's SQLSTATE of a lock not taken within ``lock_timeout``.
LOCK_NOT_AVAILABLE = "55P03"


def waited_for_a_writer(error):
    """Whether ``error`` ended a statement that waited for another writer: past SQLite's busy
    timeout (``database is locked``), or ended by PostgreSQL to break a deadlock, for a
    serialization failure or past a lock timeout. The same work later is likely to go on."""
    return any(
        (getattr(cause, "sqlite_errorcode", None) or 0) & 0xFF == sqlite3.SQLITE_BUSY
        or getattr(cause, "pgcode", None) in (*LOST_RACE, LOCK_NOT_AVAILABLE)
        for cause in _driver_errors(error)
    )


def locked(query, of, deleting=False):
    """``query`` with the rows of model ``of`` it reads locked until the transaction ends
    against other writers (``FOR NO KEY UPDATE OF``), so that what a write reads to compute what
    it stores is not changed by another before it commits. Not against rows referring to them:
    ``FOR UPDATE`` also held up the check of a foreign key (a comment's write, once it had
    changed its article, checks the article's source), and a writer holding a source waiting
    for a writer holding one of its articles made a deadlock. Rows the write is ``deleting``
    are locked against those too (``FOR UPDATE``), from the start: the delete would wait for a
    reference checked meanwhile, whose writer may wait for this one. On PostgreSQL; SQLite runs
    one write transaction at a time.

    Writes, deletes and card renders take their locks in one order: sources, then articles (by
    id: order ``query`` so), then the change log's. Where that order cannot be kept (the story
    worker, a rare source moved meanwhile), PostgreSQL may end one of two writers to break a
    deadlock, and :func:`runs_again_on_conflict` runs it again."""
    if not is_postgres():
        return query
    return query.for_update("FOR UPDATE" if deleting else "FOR NO KEY UPDATE", of=of)


def kept(query, of):
    """``query`` with the rows of model ``of`` it reads kept from being deleted until the
    transaction ends (``FOR KEY SHARE OF``, what a foreign key's check takes), so that a write
    that will refer to them (a worker storing what it computed for articles it read as alive)
    does not find one deleted meanwhile. Order ``query`` by id, as :func:`locked` says. On
    PostgreSQL; SQLite runs one write transaction at a time."""
    if not is_postgres():
        return query
    return query.for_update("FOR KEY SHARE", of=of)


class StatementTimeout(Exception):
    """A statement ran past the time :func:`time_limit` allowed it, and was stopped."""

    def __init__(self, milliseconds):
        super().__init__(f"a statement ran past {milliseconds} ms and was stopped")
        self.milliseconds = milliseconds


#: SQLite virtual-machine steps between two looks at the clock while a time limit holds.
_PROGRESS_STEPS = 10_000
#: PostgreSQL's SQLSTATE of a statement cancelled by statement_timeout (query_canceled).
_QUERY_CANCELED = "57014"


@contextlib.contextmanager
def time_limit(milliseconds):
    """Run the block's statements within ``milliseconds`` (0 or None: no limit), raising
    :class:`StatementTimeout` for one stopped past it; the connection stays usable.

    PostgreSQL: each statement, by ``statement_timeout`` set for a transaction around the
    block (as ``SET LOCAL`` does). SQLite: every statement of the block together, by a progress
    handler looking at the clock between steps of SQLite's virtual machine; one step inside an
    extension (an FTS5 call) runs to its end, which is why queries' shapes are limited too.
    """
    if not milliseconds:
        yield
        return
    if is_postgres():
        with db.atomic():
            db.execute_sql("SELECT set_config('statement_timeout', %s, true)", (str(milliseconds),))
            try:
                yield
            except peewee.OperationalError as error:
                if sqlstate(error) == _QUERY_CANCELED:
                    raise StatementTimeout(milliseconds) from error
                raise
        return
    deadline = time.monotonic() + milliseconds / 1000
    request_deadline = getattr(_request, "deadline", None)
    stopped = []

    def past_deadline():
        now = time.monotonic()
        if now > deadline:
            stopped.append(True)
            return 1  # SQLite stops the statement: "interrupted"
        return request_deadline is not None and now > request_deadline

    connection = db.connection()
    connection.set_progress_handler(past_deadline, _PROGRESS_STEPS)
    try:
        yield
    except (peewee.OperationalError, sqlite3.OperationalError) as error:
        if stopped:
            raise StatementTimeout(milliseconds) from error
        raise
    finally:  # the request's own deadline holds again
        set_deadline(request_deadline)


class BaseModel(peewee.Model):
    class Meta:
        database = db
        legacy_table_names = False


class Setting(BaseModel):
    """A value the database keeps about itself, by name (what its stored cards were rendered
    with, for one)."""

    name = peewee.CharField(max_length=100, primary_key=True)
    value = peewee.TextField()

    @classmethod
    def get_value(cls, name, default=None):
        row = cls.get_or_none(cls.name == name)
        return default if row is None else row.value

    @classmethod
    def set_value(cls, name, value):
        cls.insert(name=name, value=value).on_conflict(
            conflict_target=[cls.name], update={cls.value: value}
        ).execute()
