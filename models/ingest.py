"""Writing articles: create, idempotent re-post, replace, partial update and delete.

Every write runs inside :func:`writing`, one transaction that also keeps the derived counts and
the change log in step with the articles. Input arrives validated by the schemas; what needs the
database (does the source exist, is the slug free) is checked here and raised as
:class:`WriteError`.
"""

import contextlib
import hashlib
import json
import logging

import peewee

from . import pages, related
from .articles import PUBLISHED, Article, ArticleBody, ArticleTag, Source, Tag
from .base import db, is_postgres, utcnow, write_transaction
from .changes import Change, DataVersion
from .sanitize import clean_html, strip_control
from .search import index_articles, unindex_article
from .text import (
    html_to_text,
    make_excerpt,
    reading_time_minutes,
    slugify,
    text_to_html,
    word_count,
)

log = logging.getLogger(__name__)

#: Optional fields a full write (POST re-post, PUT) resets when they are left out.
RESET_ON_REPLACE = {
    "url": None,
    "image_url": None,
    "byline": None,
    "language": None,
    "excerpt": None,
    "tags": [],
    "status": PUBLISHED,
}
#: What an article's content hash covers: everything a client sends.
HASHED = (
    "title", "source", "body_html", "body_text", "published_at", "url", "image_url", "byline",
    "language", "tags", "excerpt", "external_id", "slug", "status",
)


class WriteError(Exception):
    """A write that cannot be done: ``status`` (409 or 422) and ``errors`` per field."""

    def __init__(self, status, errors):
        super().__init__(errors)
        self.status = status
        self.errors = errors


class Touched:
    """Sources and tags whose counts a transaction's writes have changed."""

    def __init__(self):
        self.sources, self.tags, self.articles = set(), set(), set()

    def refresh(self):
        if self.sources:
            Source.refresh_counts(self.sources)
        if self.tags:
            Tag.refresh_counts(self.tags)


@contextlib.contextmanager
def writing(refresh_related=True):
    """One write transaction; counts of what it touched are brought up to date before commit.

    After the commit, the computed related articles of every article written are refreshed (in
    a transaction of their own: a write never fails on that computation). A bulk load may defer
    that to ``newsdesk related rebuild`` with ``refresh_related=False``.
    """
    touched = Touched()
    with write_transaction():
        yield touched
        touched.refresh()
        DataVersion.bump()
    if touched.articles and refresh_related:
        try:
            related.refresh_many(touched.articles)
        except peewee.DatabaseError:
            # The article is stored; its related list catches up on the next write or rebuild.
            log.exception("refreshing related articles of %s failed", sorted(touched.articles))


def _content_of(article):
    """What a client sent for ``article``, as stored (for partial updates and hashing)."""
    body = ArticleBody.get_or_none(ArticleBody.article == article.id)
    tags = (
        Tag.select(Tag.slug)
        .join(ArticleTag)
        .where(ArticleTag.article == article.id)
        .order_by(Tag.slug)
    )
    return {
        "title": article.title,
        "source": Source.get_by_id(article.source_id).slug,
        "body_html": body.body_html if body else "",
        "body_text": body.body_text if body else "",
        "published_at": article.published_at,
        "url": article.url,
        "image_url": article.image_url,
        "byline": article.byline,
        "language": article.language,
        "tags": [tag.slug for tag in tags],
        "excerpt": article.excerpt,
        "external_id": article.external_id,
        "slug": article.slug,
        "status": article.status,
    }


def _digest(content):
    material = {key: content.get(key) for key in HASHED}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _source(slug):
    source = Source.get_or_none(Source.slug == slug)
    if source is None:
        raise WriteError(422, {"source": [f"No source with slug {slug!r}."]})
    return source


def _unique_slug(title, exclude_id=None):
    base = slugify(title) or "article"
    if base.isdigit():
        base = "a-" + base  # an all-digit slug would read as an id in /v1/articles/{id or slug}
    if is_postgres():
        # Writers deriving the same slug take turns: each sees the slugs the others committed.
        db.execute_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (base,))
    taken_query = Article.select(Article.slug).where(Article.slug.startswith(base))
    if exclude_id is not None:
        taken_query = taken_query.where(Article.id != exclude_id)
    taken = {row.slug for row in taken_query}
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


def _tag_rows(names):
    """Tag ids for ``names`` (slugs or names), creating the tags not seen before."""
    wanted = {}
    for name in names:
        slug = slugify(name)
        wanted.setdefault(slug, name if slug != name else slug.replace("-", " ").title())
    if not wanted:
        return []
    Tag.insert_many(
        [{"slug": slug, "name": name} for slug, name in wanted.items()]
    ).on_conflict_ignore().execute()
    return [tag.id for tag in Tag.select(Tag.id).where(Tag.slug.in_(list(wanted)))]


