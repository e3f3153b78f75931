import json
import random

import orjson
import pytest

from models import Article, ArticleBody, Change, RelatedQueue, Relation, Source, Tag, db

ARTICLE = {
    "title": "Storm hits the coast",
    "source": "daily",
    "body_text": "The storm arrived at dawn.\n\nThousands lost power.",
    "external_id": "ext-1",
    "tags": ["weather", "Climate Change"],
}


def post(client, headers, payload=None, **changes):
    return client.post("/v1/articles", json={**(payload or ARTICLE), **changes}, headers=headers)


def test_create_article(client, writer, source):
    response = post(client, writer)
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"] == f"/v1/articles/{body['id']}"
    assert body["slug"] == "storm-hits-the-coast"
    assert body["source"]["slug"] == "daily"
    assert body["body_html"] == "<p>The storm arrived at dawn.</p><p>Thousands lost power.</p>"
    assert body["excerpt"] == "The storm arrived at dawn."
    assert body["word_count"] == 8 and body["reading_time_minutes"] == 1
    assert body["comment_count"] == 0 and body["status"] == "published"
    assert body["language"] == "en"
    assert body["tags"] == [
        {"slug": "climate-change", "name": "Climate Change"},
        {"slug": "weather", "name": "Weather"},
    ]
    assert client.get(f"/v1/articles/{body['id']}").json["title"] == "Storm hits the coast"
    assert Source.get(Source.slug == "daily").article_count == 1
    assert Tag.get(Tag.slug == "weather").article_count == 1


def test_tags_in_any_script_are_kept(client, writer, source):
    response = post(client, writer, tags=["日本", "Россия", "Ελλάδα", "한국", "Café"])
    assert response.status_code == 201, response.json
    assert response.json["tags"] == [
        {"slug": "cafe", "name": "Café"},
        {"slug": "ελλάδα", "name": "Ελλάδα"},
        {"slug": "россия", "name": "Россия"},
        {"slug": "日本", "name": "日本"},
        {"slug": "한국", "name": "한국"},
    ]
    assert client.get("/v1/tags/日本").json["article_count"] == 1
    listed = client.get("/v1/articles?tag=россия").json["data"]
    assert [a["id"] for a in listed] == [response.json["id"]]


def test_a_tag_seen_before_keeps_its_name(client, writer, source):
    first = post(client, writer, tags=["Local News"], external_id="one").json
    assert first["tags"] == [{"slug": "local-news", "name": "Local News"}]
    for number, name in enumerate(["LOCAL  NEWS", "local-news", "Locàl_News"]):
        again = post(client, writer, tags=[name], external_id=f"again-{number}")
        assert again.json["tags"] == [{"slug": "local-news", "name": "Local News"}], name
    assert Tag.select().count() == 1


def test_a_tag_given_by_slug_is_named_by_its_words(client, writer, source):
    response = post(client, writer, tags=["g7-summit", "5g-networks", "climate-change"])
    assert response.json["tags"] == [
        {"slug": "5g-networks", "name": "5g Networks"},
        {"slug": "climate-change", "name": "Climate Change"},
        {"slug": "g7-summit", "name": "G7 Summit"},
    ]


@pytest.mark.parametrize(
    "first, second, slug",
    [
        ("C++", "C#", "c"),
        ("F#", "F", "f"),
        ("Россия 2031", "中国 2031", "2031"),
        ("Łódź", "Lodz", "lodz"),
        ("Ærø", "Aero", "aero"),
    ],
)
def test_a_name_whose_slug_is_another_tags_is_422_not_that_tag(
    client, writer, source, first, second, slug
):
    """Slugs drop symbols and accents: a name that would land on the tag of
    another name is refused, naming it, and nothing is stored; the slug itself takes that tag."""
    stored = post(client, writer, tags=[first], external_id="first").json
    assert stored["tags"] == [{"slug": slug, "name": first}]
    refused = post(client, writer, tags=["weather", second], external_id="second")
    assert refused.status_code == 422
    assert list(refused.json["errors"]) == ["tags.1"]
    assert repr(slug) in refused.json["errors"]["tags.1"][0]
    assert Article.select().count() == 1 and Tag.select().count() == 1
    by_slug = post(client, writer, tags=[slug], external_id="third")
    assert by_slug.json["tags"] == [{"slug": slug, "name": first}]
    both = post(client, writer, tags=["J++", "J#"], external_id="fourth")  # in one article
    assert both.status_code == 422 and list(both.json["errors"]) == ["tags.1"]


def test_letters_with_no_accent_to_drop_are_spelled_out_in_slugs(client, writer, source):
    created = post(client, writer, title="Straße nach Łódź: Œuvres, Ærø", tags=["Straße", "Œuvre"])
    assert created.json["slug"] == "strasse-nach-lodz-oeuvres-aero"
    assert created.json["tags"] == [
        {"slug": "oeuvre", "name": "Œuvre"},
        {"slug": "strasse", "name": "Straße"},
    ]
    again = post(client, writer, tags=["STRASSE"], external_id="second")
    assert again.status_code == 201 and again.json["tags"] == [
        {"slug": "strasse", "name": "Straße"}
    ]


