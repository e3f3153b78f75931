"""What every request leaves behind: a request id, a log line, Prometheus metrics, and
security headers on its answer."""

import contextvars
import functools
import json
import logging
import random
import re
import time
import urllib.parse

from flask import current_app, g, request
from prometheus_client import Counter, Histogram
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from . import errors, guards

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
#: The methods counted by name in the metrics; any other is counted as ``OTHER`` (each method
#: a client makes up was a series more, without end).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: What a path and query string keep unescaped in the log: the rest (control characters, a line
#: break that would start a forged line, bytes beyond ASCII) is percent-encoded.
_LOGGED_AS_IS = "/:@!$&'()*+,;=-._~%?"
access_log = logging.getLogger("newsdesk.request")
log = logging.getLogger(__name__)
#: The id of the request being answered, for every record logged meanwhile (:class:`RequestIds`).
current_request_id = contextvars.ContextVar("newsdesk_request_id", default=None)


class RequestIds(logging.Filter):
    """Gives each record logged while a request is answered that request's id, so that a
    traceback is found beside its request's line (``request_id``; none outside requests)."""

    def filter(self, record):
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id.get()
        return True


class Repeats(logging.Filter):
    """Lets a message through once a minute: a loop that fails on each turn (Huey's consumer
    reading a queue that is down: a traceback twice a second) says so once, not a line a turn."""

    def __init__(self, seconds=60):
        super().__init__()
        self.seconds = seconds
        self.last = {}

    def filter(self, record):
        # The message as written out, and the error's kind: one template (Huey's 'Unhandled
        # exception in task %s.') says different things of different tasks.
        failure = record.exc_info[0] if record.exc_info else None
        key = (record.name, record.getMessage(), failure)
        now = time.monotonic()
        if now - self.last.get(key, -self.seconds) < self.seconds:
            return False
        self.last[key] = now
        return True


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
            if getattr(record, "request_id", None) is not None:
                entry["request_id"] = record.request_id
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
            if getattr(record, "request_id", None) is not None:
                line += f" rid={record.request_id}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return f"{stamp} {record.levelname.lower():<7} {line}"


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def formatter(style):
    """The formatter of log lines in ``style`` (``json`` or ``text``), in UTC."""
    made = FORMATTERS[style]()
    made.converter = time.gmtime
    return made


def configure_logging(level, style="json"):
    """Lines on stderr for the request log, the app's own loggers and Huey's (the worker):
    JSON (for log collectors) or text (for a terminal), each with the id of the request it was
    logged in. Huey's from warnings up (its info is a line for each task it runs), once a
    minute at most for one message. (gunicorn's own lines: ``gunicorn.conf.py``.)"""
    app_level = logging.getLevelName(level.upper())
    for names, least, *filters in (
        (("newsdesk.request", "api", "models"), app_level, RequestIds()),
        (("huey",), max(app_level, logging.WARNING), RequestIds(), Repeats()),
    ):
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(style))
        for each in filters:
            handler.addFilter(each)
        for name in names:
            logger = logging.getLogger(name)
            for old in [
                h for h in logger.handlers if isinstance(h.formatter, tuple(FORMATTERS.values()))
            ]:
                logger.removeHandler(old)
            logger.addHandler(handler)
            logger.setLevel(least)
            logger.propagate = False


