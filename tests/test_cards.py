"""Stored cards are what ArticleSchema dumps, after every kind of write that changes them."""

import orjson
from peewee import fn

from models import Article, Source, cards, db
from models.changes import Change, DataVersion
from schemas.articles import ARTICLE_FIELDS, CARD_FIELDS, ArticleSchema


def dumped(article_id):
    """The article as ArticleSchema dumps it from the models, read afresh."""
    article = Article.select(Article, Source).join(Source).where(Article.id == article_id).get()
    cards.attach_tags([article])
    return ArticleSchema(only=CARD_FIELDS).dump(article)


def stored(article_id):
    with db.connection_context():
        return orjson.loads(Article.get_by_id(article_id).card), dumped(article_id)


def test_cards_hold_every_field_but_the_body():
    assert set(ARTICLE_FIELDS) - set(CARD_FIELDS) == {"body_html", "body_text"}


def test_stored_cards_equal_the_schema_after_every_write(client, writer, source, make_key):
    admin = make_key("admin,comment")
    created = client.post(
        "/v1/articles",
        json={
            "source": source.slug,
            "title": 'Quotes " and <b>tags</b> 🚀',
            "body_text": "One.\n\nTwo.",
            "tags": ["Zeta", "alpha"],
            "byline": "Zoë",
            "url": "https://example.com/a?x=1&y=2",
        },
        headers=writer,
    ).json
    article_id = created["id"]
    card, expected = stored(article_id)
    assert card == expected
    assert {key: created[key] for key in CARD_FIELDS} == card  # the answer shows the same

    steps = [
        lambda: client.patch(f"/v1/articles/{article_id}", json={"tags": ["beta"]}, headers=writer),
        lambda: client.put(
            f"/v1/articles/{article_id}",
            json={"source": source.slug, "title": "Replaced", "body_html": "<p>New</p>"},
            headers=writer,
        ),
        lambda: client.post(
            f"/v1/articles/{article_id}/comments",
            json={"author_name": "Ann", "body": "Hi"},
            headers=admin,
        ),
        lambda: client.patch(
            f"/v1/sources/{source.slug}", json={"name": "Renamed Daily"}, headers=writer
        ),
    ]
    for step in steps:
        assert step().status_code in (200, 201)
        card, expected = stored(article_id)
        assert card == expected
    assert card["source"]["name"] == "Renamed Daily" and card["comment_count"] == 1
    assert card["title"] == "Replaced" and card["tags"] == []

    comment_id = client.get(f"/v1/articles/{article_id}/comments").json["data"][0]["id"]
    client.patch(f"/v1/comments/{comment_id}", json={"status": "hidden"}, headers=admin)
    card, expected = stored(article_id)
    assert card == expected and card["comment_count"] == 0


def test_lists_and_details_show_the_stored_card(client, make_article):
    article = make_article(tags=["climate", "energy"])
    listed = client.get("/v1/articles").json["data"][0]
    detail = client.get(f"/v1/articles/{article.id}").json
    with db.connection_context():
        expected = dumped(article.id)
    assert listed == expected
    assert {key: detail[key] for key in CARD_FIELDS} == expected
    assert detail["body_text"] == "First paragraph.\n\nSecond paragraph."


def test_cards_are_rendered_again_when_the_schema_changes(dbconn, make_article, monkeypatch):
    article = make_article()
    cards.refresh_if_stale()
    assert not cards.refresh_if_stale()  # nothing changed since
    Article.update(card='{"title": "stale"}').where(Article.id == article.id).execute()
    monkeypatch.setattr(cards, "card_fingerprint", lambda: "another schema")
    changes, version = Change.select().count(), DataVersion.current()
    assert cards.refresh_if_stale()
    assert orjson.loads(Article.get_by_id(article.id).card) == dumped(article.id)
    # Clients that keep copies (/v1/changes) and validators (ETags) learn of it.
    assert Change.select().order_by(Change.id.desc()).first().article_id == article.id
    assert (Change.select().count(), DataVersion.current()) == (changes + 1, version + 1)


def test_a_card_an_older_version_wrote_is_rendered_again(dbconn, make_article):
    """A server of an older card schema, still running after the upgrade, writes cards
    without today's fields; `db init` (run again) renders them, though the fingerprint held."""
    article, other = make_article(), make_article()
    cards.refresh_if_stale()
    assert not cards.refresh_if_stale()
    old = orjson.loads(Article.get_by_id(article.id).card)
    del old["story"]
    Article.update(card=orjson.dumps(old).decode()).where(Article.id == article.id).execute()
    assert cards.refresh_if_stale()
    assert orjson.loads(Article.get_by_id(article.id).card) == dumped(article.id)
    assert orjson.loads(Article.get_by_id(other.id).card) == dumped(other.id)
    assert not cards.refresh_if_stale()


def test_a_renamed_source_leaves_every_card_as_the_schema_renders_it(
    client, writer, make_article, make_tag, dbconn
):
    """A source's cards are no longer rendered again one by one when it is renamed (15 s for
    30,000 articles, in the request): what they show of it is put in place. They must come
    out as rendering each would make them."""
    source = Source.create(slug="quotidien", name='Le "Quotidien" \\ du Nord', language="fr")
    other = Source.create(slug="other", name="Other")
    make_tag("mer", "Mer")
    ours = [
        make_article(source=source, tags=["mer"], title="Marée d'équinoxe"),
        make_article(source=source, status="draft", title="Brouillon"),
        make_article(source=source, title='"source":{"id":1} in a title'),
    ]
    theirs = make_article(source=other, title="Elsewhere")
    before = {a.id: Article.get_by_id(a.id) for a in [*ours, theirs]}
    last_change = Change.select(fn.MAX(Change.id)).scalar() or 0

    for change in ({"name": "Le Quotidien ✓"}, {"slug": "quotidien-nord"}, {"logo_url": None}):
        answer = client.patch(
            f"/v1/sources/{Source.get_by_id(source.id).slug}", json=change, headers=writer
        )
        assert answer.status_code == 200, answer.json

    for article_id, old in before.items():
        stored = Article.get_by_id(article_id)
        fresh = Article.select(Article, Source).join(Source).where(Article.id == article_id).get()
        (fresh,) = cards.attach_tags([fresh])
        assert stored.card == cards.render(fresh), stored.title
        assert stored.version == old.version + (0 if article_id == theirs.id else 2)
    assert orjson.loads(Article.get_by_id(ours[0].id).card)["source"] == {
        "id": source.id,
        "slug": "quotidien-nord",
        "name": "Le Quotidien ✓",
        "logo_url": None,
    }
    logged = [
        i for (i,) in Change.select(Change.article_id).where(Change.id > last_change).tuples()
    ]
    assert sorted(logged) == sorted([ours[0].id, ours[2].id] * 2)  # the draft is not synced
