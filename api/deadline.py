"""Request deadlines: a request still running after ``NEWSDESK_REQUEST_TIMEOUT`` seconds
(``NEWSDESK_IMPORT_TIMEOUT`` for ``POST /v1/import``) is answered 503 problem+json with
``Retry-After``, before gunicorn's worker timeout, set above both, would kill its worker (an
HTML 500 or a dropped connection)."""

import time

import gevent

from .errors import DEADLINE, too_slow

IMPORT_PATH = "/v1/import"


class Deadline:
    """WSGI middleware: each request gets its deadline in ``environ[DEADLINE]``, where the
    database hook reads it (a SQLite statement stops at it: :func:`models.set_deadline`; the
    error handler then answers :func:`errors.too_slow`). Under gevent workers a gevent
    ``Timeout`` also interrupts the request wherever it waits: reading its body, a PostgreSQL
    statement (cancelled on the server, :mod:`api.green`), a pooled connection, Redis. Work on
    the CPU that never waits is not interrupted: only gunicorn's timeout ends that."""

    def __init__(self, app, wsgi_app, config):
        self.app = app
        self.wsgi_app = wsgi_app
        self.seconds = config.request_timeout
        self.import_seconds = config.import_timeout
        self.cooperative = config.worker_class == "gevent"

    def __call__(self, environ, start_response):
        seconds = self.import_seconds if environ.get("PATH_INFO") == IMPORT_PATH else self.seconds
        environ[DEADLINE] = (time.monotonic() + seconds, seconds)
        if not self.cooperative:
            return self.wsgi_app(environ, start_response)
        started = []

        def start(status, headers, exc_info=None):
            started.append(status)
            return start_response(status, headers, exc_info)

        timer = gevent.Timeout(seconds)
        timer.start()
        try:
            return self.wsgi_app(environ, start)
        except gevent.Timeout as error:
            if error is not timer or started:
                raise
            with self.app.app_context():
                response = too_slow(seconds)
            return response(environ, start_response)
        finally:
            timer.close()
