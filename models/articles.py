"""Sources, articles, their bodies, tags and relations, and the queries on them."""

import peewee
from peewee import fn

from .base import BaseModel, execute_many, insert_rows, is_postgres, kept, utcnow, utcnow_exact

PUBLISHED = "published"
DRAFT = "draft"
ARTICLE_STATUSES = (PUBLISHED, DRAFT)
#: Every status but published: what searches take out of the index's matches.
UNPUBLISHED = tuple(status for status in ARTICLE_STATUSES if status != PUBLISHED)
RELATION_KINDS = ("related", "follow_up", "background", "same_story")
EDITORIAL = "editorial"
COMPUTED = "computed"

#: The largest id a database integer holds; larger ones name nothing.
MAX_ID = 2**63 - 1
#: sort name -> (article column, newest first?)
ARTICLE_SORTS = {
    "-published_at": ("published_at", True),
    "published_at": ("published_at", False),
    "-updated_at": ("updated_at", True),
}


def seek(query, keys, after, descending):
    """Keyset paging: keep the rows strictly past ``after`` in the order of ``keys``.

    ``keys`` are the sort columns, the last one unique (the id), so the order is total and a
    cursor taken from one page never skips or repeats a row while new rows arrive. Text is
    ordered byte by byte (SQLite's own order; PostgreSQL's "C" collation, not the database's
    locale), so that both databases list alike.
    """
    if is_postgres():
        keys = [
            key.collate('"C"') if isinstance(key, peewee.CharField | peewee.TextField) else key
            for key in keys
        ]
    if after is not None:
        row, bound = peewee.Tuple(*keys), peewee.Tuple(*after)
        query = query.where(row < bound if descending else row > bound)
    return query.order_by(*(key.desc() if descending else key.asc() for key in keys))


class Source(BaseModel):
    """A publisher."""

    id = peewee.AutoField()
    slug = peewee.CharField(max_length=100, unique=True)
    name = peewee.CharField(max_length=200)
    homepage_url = peewee.TextField(null=True)
    logo_url = peewee.TextField(null=True)
    language = peewee.CharField(max_length=16, default="en")
    country = peewee.CharField(max_length=2, null=True)
    article_count = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    #: Raised whenever what the source's answer shows changes (its ETag comes from it).
    version = peewee.IntegerField(default=1)
    #: When the version was last raised (the answer's Last-Modified); NULL: ``updated_at``.
    modified_at = peewee.DateTimeField(null=True)

    @property
    def last_modified(self):
        return self.modified_at or self.updated_at

    @classmethod
    def new_version(cls, now=None):
        """The columns of an update that changes what a source's answer shows: its version
        raised, and when (its Last-Modified)."""
        return {cls.version: cls.version + 1, cls.modified_at: now or utcnow()}

    @classmethod
    def refresh_counts(cls, ids=None):
        """Recount the published articles of the given sources (all when ``ids`` is None); a
        source whose count changed has a new version."""
        count = Article.select(fn.COUNT(Article.id)).where(
            (Article.source == cls.id) & (Article.status == PUBLISHED)
        )
        query = cls.update({cls.article_count: count, **cls.new_version()}).where(
            cls.article_count != count
        )
        if ids is not None:
            query = query.where(cls.id.in_(list(ids)))
        query.execute()


