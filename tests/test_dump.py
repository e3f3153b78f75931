"""The fast article dumper answers exactly what the marshmallow schemas describe."""

import itertools
import random

from models import Relation, pages
from schemas.articles import (
    ARTICLE_FIELDS,
    ArticleSchema,
    RelatedArticleSchema,
    SearchHitSchema,
    article_schema,
    search_hit_schema,
)


def full_article(make_article, make_source):
    source = make_source(slug="wire", name="Wire", logo_url="https://wire.example/logo.png")
    article = make_article(
        source=source,
        tags=["climate", "energy"],
        byline="Ann",
        url="https://wire.example/a",
        image_url="https://wire.example/a.jpg",
        external_id="x-1",
    )
    loaded = pages.lookup(str(article.id))
    pages.attach_tags([loaded])
    pages.attach_bodies([loaded])
    return loaded


def test_dumper_equals_the_schema_for_every_fieldset(make_article, make_source, dbconn):
    article = full_article(make_article, make_source)
    fieldsets = [None, ("title",), ("tags", "source", "published_at")]
    rng = random.Random(7)
    fieldsets += [tuple(rng.sample(ARTICLE_FIELDS, k)) for k in (1, 3, 5, 8, 12) for _ in range(3)]
    for fields in fieldsets:
        expected = ArticleSchema(only=fields).dump(article)
        assert article_schema(fields).dump(article) == expected
        assert list(article_schema(fields).dump(article)) == list(expected)  # same key order
    assert article_schema(None).dump([article, article], many=True) == ArticleSchema(many=True).dump([article, article])


def test_dumper_equals_the_schema_for_related_and_search_hits(make_article, make_source, dbconn):
    article = full_article(make_article, make_source)
    other = make_article()
    article.relation = Relation(article=other.id, related=article.id, kind="follow_up", origin="computed", score=0.5, reasons="similar_text,shared_tags")
    article.score = 3.25
    article.highlights = {"title": "<mark>A</mark>", "body": "b…"}
    for fields in (None, ("title",), ("id", "tags")):
        related_only = None if fields is None else (*fields, "relation")
        assert article_schema(fields, related=True).dump(article) == RelatedArticleSchema(only=related_only).dump(article)
        hit_only = None if fields is None else (*fields, "score", "highlights")
        assert search_hit_schema(fields).dump(article) == SearchHitSchema(only=hit_only).dump(article)
    assert set(itertools.chain(ARTICLE_FIELDS)) <= set(article_schema(None).dump(article))
