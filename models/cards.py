"""Stored cards: each article's list fields as ``schemas.articles.card_schema`` renders them.

A card is a cache of that schema's output, kept in ``article.card`` so that a list page is one
indexed read of 20 stored strings. It is rendered again inside every transaction that changes
what it shows (the article, its tags, its comment count, its source), and all cards are
rendered again by ``newsdesk db init`` when the schema's fingerprint changes.
"""

import orjson

from schemas.articles import body_schema, card_fingerprint, card_schema

from .articles import Article, ArticleTag, Source, Tag
from .base import Setting, utcnow

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
    """Render and store again the cards of the articles ``ids``, or of a source, or all."""
    if ids is None:
        query = Article.select(Article.id).order_by(Article.id)
        if source_id is not None:
            query = query.where(Article.source == source_id)
        ids = [article_id for (article_id,) in query.tuples()]
    ids = list(ids)
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        articles = attach_tags(
            list(Article.select(Article, Source).join(Source).where(Article.id.in_(chunk)))
        )
        now = utcnow()
        for article in articles:
            article.card = render(article)
            article.version += 1  # what the article's answer shows changed: so do its validators
            article.modified_at = now
        if articles:
            Article.bulk_update(
                articles, fields=[Article.card, Article.version, Article.modified_at]
            )


def refresh_if_stale():
    """Render every card again when the card schema changed since they were rendered; returns
    whether it did."""
    fingerprint = card_fingerprint()
    stale = Setting.get_value(FINGERPRINT) != fingerprint or _unrendered()
    rendered = stale and Article.select().exists()
    if rendered:
        refresh()
    if stale:
        Setting.set_value(FINGERPRINT, fingerprint)
    return rendered


def _unrendered():
    return Article.select().where(Article.card.is_null()).exists()