class Article(BaseModel):
    """An article's metadata: everything a list shows. The body lives in :class:`ArticleBody`."""

    id = peewee.AutoField()
    slug = peewee.CharField(max_length=200, unique=True)
    source = peewee.ForeignKeyField(Source, backref="articles", on_delete="RESTRICT")
    external_id = peewee.CharField(max_length=500, null=True)
    title = peewee.TextField()
    excerpt = peewee.TextField(default="")
    url = peewee.TextField(null=True)
    image_url = peewee.TextField(null=True)
    byline = peewee.CharField(max_length=300, null=True)
    language = peewee.CharField(max_length=16, default="en")
    status = peewee.CharField(
        max_length=16,
        default=PUBLISHED,
        constraints=[peewee.Check("status IN ('published', 'draft')")],
    )
    published_at = peewee.DateTimeField()
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    word_count = peewee.IntegerField(default=0)
    reading_time_minutes = peewee.IntegerField(default=0)
    comment_count = peewee.IntegerField(default=0)
    #: Raised on every write; names the version a summary or an ETag was made from.
    version = peewee.IntegerField(default=1)
    #: When the version was last raised: a write, or a change of what its answer shows besides
    #: (its comment count, its source, its story). The answer's Last-Modified; NULL (rows
    #: written before version 13, or by a process of version 12 during an upgrade):
    #: ``updated_at``.
    modified_at = peewee.DateTimeField(null=True, index=True)
    #: No longer read (a write is unchanged when what it would store equals what is stored:
    #: ``models.ingest``), and written empty: processes of version 12, which may still run
    #: beside this one during an upgrade, take a matching hash for an unchanged re-post.
    content_hash = peewee.CharField(max_length=64, default="")
    #: The article as lists show it, rendered by its schema (``models.cards``) whenever what it
    #: shows changes. NULL is read live.
    card = peewee.TextField(null=True)
    #: The story the article is part of, across sources and languages (``models.stories``);
    #: set by the worker when the article is embedded.
    story = peewee.DeferredForeignKey("Story", null=True, on_delete="SET NULL", index=False)
    #: The earlier article of its story this one is a near-identical copy of (a wire copy).
    duplicate_of = peewee.ForeignKeyField("self", null=True, on_delete="SET NULL", index=False)

    class Meta:
        indexes = (
            (("story", "published_at", "id"), False),
            (("duplicate_of",), False),
            (("source", "external_id"), True),
            (("status", "published_at", "id"), False),
            (("source", "status", "published_at", "id"), False),
            (("language", "status", "published_at", "id"), False),
            (("status", "updated_at", "id"), False),
        )

    @classmethod
    def with_source(cls):
        """Articles joined to the few source columns an article shows, in one query."""
        return cls.select(cls, Source.id, Source.slug, Source.name, Source.logo_url).join(Source)

    @classmethod
    def published(cls):
        return cls.with_source().where(cls.status == PUBLISHED)

    @property
    def last_modified(self):
        return self.modified_at or self.updated_at

    @property
    def text_id(self):
        """The text it carries: the id of the article it copies (``duplicate_of``), or its own."""
        return self.duplicate_of_id or self.id

    @classmethod
    def lookup(cls, key, include_drafts=False):
        """The article whose id or slug is ``key`` (published only, unless asked), or None."""
        query = cls.with_source() if include_drafts else cls.published()
        if key.isascii() and key.isdigit():
            if int(key) > MAX_ID:
                return None
            query = query.where(cls.id == int(key))
        else:
            query = query.where(cls.slug == key)
        return query.first()

    @classmethod
    def filtered(
        cls,
        query,
        *,
        sources=(),
        tags=(),
        languages=(),
        published_after=None,
        published_before=None,
        updated_since=None,
    ):
        """``query`` narrowed by the article filters; comma lists match any of their values.

        The statements written out in plain SQL (``models.reading``: lists, and on SQLite
        hybrid search's keyword ranking) narrow by :func:`models.reading.article_conditions`,
        whose filters mean the same: a filter added here is added there.
        """
        published = cls.published_at
        if tags:
            tagged = ArticleTag.select(ArticleTag.article).join(Tag).where(Tag.slug.in_(list(tags)))
            query = query.where(cls.id.in_(tagged))
        if sources:
            query = query.where(
                cls.source.in_(Source.select(Source.id).where(Source.slug.in_(list(sources))))
            )
        if languages:
            query = query.where(cls.language.in_(list(languages)))
        if published_after is not None:
            query = query.where(published >= published_after)
        if published_before is not None:
            query = query.where(published < published_before)
        if updated_since is not None:
            query = query.where(cls.updated_at >= updated_since)
        return query

    @classmethod
    def kept_ids(cls, condition):
        """The ids of the articles ``condition`` selects, in id order, kept from being deleted
        until the transaction ends (:func:`models.base.kept`): for a write that will refer to
        them."""
        query = cls.select(cls.id).where(condition).order_by(cls.id)
        return [article_id for (article_id,) in kept(query, cls).tuples()]


class ArticleBody(BaseModel):
    """The body of an article, kept off the article row so lists never read it."""

    article = peewee.ForeignKeyField(
        Article, primary_key=True, backref="bodies", on_delete="CASCADE"
    )
    body_html = peewee.TextField(default="")
    body_text = peewee.TextField(default="")


class Tag(BaseModel):
    """A topic."""

    id = peewee.AutoField()
    slug = peewee.CharField(max_length=100, unique=True)
    name = peewee.CharField(max_length=200)
    article_count = peewee.IntegerField(default=0, index=True)
    created_at = peewee.DateTimeField(default=utcnow)

    @classmethod
    def listed(cls, unused=False):
        """Tags with published articles (and those without, with ``unused``: tags of drafts
        alone, or of no article any more); page with :func:`seek`."""
        query = cls.select()
        return query if unused else query.where(cls.article_count > 0)

    @classmethod
    def refresh_counts(cls, ids=None):
        """Recount the published articles of the given tags (all when ``ids`` is None)."""
        count = (
            ArticleTag.select(fn.COUNT(ArticleTag.article))
            .join(Article)
            .where((ArticleTag.tag == cls.id) & (Article.status == PUBLISHED))
        )
        query = cls.update(article_count=count)
        if ids is not None:
            query = query.where(cls.id.in_(list(ids)))
        query.execute()


