"""Background work on Huey: what must not run inside a request or a write transaction.

The queue's storage follows the database: a SQLite file beside the database's (embedded), the
database itself on PostgreSQL (Huey's Postgres storage, tables ``huey_*``), or Redis when
``NEWSDESK_REDIS_URL`` is set. ``newsdesk worker`` runs the consumer. What a task must do is
recorded durably by the write that calls for it, in the write's own transaction (for related
lists: ``models.related.RelatedQueue``; for embeddings and stories:
``models.embeddings.EmbeddingQueue``); a task only wakes the worker to do it, and a periodic
sweep does it anyway, so a wake-up lost to a crash loses nothing.
"""

import logging
from pathlib import Path

from flask import request
from huey import MemoryHuey, PostgresHuey, RedisHuey, SqliteHuey, crontab
from huey.exceptions import TaskLockedException

from models import bind_database, connected, embeddings, related, stories

from .config import Config

log = logging.getLogger(__name__)


def make_huey(config):
    """The Huey instance for ``config``'s database (in immediate mode: tasks run when called)."""
    if config.tasks_immediate:
        return MemoryHuey("newsdesk", immediate=True)
    if config.redis_url:
        return RedisHuey("newsdesk", url=config.redis_url)
    if config.is_postgres:
        return PostgresHuey("newsdesk", dsn=config.database_url, create_tables=False)
    return SqliteHuey(
        "newsdesk", filename=str(tasks_file(config.database_url)), create_tables=False
    )


def tasks_file(database_url):
    """The SQLite file of the task queue: beside the database's, ``<name>-tasks.db``."""
    database = Path(database_url.removeprefix("sqlite:///"))
    return database.with_name(f"{database.stem}-tasks.db")


config = Config.from_env()
huey = make_huey(config)


def create_queue():
    """Create the queue's tables (part of ``newsdesk db init``)."""
    if not huey.immediate:
        huey.storage.initialize_schema()


@huey.on_startup()
def start_worker():
    bind_database(config.database_url)
    embeddings.configure(config.embedder)


@huey.task()
def refresh_related():
    """Compute the related lists of every article queued for it, one run at a time (a run in
    progress takes what is queued meanwhile)."""
    try:
        with huey.lock_task("refresh-related", ttl=600), connected():
            total = 0
            while done := related.refresh_queued():
                total += done
    except TaskLockedException:
        return 0
    if total:
        log.info("computed the related lists of %d articles", total)
    return total


@huey.task()
def refresh_embeddings():
    """Embed every article queued for it, place each in its story and queue its related list,
    one run at a time; then compute the related lists so queued."""
    try:
        with huey.lock_task("refresh-embeddings", ttl=600), connected():
            total = 0
            while done := stories.refresh_queued():
                total += done
    except TaskLockedException:
        return 0
    if total:
        log.info("embedded and placed %d articles", total)
        refresh_related()
    return total


@huey.periodic_task(crontab(minute="*"))
def sweep():
    """Once a minute, what a lost wake-up left undone."""
    refresh_embeddings.call_local()
    refresh_related.call_local()


def after_write(response):
    """after_request: a successful write may have queued embeddings and related lists: wake
    the worker (embeddings first: related lists use them)."""
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and response.status_code < 300:
        refresh_embeddings()
        refresh_related()
    return response