@pytest.mark.parametrize(
    "first, second",
    [("MeToo", "#MeToo"), ("LGBTQ", "LGBTQ+"), ("NYTimes", "@NYTimes"), ("Hawaii", "Hawaiʻi")],
)
def test_names_that_differ_in_marks_alone_are_one_tag(client, writer, source, first, second):
    stored = post(client, writer, tags=[first], external_id="first").json["tags"]
    again = post(client, writer, tags=[second], external_id="second")
    assert again.status_code == 201 and again.json["tags"] == stored


def test_a_tag_the_article_has_is_kept_whatever_name_it_is_sent_by(client, writer, source):
    """An article that a version before the check tagged c for "C#" (where "C++" made c) is
    posted again as it was: unchanged, not refused."""
    post(client, writer, tags=["C++"], external_id="one")
    second = post(client, writer, tags=["weather"], external_id="two").json
    tag = Tag.get(Tag.slug == "c")
    with db.atomic():  # what that version stored
        db.execute_sql(
            "INSERT INTO article_tag (article_id, tag_id, published_at) VALUES "
            f"({second['id']}, {tag.id}, '2026-11-01 12:00:00')"
        )
    again = post(client, writer, tags=["weather", "C#"], external_id="two")
    assert again.status_code == 200, again.json
    refused = post(client, writer, tags=["weather", "C#"], external_id="three")
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["tags.1"]


def test_an_import_refuses_the_later_of_two_names_of_one_slug(client, writer, source):
    lines = [
        orjson.dumps({**ARTICLE, "external_id": str(n), "tags": [tag]}).decode()
        for n, tag in enumerate(["C++", "C#", "c"])
    ]
    answer = client.post(
        "/v1/import",
        data="\n".join(lines) + "\n",
        content_type="application/x-ndjson",
        headers=writer,
    ).json
    assert (answer["created"], answer["rejected"]) == (2, 1), answer["rejections"]
    assert answer["rejections"][0]["line"] == 2
    assert list(answer["rejections"][0]["errors"]) == ["tags.0"]
    assert Tag.get(Tag.slug == "c").article_count == 2


def test_repost_same_external_id_updates_the_same_article(client, writer, source):
    first = post(client, writer).json
    again = post(client, writer, title="Storm hits the coast, thousands without power")
    assert again.status_code == 200
    assert again.json["id"] == first["id"]
    assert again.json["title"] == "Storm hits the coast, thousands without power"
    assert again.json["slug"] == first["slug"]
    assert Article.select().count() == 1


def test_an_idempotency_key_without_an_external_id_is_400_and_makes_nothing(client, writer, source):
    # Ignored, each retry of a post without an external_id made another article.
    payload = {key: value for key, value in ARTICLE.items() if key != "external_id"}
    keyed = {**writer, "Idempotency-Key": "retry-1"}
    for _ in range(2):
        response = client.post("/v1/articles", json=payload, headers=keyed)
        assert response.status_code == 400
        assert response.content_type == "application/problem+json"
        assert list(response.json["errors"]) == ["Idempotency-Key"]
    assert Article.select().count() == 0
    # With an external_id, the retry updates the article the first post made.
    ids = {post(client, keyed).json["id"] for _ in range(2)}
    assert len(ids) == 1 and Article.select().count() == 1


@pytest.mark.parametrize(
    "header, value",
    [
        ("If-None-Match", "*"),
        ("If-Match", '"stale"'),
        ("If-Unmodified-Since", "Sun, 01 Nov 2026 00:00:00 GMT"),
    ],
)
def test_an_import_takes_no_preconditions(client, writer, source, header, value):
    # Ignored, they let an import overwrite what the same POST /v1/articles refused (412).
    first = post(client, writer).json
    line = json.dumps({**ARTICLE, "title": "Overwritten"}) + "\n"
    response = client.post(
        "/v1/import",
        data=line,
        content_type="application/x-ndjson",
        headers={**writer, header: value},
    )
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert list(response.json["errors"]) == [header]
    assert client.get(f"/v1/articles/{first['id']}").json["title"] == ARTICLE["title"]


def test_identical_repost_changes_nothing(client, writer, source):
    first = post(client, writer).json
    version = Article.get_by_id(first["id"]).version
    changes = Change.select().count()
    again = post(client, writer)
    assert again.status_code == 200 and again.json == first
    assert Article.get_by_id(first["id"]).version == version
    assert Change.select().count() == changes


def test_writes_of_what_is_stored_change_nothing(client, writer, source):
    """A PATCH or PUT that sends what is stored is unchanged, and so is a re-post after it,
    whether or not the write before sent the optional fields the article shows (its excerpt
    and language come from the body and the source when not sent)."""
    first = post(client, writer).json
    path = f"/v1/articles/{first['id']}"
    etag = client.get(path).headers["ETag"]
    version, changes = Article.get_by_id(first["id"]).version, Change.select().count()
    shown = {
        **{name: first[name] for name in ("title", "body_html", "url", "image_url", "byline")},
        **{name: first[name] for name in ("language", "excerpt", "external_id", "slug")},
        "source": first["source"]["slug"],
        "tags": [tag["slug"] for tag in first["tags"]],
        "status": first["status"],
        "published_at": first["published_at"],
    }
    writes = [
        client.patch(path, json={"title": first["title"]}, headers=writer),
        client.patch(path, json={"excerpt": first["excerpt"], "language": "en"}, headers=writer),
        client.put(path, json=shown, headers=writer),
        post(client, writer),
    ]
    for response in writes:
        assert response.status_code == 200, response.json
        assert response.headers["ETag"] == etag
        assert response.json["updated_at"] == first["updated_at"]
    assert Article.get_by_id(first["id"]).version == version
    assert Change.select().count() == changes
    changed = client.patch(path, json={"byline": "Ann"}, headers=writer)
    assert changed.headers["ETag"] != etag and Change.select().count() == changes + 1


