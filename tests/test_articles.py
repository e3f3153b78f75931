import datetime
import email.utils

import pytest

from api import create_app
from models import Article, ArticleTag, db
from models.base import utcnow

from .conftest import BASE_TIME


def ids(response):
    return [item["id"] for item in response.json["data"]]


def walk(client, url):
    """Follow next_cursor from ``url`` to the end; the ids seen, in order."""
    seen, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.json
        seen += ids(response)
        pages += 1
        cursor = response.json["next_cursor"]
        assert response.json["has_more"] is (cursor is not None)
        separator = "&" if "?" in url.split("cursor=")[0] else "?"
        url = (
            url.split("cursor=")[0].rstrip("&?") + f"{separator}cursor={cursor}" if cursor else None
        )
    return seen, pages


def test_list_newest_first_with_envelope(client, make_article):
    first, second, third = (make_article() for _ in range(3))
    response = client.get("/v1/articles")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert ids(response) == [third.id, second.id, first.id]
    assert response.json["has_more"] is False
    assert response.json["next_cursor"] is None
    assert "Link" not in response.headers
    item = response.json["data"][0]
    assert item["source"] == {
        "id": third.source_id,
        "slug": "default-source",
        "name": "Default",
        "logo_url": None,
    }
    assert item["published_at"] == "2026-11-01T15:00:00Z"
    assert "body_html" not in item and "body_text" not in item
    assert item["word_count"] == 4 and item["reading_time_minutes"] == 1


def test_list_hides_drafts(client, make_article):
    published = make_article()
    make_article(status="draft")
    assert ids(client.get("/v1/articles")) == [published.id]


def test_keys_that_write_list_drafts_newest_first(client, make_article, make_key):
    make_article()
    drafts = [make_article(status="draft", tags=["plans"]) for _ in range(3)]
    writer = make_key("write")
    first = client.get("/v1/articles?status=draft&limit=2", headers=writer)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert [item["status"] for item in first.json["data"]] == ["draft", "draft"]
    cursor = first.json["next_cursor"]
    rest = client.get(f"/v1/articles?status=draft&limit=2&cursor={cursor}", headers=writer)
    assert ids(first) + ids(rest) == [d.id for d in reversed(drafts)]
    assert ids(client.get("/v1/articles?status=draft&tag=plans", headers=writer)) == ids(
        first
    ) + ids(rest)
    assert ids(client.get("/v1/articles?status=draft&tag=other", headers=writer)) == []


@pytest.mark.parametrize(("scopes", "status"), [(None, 401), ("read", 403), ("comment", 403)])
def test_drafts_are_listed_only_to_keys_that_write(client, make_article, make_key, scopes, status):
    make_article(status="draft")
    headers = make_key(scopes) if scopes else {}
    response = client.get("/v1/articles?status=draft", headers=headers)
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert "write" in response.json["detail"]


def test_a_draft_lists_etag_does_not_revalidate_without_the_key(client, make_article, make_key):
    """The early 304 answers anonymous revalidations before the app: a tag that a key was
    given for its drafts must not get one without the key."""
    make_article(status="draft")
    seen = client.get("/v1/articles?status=draft", headers=make_key("write"))
    again = client.get("/v1/articles?status=draft", headers={"If-None-Match": seen.headers["ETag"]})
    assert again.status_code == 401


def test_list_status_names_the_bad_value(client):
    response = client.get("/v1/articles?status=deleted")
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["status"]


def test_list_link_header_points_to_next_page(client, make_article):
    for _ in range(3):
        make_article()
    response = client.get("/v1/articles?limit=2&language=en")
    cursor = response.json["next_cursor"]
    assert response.json["has_more"] is True
    link = response.headers["Link"]
    assert link.startswith("<http://localhost/v1/articles?")
    assert f"cursor={cursor}" in link and "limit=2" in link and "language=en" in link
    assert link.endswith('>; rel="next"')


