"""Helpers of the tests and the benchmarks that run real servers on 127.0.0.1: a free port, the
gunicorn command line of gunicorn.conf.py, waiting for a server to answer, and a TCP proxy that
can cut a database off."""

import contextlib
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_socket():
    """A socket listening on a free port of 127.0.0.1, for the server started next to inherit
    (:func:`gunicorn_command`, and ``pass_fds``): a port chosen free, closed, then bound by the
    server could be taken by another process in between, whose answers a test would then read
    as its server's."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    return listener


def gunicorn_command(bind, workers=2, *options):
    """gunicorn with gunicorn.conf.py on ``bind`` (a port of 127.0.0.1, or a socket of
    :func:`listening_socket` it inherits), then ``options`` (and the app, if one is named: else
    the file's ``api.wsgi:app``)."""
    address = f"127.0.0.1:{bind}" if isinstance(bind, int) else f"fd://{bind.fileno()}"
    return [
        str(BIN / "gunicorn"),
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        "--bind",
        address,
        "--workers",
        str(workers),
        *options,
    ]


def answers(url, process, seconds):
    """Whether ``url`` answers 200 within ``seconds`` while ``process`` (the server) runs. Each
    try is a real request; a refused connection is tried again 20 ms later."""
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:  # refused, not yet listening, or an error status (HTTPError)
            time.sleep(0.02)
    return False


class Proxy:
    """A TCP forwarder between the app and PostgreSQL: ``stop`` drops every connection and
    refuses new ones, as a database that went away; ``start`` lets them through (again)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = free_port()
        self.sockets = []
        self.listener = None

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(128)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, target):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def stop(self):
        # shutdown() wakes the thread blocked in accept(); close() alone would not on Linux.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets = []
