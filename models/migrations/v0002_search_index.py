"""Version 2: the full-text search table, filled from the articles already stored.

SQLite gets an FTS5 table (``article_search``, rowid = article id); PostgreSQL a weighted
``tsvector`` per article (``article_document``) with a GIN index. The models and the indexing
SQL are frozen copies of ``models/search.py`` at that version (commit 2f8fafc).
"""

import datetime

import peewee
from playhouse.postgres_ext import TSVectorField
from playhouse.sqlite_ext import FTS5Model, SearchField

PG_CONFIG = "english"
BATCH = 500
_EPOCH = datetime.datetime(1970, 1, 1)


class BaseModel(peewee.Model):
    class Meta:
        legacy_table_names = False


class Article(BaseModel):
    """The article columns this step reads."""

    id = peewee.AutoField()
    title = peewee.TextField()
    excerpt = peewee.TextField(default="")
    published_at = peewee.DateTimeField()


class ArticleBody(BaseModel):
    """The body columns this step reads."""

    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    body_text = peewee.TextField(default="")


class ArticleSearch(FTS5Model):
    title = SearchField()
    excerpt = SearchField()
    body = SearchField()
    period = SearchField()

    class Meta:
        table_name = "article_search"
        options = {"tokenize": "porter unicode61 remove_diacritics 2"}


class ArticleDocument(BaseModel):
    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    document = TSVectorField()

    class Meta:
        table_name = "article_document"


#: Each of title, excerpt and body weighted, then the period token (not stemmed).
PG_DOCUMENT = (
    "setweight(to_tsvector(%s, %s), 'A') || setweight(to_tsvector(%s, %s), 'B') || "
    "setweight(to_tsvector(%s, %s), 'C') || setweight(to_tsvector('simple', %s), 'D')"
)


def period_token(moment):
    """The token of the week ``moment`` falls in (weeks of the Julian day count)."""
    julian_day = (moment - _EPOCH).total_seconds() / 86400 + 2440587.5
    return f"zzp{int(julian_day // 7)}"


def index_articles(database, ids):
    """(Re)index the articles ``ids`` from their stored title, excerpt and body."""
    rows = (
        Article.select(
            Article.id, Article.title, Article.excerpt, Article.published_at, ArticleBody.body_text
        )
        .join(ArticleBody, peewee.JOIN.LEFT_OUTER)
        .where(Article.id.in_(ids))
        .tuples()
    )
    if isinstance(database, peewee.PostgresqlDatabase):
        for article_id, title, excerpt, published_at, body in rows:
            database.execute_sql(
                "INSERT INTO article_document (article_id, document) VALUES "
                f"(%s, {PG_DOCUMENT}) "
                "ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document",
                (
                    article_id,
                    PG_CONFIG,
                    title,
                    PG_CONFIG,
                    excerpt,
                    PG_CONFIG,
                    body or "",
                    period_token(published_at),
                ),
            )
        return
    rows = list(rows)
    ArticleSearch.delete().where(ArticleSearch.rowid.in_(ids)).execute()
    ArticleSearch.insert_many(
        [
            {
                "rowid": article_id,
                "title": title,
                "excerpt": excerpt,
                "body": body or "",
                "period": period_token(published_at),
            }
            for article_id, title, excerpt, published_at, body in rows
        ]
    ).execute()


def upgrade(migrator):
    """Create the search table of the database's engine and index every stored article."""
    database = migrator.database
    postgres = isinstance(database, peewee.PostgresqlDatabase)
    models = [Article, ArticleBody, ArticleDocument if postgres else ArticleSearch]
    with database.bind_ctx(models):
        models[-1].create_table()
        ids = [article_id for (article_id,) in Article.select(Article.id).tuples()]
        for start in range(0, len(ids), BATCH):
            index_articles(database, ids[start : start + BATCH])