def test_the_link_header_holds_one_link_whatever_the_query(client, make_article):
    """What a client sent in the query unencoded is percent-encoded in the next page's URL: a
    ``>`` ended the URL there, and what followed it was a link of its own, to any host."""
    for _ in range(2):
        make_article()
    query = 'limit=1&x=>;rel="prev",<http://evil.example/next&y=a b%41'
    response = client.get("/v1/articles", environ_overrides={"QUERY_STRING": query})
    cursor = response.json["next_cursor"]
    assert response.headers["Link"] == (
        "<http://localhost/v1/articles?limit=1&x=%3E;rel=%22prev%22,%3Chttp://evil.example/next"
        f'&y=a%20b%41&cursor={cursor}>; rel="next"'
    )
    assert client.get(response.headers["Link"][1:].split(">")[0]).status_code == 200


@pytest.mark.parametrize("sort", ["-published_at", "published_at", "-updated_at"])
def test_cursor_walk_sees_every_article_once(client, make_article, sort):
    made = [make_article(tags=["news"]) for _ in range(23)]
    # Ties on the sort key are broken by id.
    made.append(make_article(published_at=made[5].published_at, updated_at=made[5].updated_at))
    seen, pages = walk(client, f"/v1/articles?limit=5&sort={sort}")
    assert sorted(seen) == sorted(a.id for a in made)
    assert len(seen) == len(set(seen))
    assert pages == 5
    key = {"-published_at": "published_at", "published_at": "published_at"}.get(sort, "updated_at")
    expected = sorted(made, key=lambda a: (getattr(a, key), a.id), reverse=sort.startswith("-"))
    assert seen == [a.id for a in expected]


def test_cursor_walk_over_a_tag(client, make_article):
    tagged = [make_article(tags=["climate"]) for _ in range(7)]
    make_article(tags=["sport"])
    seen, _ = walk(client, "/v1/articles?tag=climate&limit=3")
    assert seen == [a.id for a in reversed(tagged)]


def test_cursor_is_stable_while_articles_arrive(client, make_article):
    old = [make_article() for _ in range(4)]
    page = client.get("/v1/articles?limit=2")
    make_article(published_at=utcnow())  # newer than everything: must not shift the walk
    rest = client.get(f"/v1/articles?limit=10&cursor={page.json['next_cursor']}")
    assert ids(page) + ids(rest) == [a.id for a in reversed(old)]


def test_filter_by_sources(client, make_article, make_source):
    one, two, three = make_source(slug="one"), make_source(slug="two"), make_source(slug="three")
    a, b = make_article(source=one), make_article(source=two)
    make_article(source=three)
    assert ids(client.get("/v1/articles?source=one,two")) == [b.id, a.id]
    assert ids(client.get("/v1/articles?source=one")) == [a.id]
    assert ids(client.get("/v1/articles?source=nobody")) == []