def save_article(data, touched, article=None, partial=False):
    """Create or update an article from validated input; returns ``(article, outcome)``.

    ``outcome`` is ``created``, ``updated`` or ``unchanged``. Without ``article``, input naming
    the ``(source, external_id)`` of a stored article updates that one (idempotent ingestion).
    ``partial`` keeps stored values of the fields left out (PATCH); otherwise optional fields
    left out are reset, except ``slug`` and ``published_at``, which keep their stored value.
    """
    source = _source(data["source"]) if "source" in data else None
    if article is None and source is not None and data.get("external_id"):
        article = Article.get_or_none(
            (Article.source == source) & (Article.external_id == data["external_id"])
        )
        partial = False
    if article is None:
        content = {"slug": None, "published_at": None, "external_id": None, **RESET_ON_REPLACE}
    else:
        content = _content_of(article)
        if not partial:
            content.update(RESET_ON_REPLACE)
    content.update(data)
    if source is None:
        source = Source.get(Source.slug == content["source"])

    if "body_html" in data or "body_text" in data:
        if data.get("body_html"):
            content["body_html"] = clean_html(data["body_html"])
            content["body_text"] = (
                strip_control(data["body_text"]).strip()
                if data.get("body_text")
                else html_to_text(content["body_html"])
            )
        else:
            content["body_text"] = strip_control(data["body_text"]).strip()
            content["body_html"] = text_to_html(content["body_text"])
        if "excerpt" not in data:
            content["excerpt"] = None
    if not content.get("body_text"):
        raise WriteError(422, {"body_text": ["The article needs a non-empty body_html or body_text."]})

    if content.get("slug") and "slug" in data:
        clash = Article.select().where(Article.slug == content["slug"])
        if article is not None:
            clash = clash.where(Article.id != article.id)
        if clash.exists():
            raise WriteError(409, {"slug": [f"Slug {content['slug']!r} is used by another article."]})
    elif not content.get("slug"):
        content["slug"] = _unique_slug(content["title"])
    now = utcnow()
    content["published_at"] = content.get("published_at") or now

    digest = _digest(content)
    if article is not None and article.content_hash == digest:
        return article, "unchanged"

    words = word_count(content["body_text"])
    row = {
        "slug": content["slug"],
        "source": source.id,
        "external_id": content.get("external_id"),
        "title": content["title"],
        "excerpt": content.get("excerpt") or make_excerpt(content["body_text"]),
        "url": content.get("url"),
        "image_url": content.get("image_url"),
        "byline": content.get("byline"),
        "language": content.get("language") or source.language,
        "status": content.get("status") or PUBLISHED,
        "published_at": content["published_at"],
        "word_count": words,
        "reading_time_minutes": reading_time_minutes(words),
        "content_hash": digest,
        "updated_at": now,
    }
    body = {"body_html": content["body_html"], "body_text": content["body_text"]}
    if article is None:
        article_id = Article.insert(**row, created_at=now).execute()
        ArticleBody.insert(article=article_id, **body).execute()
        was_published, outcome = False, "created"
    else:
        article_id = article.id
        was_published, outcome = article.status == PUBLISHED, "updated"
        touched.sources.add(article.source_id)
        Article.update(**row, version=Article.version + 1).where(Article.id == article_id).execute()
        if not ArticleBody.update(**body).where(ArticleBody.article == article_id).execute():
            ArticleBody.insert(article=article_id, **body).execute()

    old_tags = {t for (t,) in ArticleTag.select(ArticleTag.tag).where(ArticleTag.article == article_id).tuples()}
    new_tags = _tag_rows(content.get("tags") or [])
    ArticleTag.delete().where(ArticleTag.article == article_id).execute()
    if new_tags:
        ArticleTag.insert_many(
            [{"article": article_id, "tag": t, "published_at": row["published_at"]} for t in new_tags]
        ).execute()
    touched.tags |= old_tags | set(new_tags)
    touched.sources.add(source.id)
    touched.articles.add(article_id)
    index_articles([article_id])
    pages.refresh_cards([article_id])

    if row["status"] == PUBLISHED:
        Change.record(article_id, "upsert")
    elif was_published:
        Change.record(article_id, "delete", reason="unpublished")
    return Article.with_source().where(Article.id == article_id).get(), outcome


def delete_article(article, touched):
    """Delete an article (its body, tags, relations and comments go with it); leave a tombstone."""
    touched.tags |= {
        t for (t,) in ArticleTag.select(ArticleTag.tag).where(ArticleTag.article == article.id).tuples()
    }
    touched.sources.add(article.source_id)
    Article.delete().where(Article.id == article.id).execute()
    unindex_article(article.id)
    if article.status == PUBLISHED:
        Change.record(article.id, "delete", reason="deleted")


def save(data, article=None, partial=False, attempts=3):
    """:func:`save_article` in a transaction of its own, retried when a concurrent writer wins
    a race on a unique key (PostgreSQL raises then; the retry sees the other row and updates it).
    """
    for attempt in range(attempts):
        try:
            with writing() as touched:
                return save_article(data, touched, article=article, partial=partial)
        except peewee.IntegrityError:
            if attempt == attempts - 1:
                raise


def delete(article):
    with writing() as touched:
        delete_article(article, touched)