class RequestLog:
    """WSGI middleware around everything: each request gets an id (``X-Request-ID``, the
    client's when it is a sane one; every record logged meanwhile carries it), its answer the
    security headers unless it sets its own, and once answered it is counted in the metrics and
    logged, by the route the app left in ``environ[ROUTE]`` (``unmatched`` when none). An error
    that reaches it (raised before Flask, which answers its own) is logged and answered with a
    500 problem."""

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

        token = current_request_id.set(rid)
        try:
            return self.wsgi_app(environ, start)
        except errors.WorkerTimeout:
            raise  # gunicorn's worker_abort: the worker is ending, and says so (errors.py)
        except Exception:
            log.exception("Error answering %s %s", environ.get("REQUEST_METHOD"), _path(environ))
            if statuses:  # the answer has begun: the server closes the connection
                raise
            start(
                "500 INTERNAL SERVER ERROR",
                [("Content-Type", errors.PROBLEM_JSON), ("Cache-Control", "no-store")],
            )
            return [errors.problem_body(500, "Internal Server Error")]
        finally:
            status = int(statuses[-1].split(None, 1)[0]) if statuses else 500
            record(environ, status, time.perf_counter() - started, rid)
            current_request_id.reset(token)


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
    counted = method if method in METHODS else "OTHER"
    requests, latency = _metrics(counted, environ.get(ROUTE, "unmatched"), status)
    requests.inc()
    latency.observe(duration)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            {
                "request_id": request_id,
                "method": _escaped(method),
                "path": _path(environ),
                "status": status,
                "duration_ms": round(duration * 1000, 2),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "key_id": environ.get(KEY_ID),
            }
        )


def _path(environ):
    """The path the request asked for, with its query string, as the client sent it (the
    server's ``RAW_URI``; WSGI gives each byte as one character), percent-encoded where it is
    not printable ASCII, with any key in it ``REDACTED``. Without ``RAW_URI``, the decoded
    path with its ``%`` encoded too (a ``%0A`` sent as ``%250A`` is not logged as an escaped
    line break)."""
    raw, query = environ.get("RAW_URI"), environ.get("QUERY_STRING")
    if raw:
        raw, _, sent = raw.partition("?")
        query = sent or query
    else:
        raw = urllib.parse.quote(
            environ.get("PATH_INFO", "").encode("latin-1", "replace"),
            safe=_LOGGED_AS_IS.strip("%?"),
        )
    path = guards.API_KEY.sub("REDACTED", _escaped(raw))  # a key sent as an id, say
    return path + (f"?{_escaped(_redacted(query))}" if query else "")


def _redacted(query):
    """``query`` with the value of each parameter that carries a key (which the request is
    refused for) replaced by ``REDACTED``: the log keeps no key."""
    return without_keys("?" + query)[1:]


#: A query parameter in a text, as in a URL: ``?name=value`` or ``&name=value``.
_PARAMETER = re.compile(r"([?&])([^=&\s'\"]+)=([^&\s'\"]*)")


def without_keys(text):
    """``text`` with the value of each query parameter in it that carries a key
    (:func:`guards.is_credential` of its name, percent-encoded or not, or a key in its value)
    as ``REDACTED``, and any other API key in it too (one sent in a path, say)."""

    def redact(parameter):
        mark, name, value = parameter.groups()
        if guards.is_credential(name) or guards.holds_key(value):
            return f"{mark}{name}=REDACTED"
        return parameter.group(0)

    return guards.API_KEY.sub("REDACTED", _PARAMETER.sub(redact, text))


class KeysOut(logging.Filter):
    """A log filter: a key in a URL that a line quotes shows as ``REDACTED`` (gunicorn's own
    lines about a request it could not read, or failed on, quote its request line)."""

    def filter(self, record):
        message = record.getMessage()
        cleaned = without_keys(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _escaped(text):
    return urllib.parse.quote(text.encode("latin-1", "replace"), safe=_LOGGED_AS_IS)


def describe(response):
    """after_request: leave the route that answered and the caller's key id for the log."""
    environ = request.environ
    if request.url_rule is not None:
        environ[ROUTE] = request.url_rule.rule
    elif isinstance(request.routing_exception, MethodNotAllowed):
        # The route the path names, asked with a method it does not take: counted as its 405s.
        adapter = current_app.url_map.bind_to_environ(environ)
        try:
            rule, _ = adapter.match(
                method=request.routing_exception.valid_methods[0], return_rule=True
            )
        except (HTTPException, IndexError, TypeError):
            pass
        else:
            environ[ROUTE] = rule.rule
    key = g.get("api_key")
    if key is not None:
        environ[KEY_ID] = key.id
    return response