@pytest.mark.parametrize("sort", ["-published_at", "published_at"])
def test_several_sources_or_languages_page_by_page(client, make_article, make_source, sort):
    """Pages merged from each value's own walk: every article once, in order, ties by id."""
    sources = [make_source(slug=slug) for slug in ("one", "two", "three")]
    made = []
    for n in range(24):
        when = BASE_TIME + datetime.timedelta(hours=n // 2)  # two articles at each time
        made.append(
            make_article(
                source=sources[n % 3],
                language=("de", "fr", "en", "en")[n % 4],
                published_at=when,
                tags=["even"] if n % 2 == 0 else [],
                status="draft" if n == 7 else "published",
            )
        )
    even = {a.id for a in made[::2]}
    made = [a for a in made if a.status == "published"]

    def expected(keep):
        chosen = [a for a in made if keep(a)]
        return [
            a.id
            for a in sorted(
                chosen, key=lambda a: (a.published_at, a.id), reverse=sort.startswith("-")
            )
        ]

    slugs = {s.id: s.slug for s in sources}
    cases = {
        "source=one,two": lambda a: slugs[a.source_id] in ("one", "two"),
        "source=one,three&language=en": lambda a: (
            slugs[a.source_id] in ("one", "three") and a.language == "en"
        ),
        "language=de,fr": lambda a: a.language in ("de", "fr"),
        "language=de,fr&tag=even": lambda a: a.language in ("de", "fr") and a.id in even,
        "source=two,three&published_before=2026-11-01T17:00:00Z": (
            lambda a: (
                slugs[a.source_id] in ("two", "three")
                and a.published_at < datetime.datetime(2026, 11, 1, 17)
            )
        ),
        "source=one,two&language=de,fr": lambda a: (
            slugs[a.source_id] in ("one", "two") and a.language in ("de", "fr")
        ),
    }
    for query, keep in cases.items():
        seen, _ = walk(client, f"/v1/articles?limit=3&sort={sort}&{query}")
        assert seen == expected(keep) and len(seen) >= 3, query


def test_filter_by_tags(client, make_article):
    a = make_article(tags=["climate", "energy"])
    b = make_article(tags=["energy"])
    make_article(tags=["sport"])
    assert ids(client.get("/v1/articles?tag=climate")) == [a.id]
    assert ids(client.get("/v1/articles?tag=energy")) == [b.id, a.id]
    assert ids(client.get("/v1/articles?tag=climate,sport&sort=published_at")) == [a.id, a.id + 2]


def test_filter_by_language(client, make_article):
    german = make_article(language="de")
    make_article(language="en")
    french = make_article(language="fr")
    assert ids(client.get("/v1/articles?language=de,fr")) == [french.id, german.id]


def test_filter_by_dates(client, make_article):
    made = [make_article() for _ in range(5)]  # published at 13:00, 14:00 ... 17:00
    response = client.get(
        "/v1/articles?published_after=2026-11-01T14:00:00Z&published_before=2026-11-01T16:00:00Z"
    )
    assert ids(response) == [made[2].id, made[1].id]
    # Offsets are converted to UTC: 15:30+01:00 is 14:30Z.
    response = client.get("/v1/articles?published_after=2026-11-01T15:30:00%2B01:00")
    assert ids(response) == [a.id for a in reversed(made[2:])]
    assert ids(client.get("/v1/articles?published_before=2026-11-01")) == []


def test_filter_updated_since(client, make_article):
    made = [make_article() for _ in range(3)]
    Article.update(updated_at=BASE_TIME + datetime.timedelta(days=3)).where(
        Article.id == made[0].id
    ).execute()
    response = client.get("/v1/articles?updated_since=2026-11-02T00:00:00Z")
    assert ids(response) == [made[0].id]


def test_sort_by_updated(client, make_article):
    made = [make_article() for _ in range(3)]
    Article.update(updated_at=BASE_TIME + datetime.timedelta(days=3)).where(
        Article.id == made[0].id
    ).execute()
    assert ids(client.get("/v1/articles?sort=-updated_at")) == [made[0].id, made[2].id, made[1].id]


def test_empty_items_of_a_comma_list_say_nothing(client, make_article, make_source):
    ours = make_article()
    theirs = make_article(source=make_source(slug="wire"))
    everything = {ours.id, theirs.id}
    for query, expected in [
        ("source=", everything),
        ("source=,", everything),
        ("source=,,", everything),
        ("source=wire,", {theirs.id}),
        ("source=,wire&source=", {theirs.id}),
    ]:
        assert {a["id"] for a in client.get(f"/v1/articles?{query}").json["data"]} == expected


def test_sparse_fields(client, make_article):
    make_article(tags=["climate"], body="Only paragraph.")
    response = client.get("/v1/articles?fields=title,tags,body_text")
    assert response.json["data"] == [
        {
            "title": "Article 1",
            "tags": [{"slug": "climate", "name": "Climate"}],
            "body_text": "Only paragraph.",
        }
    ]


@pytest.mark.parametrize("url", ["/v1/articles?fields=title,secret", "/v1/articles/1?fields=nope"])
def test_unknown_fields_are_400(client, make_article, url):
    make_article()
    response = client.get(url)
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert "fields" in response.json["errors"]


def test_list_of_twenty_takes_a_fixed_number_of_queries(client, make_article, count_queries):
    for number in range(20):
        make_article(tags=["a", f"t{number}"])
    count_queries.queries.clear()
    client.get("/v1/articles?limit=2")
    few = len(count_queries.queries)
    count_queries.queries.clear()
    response = client.get("/v1/articles?limit=20&fields=id,title,source,tags,body_html")
    assert len(response.json["data"]) == 20
    assert all(item["tags"] and item["body_html"] for item in response.json["data"])
    # articles+sources, tags, bodies: one query each, however long the page.
    assert len(count_queries.queries) <= few + 1 <= 4


def test_detail_by_id_and_slug(client, make_article):
    article = make_article(tags=["climate"], body="Para one.\n\nPara two.", byline="A. Writer")
    by_id = client.get(f"/v1/articles/{article.id}")
    by_slug = client.get(f"/v1/articles/{article.slug}")
    assert by_id.status_code == by_slug.status_code == 200
    assert by_id.json == by_slug.json
    body = by_id.json
    assert body["id"] == article.id and body["slug"] == "article-1"
    assert body["body_text"] == "Para one.\n\nPara two."
    assert body["body_html"] == "<p>Para one.</p><p>Para two.</p>"
    assert body["tags"] == [{"slug": "climate", "name": "Climate"}]
    assert body["byline"] == "A. Writer"
    assert by_id.headers["Last-Modified"] == "Sun, 01 Nov 2026 13:00:00 GMT"


@pytest.mark.parametrize("key", ["999", "no-such-slug"])
def test_detail_missing_is_404(client, key):
    response = client.get(f"/v1/articles/{key}")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.json["status"] == 404


def test_detail_of_a_draft_is_404(client, make_article):
    draft = make_article(status="draft")
    assert client.get(f"/v1/articles/{draft.id}").status_code == 404


def test_etag_and_304(client, make_article):
    article = make_article()
    for url in ("/v1/articles", f"/v1/articles/{article.id}"):
        first = client.get(url)
        etag = first.headers["ETag"]
        assert first.headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=300"
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.data == b""
    since = client.get(
        f"/v1/articles/{article.id}", headers={"If-Modified-Since": "Sun, 01 Nov 2026 13:00:00 GMT"}
    )
    assert since.status_code == 304
    # A date later than now is none the client had: it made every answer 304 until it came.
    future = email.utils.format_datetime(
        datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1), usegmt=True
    )
    for date in (future, "Fri, 31 Dec 9999 23:59:59 GMT"):
        answer = client.get(f"/v1/articles/{article.id}", headers={"If-Modified-Since": date})
        assert answer.status_code == 200 and answer.json["id"] == article.id


