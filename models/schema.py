"""Creating and upgrading the schema.

A fresh database gets every table of the current models and is stamped with the latest version.
An existing one is upgraded one version at a time by the steps in ``MIGRATIONS``: functions of a
``playhouse.migrate`` schema migrator that change the schema (with ``migrate(...)`` operations, or
by creating tables) and backfill data; each step and its version stamp commit together.
"""

import peewee
from peewee import fn
from playhouse.migrate import SchemaMigrator, migrate

from .articles import Article, ArticleBody, ArticleTag, Relation, Source, Tag
from .base import BaseModel, Setting, db, utcnow
from .changes import Change, DataVersion
from .comments import Comment
from .keys import ApiKey
from .search import create_index, index_articles
from .related import RelatedQueue
from .summaries import Summary
from .webhooks import Webhook, WebhookDelivery

MODELS = [
    Source,
    Tag,
    Article,
    ArticleBody,
    ArticleTag,
    Relation,
    ApiKey,
    Comment,
    Change,
    DataVersion,
    Webhook,
    WebhookDelivery,
    Summary,
    RelatedQueue,
    Setting,
]


class SchemaVersion(BaseModel):
    """One row per schema version applied."""

    version = peewee.IntegerField(primary_key=True)
    applied_at = peewee.DateTimeField(default=utcnow)


def _add_search_index(migrator):
    """Version 2: the full-text search table, filled from the articles already stored."""
    create_index()
    ids = [article_id for (article_id,) in Article.select(Article.id).tuples()]
    for start in range(0, len(ids), 500):
        index_articles(ids[start : start + 500])


#: version -> function(migrator) upgrading the schema from the version before.
#: Version 1 is the schema ``create_tables`` made from the models as first released.
def _add_data_version(migrator):
    """Version 3: the write counter behind ETags."""
    DataVersion.create_table()
    DataVersion.ensure()


def _add_article_cards(migrator):
    """Version 4: each article as lists show it, written once per change (``article.card``)."""
    migrate(migrator.add_column(Article._meta.table_name, Article.card.column_name, Article.card))


def _add_related_queue(migrator):
    """Version 5: the queue of articles whose related lists are due, and settings."""
    db.create_tables([RelatedQueue, Setting])


MIGRATIONS = {2: _add_search_index, 3: _add_data_version, 4: _add_article_cards, 5: _add_related_queue}

LATEST_VERSION = 1 + len(MIGRATIONS)


def current_version():
    """The schema version of the connected database, or None when it has none."""
    if not db.table_exists(SchemaVersion._meta.table_name):
        return None
    return SchemaVersion.select(fn.MAX(SchemaVersion.version)).scalar()


def init_db():
    """Create or upgrade the schema; safe to run again. Returns ``(before, after)`` versions."""
    with db.atomic():
        before = current_version()
        if before is None:
            db.create_tables([SchemaVersion, *MODELS])
            create_index()
            DataVersion.ensure()
            SchemaVersion.create(version=LATEST_VERSION)
            return None, LATEST_VERSION
    migrator = SchemaMigrator.from_database(db.obj)
    for version in range(before + 1, LATEST_VERSION + 1):
        with db.atomic():
            MIGRATIONS[version](migrator)
            SchemaVersion.create(version=version)
    return before, LATEST_VERSION


def is_empty():
    return not Article.select().exists()
