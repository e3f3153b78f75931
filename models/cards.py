"""Stored cards: each article's list fields as ``schemas.articles.card_schema`` renders them.

A card is a cache of that schema's output, kept in ``article.card`` so that a list page is one
indexed read of 20 stored strings. It is rendered again inside every transaction that changes
what it shows (the article, its tags, its comment count, its source, its story), and all
cards are rendered again by ``newsdesk db init`` when the schema's fingerprint changes. A
card that changed is a change of the article for delta sync too (:func:`publish`).
"""

import functools
import operator

import orjson
from peewee import SQL, fn

from schemas.articles import CARD_FIELDS, body_schema, card_fingerprint, card_schema

from .articles import PUBLISHED, Article, ArticleTag, Source, Tag
from .base import Setting, is_postgres, locked, utcnow, write_transaction
from .changes import UPSERT, Change, DataVersion

BATCH = 500
FINGERPRINT = "card_fingerprint"


def render(article):
    """The card of ``article``: an Article whose ``source`` and ``tag_list`` are loaded."""
    return orjson.dumps(card_schema.dump(article)).decode()


def document(card, body=None):
    """An article as answers and webhook payloads show it: its stored ``card``, with the body
    fields rendered by the same schema when ``body`` (``(html, text)``) is given."""
    doc = orjson.loads(card)
    if body is not None:
        doc.update(body_schema.dump({"body_html": body[0], "body_text": body[1]}))
    return doc


def attach_tags(articles):
    """Give each article its ``tag_list`` (tags in slug order), with one query for them all."""
    by_id = {article.id: article for article in articles}
    for article in articles:
        article.tag_list = []
    if by_id:
        rows = (
            ArticleTag.select(ArticleTag.article, Tag.slug, Tag.name)
            .join(Tag)
            .where(ArticleTag.article.in_(list(by_id)))
            .order_by(Tag.slug)
            .tuples()
        )
        for article_id, slug, name in rows:
            by_id[article_id].tag_list.append(Tag(slug=slug, name=name))
    return articles


def refresh(ids=None, source_id=None):
    """Render again the cards of the articles ``ids``, or of a source's articles, or of all.

    Only the cards that come out different are stored, each with a new version (the article's
    validators change) and ``modified_at``. Returns the ids of the published articles among
    them: the changes delta sync reports (:func:`publish`).
    """
    if ids is None:
        query = Article.select(Article.id).order_by(Article.id)
        if source_id is not None:
            query = query.where(Article.source == source_id)
        ids = [article_id for (article_id,) in query.tuples()]
    ids = list(ids)
    published = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        query = Article.select(Article, Source).join(Source).where(Article.id.in_(chunk))
        # Locked, as a write locks the articles it stores: neither overwrites the other's work.
        articles = attach_tags(list(locked(query.order_by(Article.id), Article)))
        now = utcnow()
        changed = []
        for article in articles:
            card = render(article)
            if card != article.card:
                article.card = card
                article.version += 1
                article.modified_at = now
                changed.append(article)
        if changed:
            Article.bulk_update(
                changed, fields=[Article.card, Article.version, Article.modified_at]
            )
        published += [article.id for article in changed if article.status == PUBLISHED]
    return published


def publish(ids=None, source_id=None):
    """What answers show of these articles may have changed (their comment count, source or
    story): :func:`refresh` their cards, and log an upsert of each published article whose
    card changed, for delta sync (``/v1/changes``), in the caller's transaction."""
    published = refresh(ids, source_id)
    for start in range(0, len(published), BATCH):
        Change.record_many([(i, UPSERT, None) for i in published[start : start + BATCH]])


def publish_source(before, after):
    """The source ``before`` became ``after`` (its name, slug or logo): the cards of its
    articles show the new one, each card that changed with a new version and, when published,
    a change for delta sync, in the caller's transaction.

    The card schema renders what a card shows of its source (its ``source`` field) once, for
    the source as it was and as it is; each card holding the first gets the second in its
    place. Two statements, whatever the number of articles: rendering every card again (as
    :func:`publish` does) took 15 s for a source of 30,000 articles, holding the write lock
    that long, and a larger one could not be renamed within a request's deadline. A card is
    JSON, in which that text can only be the card's ``source`` field (a string's quotes are
    escaped), so the card comes out as :func:`render` would make it.
    """
    old, new = _source_field(before), _source_field(after)
    if old == new:
        return
    find = fn.strpos if is_postgres() else fn.instr
    holding = (Article.source == after.id) & (find(Article.card, old) > 0)
    published = Article.select(Article.id).where(holding & (Article.status == PUBLISHED))
    Change.record_upserts(published.order_by(Article.id))
    Article.update(
        card=fn.replace(Article.card, old, new),
        version=Article.version + 1,
        modified_at=utcnow(),
    ).where(holding).execute()


def _source_field(source):
    """The ``"source":{...}`` of a card of an article of ``source``, as :func:`render` writes it."""
    field = card_schema.fields["source"]
    return orjson.dumps({"source": field.serialize("source", {"source": source})}).decode()[1:-1]


def refresh_if_stale():
    """Render every card again when the card schema changed since they were rendered, and
    the cards that lack a field of today's otherwise (a change of each article whose card
    changed, and of the data version); returns whether it did."""
    fingerprint = card_fingerprint()
    changed = Setting.get_value(FINGERPRINT) != fingerprint
    if changed:
        ids = [i for (i,) in Article.select(Article.id).order_by(Article.id).tuples()]
    else:
        ids = _unrendered()
    for start in range(0, len(ids), BATCH):  # a transaction a batch: writers wait for one only
        with write_transaction():
            publish(ids[start : start + BATCH])
            DataVersion.bump()
    if changed:
        Setting.set_value(FINGERPRINT, fingerprint)
    return bool(ids)


def _unrendered():
    """The ids of the articles that have no card, or one without a field of today's (written
    by the code of an older card schema: a server of a version before, still running after
    the upgrade)."""
    if is_postgres():
        lacking = ~SQL("card::jsonb ?& %s", (list(CARD_FIELDS),))
    else:
        lacking = functools.reduce(
            operator.or_,
            [fn.json_type(Article.card, f"$.{name}").is_null() for name in CARD_FIELDS],
        )
    query = Article.select(Article.id).where(Article.card.is_null() | lacking)
    return [i for (i,) in query.order_by(Article.id).tuples()]
