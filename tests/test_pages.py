"""Lists are written as JSON by the database: it must say exactly what the article dumper says."""

import datetime
import random

import orjson

from models import ArticleBody, Relation, is_postgres, pages
from schemas.articles import ARTICLE_FIELDS, LIST_FIELDS, article_schema, dump_relation


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
        one = [orjson.loads(pages.lookup_json(str(item["id"]), fields)[0]) for item in dumped(("id",))]
        assert one == written


def test_database_json_carries_the_sort_key(make_article, dbconn):
    first = make_article(published_at=datetime.datetime(2026, 1, 1, 12))
    second = make_article(published_at=datetime.datetime(2026, 1, 2, 12))
    keys = [key for _, key in pages.listing_json(("id",), limit=10)]
    assert keys == [(second.published_at, second.id), (first.published_at, first.id)]
    keys = [key for _, key in pages.listing_json(("id",), limit=10, sort="-updated_at")]
    assert keys == [(second.updated_at, second.id), (first.updated_at, first.id)]


def test_cards_hold_the_fields_a_list_shows():
    assert pages.CARD_FIELDS == LIST_FIELDS


def stored_cards_are_current():
    live = pages._json_object(pages.CARD_FIELDS, is_postgres())
    rows = pages._rows(f"SELECT a.card, {live} FROM article a JOIN source s ON s.id = a.source_id")
    assert rows
    for stored, current in rows:
        assert stored is not None
        assert orjson.loads(stored) == orjson.loads(current)


def test_stored_cards_follow_every_write(client, writer, make_key, source, dbconn):
    article = {"source": "daily", "title": "First", "body_text": "Body.", "tags": ["a", "b"]}
    created = client.post("/v1/articles", json=article, headers=writer).json
    client.post("/v1/articles", json={**article, "title": "Second", "external_id": "x"}, headers=writer)
    stored_cards_are_current()
    client.patch(f"/v1/articles/{created['id']}", json={"title": "Renamed", "tags": ["c"]}, headers=writer)
    stored_cards_are_current()
    commenter = make_key("comment")
    comment = client.post(f"/v1/articles/{created['id']}/comments", json={"author_name": "Ann", "body": "Hi"}, headers=commenter).json
    stored_cards_are_current()
    admin = make_key("admin")
    assert client.patch(f"/v1/comments/{comment['id']}", json={"status": "hidden"}, headers=admin).status_code == 200
    stored_cards_are_current()
    client.patch("/v1/sources/daily", json={"name": "The Weekly", "logo_url": "https://w.example/l.png"}, headers=writer)
    stored_cards_are_current()
    listed = client.get("/v1/articles").json["data"]
    assert {item["source"]["name"] for item in listed} == {"The Weekly"}
    assert [item["title"] for item in listed if item["id"] == created["id"]] == ["Renamed"]


def test_related_json_equals_the_dumper(make_article, make_source, dbconn):
    first, second, third = awkward_articles(make_article, make_source, dbconn)
    Relation.create(article=first.id, related=second.id, kind="follow_up", origin="computed", score=0.1 + 0.2, reasons="shared_tags,similar_text")
    Relation.create(article=first.id, related=third.id, kind="background", origin="editorial", score=1.0, reasons="")
    for fields in (LIST_FIELDS, ("title", "tags"), ARTICLE_FIELDS):
        written = [
            {**orjson.loads(text), "relation": dump_relation(relation)}
            for text, relation in pages.related_json(str(first.id), fields, 10)
        ]
        expected = []
        for related in (third, second):  # editorial first
            row = pages.lookup(str(related.id))
            pages.attach_tags([row])
            pages.attach_bodies([row])
            row.relation = Relation.get((Relation.article == first.id) & (Relation.related == related.id))
            expected.append(article_schema(fields, related=True).dump(row))
        assert written == expected
    assert pages.related_json("999999", LIST_FIELDS, 10) is None