def test_etag_changes_when_the_article_does(client, make_article, writer, database_url):
    article = make_article()
    urls = (f"/v1/articles/{article.id}", "/v1/articles", "/v1/tags")
    etags = {url: client.get(url).headers["ETag"] for url in urls}
    # The write goes through another app: another worker, or another host on the same database.
    other_worker = create_app({"database_url": database_url, "testing": True}).test_client()
    patched = other_worker.patch(
        f"/v1/articles/{article.id}", json={"title": "Changed"}, headers=writer
    )
    assert patched.status_code == 200
    for url in urls:
        response = client.get(url, headers={"If-None-Match": etags[url]})
        assert response.status_code == 200, url
        assert response.headers["ETag"] != etags[url]
    assert client.get(urls[0]).json["title"] == "Changed"


def test_revalidation_with_a_compressed_etag(client, make_article):
    for _ in range(10):
        make_article(body="A long paragraph of text. " * 40)
    response = client.get(
        "/v1/articles?fields=id,title,excerpt", headers={"Accept-Encoding": "gzip"}
    )
    assert response.headers["Content-Encoding"] == "gzip"
    etag = response.headers["ETag"]
    assert etag.endswith(':gzip"')
    again = client.get(
        "/v1/articles?fields=id,title,excerpt",
        headers={"Accept-Encoding": "gzip", "If-None-Match": etag},
    )
    assert again.status_code == 304 and again.data == b""
    brotli = client.get("/v1/articles?fields=id,title,excerpt", headers={"Accept-Encoding": "br"})
    assert brotli.headers["Content-Encoding"] == "br"
    assert (
        client.get("/v1/articles", headers={"Accept-Encoding": "identity"}).headers.get(
            "Content-Encoding"
        )
        is None
    )


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("identity, gzip;q=0.1", None),  # was gzip: identity's own quality was never read
        ("identity;q=0.9, br;q=0.5, gzip;q=0.2", None),
        ("gzip, identity", "gzip"),  # a tie: compressed
        ("identity;q=0.5, gzip", "gzip"),
        ("br;q=0.4, gzip;q=0.6, identity;q=0.5", "gzip"),
        ("*", "br"),
        ("identity;q=0, *;q=0", None),
        ("gzip;q=0, br;q=0", None),
    ],
)
def test_the_coding_of_highest_quality_is_chosen_identity_too(client, make_article, accept, coding):
    for _ in range(6):
        make_article(body="A long paragraph of text. " * 40)
    response = client.get(
        "/v1/articles?fields=id,title,excerpt", headers={"Accept-Encoding": accept}
    )
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == coding


