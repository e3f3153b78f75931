import datetime

from models import Source


def test_sources_by_name_with_counts(client, make_source, make_article):
    zeta = make_source(slug="zeta", name="Zeta News", country="DE", language="de")
    alpha = make_source(slug="alpha", name="Alpha Times")
    make_article(source=zeta)
    make_article(source=zeta)
    make_article(source=zeta, status="draft")
    response = client.get("/v1/sources")
    assert response.status_code == 200
    assert [s["slug"] for s in response.json["data"]] == ["alpha", "zeta"]
    zeta_json = response.json["data"][1]
    assert zeta_json["article_count"] == 2
    assert zeta_json["country"] == "DE" and zeta_json["language"] == "de"
    assert set(zeta_json) == {
        "id",
        "slug",
        "name",
        "homepage_url",
        "logo_url",
        "language",
        "country",
        "article_count",
        "created_at",
        "updated_at",
    }
    assert alpha.id == response.json["data"][0]["id"]


def test_sources_cursor_walk(client, make_source):
    for number in range(5):
        make_source(slug=f"s{number}", name=f"Same name {number % 2}")
    first = client.get("/v1/sources?limit=3")
    second = client.get(f"/v1/sources?limit=3&cursor={first.json['next_cursor']}")
    slugs = [s["slug"] for s in first.json["data"] + second.json["data"]]
    assert slugs == ["s0", "s2", "s4", "s1", "s3"]
    assert second.json["has_more"] is False


def test_source_detail_and_404(client, make_source):
    source = make_source(slug="daily", name="Daily")
    Source.update(modified_at=datetime.datetime(2026, 1, 1)).where(Source.id == source.id).execute()
    response = client.get("/v1/sources/daily")
    assert response.status_code == 200 and response.json["name"] == "Daily"
    assert response.headers["Last-Modified"] == "Thu, 01 Jan 2026 00:00:00 GMT"
    missing = client.get("/v1/sources/nobody")
    assert missing.status_code == 404
    assert missing.content_type == "application/problem+json"


def test_tags_most_used_first(client, make_article):
    make_article(tags=["sport", "climate"])
    make_article(tags=["climate"])
    make_article(tags=["climate", "energy"])
    make_article(tags=["energy"])
    make_article(tags=["sport"], status="draft")
    response = client.get("/v1/tags")
    assert response.json["data"] == [
        {"slug": "climate", "name": "Climate", "article_count": 3},
        {"slug": "energy", "name": "Energy", "article_count": 2},
        {"slug": "sport", "name": "Sport", "article_count": 1},
    ]
    page = client.get("/v1/tags?limit=2")
    rest = client.get(f"/v1/tags?limit=2&cursor={page.json['next_cursor']}")
    assert [t["slug"] for t in page.json["data"] + rest.json["data"]] == [
        "climate",
        "energy",
        "sport",
    ]


def test_tags_by_slug_are_each_seen_once_while_articles_arrive(client, make_article):
    for slug, count in [("alpha", 5), ("bravo", 4), ("charlie", 3), ("delta", 2), ("echo", 1)]:
        for _ in range(count):
            make_article(tags=[slug])
    page = client.get("/v1/tags?sort=slug&limit=2").json
    seen = [tag["slug"] for tag in page["data"]]
    for _ in range(4):  # delta becomes the most used tag while the walk goes on
        make_article(tags=["delta"])
    while page["has_more"]:
        page = client.get(f"/v1/tags?sort=slug&limit=2&cursor={page['next_cursor']}").json
        seen += [tag["slug"] for tag in page["data"]]
    assert seen == ["alpha", "bravo", "charlie", "delta", "echo"]
    # A cursor of one order is no cursor of the other.
    by_count = client.get("/v1/tags?limit=1").json["next_cursor"]
    mixed = client.get(f"/v1/tags?sort=slug&cursor={by_count}")
    assert mixed.status_code == 400 and list(mixed.json["errors"]) == ["cursor"]


def test_tags_of_drafts_alone_are_shown_to_writers_only(client, make_article, writer):
    make_article(tags=["climate"])
    make_article(tags=["embargoed-merger"], status="draft")
    assert [t["slug"] for t in client.get("/v1/tags").json["data"]] == ["climate"]
    assert client.get("/v1/tags/embargoed-merger").status_code == 404
    listed = client.get("/v1/tags?sort=slug", headers=writer).json["data"]
    assert [(t["slug"], t["article_count"]) for t in listed] == [
        ("climate", 1),
        ("embargoed-merger", 0),
    ]
    assert client.get("/v1/tags/embargoed-merger", headers=writer).status_code == 200


def test_tag_detail_and_404(client, make_article):
    make_article(tags=["climate"])
    assert client.get("/v1/tags/climate").json == {
        "slug": "climate",
        "name": "Climate",
        "article_count": 1,
        "feeds": {
            "atom": "http://localhost/feeds/articles.atom?tag=climate",
            "rss": "http://localhost/feeds/articles.rss?tag=climate",
            "json": "http://localhost/feeds/articles.json?tag=climate",
        },
    }
    assert client.get("/v1/tags/nothing").status_code == 404


def test_sources_and_tags_are_listed_in_the_same_order_on_every_database(
    client, make_source, make_article, locale_ordered
):
    locale_ordered(("source", "name", 200), ("tag", "slug", 100))
    names = ["alpha daily", "Zeta Post", "Émile Journal", "A-B Wire", "AB News", "Beta Times"]
    for number, name in enumerate(names):
        make_source(slug=f"s{number}", name=name)
    for slug in ["ab", "a-c", "a-b", "b"]:
        make_article(tags=[slug])

    def walk(path):
        page, seen = client.get(f"{path}limit=2").json, []
        while True:
            seen += page["data"]
            if not page["has_more"]:
                return seen
            page = client.get(f"{path}limit=2&cursor={page['next_cursor']}").json

    listed = [source["name"] for source in walk("/v1/sources?")]
    assert listed == [
        "A-B Wire",
        "AB News",
        "Beta Times",
        "Default",  # make_article's source
        "Zeta Post",
        "alpha daily",
        "Émile Journal",
    ]
    assert [tag["slug"] for tag in walk("/v1/tags?sort=slug&")] == ["a-b", "a-c", "ab", "b"]


def test_sources_by_id_walk_every_source_once_while_one_is_renamed(client, writer, make_source):
    made = [make_source(slug=f"s{n}", name=f"Name {n}") for n in range(5)]
    first = client.get("/v1/sources?sort=id&limit=2").json
    assert [s["id"] for s in first["data"]] == [made[0].id, made[1].id]
    # Renamed to sort first by name: by name it would now be behind the cursor.
    renamed = client.patch(f"/v1/sources/{made[4].slug}", json={"name": "Aaa"}, headers=writer)
    assert renamed.status_code == 200
    walked = [s["id"] for s in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(f"/v1/sources?sort=id&limit=2&cursor={cursor}").json
        walked += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
    assert walked == [s.id for s in made]
    by_name = client.get("/v1/sources?limit=2").json["next_cursor"]
    refused = client.get(f"/v1/sources?sort=id&cursor={by_name}")
    assert refused.status_code == 400 and list(refused.json["errors"]) == ["cursor"]
