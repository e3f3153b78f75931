"""Numbered schema steps and the runner that applies them.

Each step is a module ``vNNNN_name.py`` with its own frozen copy of the models and SQL it needs
and one function, ``upgrade(migrator)`` (a ``playhouse.migrate.SchemaMigrator`` of the connected
database), so a step means the same thing forever. A fresh database runs every step from the
first, an existing one the steps after its version: both end with the same schema. A released
step is never edited; a change to the schema is a new module appended to :data:`STEPS`.

The table ``schema_version`` holds one row per version applied (databases made before this
package may hold only their latest); the version is the highest.
"""

import contextlib

import peewee
from peewee import fn
from playhouse.migrate import SchemaMigrator

from ..base import BaseModel, db, file_lock, is_postgres, utcnow, write_transaction
from . import (
    v0001_initial,
    v0002_search_index,
    v0003_data_version,
    v0004_article_cards,
    v0005_drop_unused_webhook_tables,
    v0006_related_queue_and_settings,
    v0007_ids_never_reused,
    v0008_source_and_comment_versions,
    v0009_webhooks,
    v0010_import_jobs,
    v0011_embeddings_and_stories,
    v0012_bulk_queue_rows,
    v0013_modified_at,
    v0014_article_modified_at_index,
    v0015_slug_bytes_index,
    v0016_event_previous_source,
    v0017_search_config,
    v0018_name_and_slug_bytes_indexes,
    v0019_more_ids_never_reused,
    v0020_webhook_paused_versions,
    v0021_unsafe_urls_out_of_bodies,
    v0022_what_older_upgrades_left,
    v0023_data_version_time,
    v0024_tag_slugs_with_every_latin_letter,
    v0025_latest_changes,
    v0026_data_version_time_of_which,
    v0027_comment_idempotency_keys,
    v0028_names_of_one_line,
    v0029_webhook_idempotency_keys,
    v0030_spent_idempotency_keys,
    v0031_search_text_in_nfkc,
    v0032_single_writes_delivered_first,
    v0033_language_tags_in_one_case,
)

#: The steps in order: step ``n`` (from 1) upgrades a database to version ``n``.
STEPS = [
    v0001_initial,
    v0002_search_index,
    v0003_data_version,
    v0004_article_cards,
    v0005_drop_unused_webhook_tables,
    v0006_related_queue_and_settings,
    v0007_ids_never_reused,
    v0008_source_and_comment_versions,
    v0009_webhooks,
    v0010_import_jobs,
    v0011_embeddings_and_stories,
    v0012_bulk_queue_rows,
    v0013_modified_at,
    v0014_article_modified_at_index,
    v0015_slug_bytes_index,
    v0016_event_previous_source,
    v0017_search_config,
    v0018_name_and_slug_bytes_indexes,
    v0019_more_ids_never_reused,
    v0020_webhook_paused_versions,
    v0021_unsafe_urls_out_of_bodies,
    v0022_what_older_upgrades_left,
    v0023_data_version_time,
    v0024_tag_slugs_with_every_latin_letter,
    v0025_latest_changes,
    v0026_data_version_time_of_which,
    v0027_comment_idempotency_keys,
    v0028_names_of_one_line,
    v0029_webhook_idempotency_keys,
    v0030_spent_idempotency_keys,
    v0031_search_text_in_nfkc,
    v0032_single_writes_delivered_first,
    v0033_language_tags_in_one_case,
]

LATEST_VERSION = len(STEPS)

#: Advisory lock key serializing schema changes on PostgreSQL ("NDMG").
MIGRATION_LOCK = 0x4E444D47


class SchemaVersion(BaseModel):
    """One row per schema version applied."""

    version = peewee.IntegerField(primary_key=True)
    applied_at = peewee.DateTimeField(default=utcnow)


def schema_problem(version):
    """What keeps this code from a database of schema ``version`` (None: no schema), and what
    to do, as a sentence to show; None when the schema is this code's."""
    if version == LATEST_VERSION:
        return None
    if version is not None and version > LATEST_VERSION:
        return (
            f"the database has schema version {version}, newer than this code's"
            f" {LATEST_VERSION}: run the newer version of Newsdesk that upgraded it"
        )
    if version is None:
        return "the database has no Newsdesk schema: run `newsdesk db init`"
    return (
        f"the database has schema version {version}, this code needs {LATEST_VERSION}:"
        " run `newsdesk db init`"
    )


def current_version():
    """The schema version of the connected database, or None when it has none."""
    if not db.table_exists(SchemaVersion._meta.table_name):
        return None
    return SchemaVersion.select(fn.MAX(SchemaVersion.version)).scalar()


@contextlib.contextmanager
def _migration_lock():
    """A transaction holding the right to change the schema until it ends.

    PostgreSQL: a transaction-scoped advisory lock, taken before anything else. SQLite: the
    write lock, taken at BEGIN IMMEDIATE. Another process waits until this one commits or rolls
    back.
    """
    with write_transaction():
        if is_postgres():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        yield


@contextlib.contextmanager
def upgrading():
    """The block holds the right to change the schema, so that what an upgrade does besides
    its steps (the task queue's tables, the cards rendered again) runs one process at a time
    too, and the others wait for it however long it takes: on PostgreSQL, this session's
    advisory lock on the key each step takes (they stack); on SQLite, a lock on the file
    ``<database>.upgrade-lock`` beside it (SQLite's own write lock is waited for only as long
    as its busy timeout, seconds, which a step of a large database outlasts). Not to be
    nested: a second lock of the file in the same process would wait for the first."""
    if not is_postgres():
        with file_lock("upgrade-lock"):
            yield
        return
    db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        yield
    finally:
        db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def _apply_next_step(migrator):
    """Under the migration lock, apply the step after the version found there, if any, and
    stamp it in the same transaction. Returns the version found (None: no schema) and the
    version then."""
    with _migration_lock():
        # Under the lock: two CREATE TABLE IF NOT EXISTS at once collide in PostgreSQL's
        # catalog (duplicate pg_type key).
        SchemaVersion.create_table()
        found = current_version()
        version = found or 0
        if version < LATEST_VERSION:
            version += 1
            STEPS[version - 1].upgrade(migrator)
            if not is_postgres():
                _check_foreign_keys()
            SchemaVersion.create(version=version)
        return found, version


@contextlib.contextmanager
def _foreign_keys_off():
    """On SQLite, foreign keys are not enforced while steps run, as SQLite's way of changing a
    table (make the new one, copy, drop the old, rename) requires: dropping a table with them on
    would delete the rows referring to it. Each step checks them before it commits."""
    if is_postgres():
        yield
        return
    db.execute_sql("PRAGMA foreign_keys = OFF")  # outside any transaction, or it does nothing
    try:
        yield
    finally:
        db.execute_sql("PRAGMA foreign_keys = ON")


def _check_foreign_keys():
    broken = db.execute_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise peewee.IntegrityError(f"foreign keys broken by the migration: {broken[:5]}")


def init_db():
    """Create or upgrade the schema of the connected database; safe to run again, and from
    several processes at once. Returns ``(before, after)`` versions, ``before`` None for a
    fresh database.

    Each step commits with its version stamp, so a failed step leaves the version before it.
    The version is read again under the lock before each step: a step another process applied
    meanwhile is not applied twice.
    """
    before = after = current_version()
    migrator = SchemaMigrator.from_database(db)
    with _foreign_keys_off():
        first = True
        while after is None or after < LATEST_VERSION:
            found, after = _apply_next_step(migrator)
            if first:  # read under the lock: another process may have applied steps since
                before, first = found, False
    return before, after