def test_answers_vary_by_encoding_whatever_the_client_accepts(client, make_article):
    for _ in range(6):
        make_article(body="A long paragraph of text. " * 40)
    for headers in ({}, {"Accept-Encoding": "gzip"}):
        for url in ("/v1/articles", "/feeds/articles.atom", "/openapi.json"):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, url
            assert "Accept-Encoding" in response.headers["Vary"], (url, headers)
            assert response.headers.get("Content-Encoding") == headers.get("Accept-Encoding"), (
                url,
                headers,
            )


def test_head_and_options(client, make_article):
    article = make_article()
    head = client.head(f"/v1/articles/{article.id}")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == client.get(f"/v1/articles/{article.id}").headers["ETag"]
    options = client.options("/v1/articles")
    assert options.status_code == 200
    assert set(options.headers["Allow"].split(", ")) >= {"GET", "HEAD", "OPTIONS"}


def test_tag_listing_uses_the_copied_publication_time(dbconn, make_article):
    article = make_article(tags=["climate"])
    link = ArticleTag.get(ArticleTag.article == article.id)
    assert link.published_at == article.published_at
    assert db.is_closed() is False


def storm_related_to_ferries(client, make_article, writer):
    """An article on a harbour storm, with an editorial relation to one on its ferries: the
    storm article."""
    first = make_article(title="Harbour storm", body="The storm closed the harbour.")
    other = make_article(title="Harbour ferries", body="Ferries left the harbour.")
    related = {"article_id": other.id, "kind": "related"}
    assert (
        client.post(f"/v1/articles/{first.id}/relations", json=related, headers=writer).status_code
        == 201
    )
    return first


