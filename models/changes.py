"""The change log behind delta sync: one row per article upsert or delete, in commit order."""

import functools
import secrets
import time

import peewee
from peewee import fn

from .base import BaseModel, Setting, binding, db, insert_rows, is_postgres, utcnow

UPSERT = "upsert"
DELETE = "delete"
#: Advisory lock key serializing change-log writers on PostgreSQL ("NDCH").
CHANGE_LOG_LOCK = 0x4E444348
#: The setting naming the database in ETags.
ETAG_EPOCH = "etag_epoch"
#: The setting holding the name the database had first (see :func:`token_holds`).
FIRST_ETAG_EPOCH = "etag_epoch_first"
#: The settings holding when each release of the code first served the database, by name:
#: this and the release's digest (see :func:`release_served`).
RELEASE_SERVED = "release_served:"


class Change(BaseModel):
    """An article was created or updated (``upsert``) or removed (``delete``, with a reason)."""

    id = peewee.BigAutoField()
    #: Not a foreign key: a delete's tombstone outlives its article.
    article_id = peewee.BigIntegerField()
    op = peewee.CharField(max_length=10, constraints=[peewee.Check("op IN ('upsert', 'delete')")])
    #: For deletes: ``deleted`` or ``unpublished``.
    reason = peewee.CharField(max_length=20, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    #: The article has a later change (set by the writer of that one).
    superseded = peewee.BooleanField(default=False)

    class Meta:
        indexes = ((("article_id", "id"), False),)
        # and "change_latest", of the ids of the changes not superseded (schema step 25)

    @classmethod
    def feed(cls, since=0):
        """The latest change of each article changed after change ``since``, in log order.

        An article changed again later shows up again later, at its new position, so a client
        that follows the feed never misses a change and never keeps an outdated copy. The
        changes not superseded are read in one range of their index; each is checked to be its
        article's latest all the same (one step of the ``(article_id, id)`` index), so that a
        change a server of an earlier release logged, which marks none superseded, is never
        shown beside the later one.
        """
        newer = cls.alias()
        later = newer.select().where((newer.article_id == cls.article_id) & (newer.id > cls.id))
        return (
            cls.select()
            .where((cls.id > since) & ~cls.superseded & ~fn.EXISTS(later))
            .order_by(cls.id)
        )

    @classmethod
    def record_many(cls, changes, new=()):
        """Log ``(article_id, op, reason)`` changes inside the caller's transaction; returns
        the id of each change by article id (a batch changes an article once). ``new``: ids
        of articles the transaction made, which have no earlier change to supersede.

        On PostgreSQL, sequence values are handed out before commit, so two concurrent writers
        could commit ids 8 and 7 in that order and a reader between them would skip 7. A
        transaction-scoped advisory lock taken here makes change-log writers commit one at a
        time, so ids become visible in order.
        """
        if not changes:
            return {}
        _in_commit_order()
        new = set(new)
        earlier = [article_id for article_id, _, _ in changes if article_id not in new]
        if earlier:
            cls._supersede(earlier)
        now = utcnow()
        # insert_rows, not insert_many: peewee built a batch of 200 changes in 13 ms, a sixth
        # of an import's storing (bench/README.md, twenty-first session).
        insert_rows(
            cls,
            [
                {"article_id": i, "op": op, "reason": reason, "created_at": now}
                for i, op, reason in changes
            ],
        )
        # Change-log writers take turns (the lock above; SQLite's write lock): the newest
        # changes are this transaction's.
        newest = cls.select(cls.article_id, cls.id).order_by(cls.id.desc()).limit(len(changes))
        return dict(newest.tuples())

    @classmethod
    def record_upserts(cls, article_ids):
        """Log an upsert of each article the query ``article_ids`` selects (their ids, in id
        order), in one statement, as :meth:`record_many` logs them (its lock included)."""
        _in_commit_order()
        cls._supersede(article_ids)
        query = article_ids.select_extend(
            peewee.Value(UPSERT), peewee.Value(None), peewee.Value(utcnow()), peewee.Value(False)
        )
        fields = [cls.article_id, cls.op, cls.reason, cls.created_at, cls.superseded]
        cls.insert_from(query, fields).execute()

    @classmethod
    def _supersede(cls, article_ids):
        """Mark superseded the changes of the articles ``article_ids`` (ids, or a query of
        them), about to be logged again. The change log's lock (or SQLite's write lock) keeps
        other writers out until the new changes are in."""
        cls.update(superseded=True).where(
            ~cls.superseded & cls.article_id.in_(article_ids)
        ).execute()


def _in_commit_order():
    """Inside a write transaction logging changes: on PostgreSQL, take the change log's lock,
    so that change-log writers commit one at a time and ids become visible in order
    (:meth:`Change.record_many`)."""
    if is_postgres():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (CHANGE_LOG_LOCK,))


