"""Rate limits per API key, or per client address when anonymous (the ``limits`` library).

Every request counts against ``NEWSDESK_RATE_LIMIT``; writes (to the blueprints named in
``create_app``) also against the stricter ``NEWSDESK_WRITE_RATE_LIMIT``. Counters live, first
that answers: in Redis when ``NEWSDESK_REDIS_URL`` is set (every worker and host shares them),
in a SQLite file shared by a host's workers (``NEWSDESK_RATE_LIMIT_FILE``, which
``gunicorn.conf.py`` sets), else in each process's memory. A storage that fails or is slower than
its timeout is left alone for :data:`RETRY_SECONDS`, then tried again.
"""

import contextlib
import functools
import ipaddress
import logging
import math
import os
import sqlite3
import threading
import time
from urllib.parse import urlparse

from flask import g, request
from flask_smorest import abort
from limits import parse
from limits.storage import Storage, storage_from_string
from redis.backoff import NoBackoff
from redis.retry import Retry

from .auth import presented_key
from .config import ConfigError
from .database import KEYED_WHEN_SENT, NO_DATABASE

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Endpoints that are not limited: health checks, metrics and the docs (but metrics asked with
#: a key, ``database.KEYED_WHEN_SENT``: against it, a wrong one against the address).
EXEMPT = NO_DATABASE | {"health.Ready"}
#: Seconds a shared storage that failed is left alone before it is tried again.
RETRY_SECONDS = 1.0
log = logging.getLogger(__name__)


class RateLimiter:
    """Fixed-window counters: the default limit, and the write limit for writes."""

    def __init__(self, config, write_blueprints):
        self.default = parse(config.rate_limit)
        self.writes = parse(config.write_rate_limit)
        self.write_blueprints = frozenset(blueprint.name for blueprint in write_blueprints)
        self.memory = WorkerCounters()
        self.tiers = []
        if config.redis_url:
            seconds = config.redis_timeout_ms / 1000
            redis = storage_from_string(
                config.redis_url,
                socket_timeout=seconds,
                socket_connect_timeout=seconds,
                retry=Retry(NoBackoff(), 0),  # a timeout is an answer: count elsewhere
            )
            where = urlparse(config.redis_url)
            name = f"Redis at {where.hostname}:{where.port or 6379}"
            # Redis tells a key's time to live in whole seconds, rounded: its window may end
            # half a second after the expiry the ``limits`` library makes of it.
            self.tiers.append(Tier(name, redis, f"{config.redis_timeout_ms} ms", slack=0.5))
        if config.rate_limit_file:
            try:
                host = storage_from_string(
                    f"{HostCounters.STORAGE_SCHEME[0]}://{config.rate_limit_file}"
                )
            except sqlite3.Error as error:
                raise ConfigError(
                    f"NEWSDESK_RATE_LIMIT_FILE {config.rate_limit_file} cannot be used: {error}"
                ) from None
            self.tiers.append(Tier("the host's counter file", host, "a second"))

    def check(self):
        """before_request, after :func:`api.auth.identify`: count the request against the key,
        or the client address (wrong keys count there too); 429 when a limit is spent.

        The limit nearest exhaustion is kept as ``g.rate_limit`` for its headers and ``/v1/me``.
        """
        if request.endpoint in EXEMPT and not (
            request.endpoint in KEYED_WHEN_SENT and presented_key(request.environ)
        ):
            return
        key = g.api_key
        caller = key_caller(key) if key is not None else anonymous(request.environ)
        writes = request.method in WRITE_METHODS and request.blueprint in self.write_blueprints
        g.rate_limit = state = self.count(caller, writes)
        if state["exceeded"]:
            counted = "writes" if state["writes"] else "requests"
            by = "this key" if key is not None else "this address"
            abort(
                429,
                message=(
                    f"Rate limit of {state['limit']} {counted} per {state['window']} s spent by"
                    f" {by}; retry in {max(1, state['reset'])} s."
                ),
            )

    def write_state(self, key):
        """``{limit, remaining, reset}`` of the write limit of the API ``key``, without counting
        a request (``/v1/me`` shows it beside the limit the request counted against)."""
        identifiers = (key_caller(key), "writes")
        return self._first_answer(
            lambda storage, slack: self._state(storage, slack, self.writes, identifiers)
        )

    @staticmethod
    def _state(storage, slack, limit, identifiers):
        """The window's state as it is, counting nothing."""
        key = _storage_key(limit, identifiers)
        count = storage.get(key)
        return _window(limit, count, storage.get_expiry(key) + slack if count else time.time())

    def forget(self):
        """Drop the counts this process kept (the tests, reusing an app on a new database)."""
        self.memory = WorkerCounters()

    @staticmethod
    def add_headers(response):
        """after_request: the ``RateLimit-*`` headers of the request's limit, whatever the answer."""
        state = g.get("rate_limit")
        if state is not None:
            response.headers.extend(header_items(state))
        return response

    def count(self, caller, writes=False):
        """Count one request of ``caller``; the state of the limit it exceeds (the one that
        resets last, when both), else of the limit nearest exhaustion."""
        state = {**self._hit(self.default, caller), "writes": False}
        if writes:
            states = [state, {**self._hit(self.writes, caller, "writes"), "writes": True}]
            exceeded = [s for s in states if s["exceeded"]]
            if exceeded:
                return max(exceeded, key=lambda s: s["reset"])
            return min(states, key=lambda s: s["remaining"])
        return state

    def problems(self):
        """What /readyz reports: each shared storage that does not answer now, and where the
        limiter counts instead (each is checked, within its timeout)."""
        found = []
        for number, tier in enumerate(self.tiers):
            if tier.check():
                continue
            instead = self.tiers[number + 1].name if number + 1 < len(self.tiers) else None
            found.append(
                f"Rate limits: {tier.name} does not answer ({tier.problem}); counting in "
                + (instead or "each worker's memory")
                + " until it does."
            )
        return found

    def _hit(self, limit, *identifiers):
        return self._first_answer(
            lambda storage, slack: self._count(storage, slack, limit, identifiers)
        )

    def _first_answer(self, use):
        """``use(storage, slack)`` of the first shared storage that answers, else of this
        process's memory (any failure of a storage: the next one counts); ``slack`` is how
        much later than its ``get_expiry`` says a window of that storage may end."""
        for tier in self.tiers:
            if not tier.usable():
                continue
            try:
                answer = use(tier.storage, tier.slack)
            except Exception as error:
                tier.failed(error)
            else:
                tier.answered()
                return answer
        return use(self.memory, 0)

    @staticmethod
    def _count(storage, slack, limit, identifiers):
        """A fixed window: the first hit starts it, every hit counts, it ends after the period."""
        key = _storage_key(limit, identifiers)
        count = storage.incr(key, limit.get_expiry())
        return {
            **_window(limit, count, storage.get_expiry(key) + slack),
            "exceeded": count > limit.amount,
            "window": limit.get_expiry(),
        }


class Tier:
    """A shared counter storage and whether it answers: after a failure (an error, or no answer
    within its timeout) it is skipped for :data:`RETRY_SECONDS`, so a hung Redis costs one
    timeout a second per worker, not one per request; the first answer after that restores it."""

    def __init__(self, name, storage, timeout, slack=0.0):
        self.name = name
        self.storage = storage
        self.timeout = timeout
        self.slack = slack
        self.problem = None
        self.retry_at = 0.0

    def usable(self):
        return self.problem is None or time.monotonic() >= self.retry_at

    def failed(self, error):
        if self.problem is None:
            log.warning("rate limits: %s failed; counting elsewhere: %s", self.name, error)
        self.problem = describe_failure(error, self.timeout)
        self.retry_at = time.monotonic() + RETRY_SECONDS

    def answered(self):
        if self.problem is not None:
            log.warning("rate limits: %s answers again", self.name)
            self.problem = None

    def check(self):
        """Whether the storage answers now (within its timeout); a failure is noted as above."""
        try:
            healthy = self.storage.check()
        except Exception as error:
            self.failed(error)
            return False
        if not healthy:
            self.failed(TimeoutError(f"no answer within {self.timeout}"))
        else:
            self.answered()
        return healthy


def describe_failure(error, timeout):
    """A line saying why a storage failed, without its address or credentials."""
    if isinstance(error, TimeoutError) or "timeout" in type(error).__name__.lower():
        return f"no answer within {timeout}"
    return f"{type(error).__name__}: {error}"


class HostCounters(Storage):
    """Fixed-window counters in a SQLite file, shared by every process of a host that opens it
    (a custom storage of the ``limits`` library, which ships none that needs no server).

    Each hit is one autocommitted upsert (WAL, no fsync: the counters need not survive a crash);
    each process opens its own connection when it first counts, so a forked worker never uses
    its parent's. Windows that are over are deleted now and then. The end of the window a hit
    counted in is kept for the ``get_expiry`` that follows it (per thread, or greenlet).
    """

    STORAGE_SCHEME = ["newsdesk+sqlite"]
    #: Seconds a hit waits for another process's hit to finish before it fails.
    BUSY_SECONDS = 1.0
    PRUNE_EVERY = 1000

    def __init__(self, uri, **options):
        super().__init__(uri, **options)
        self.path = uri.partition("://")[2]
        self.lock = threading.Lock()
        self.connection = None
        self.owner = None
        self.hits = 0
        self.last = threading.local()  # the key and window end of each thread's last hit
        with self.lock:
            self._connection().close()  # the file and table exist before any worker forks
            self.connection = None

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def _connection(self):
        if self.connection is None or self.owner != os.getpid():
            connection = sqlite3.connect(
                self.path, timeout=self.BUSY_SECONDS, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = OFF")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS counter"
                " (key TEXT PRIMARY KEY, ends REAL NOT NULL, count INTEGER NOT NULL)"
            )
            self.connection, self.owner = connection, os.getpid()
        return self.connection

    def incr(self, key, expiry, amount=1):
        now = time.time()
        with self.lock:
            connection = self._connection()
            self.hits += 1
            if self.hits % self.PRUNE_EVERY == 0:
                connection.execute("DELETE FROM counter WHERE ends <= ?", (now,))
            count, ends = connection.execute(
                "INSERT INTO counter (key, ends, count) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET"
                " count = CASE WHEN ends <= ? THEN excluded.count ELSE count + excluded.count END,"
                " ends = CASE WHEN ends <= ? THEN excluded.ends ELSE ends END"
                " RETURNING count, ends",
                (key, now + expiry, amount, now, now),
            ).fetchall()[0]
        self.last.hit = (key, ends)
        return count

    def get(self, key):
        with self.lock:
            row = (
                self._connection()
                .execute("SELECT count FROM counter WHERE key = ? AND ends > ?", (key, time.time()))
                .fetchone()
            )
        return row[0] if row else 0

    def get_expiry(self, key):
        hit = getattr(self.last, "hit", None)
        if hit is not None and hit[0] == key:  # what this thread's incr just read
            return hit[1]
        with self.lock:
            row = (
                self._connection()
                .execute("SELECT ends FROM counter WHERE key = ?", (key,))
                .fetchone()
            )
        return row[0] if row else time.time()

    def check(self):
        with self.lock:
            self._connection().execute("SELECT 1 FROM counter LIMIT 1").fetchall()
        return True

    def reset(self):
        with self.lock:
            return self._connection().execute("DELETE FROM counter").rowcount

    def clear(self, key):
        with self.lock:
            self._connection().execute("DELETE FROM counter WHERE key = ?", (key,))


@functools.lru_cache(maxsize=4096)
def _storage_key(limit, identifiers):
    """The storage key of ``limit`` for a caller (made once per caller, not per request)."""
    return limit.key_for(*identifiers)


class WorkerCounters:
    """Fixed-window counters in this process, with the two storage methods the limiter uses.

    (The ``limits`` library's MemoryStorage expires keys from a timer thread that it starts
    again every 10 ms while requests come in: under load, a new thread every few requests.)
    Windows that are over are dropped when the table grows.
    """

    def __init__(self, max_keys=100_000):
        self.windows = {}
        self.max_keys = max_keys
        self.lock = threading.Lock()

    def incr(self, key, expiry, amount=1):
        now = time.time()
        with self.lock:
            ends, count = self.windows.get(key, (0.0, 0))
            if ends <= now:
                if len(self.windows) >= self.max_keys:
                    self.windows = {k: v for k, v in self.windows.items() if v[0] > now}
                ends, count = now + expiry, 0
            self.windows[key] = (ends, count + amount)
            return count + amount

    def get(self, key):
        ends, count = self.windows.get(key, (0.0, 0))
        return count if ends > time.time() else 0

    def get_expiry(self, key):
        return self.windows.get(key, (time.time(), 0))[0]


def _window(limit, count, reset_at):
    """``{limit, remaining, reset}`` of a window of ``limit`` with ``count`` hits, ending at
    ``reset_at`` (a time). The seconds to ``reset`` are rounded up: a client that waits as
    long as ``Retry-After`` says finds the window over, not a second short of it."""
    return {
        "limit": limit.amount,
        "remaining": max(0, limit.amount - count),
        "reset": max(0, math.ceil(reset_at - time.time())),
    }


def key_caller(key):
    """The rate-limit identity of a caller with an API key."""
    return f"key:{key.id}"


def anonymous(environ):
    """The rate-limit identity of a caller without a key: its address, or for IPv6 its /64
    network (one host is given a whole /64, and could send each request from a new address)."""
    address = environ.get("REMOTE_ADDR")
    if address and ":" in address:
        with contextlib.suppress(ValueError):
            parsed = ipaddress.IPv6Address(address)
            address = str(parsed.ipv4_mapped or ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return f"ip:{address}"


def header_items(state):
    """``RateLimit-*`` headers of a limit state, and ``Retry-After`` when it is exceeded (a 429)."""
    items = [
        ("RateLimit-Limit", str(state["limit"])),
        ("RateLimit-Remaining", str(state["remaining"])),
        ("RateLimit-Reset", str(state["reset"])),
    ]
    if state["exceeded"]:
        items.append(("Retry-After", str(max(1, state["reset"]))))
    return items


def limit_state():
    """``{limit, remaining, reset}`` of the limit nearest exhaustion for this request, or None."""
    state = g.get("rate_limit")
    if state is None:
        return None
    return {name: state[name] for name in ("limit", "remaining", "reset")}