def test_same_external_id_in_another_source_is_another_article(client, writer, source, make_source):
    make_source(slug="other")
    a = post(client, writer).json
    b = post(client, writer, source="other").json
    assert a["id"] != b["id"]
    assert b["slug"] == "storm-hits-the-coast-2"


@pytest.mark.parametrize("method", ["patch", "put"])
def test_taking_another_articles_external_id_is_409_naming_it(
    client, writer, source, make_source, method
):
    make_source(slug="other")
    taken = post(client, writer, external_id="taken").json
    mine = post(client, writer, external_id="mine", title="Mine").json
    elsewhere = post(client, writer, external_id="taken", source="other", title="Else").json
    for change in ({"external_id": "taken"}, {"external_id": "taken", "source": "other"}):
        body = change if method == "patch" else {**ARTICLE, "title": "Mine", **change}
        response = getattr(client, method)(f"/v1/articles/{mine['id']}", json=body, headers=writer)
        assert response.status_code == 409, response.json
        assert list(response.json["errors"]) == ["external_id"]
    moved = client.patch(f"/v1/articles/{mine['id']}", json={"source": "other"}, headers=writer)
    assert moved.status_code == 200  # (other, mine) is free
    ids = {a["id"] for a in client.get("/v1/articles").json["data"]}
    assert ids == {taken["id"], mine["id"], elsewhere["id"]}


def test_slugs_are_unique_and_never_all_digits(client, writer, source):
    first = post(client, writer, external_id=None, title="2026").json
    second = post(client, writer, external_id=None, title="2026").json
    assert (first["slug"], second["slug"]) == ("a-2026", "a-2026-2")
    conflict = post(client, writer, external_id=None, slug="a-2026")
    assert conflict.status_code == 409
    assert conflict.content_type == "application/problem+json"
    assert list(conflict.json["errors"]) == ["slug"]


def test_the_id_of_a_deleted_article_is_never_given_again(client, writer, source):
    """A cached URL or a receiver's stored id never names another article: new ids come after
    the largest ever given, by a single write and by an import alike."""
    ids = [post(client, writer, external_id=f"e-{n}").json["id"] for n in range(3)]
    for article_id in ids[1:]:
        assert client.delete(f"/v1/articles/{article_id}", headers=writer).status_code == 204
    single = post(client, writer, external_id="e-3").json["id"]
    lines = b"\n".join(orjson.dumps({**ARTICLE, "external_id": f"e-{n}"}) for n in (4, 5))
    imported = client.post(
        "/v1/import", data=lines, content_type="application/x-ndjson", headers=writer
    )
    assert (imported.json["created"], imported.json["rejected"]) == (2, 0)
    assert single == ids[-1] + 1
    stored = [article.id for article in Article.select(Article.id).order_by(Article.id)]
    assert stored == [ids[0], single, single + 1, single + 2]


def test_a_title_seen_twice_before_gets_a_slug_of_its_own(
    client, writer, source, database_url, locale_ordered
):
    """On PostgreSQL, with article slugs compared as a locale compares them (punctuation
    ignored at first), the numbered slugs of a title are still seen as taken."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite compares slugs as bytes")
    locale_ordered(("article", "slug", 200))
    weather = {"source": "daily", "title": "Weather", "body_text": "Rain."}
    slugs = [post(client, writer, weather, external_id=f"w-{n}").json["slug"] for n in range(3)]
    line = orjson.dumps({**weather, "external_id": "w-4"})
    ndjson = "application/x-ndjson"
    imported = client.post("/v1/import", data=line, content_type=ndjson, headers=writer)
    assert (imported.json["created"], imported.json["rejected"]) == (1, 0)
    assert slugs == ["weather", "weather-2", "weather-3"]


def test_no_stored_text_holds_control_characters_or_noncharacters(client, writer, source):
    """Not even those nh3 writes out of character references such as ``&#1;``."""
    html = "<p>a\ufffeb &#1; &#x7f; &#xFFFF; c</p>"
    payload = {key: value for key, value in ARTICLE.items() if key != "body_text"}
    created = post(client, writer, payload, body_html=html)
    assert created.status_code == 201, created.json
    with db.connection_context():
        stored = ArticleBody.get(ArticleBody.article == created.json["id"])
    assert (stored.body_html, stored.body_text) == ("<p>ab    c</p>", "ab c")


def test_line_breaks_are_stored_in_one_form(client, writer, source):
    # CRLF became LF, but a lone CR was kept: text half in one form, half in another.
    text = "Line one\r\nline two\rthree\n\rfour"
    created = post(client, writer, title=text, body_text=text, excerpt=text)
    assert created.status_code == 201, created.json
    stored = client.get(f"/v1/articles/{created.json['id']}").json
    one_form = "Line one\nline two\nthree\n\nfour"
    assert (stored["title"], stored["excerpt"], stored["body_text"]) == (one_form,) * 3


