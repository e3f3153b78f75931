"""psycopg2 under gevent workers: a query waits for its answer cooperatively, and a query whose
request ran out of time is cancelled on the server rather than left running there.

Imported only once gevent has patched the standard library (see gunicorn.conf.py).
"""

import contextlib

import psycopg2
from gevent.socket import wait_read, wait_write
from psycopg2 import extensions


def patch_psycopg2():
    """Make every psycopg2 connection of this process wait through :func:`wait`."""
    extensions.set_wait_callback(wait)


def wait(connection, timeout=None):
    """psycopg2's wait callback: the greenlet sleeps until the socket is ready, and the others
    run meanwhile (as psycogreen's does). Interrupted (the request's deadline, a gevent
    ``Timeout``), it cancels the statement on the server and waits for the server to end it
    before passing the interruption on; psycopg2 then closes the connection, and the pool
    discards it."""
    try:
        _poll(connection, timeout)
    except BaseException:
        with contextlib.suppress(psycopg2.Error):
            connection.cancel()
            _poll(connection, timeout)  # the server ends the statement: QueryCanceled
        raise


def _poll(connection, timeout):
    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        if state == extensions.POLL_READ:
            wait_read(connection.fileno(), timeout=timeout)
        elif state == extensions.POLL_WRITE:
            wait_write(connection.fileno(), timeout=timeout)
        else:
            raise psycopg2.OperationalError(f"unexpected state from poll(): {state!r}")
