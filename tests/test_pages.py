"""Lists are written as JSON by the database: it must say exactly what the article dumper says."""

import datetime
import random

import orjson

from models import ArticleBody, pages
from schemas.articles import ARTICLE_FIELDS, LIST_FIELDS, article_schema


def awkward_articles(make_article, make_source, dbconn):
    wire = make_source(slug="wire", name='Wire "Ünïcode" & <Co>', logo_url=None)
    made = [
        make_article(
            source=wire,
            tags=["zeta", "alpha", "mid-dle"],
            title='Quotes " and \\ backslash, <b>tags</b>, emoji 🚀, tab\there',
            byline="Zoë Ø",
            url="https://wire.example/a?x=1&y=2",
            image_url=None,
            external_id=None,
            published_at=datetime.datetime(999, 1, 2, 3, 4, 5),
        ),
        make_article(tags=[], body="Ein Absatz.\n\n日本語の段落。", language="de"),
        make_article(tags=["solo"], published_at=datetime.datetime(2026, 11, 28, 23, 59, 59, 999999)),
    ]
    # An article whose body row is missing reads as an empty body.
    ArticleBody.delete().where(ArticleBody.article == made[1].id).execute()
    return made


def dumped(fields):
    """What the article dumper writes for every published article, newest first."""
    rows = pages.listing(limit=100)
    pages.attach_tags(rows)
    pages.attach_bodies(rows)
    return [article_schema(fields).dump(row) for row in rows]


def test_database_json_equals_the_dumper(make_article, make_source, dbconn):
    awkward_articles(make_article, make_source, dbconn)
    rng = random.Random(11)
    fieldsets = [LIST_FIELDS, ARTICLE_FIELDS, ("title",), ("tags", "id"), ("body_text", "source")]
    fieldsets += [tuple(rng.sample(ARTICLE_FIELDS, k)) for k in (2, 5, 9, 14) for _ in range(2)]
    for fields in fieldsets:
        written = [orjson.loads(card) for card, _ in pages.listing_json(fields, limit=100)]
        assert written == dumped(fields)
        assert [list(item) for item in written] == [list(fields)] * len(written)  # key order


def test_database_json_carries_the_sort_key(make_article, dbconn):
    first = make_article(published_at=datetime.datetime(2026, 1, 1, 12))
    second = make_article(published_at=datetime.datetime(2026, 1, 2, 12))
    keys = [key for _, key in pages.listing_json(("id",), limit=10)]
    assert keys == [(second.published_at, second.id), (first.published_at, first.id)]
    keys = [key for _, key in pages.listing_json(("id",), limit=10, sort="-updated_at")]
    assert keys == [(second.updated_at, second.id), (first.updated_at, first.id)]