@pytest.mark.parametrize("field", ["body_html", "body_text"])
def test_a_patch_of_an_empty_body_is_refused_and_changes_nothing(client, writer, source, field):
    created = post(client, writer).json
    path = f"/v1/articles/{created['id']}"
    refused = client.patch(path, json={field: ""}, headers=writer)
    assert refused.status_code == 422
    assert list(refused.json["errors"]) == [field]
    stored = client.get(path).json
    assert (stored["body_html"], stored["body_text"]) == (
        created["body_html"],
        created["body_text"],
    )


def test_a_patch_of_the_body_keeps_an_excerpt_the_client_wrote(client, writer, source):
    own = post(client, writer, excerpt="The editor's excerpt.").json
    derived = post(client, writer, external_id="ext-2").json
    new_body = {"body_text": "A new body entirely."}
    kept = client.patch(f"/v1/articles/{own['id']}", json=new_body, headers=writer).json
    made = client.patch(f"/v1/articles/{derived['id']}", json=new_body, headers=writer).json
    assert (kept["excerpt"], made["excerpt"]) == ("The editor's excerpt.", "A new body entirely.")


def test_body_html_is_sanitized(client, writer, source):
    html = (
        '<p onclick="x()">Hello <script>alert(1)</script><b>world</b></p>'
        '<p><a href="javascript:alert(1)">bad</a> <a href="https://example.com/">good</a></p>'
        "<iframe src=x></iframe><style>p{}</style>"
    )
    body = post(client, writer, body_html=html, body_text=None).json if False else None
    payload = {k: v for k, v in ARTICLE.items() if k != "body_text"}
    body = post(client, writer, payload, body_html=html).json
    assert "script" not in body["body_html"] and "onclick" not in body["body_html"]
    assert "javascript" not in body["body_html"] and "iframe" not in body["body_html"]
    assert "<b>world</b>" in body["body_html"]
    assert 'href="https://example.com/"' in body["body_html"]
    assert body["body_text"] == "Hello world\n\nbad good"


@pytest.mark.parametrize(
    "markup",
    [
        '<a href="java&#1;script:alert(1)">x</a>',
        '<a href="java\u0001script:alert(1)">x</a>',
        '<a href="JAVA&#x7f;SCRIPT:alert(1)">x</a>',
        '<a href=" &#1;java&#x9;script:alert(1)">x</a>',
        '<a href="vb&#1;script:x">x</a>',
        '<a href="da&#1;ta:text/html,x">x</a>',
        '<img src="java&#2;script:alert(1)">x',
        '<blockquote cite="javascript:alert(1)">x</blockquote>',
        '<q cite="data:text/html,x">x</q>',
    ],
)
def test_no_url_of_another_scheme_gets_through_a_character_taken_out(
    client, writer, source, markup
):
    """nh3 checks a URL as it is sent: one with a control character in its scheme had no
    scheme it knew, and became ``javascript:`` when the character was taken out after."""
    payload = {k: v for k, v in ARTICLE.items() if k != "body_text"}
    stored = post(client, writer, payload, body_html=f"<p>Text {markup}</p>").json["body_html"]
    assert not any(a in stored for a in ("href=", "src=", "cite=")), stored
    assert "x" in stored


def test_links_of_the_allowed_schemes_and_relative_ones_stay(client, writer, source):
    links = [
        "https://example.org/a:b",
        "http://example.org/",
        "mailto:desk@example.org",
        "/relative",
        "#part",
    ]
    markup = "".join(f'<a href="{href}">x</a>' for href in links)
    markup += '<blockquote cite="https://example.org/q">q</blockquote>'
    payload = {k: v for k, v in ARTICLE.items() if k != "body_text"}
    stored = post(client, writer, payload, body_html=f"<p>{markup}</p>").json["body_html"]
    for href in links:
        assert f'href="{href}"' in stored
    assert 'cite="https://example.org/q"' in stored


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"source": "nobody"}, "source"),
        ({"body_text": ""}, "body_text"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"image_url": "https://example.org/" + "a" * 2030}, "image_url"),
        ({"published_at": "yesterday"}, "published_at"),
        ({"tags": "not-a-list"}, "tags"),
        ({"tags": ["weather", "😀"]}, "tags.1"),
        ({"tags": ["+++"]}, "tags.0"),
        ({"status": "archived"}, "status"),
        ({"slug": "Not A Slug"}, "slug"),
        ({"slug": "12345"}, "slug"),
        ({"language": "english language"}, "language"),
        ({"id": 5}, "id"),
        ({"comment_count": 10}, "comment_count"),
        ({"titel": "typo"}, "titel"),
    ],
)
def test_invalid_article_is_422_naming_the_field(client, writer, source, changes, field):
    response = post(client, writer, **changes)
    assert response.status_code == 422, response.json
    assert response.content_type == "application/problem+json"
    assert field in response.json["errors"]
    assert Article.select().count() == 0


def test_article_needs_a_title_source_and_body(client, writer, source):
    response = client.post("/v1/articles", json={}, headers=writer)
    assert response.status_code == 422
    assert {"title", "source", "body_text"} <= set(response.json["errors"])


