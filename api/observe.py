"""What every request leaves behind: a request id, a log line, Prometheus metrics, and
security headers on its answer."""

import functools
import json
import logging
import random
import re
import time

from flask import g, request
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
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
#: What the app leaves in the WSGI environ for :class:`RequestLog`: the route that answered
#: and the id of the key that called.
ROUTE = "newsdesk.route"
KEY_ID = "newsdesk.key_id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
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


class TextFormatter(logging.Formatter):
    """One readable line per record, for a terminal: time, level, then the request or message."""

    def format(self, record):
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        if isinstance(record.msg, dict):
            entry = record.msg
            line = (
                f"{entry['method']} {entry['path']} {entry['status']} {entry['duration_ms']}ms"
                f" {entry['remote_addr']} rid={entry['request_id']}"
            )
            if entry.get("key_id") is not None:
                line += f" key={entry['key_id']}"
        else:
            line = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return f"{stamp} {record.levelname.lower():<7} {line}"


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def configure_logging(level, style="json"):
    """Lines on stderr for the request log and the app's own loggers: JSON (for log
    collectors) or text (for a terminal)."""
    handler = logging.StreamHandler()
    handler.setFormatter(FORMATTERS[style]())
    handler.formatter.converter = time.gmtime
    for name in ("newsdesk.request", "api", "models"):
        logger = logging.getLogger(name)
        for old in [
            h for h in logger.handlers if isinstance(h.formatter, tuple(FORMATTERS.values()))
        ]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False


class RequestLog:
    """WSGI middleware around everything: each request gets an id (``X-Request-ID``, the
    client's when it is a sane one), its answer the security headers unless it sets its own,
    and once answered it is counted in the metrics and logged, by the route the app left in
    ``environ[ROUTE]`` (``unmatched`` when none)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        rid = request_id(environ)
        statuses = []

        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.append(("X-Request-ID", rid))
            headers.extend(item for item in SECURITY_HEADERS if item[0].lower() not in present)
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            status = int(statuses[-1].split(None, 1)[0]) if statuses else 500
            record(environ, status, time.perf_counter() - started, rid)


@functools.cache
def _metrics(method, endpoint, status):
    """The request counter and latency histogram of one kind of request (looked up once)."""
    return REQUESTS.labels(method, endpoint, status), LATENCY.labels(method, endpoint)


def request_id(environ):
    """The client's X-Request-ID when it is a sane one, else 32 random hex digits (unique, not
    secret: ``random`` is reseeded in each forked worker)."""
    given = environ.get("HTTP_X_REQUEST_ID", "")
    return given if _REQUEST_ID.match(given) else f"{random.getrandbits(128):032x}"


def record(environ, status, duration, request_id):
    """Count an answered request in the metrics, and log it (when info is logged)."""
    method = environ["REQUEST_METHOD"]
    requests, latency = _metrics(method, environ.get(ROUTE, "unmatched"), status)
    requests.inc()
    latency.observe(duration)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            {
                "request_id": request_id,
                "method": method,
                "path": _path(environ),
                "status": status,
                "duration_ms": round(duration * 1000, 2),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "key_id": environ.get(KEY_ID),
            }
        )


def _path(environ):
    """The path the request asked for, with its query string."""
    query = environ.get("QUERY_STRING")
    return environ.get("PATH_INFO", "") + (f"?{query}" if query else "")


def describe(response):
    """after_request: leave the route that answered and the caller's key id for the log."""
    environ = request.environ
    if request.url_rule is not None:
        environ[ROUTE] = request.url_rule.rule
    key = g.get("api_key")
    if key is not None:
        environ[KEY_ID] = key.id
    return response
