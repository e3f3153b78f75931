import json

import feedparser
import pytest

TRICKY = "Tom & Jerry <b>\"live\"</b> at O'Brien's"


@pytest.fixture
def articles(make_article, make_source):
    wire = make_source(slug="wire", name="Wire")
    return [
        make_article(
            title=TRICKY, tags=["culture"], byline="Ann Lee", url="https://example.com/a?x=1&y=2"
        ),
        make_article(title="Second story", source=wire, language="de"),
        make_article(title="Third story", tags=["culture"]),
    ]


def test_atom_feed(client, articles):
    response = client.get("/feeds/articles.atom")
    assert response.status_code == 200
    assert response.content_type == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(response.data)
    assert not feed.bozo and feed.version == "atom10"
    titles = [entry.title for entry in feed.entries]
    assert titles == ["Third story", "Second story", TRICKY]
    entry = feed.entries[2]
    assert entry.link == "https://example.com/a?x=1&y=2"
    assert entry.id == f"http://localhost/v1/articles/{articles[0].id}"
    assert entry.author == "Ann Lee"
    assert entry.published == "2026-11-01T13:00:00Z"
    assert entry.published_parsed[:6] == (2026, 11, 1, 13, 0, 0)
    assert [tag.term for tag in entry.tags] == ["culture"]
    assert feed.feed.links[0].href == "http://localhost/feeds/articles.atom"


def test_rss_feed(client, articles):
    response = client.get("/feeds/articles.rss?tag=culture")
    assert response.content_type == "application/rss+xml; charset=utf-8"
    feed = feedparser.parse(response.data)
    assert not feed.bozo and feed.version == "rss20"
    assert [e.title for e in feed.entries] == ["Third story", TRICKY]
    entry = feed.entries[1]
    assert entry.published == "Sun, 01 Nov 2026 13:00:00 +0000"
    assert entry.published_parsed[:6] == (2026, 11, 1, 13, 0, 0)
    assert entry.id == f"http://localhost/v1/articles/{articles[0].id}"
    assert entry.author == "Ann Lee"
    assert "culture" in feed.feed.title


def test_json_feed(client, articles):
    response = client.get("/feeds/articles.json?source=wire")
    assert response.content_type == "application/feed+json"
    feed = json.loads(response.data)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert [item["title"] for item in feed["items"]] == ["Second story"]
    item = feed["items"][0]
    assert item["date_published"] == "2026-11-01T14:00:00Z"
    assert item["id"] == str(articles[1].id) and item["language"] == "de"
    # JSON Feed 1.1 requires: version, title, and per item an id and content_html or content_text.
    assert feed["title"] and feed["feed_url"] == "http://localhost/feeds/articles.json?source=wire"
    assert all(item["id"] and item["content_html"] for item in feed["items"])
    everything = json.loads(client.get("/feeds/articles.json").data)
    assert everything["items"][2]["title"] == TRICKY


def test_feeds_filter_by_language_and_limit(client, articles):
    feed = feedparser.parse(client.get("/feeds/articles.atom?language=de").data)
    assert [e.title for e in feed.entries] == ["Second story"]
    feed = feedparser.parse(client.get("/feeds/articles.rss?limit=1").data)
    assert len(feed.entries) == 1
    assert client.get("/feeds/articles.rss?limit=500").status_code == 422


@pytest.mark.parametrize("app_config", [{"public_base_url": "https://news.example.org"}])
def test_links_use_the_configured_base_url(client, articles):
    feed = feedparser.parse(client.get("/feeds/articles.atom").data)
    assert feed.entries[0].id.startswith("https://news.example.org/v1/articles/")
    assert (
        client.get("/v1/sources/wire").json["feeds"]["rss"]
        == "https://news.example.org/feeds/articles.rss?source=wire"
    )


def test_sources_and_tags_link_their_feeds(client, articles):
    feeds = client.get("/v1/tags/culture").json["feeds"]
    assert feeds == {
        "atom": "http://localhost/feeds/articles.atom?tag=culture",
        "rss": "http://localhost/feeds/articles.rss?tag=culture",
        "json": "http://localhost/feeds/articles.json?tag=culture",
    }
    assert (
        client.get("/v1/sources/wire").json["feeds"]["json"]
        == "http://localhost/feeds/articles.json?source=wire"
    )
    for url in feeds.values():
        assert client.get(url.replace("http://localhost", "")).status_code == 200


def test_feeds_revalidate(client, articles):
    first = client.get("/feeds/articles.atom")
    assert (
        client.get(
            "/feeds/articles.atom", headers={"If-None-Match": first.headers["ETag"]}
        ).status_code
        == 304
    )