def test_malformed_json_is_400(client, writer, source):
    response = client.post(
        "/v1/articles", data='{"title": "x",', content_type="application/json", headers=writer
    )
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("path", ["/v1/articles", "/v1/sources"])
def test_json_that_is_not_an_object_is_422(client, writer, source, path):
    response = client.post(path, json=["a"], headers=writer)
    assert response.status_code == 422
    assert response.json["errors"] == {"$": ["Invalid input type."]}
    assert response.json["detail"] == "Invalid: the body."


def test_body_that_is_not_json_is_415(client, writer, source):
    response = client.post("/v1/articles", data="title=x", headers=writer)
    assert response.status_code == 415
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_json_in_utf_16_or_32_is_415(client, writer, source, encoding):
    # It was a 400 "str is not valid UTF-8: surrogates not allowed".
    data = orjson.dumps({**ARTICLE, "source": source.slug}).decode().encode(encoding)
    response = client.post(
        "/v1/articles", data=data, content_type="application/json", headers=writer
    )
    assert response.status_code == 415
    assert response.json["errors"] == {"Content-Type": ["charset=utf-8 or none."]}
    assert Article.select().count() == 0


@pytest.mark.parametrize("data", [b'{"title": "\xc0\xaf"}', b'{"title": "\xed\xa0\x80"}'])
def test_json_that_is_not_utf_8_is_named_so(client, writer, source, data):
    """It was a 400 "str is not valid UTF-8: surrogates not allowed", of any byte that is
    not UTF-8 (an overlong form, an encoded surrogate)."""
    response = client.post(
        "/v1/articles", data=data, content_type="application/json", headers=writer
    )
    assert response.status_code == 400
    assert response.json["detail"] == "Not valid JSON: not UTF-8 text (RFC 8259) at byte 11."
    assert Article.select().count() == 0


@pytest.mark.parametrize("app_config", [{"max_body_bytes": 2000}])
def test_body_over_the_limit_is_413(client, writer, source):
    response = post(client, writer, body_text="word " * 1000)
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert Article.select().count() == 0


def test_put_replaces(client, writer, source):
    article = post(client, writer, url="https://daily.example/storm", byline="Ann").json
    replacement = {"title": "Replaced", "source": "daily", "body_text": "New body."}
    response = client.put(f"/v1/articles/{article['id']}", json=replacement, headers=writer)
    assert response.status_code == 200
    body = response.json
    assert body["title"] == "Replaced" and body["body_text"] == "New body."
    assert body["url"] is None and body["byline"] is None and body["tags"] == []
    assert body["slug"] == article["slug"] and body["published_at"] == article["published_at"]
    assert Tag.get(Tag.slug == "weather").article_count == 0


def test_patch_changes_only_what_is_sent(client, writer, source):
    article = post(client, writer, byline="Ann").json
    response = client.patch(
        f"/v1/articles/{article['slug']}", json={"title": "New title"}, headers=writer
    )
    assert response.status_code == 200
    body = response.json
    assert body["title"] == "New title"
    assert body["byline"] == "Ann" and body["body_text"] == article["body_text"]
    assert body["tags"] == article["tags"]
    patched = client.patch(
        f"/v1/articles/{article['id']}", json={"body_text": "Short."}, headers=writer
    )
    assert patched.json["excerpt"] == "Short." and patched.json["word_count"] == 1


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_write_to_a_missing_article_is_404(client, writer, source, method):
    response = getattr(client, method)("/v1/articles/999", json=ARTICLE, headers=writer)
    assert response.status_code == 404


def test_delete_leaves_a_tombstone(client, writer, source, make_comment):
    article = post(client, writer).json
    make_comment(Article.get_by_id(article["id"]))
    response = client.delete(f"/v1/articles/{article['id']}", headers=writer)
    assert response.status_code == 204 and response.data == b""
    assert client.get(f"/v1/articles/{article['id']}").status_code == 404
    assert ArticleBody.select().count() == 0
    last = Change.select().order_by(Change.id.desc()).first()
    assert (last.article_id, last.op, last.reason) == (article["id"], "delete", "deleted")
    assert Source.get(Source.slug == "daily").article_count == 0
    assert Tag.get(Tag.slug == "weather").article_count == 0


def test_drafts_are_hidden_from_the_public(client, writer, source):
    draft = post(client, writer, status="draft").json
    assert client.get("/v1/articles").json["data"] == []
    assert client.get(f"/v1/articles/{draft['id']}").status_code == 404
    assert client.get(f"/v1/articles/{draft['id']}", headers=writer).status_code == 200
    assert Source.get(Source.slug == "daily").article_count == 0


def test_unpublishing_logs_a_delete(client, writer, source):
    article = post(client, writer).json
    client.patch(f"/v1/articles/{article['id']}", json={"status": "draft"}, headers=writer)
    ops = [(c.op, c.reason) for c in Change.select().order_by(Change.id)]
    assert ops == [("upsert", None), ("delete", "unpublished")]


