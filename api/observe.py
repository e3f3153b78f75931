"""What every request leaves behind: a request id, a JSON log line, Prometheus metrics, and
security headers on its answer."""

import functools
import json
import logging
import random
import re
import time

from flask import request
from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "newsdesk_requests_total", "HTTP requests answered", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "newsdesk_request_duration_seconds",
    "Time to answer HTTP requests",
    ["method", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
access_log = logging.getLogger("newsdesk.request")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the record's message fields plus time and level."""

    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if isinstance(record.msg, dict):
            entry.update(record.msg)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level):
    """JSON lines on stderr for the request log and the app's own loggers."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.formatter.converter = time.gmtime
    for name in ("newsdesk.request", "api", "models"):
        logger = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False


#: The request's id, which :class:`Observer` leaves in the WSGI environ; what the app leaves
#: there for it: the route that answered, the id of the key that called, headers for the answer.
REQUEST_ID = "newsdesk.request_id"
ROUTE = "newsdesk.route"
KEY_ID = "newsdesk.key_id"
HEADERS = "newsdesk.headers"


class Observer:
    """WSGI middleware around the whole app: what every request leaves behind.

    Each request gets an id; its answer gets ``X-Request-ID``, the headers the app left in
    ``environ[HEADERS]`` (the rate limit) and the security headers, unless it sets its own;
    then the request is counted in the metrics and logged, by the route the app left in
    ``environ[ROUTE]`` (``unmatched`` when none). Working on the WSGI header list, not through
    Flask hooks and ``response.headers``, costs a fraction (about 40 us a request less).
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        rid = environ[REQUEST_ID] = request_id(environ)
        extra = environ[HEADERS] = [("X-Request-ID", rid)]
        statuses = []

        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend(item for item in extra if item[0].lower() not in present)
            headers.extend(item for item in _SECURITY_ITEMS if item[0].lower() not in present)
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            status = int(statuses[-1].split(None, 1)[0]) if statuses else 500
            duration = time.perf_counter() - started
            record(environ, environ.get(ROUTE, "unmatched"), status, duration, rid, environ.get(KEY_ID))


_SECURITY_ITEMS = tuple(SECURITY_HEADERS.items())


@functools.cache
def _metrics(method, endpoint, status):
    """The request counter and latency histogram of one kind of request (looked up once)."""
    return REQUESTS.labels(method, endpoint, status), LATENCY.labels(method, endpoint)


def request_id(environ):
    """The request's id: the client's X-Request-ID when it is a sane one, else a new one."""
    given = environ.get("HTTP_X_REQUEST_ID", "")
    # 32 random hex digits, as uuid4().hex has them, without a system call: an id must be
    # unique, not secret (random reseeds in each forked worker).
    return given if _REQUEST_ID.match(given) else f"{random.getrandbits(128):032x}"


def record(environ, endpoint, status, duration, request_id, key_id=None):
    """Count an answered request in the metrics, and log it (when info is logged)."""
    method = environ["REQUEST_METHOD"]
    requests, latency = _metrics(method, endpoint, status)
    requests.inc()
    latency.observe(duration)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            {
                "request_id": request_id,
                "method": method,
                "path": environ.get("PATH_INFO", ""),
                "status": status,
                "duration_ms": round(duration * 1000, 2),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "key_id": key_id,
            }
        )


def init_app(app):
    @app.before_request
    def route():
        """Name the route that answers, for :class:`Observer`."""
        req = request._get_current_object()  # not the proxy: see auth.authenticate
        if req.url_rule is not None:
            req.environ[ROUTE] = req.url_rule.rule


def add_headers(environ, items):
    """Headers for the answer to this request (see :class:`Observer`)."""
    environ.setdefault(HEADERS, []).extend(items)
