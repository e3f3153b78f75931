"""Rate limits per API key, or per client address when anonymous (the ``limits`` library).

Every request counts against ``NEWSDESK_RATE_LIMIT``; writes (to the blueprints named in
``create_app``) also against the stricter ``NEWSDESK_WRITE_RATE_LIMIT``. Counters live in memory
per worker, or in Redis when ``NEWSDESK_REDIS_URL`` is set, so that every worker and host shares
them; while Redis cannot be reached each worker counts in memory instead.
"""

import functools
import logging
import threading
import time

from flask import g, request
from flask_smorest import abort
from limits import parse
from limits.storage import storage_from_string

from .database import NO_DATABASE

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Endpoints that are never limited: health checks, metrics and the docs.
EXEMPT = NO_DATABASE | {"health.Ready"}
log = logging.getLogger(__name__)


class RateLimiter:
    """Fixed-window counters: the default limit, and the write limit for writes."""

    def __init__(self, config, write_blueprints):
        self.default = parse(config.rate_limit)
        self.writes = parse(config.write_rate_limit)
        self.write_blueprints = frozenset(blueprint.name for blueprint in write_blueprints)
        self.memory = WorkerCounters()
        self.shared = storage_from_string(config.redis_url) if config.redis_url else None

    def check(self):
        """before_request, after :func:`api.auth.identify`: count the request against the key,
        or the client address (wrong keys count there too); 429 when a limit is spent.

        The limit nearest exhaustion is kept as ``g.rate_limit`` for its headers and ``/v1/me``.
        """
        if request.endpoint in EXEMPT:
            return
        key = g.api_key
        caller = f"key:{key.id}" if key is not None else anonymous(request.environ)
        writes = request.method in WRITE_METHODS and request.blueprint in self.write_blueprints
        g.rate_limit = state = self.count(caller, writes)
        if state["exceeded"]:
            abort(429, message=f"Rate limit of {state['limit']} exceeded; retry later.")

    @staticmethod
    def add_headers(response):
        """after_request: the ``RateLimit-*`` headers of the request's limit, whatever the answer."""
        state = g.get("rate_limit")
        if state is not None:
            response.headers.extend(header_items(state))
        return response

    def count(self, caller, writes=False):
        """Count one request of ``caller``; the state of the limit nearest exhaustion (exceeded
        when any limit is)."""
        state = self._hit(self.default, caller)
        if writes:
            other = self._hit(self.writes, caller, "writes")
            exceeded = state["exceeded"] or other["exceeded"]
            state = min(state, other, key=lambda s: s["remaining"])
            state["exceeded"] = exceeded
        return state

    def _hit(self, limit, *identifiers):
        try:
            if self.shared is not None:
                return self._count(self.shared, limit, identifiers)
        except Exception:
            log.warning("rate-limit storage unreachable; counting in memory", exc_info=True)
        return self._count(self.memory, limit, identifiers)

    @staticmethod
    def _count(storage, limit, identifiers):
        """A fixed window: the first hit starts it, every hit counts, it ends after the period."""
        key = _storage_key(limit, identifiers)
        count = storage.incr(key, limit.get_expiry())
        reset_at = storage.get_expiry(key)
        return {
            "limit": limit.amount,
            "remaining": max(0, limit.amount - count),
            "reset": max(0, int(reset_at - time.time())),
            "exceeded": count > limit.amount,
        }


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

    def get_expiry(self, key):
        return self.windows.get(key, (time.time(), 0))[0]


def anonymous(environ):
    """The rate-limit identity of a caller without a key: its address."""
    return f"ip:{environ.get('REMOTE_ADDR')}"


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