def test_create_and_patch_source(client, writer):
    response = client.post(
        "/v1/sources",
        json={
            "slug": "wire",
            "name": "The Wire",
            "country": "GB",
            "homepage_url": "https://wire.example/",
        },
        headers=writer,
    )
    assert response.status_code == 201
    assert response.headers["Location"] == "/v1/sources/wire"
    assert response.json["language"] == "en" and response.json["article_count"] == 0
    duplicate = client.post("/v1/sources", json={"slug": "wire", "name": "Again"}, headers=writer)
    assert duplicate.status_code == 409 and list(duplicate.json["errors"]) == ["slug"]
    invalid = client.post(
        "/v1/sources", json={"slug": "x", "name": "X", "country": "gbr"}, headers=writer
    )
    assert invalid.status_code == 422 and list(invalid.json["errors"]) == ["country"]
    patched = client.patch("/v1/sources/wire", json={"name": "Wire Daily"}, headers=writer)
    assert patched.status_code == 200 and patched.json["name"] == "Wire Daily"
    assert patched.json["country"] == "GB"
    assert client.patch("/v1/sources/none", json={"name": "x"}, headers=writer).status_code == 404


def test_editorial_relations(client, writer, source, make_article):
    a, b = make_article(), make_article()
    url = f"/v1/articles/{a.id}/relations"
    created = client.post(url, json={"article_id": b.id, "kind": "follow_up"}, headers=writer)
    assert created.status_code == 201
    assert created.headers["Location"] == f"{url}/{b.id}"
    assert created.json["data"][0]["relation"]["kind"] == "follow_up"
    assert (created.json["has_more"], created.json["next_cursor"]) == (False, None)
    again = client.post(url, json={"article_id": b.id, "kind": "background"}, headers=writer)
    assert again.status_code == 200
    assert Relation.select().count() == 1
    related = client.get(f"/v1/articles/{a.id}/related").json["data"]
    assert [(r["id"], r["relation"]["kind"], r["relation"]["origin"]) for r in related] == [
        (b.id, "background", "editorial")
    ]
    assert client.post(url, json={"article_id": a.id}, headers=writer).status_code == 422
    assert client.post(url, json={"article_id": 999}, headers=writer).status_code == 422
    assert client.post(url, json={"article_id": "2"}, headers=writer).status_code == 422
    assert (
        client.post(url, json={"article_id": b.id, "kind": "x"}, headers=writer).status_code == 422
    )
    assert client.delete(f"{url}/{b.id}", headers=writer).status_code == 204
    assert client.delete(f"{url}/{b.id}", headers=writer).status_code == 404
    # The list is worked out again without the editor's relation: b comes back, computed.
    related = client.get(f"/v1/articles/{a.id}/related").json["data"]
    assert [(r["id"], r["relation"]["origin"]) for r in related] == [(b.id, "computed")]


def test_editorial_relation_beats_computed(client, writer, make_article, make_relation):
    a, b, c = make_article(), make_article(), make_article()
    make_relation(a, b, origin="computed", score=0.99)
    client.post(f"/v1/articles/{a.id}/relations", json={"article_id": c.id}, headers=writer)
    related = client.get(f"/v1/articles/{a.id}/related").json["data"]
    assert [r["id"] for r in related] == [c.id, b.id]


def test_an_editor_relates_a_computed_pair_and_removes_only_their_own(client, writer, source):
    # The relation endpoints matched a pair's row whatever its origin: relating a computed
    # pair answered 200 "existed", removing it dropped the computed relation for good, and a
    # DELETE removed a relation only the worker had made.
    a = post(client, writer, external_id="a").json
    # Related (the same tags, words of the storm), not a copy of a's text, which a related
    # list leaves out.
    b = post(
        client,
        writer,
        external_id="b",
        title="Storm hits the coast again",
        body_text="A second storm reached the coast overnight.\n\nRoads were closed.",
    ).json
    url = f"/v1/articles/{a['id']}/relations"
    computed = client.get(f"/v1/articles/{a['id']}/related").json["data"]
    assert [(r["id"], r["relation"]["origin"]) for r in computed] == [(b["id"], "computed")]

    refused = client.delete(f"{url}/{b['id']}", headers=writer)
    assert refused.status_code == 404
    assert refused.json["detail"] == f"Article {a['id']} has no editorial relation to {b['id']}."
    created = client.post(url, json={"article_id": b["id"], "kind": "follow_up"}, headers=writer)
    assert created.status_code == 201
    assert created.headers["Location"] == f"{url}/{b['id']}"
    shown = [
        (r["id"], r["relation"]["origin"], r["relation"]["kind"]) for r in created.json["data"]
    ]
    assert shown == [(b["id"], "editorial", "follow_up")]

    assert client.delete(f"{url}/{b['id']}", headers=writer).status_code == 204
    # The article's list is worked out again (the worker runs at once here): the other
    # article is back, computed.
    assert client.get(f"/v1/articles/{a['id']}/related").json["data"] == computed
    assert RelatedQueue.select().count() == 0