def test_what_every_item_carries_may_be_named_in_fields(client, make_article, writer):
    """A hit's score, match and highlights, and a related item's relation, are on every item
    whatever `fields` asks; naming them was a 400, as an unknown field."""
    first = storm_related_to_ferries(client, make_article, writer)
    search = client.get("/v1/search?q=storm&mode=keyword&fields=id,score,match,highlights")
    assert search.status_code == 200, search.json
    assert [sorted(item) for item in search.json["data"]] == [
        ["highlights", "id", "match", "score"]
    ]
    listed = client.get(f"/v1/articles/{first.id}/related?fields=id,relation")
    assert listed.status_code == 200, listed.json
    assert [sorted(item) for item in listed.json["data"]] == [["id", "relation"]]
    for url in ("/v1/articles?fields=id,score", f"/v1/articles/{first.id}/related?fields=score"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.json["errors"] == {"fields": ["Unknown field(s): score."]}


def test_a_search_hit_shows_its_body_when_fields_name_it(client, make_article):
    """A hit's body text is read for its highlight whatever is shown; the body fields are on
    the hit, as the article shows them, only when `fields` names them."""
    article = make_article(title="Storm warning", body="The storm reached the coast.\n\nAll clear.")
    shown = client.get("/v1/search?q=storm&mode=keyword&fields=id,body_html,body_text")
    assert shown.status_code == 200, shown.json
    detail = client.get(f"/v1/articles/{article.id}").json
    [hit] = shown.json["data"]
    assert (
        hit["body_html"]
        == detail["body_html"]
        == "<p>The storm reached the coast.</p><p>All clear.</p>"
    )
    assert hit["body_text"] == detail["body_text"]
    assert hit["highlights"]["body"] == "The <mark>storm</mark> reached the coast.\n\nAll clear."
    [card] = client.get("/v1/search?q=storm&mode=keyword").json["data"]
    assert "body_html" not in card and "body_text" not in card
    assert card["highlights"] == hit["highlights"]


def test_fields_naming_only_what_every_item_carries_gives_that_alone(client, make_article, writer):
    """`fields=score` asks for a hit's own fields: naming no article field gave the whole
    card, as if `fields` had not been sent."""
    first = storm_related_to_ferries(client, make_article, writer)
    search = client.get("/v1/search?q=storm&mode=keyword&fields=score")
    assert search.status_code == 200, search.json
    assert [sorted(item) for item in search.json["data"]] == [["highlights", "match", "score"]]
    listed = client.get(f"/v1/articles/{first.id}/related?fields=relation")
    assert listed.status_code == 200, listed.json
    assert [sorted(item) for item in listed.json["data"]] == [["relation"]]
    assert listed.json["data"][0]["relation"]["kind"] == "related"


def test_language_tags_are_kept_and_compared_in_one_case(client, writer, source):
    """`en-gb` and `en-GB` are one tag (RFC 5646): each was stored as sent, a filter found only
    its own spelling, facets counted the two apart, and `EN` was a 422."""
    made = client.post(
        "/v1/sources",
        json={"slug": "london", "name": "London", "language": "EN-gb"},
        headers=writer,
    )
    assert made.status_code == 201 and made.json["language"] == "en-GB"
    sent = {"en-gb": "en-GB", "EN-GB": "en-GB", "EN": "en", "zh-hant-tw": "zh-Hant-TW"}
    for number, (language, kept) in enumerate(sent.items()):
        body = {
            "source": "daily",
            "title": f"Storm {number}",
            "body_text": "Storm.",
            "language": language,
        }
        response = client.post("/v1/articles", json=body, headers=writer)
        assert response.status_code == 201, response.json
        assert response.json["language"] == kept
    for odd in ("\u212aa", "en-\u017fe", "e1"):  # the Kelvin sign and long s are no ASCII
        refused = client.post(
            "/v1/articles",
            json={"source": "daily", "title": "Odd", "body_text": "Odd.", "language": odd},
            headers=writer,
        )
        assert refused.status_code == 422, odd
        assert refused.json["errors"] == {"language": ["Not a language tag such as en or pt-BR."]}
    listed = client.get("/v1/articles?language=en-gb")
    assert sorted(a["title"] for a in listed.json["data"]) == ["Storm 0", "Storm 1"]
    listed = client.get("/v1/articles?language=ZH-HANT-TW,En")
    assert sorted(a["title"] for a in listed.json["data"]) == ["Storm 2", "Storm 3"]
    faceted = client.get("/v1/search?q=storm&mode=keyword&facets=language")
    assert faceted.json["facets"]["language"] == [
        {"value": "en-GB", "count": 2},
        {"value": "en", "count": 1},
        {"value": "zh-Hant-TW", "count": 1},
    ]


def test_a_body_text_given_with_body_html_is_kept_and_is_what_search_reads(client, writer, source):
    body = {
        "source": "daily",
        "title": "Harbour",
        "url": "https://daily.example/news/harbour",
        "body_html": '<p>The <a href="../ferries">ferry</a> sailed.<script>x()</script></p>',
        "body_text": "The ferry sailed at dawn.",
    }
    made = client.post("/v1/articles", json=body, headers=writer)
    assert made.status_code == 201, made.json
    assert (made.json["body_html"], made.json["body_text"]) == (
        '<p>The <a href="https://daily.example/ferries" rel="noopener noreferrer nofollow">ferry</a>'
        " sailed.</p>",
        "The ferry sailed at dawn.",
    )
    assert made.json["excerpt"] == "The ferry sailed at dawn." and made.json["word_count"] == 5
    found = client.get("/v1/search?q=dawn&mode=keyword").json["data"]
    assert [item["id"] for item in found] == [made.json["id"]]