class ArticleTag(BaseModel):
    """An article's tag. ``published_at`` is copied from the article for per-tag listing."""

    article = peewee.ForeignKeyField(Article, on_delete="CASCADE")
    tag = peewee.ForeignKeyField(Tag, on_delete="CASCADE")
    published_at = peewee.DateTimeField()

    class Meta:
        primary_key = peewee.CompositeKey("article", "tag")
        indexes = ((("tag", "published_at", "article"), False),)


class Relation(BaseModel):
    """A directed link from an article to a related one, editorial (by hand) or computed."""

    id = peewee.AutoField()
    article = peewee.ForeignKeyField(Article, on_delete="CASCADE")
    related = peewee.ForeignKeyField(Article, on_delete="CASCADE")
    kind = peewee.CharField(max_length=20, default="related")
    origin = peewee.CharField(max_length=10, default=EDITORIAL)
    score = peewee.FloatField(default=1.0)
    #: Comma-separated reasons, for example ``shared_tags,similar_text``.
    reasons = peewee.TextField(default="")
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("article", "related"), True),
            (("article", "origin", "score"), False),
        )
        constraints = [peewee.SQL("CHECK (article_id <> related_id)")]

    @property
    def reason_list(self):
        return [reason for reason in self.reasons.split(",") if reason]


class ArticleQueue(BaseModel):
    """Articles waiting for the worker: one row an article, with when it was queued last and
    whether a bulk write (an import) queued it. Single writes are served first, so that an
    article written during a large import does not wait for it. A base only: each subclass is
    a queue with a table of its own; this one has none."""

    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE", backref="+")
    #: To the microsecond: a write just after the worker read the article queues it again.
    queued_at = peewee.DateTimeField()
    bulk = peewee.BooleanField(default=False)

    class Meta:
        indexes = ((("bulk", "queued_at"), False),)

    @classmethod
    def add(cls, article_ids, bulk=False):
        """Queue articles, inside the write transaction that changed them; ``bulk`` when a bulk
        write changed them. An article a single write queued stays a single write's until the
        worker takes it off, whatever queues it again meanwhile."""
        now = utcnow_exact()
        table = cls._meta.table_name
        insert_rows(
            cls,
            [{"article": i, "queued_at": now, "bulk": bulk} for i in sorted(set(article_ids))],
            ' ON CONFLICT ("article_id") DO UPDATE SET "queued_at" = excluded."queued_at",'
            f' "bulk" = "{table}"."bulk" AND excluded."bulk"',
        )

    @classmethod
    def ready(cls):
        """The condition of the queued rows the worker may take now: all of them here."""
        return peewee.SQL("1 = 1")

    @classmethod
    def due(cls, limit, bulk=True):
        """The ``(article_id, queued_at, bulk)`` of up to ``limit`` articles single writes
        queued, oldest first, or when there are none (and ``bulk``), of those bulk writes
        queued: a batch of the worker is never held up by an import's articles in it. Only
        rows :meth:`ready` to be taken."""
        query = (
            cls.select(cls.article, cls.queued_at, cls.bulk)
            .where(cls.ready())
            .order_by(cls.queued_at)
        )
        rows = list(query.where(cls.bulk == False).limit(limit).tuples())  # noqa: E712 (SQL)
        if rows or not bulk:
            return rows
        return list(query.where(cls.bulk == True).limit(limit).tuples())  # noqa: E712 (SQL)

    @classmethod
    def take_off(cls, rows):
        """Inside a write transaction: take the queued ``rows`` (as :meth:`due` read them) off
        the queue, except articles queued again since. One prepared statement for them all, in
        the order of the articles' ids, as :meth:`add` queues them: the worker's delete and a
        write queueing some of them again lock their rows in one order (in the order they
        were queued, the two deadlocked on PostgreSQL)."""
        execute_many(
            f'DELETE FROM "{cls._meta.table_name}" WHERE "article_id" = {{0}}'
            ' AND "queued_at" <= {0}',
            sorted((article_id, queued_at) for article_id, queued_at, _ in rows),
        )


def is_empty():
    """True when no article is stored (``serve`` then loads demo data)."""
    return not Article.select().exists()