def test_a_relation_is_created_only_or_replaced_only_as_its_preconditions_say(
    client, writer, make_article
):
    article, other = make_article(), make_article()
    url = f"/v1/articles/{article.id}/relations"
    relation = {"article_id": other.id, "kind": "follow_up"}
    missing = client.post(url, json=relation, headers={**writer, "If-Match": "*"})
    assert missing.status_code == 412
    assert missing.json["errors"] == {"If-Match": ["No such relation exists."]}
    created = client.post(url, json=relation, headers={**writer, "If-None-Match": "*"})
    assert created.status_code == 201

    background = {**relation, "kind": "background"}
    exists = client.post(url, json=background, headers={**writer, "If-None-Match": "*"})
    assert exists.status_code == 412
    assert exists.json["errors"] == {"If-None-Match": ["The relation exists."]}
    tag = client.get(f"/v1/articles/{article.id}/related").headers["ETag"]
    assert client.post(url, json=background, headers={**writer, "If-Match": tag}).status_code == 412
    related = client.get(f"/v1/articles/{article.id}/related").json["data"]
    assert [r["relation"]["kind"] for r in related] == ["follow_up"]
    replaced = client.post(url, json=background, headers={**writer, "If-Match": "*"})
    assert replaced.status_code == 200
    assert replaced.json["data"][0]["relation"]["kind"] == "background"


def test_every_bad_field_is_named_at_once(client, writer, source):
    body = {**ARTICLE, "title": "", "foo": 1, "id": 3, "word_count": 9}
    refused = post(client, writer, body)
    assert refused.status_code == 422
    assert refused.json["errors"] == {
        "id": ["Set by the server; leave it out."],
        "word_count": ["Set by the server; leave it out."],
        "foo": ["Unknown field."],
        "title": ["Must not be empty."],
    }


def test_times_may_be_written_in_lowercase_as_rfc_3339_allows(client, writer, source):
    created = post(client, writer, published_at="2026-01-02t03:04:05z")
    assert created.status_code == 201, created.json
    assert created.json["published_at"] == "2026-01-02T03:04:05Z"
    # And with an offset without its colon, as PHP's and Java's ISO 8601 formats write it.
    created = post(client, writer, published_at="2026-01-02T05:04:05+0200", external_id="x-2")
    assert created.status_code == 201, created.json
    assert created.json["published_at"] == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    "moment",
    [
        "2024-W01-1T00:00:00Z",  # ISO 8601 week dates
        "2024-01-01T00:00:00+00:00:30",  # an offset with seconds
        "2024-01-01T00:00:00 Z",
        "2024-01-01T00:00Z",  # no seconds
        "20240101T000000Z",  # ISO 8601's basic format
        "2024-001T00:00:00Z",  # an ordinal date
    ],
)
def test_times_that_are_no_rfc_3339_are_422(client, writer, source, moment):
    refused = post(client, writer, published_at=moment)
    assert refused.status_code == 422
    assert refused.json["errors"] == {"published_at": ["Not a valid date or RFC 3339 timestamp."]}
    listed = client.get("/v1/articles", query_string={"published_after": moment})
    assert listed.status_code == 422 and list(listed.json["errors"]) == ["published_after"]


@pytest.mark.parametrize(
    ("moment", "stored"),
    [
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),
        ("2016-12-31T18:59:60-05:00", "2017-01-01T00:00:00Z"),
        ("2016-12-31t23:59:60z", "2017-01-01T00:00:00Z"),
    ],
)
def test_a_leap_second_is_the_second_after_23_59_59(client, writer, source, moment, stored):
    # RFC 3339 (5.7) allows 60 seconds; it was a 422 "Not a valid date".
    created = post(client, writer, published_at=moment)
    assert created.status_code == 201, created.json
    assert created.json["published_at"] == stored
    # The filters read it so too: from it, the article; before it, not.
    listed = client.get("/v1/articles", query_string={"published_after": moment})
    assert [item["id"] for item in listed.json["data"]] == [created.json["id"]]
    listed = client.get("/v1/articles", query_string={"published_before": moment})
    assert listed.status_code == 200 and listed.json["data"] == []


def test_an_offset_whose_plus_became_a_space_is_told_to_encode_it(client):
    refused = client.get("/v1/articles?published_after=2026-11-01T15:30:00+01:00")
    assert refused.status_code == 422
    assert refused.json["errors"] == {
        "published_after": [
            "Not a valid date or RFC 3339 timestamp: a '+' in a URL's query reads as a space;"
            " write it %2B."
        ]
    }
    encoded = client.get("/v1/articles?published_after=2026-11-01T15:30:00%2B01:00")
    assert encoded.status_code == 200


def test_a_time_is_stored_to_the_second_it_is_shown_to(client, writer, source):
    created = post(client, writer, published_at="2025-05-05 10:00:00.9Z")
    assert created.status_code == 201, created.json
    assert created.json["published_at"] == "2025-05-05T10:00:00Z"

    def ids(**filters):
        return [
            item["id"] for item in client.get("/v1/articles", query_string=filters).json["data"]
        ]

    # Shown at 10:00:00, it is before 10:00:00.5, not after it (as stored with its fraction,
    # it was both).
    assert ids(published_after="2025-05-05T10:00:00.5Z") == []
    assert ids(published_before="2025-05-05T10:00:00.5Z") == [created.json["id"]]
    assert ids(published_after="2025-05-05T10:00:00Z") == [created.json["id"]]