class DataVersion(BaseModel):
    """One row counting every write: the ETag of any public answer derives from it.

    It is raised inside each write transaction, so on every worker and host an ETag issued
    before a write stops matching the moment that write commits.
    """

    id = peewee.IntegerField(primary_key=True, default=1)
    value = peewee.BigIntegerField(default=0)
    #: When the version was last raised, in whole seconds since the epoch (the write's time,
    #: stamped before it commits); NULL until a write after the upgrade that added it.
    changed_at = peewee.BigIntegerField(null=True)
    #: The version ``changed_at`` is the time of. A server of a release before it, running
    #: through an upgrade, raises the version alone: until the next write stamps both, there
    #: is no time of the last write to give (a stale one would answer 304 for what changed).
    changed_version = peewee.BigIntegerField(null=True)

    @classmethod
    def current(cls):
        return cls.state()[0]

    @classmethod
    def state(cls):
        """The version, and when it was raised (seconds since the epoch, or None when that is
        not known: see ``changed_version``)."""
        # Plain SQL: this runs on every revalidation, where building the query costs more than
        # running it. fetchall, not fetchone: a statement left open holds SQLite's read snapshot.
        rows = db.execute_sql(
            "SELECT value, CASE WHEN changed_version = value THEN changed_at END"
            " FROM data_version WHERE id = 1"
        ).fetchall()
        return tuple(rows[0]) if rows else (0, None)

    @classmethod
    def bump(cls):
        """Raise the version inside the caller's write transaction; returns the new one. On
        PostgreSQL the row stays locked until the transaction ends, so writers that raise it
        commit one at a time from here on, in the order of their versions."""
        raised = (
            cls.update(
                value=cls.value + 1,
                changed_at=int(time.time()),
                changed_version=cls.value + 1,
            )
            .where(cls.id == 1)
            .returning(cls.value)
        )
        rows = list(raised.tuples().execute())
        return rows[0][0] if rows else 0

    @classmethod
    def ensure(cls):
        cls.insert(id=1, value=0).on_conflict_ignore().execute()


def etag_epoch():
    """A random name of the database, part of every ETag: a database made again (or given a new
    one after a backup was restored) counts versions and ids from the start again, and its
    answers must not match the tags the one before gave. Read once per process and database."""
    return _epoch(binding())


@functools.lru_cache(maxsize=1)
def _epoch(bound):
    return Setting.get_value(ETAG_EPOCH, "")


def name_for_etags(renew=False):
    """Give the database its name for ETags when it has none (``newsdesk db init``), or a new
    one with ``renew``; the name it had first is kept."""
    if not renew:  # several processes may run db init at once: the first name stays
        Setting.insert(name=ETAG_EPOCH, value=secrets.token_hex(8)).on_conflict_ignore().execute()
    first = Setting.get_value(ETAG_EPOCH, "")  # (named before the first was kept: its name now)
    Setting.insert(name=FIRST_ETAG_EPOCH, value=first).on_conflict_ignore().execute()
    if renew:
        Setting.set_value(ETAG_EPOCH, secrets.token_hex(8))
        # and a Last-Modified later than any a client was given before
        DataVersion.update(changed_at=int(time.time()), changed_version=DataVersion.value).where(
            DataVersion.id == 1
        ).execute()
    _epoch.cache_clear()
    _first_epoch.cache_clear()


def release_served(release):
    """When the release ``release`` (a digest of the code that makes the answers) first served
    this database, in seconds since the epoch, stamped now if it had not: an upgrade may change
    what every answer shows, and no answer of this release may carry a Last-Modified from
    before it (If-Modified-Since would keep an earlier release's answer as current). 0 when
    no release had served it before (a new database: nothing else was ever answered from it;
    or one last served by a release before this record was kept). Read once per process and
    database."""
    return _release_served(binding(), release)


@functools.lru_cache(maxsize=1)
def _release_served(bound, release):
    name = RELEASE_SERVED + release
    stamp = Setting.get_value(name)
    if stamp is None:
        earlier = Setting.select().where(Setting.name.startswith(RELEASE_SERVED)).exists()
        stamp = int(time.time()) if earlier else 0
        Setting.insert(name=name, value=str(stamp)).on_conflict_ignore().execute()
        stamp = Setting.get_value(name, stamp)  # another process's, if it stamped first
    return int(stamp)


def token_holds(database):
    """Whether a ``/v1/changes`` token of the database named ``database`` follows this one's
    history: one of this name; one given before tokens named their database (None) while this
    one has the name it had first, not once a backup restored was named again (nor where the
    first name was never kept: as before it was). The names are read once per process."""
    if database is not None:
        return database == etag_epoch()
    first = _first_epoch(binding())
    return first is None or first == etag_epoch()


@functools.lru_cache(maxsize=1)
def _first_epoch(bound):
    return Setting.get_value(FIRST_ETAG_EPOCH, None)
