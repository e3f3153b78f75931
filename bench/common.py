"""What the bench scripts share: where things are, the ``newsdesk`` command and an API key made
with it, a gunicorn server that answers, a throwaway PostgreSQL database and the percentile of a
list of timings. Free ports, the
gunicorn command line and the TCP proxy are the tests' (tests/servers.py)."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from tests.servers import Proxy, answers, free_port, gunicorn_command  # noqa: E402

__all__ = [
    "BIN",
    "OUT",
    "ROOT",
    "Proxy",
    "create_key",
    "free_port",
    "gunicorn",
    "gunicorn_command",
    "log",
    "newsdesk",
    "percentile",
    "postgres_database",
]


def log(message):
    print(message, file=sys.stderr, flush=True)


def percentile(values, share):
    """The least of ``values`` that ``share`` of them (0.99 for a p99) are at or below: the
    nearest rank, as numpy's ``inverted_cdf`` computes it. Every bench script's p99 but wrk's
    own (which it prints) is this one."""
    return float(np.percentile(values, 100 * share, method="inverted_cdf"))


def newsdesk(env, *args):
    """What ``newsdesk *args`` printed (it must succeed)."""
    return subprocess.run(
        [str(BIN / "newsdesk"), *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def create_key(env, name, scopes):
    """A new API key's token (``newsdesk keys create`` prints it alone on its last line)."""
    return newsdesk(env, "keys", "create", "--name", name, "--scopes", scopes).split()[-1]


@contextlib.contextmanager
def gunicorn(app, env, port, ready_path="/healthz", seconds=120, options=()):
    """gunicorn.conf.py's server with 2 workers serving ``app`` (from bench/, where
    ``reference:app`` is), with gunicorn's command-line ``options``; yields its base URL once
    ``ready_path`` answers, within ``seconds`` (a busy machine starts workers slowly), and stops
    it with SIGTERM after."""
    command = gunicorn_command(port, 2, "--log-level", "warning", *options, app)
    process = subprocess.Popen(command, env=env, cwd=ROOT / "bench")
    base = f"http://127.0.0.1:{port}"
    try:
        if not answers(base + ready_path, process, seconds):
            raise SystemExit(f"gunicorn ({app}) did not answer within {seconds} s")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def postgres_database(server_url, prefix):
    """A database of its own on the PostgreSQL server ``server_url``: yields its URL, and drops
    it after."""
    import psycopg2

    name = f"{prefix}_{os.getpid()}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunparse(urlparse(server_url)._replace(path="/" + name))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