def test_a_write_that_changes_nothing_changes_no_etag(client, writer, source):
    """A write storing what was stored already raised the data version: every list's, feed's,
    search's and /v1/changes's ETag changed (an ingester re-posting its items every minute
    defeated every 304), though the README says such a write changes nothing."""
    item = {
        "source": source.slug,
        "external_id": "tide-1",
        "title": "Spring tides",
        "body_text": "High.",
    }
    assert client.post("/v1/articles", json=item, headers=writer).status_code == 201
    line = orjson.dumps({**item, "external_id": "tide-2", "title": "Neap tides"}).decode()
    imported = client.post(
        "/v1/import", data=line, content_type="application/x-ndjson", headers=writer
    )
    assert imported.json["created"] == 1, imported.json
    urls = [
        "/v1/articles?limit=5",
        "/v1/sources",
        "/v1/tags",
        "/v1/search?q=tides",
        "/feeds/articles.atom",
        "/v1/changes",
    ]
    etags = {url: client.get(url).headers["ETag"] for url in urls}

    again = client.post("/v1/articles", json=item, headers=writer)
    assert again.status_code == 200, again.json
    imported = client.post(
        "/v1/import", data=line, content_type="application/x-ndjson", headers=writer
    )
    assert imported.json["unchanged"] == 1, imported.json
    same_name = client.patch(
        f"/v1/sources/{source.slug}", json={"name": source.name}, headers=writer
    )
    assert same_name.status_code == 200, same_name.json
    for url, etag in etags.items():
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304, url

    # A write that changes something still does.
    renamed = client.patch(
        f"/v1/sources/{source.slug}", json={"name": "The Evening Daily"}, headers=writer
    )
    assert renamed.status_code == 200, renamed.json
    assert (
        client.get("/v1/sources", headers={"If-None-Match": etags["/v1/sources"]}).status_code
        == 200
    )


def _distinct_long_words(characters):
    """Text of ``characters`` characters: distinct words of 511 4-byte letters (CJK Extension
    B), the longest word PostgreSQL's search index keeps, each a lexeme of its own."""
    rng = random.Random(7)
    words = (
        "".join(chr(0x20000 + rng.randrange(40_000)) for _ in range(511))
        for _ in range(characters // 512 + 1)
    )
    return " ".join(words)[:characters].rstrip()


@pytest.mark.parametrize("app_config", [{"max_body_bytes": 2 * 1024 * 1024}])
def test_a_body_whose_words_fill_a_search_vector_is_stored_and_found(client, writer, source):
    """PostgreSQL's search vector holds at most 1 MiB of distinct words: past it, the write
    failed, answered as a database unavailable (a 503 that no retry cures), and it failed the
    whole batch of an import. The article is stored whole; the index holds its first part."""
    body = "lemonade " + _distinct_long_words(262_000)
    fields = {
        "title": "Wombat " + _distinct_long_words(490),
        "excerpt": _distinct_long_words(1_990),
        "body_text": body,
    }
    response = post(client, writer, **fields, external_id="big")
    assert response.status_code == 201, response.json
    assert client.get(f"/v1/articles/{response.json['id']}").json["body_text"] == body
    for q in ("wombat", "lemonade"):
        found = client.get("/v1/search", query_string={"q": q, "mode": "keyword"})
        assert [hit["id"] for hit in found.json["data"]] == [response.json["id"]], q
    lines = [
        {"source": source.slug, "external_id": f"line-{n}", **line}
        for n, line in enumerate(
            (
                {"title": "Before", "body_text": "A short body."},
                fields,
                {"title": "After", "body_text": "Another."},
            )
        )
    ]
    imported = client.post(
        "/v1/import",
        data=b"".join(json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in lines),
        headers={**writer, "Content-Type": "application/x-ndjson"},
    )
    assert imported.status_code == 200, imported.json
    assert (imported.json["created"], imported.json["rejected"]) == (3, 0)


def test_a_bodys_relative_links_are_made_absolute_against_the_articles_url(client, writer, source):
    html = '<p><a href="/rel">r</a> <img src="img.png" alt="i"></p>'
    absolute = (
        '<a href="https://pub.example/rel" rel="noopener noreferrer nofollow">r</a>'
        ' <img src="https://pub.example/2026/img.png" alt="i">'
    )
    body = {"source": source.slug, "title": "T", "body_html": html}
    created = post(client, writer, **body, url="https://pub.example/2026/story")
    assert created.status_code == 201, created.json
    assert absolute in created.json["body_html"]
    path = f"/v1/articles/{created.json['id']}"
    # A PATCH of the body alone: against the URL stored.
    patched = client.patch(path, json={"body_html": html + "<p>More.</p>"}, headers=writer)
    assert absolute in patched.json["body_html"] and "More." in patched.json["body_html"]
    line = orjson.dumps({**body, "external_id": "rel-1", "url": "https://pub.example/2026/x"})
    imported = client.post(
        "/v1/import", data=line, content_type="application/x-ndjson", headers=writer
    )
    assert imported.json["created"] == 1, imported.json
    stored = client.get("/v1/articles", query_string={"fields": "id,external_id"}).json["data"]
    (new,) = [item["id"] for item in stored if item["external_id"] == "rel-1"]
    assert absolute in client.get(f"/v1/articles/{new}").json["body_html"]
    # Without a URL there is nothing they are relative to: kept as they are.
    alone = post(client, writer, **body)
    assert 'href="/rel"' in alone.json["body_html"] and 'src="img.png"' in alone.json["body_html"]
