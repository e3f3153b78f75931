import html
import json
from html.parser import HTMLParser
from xml.etree import ElementTree

import feedparser
import pytest

from .conftest import BASE_TIME

DC = "http://purl.org/dc/elements/1.1/"

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
    # Readers render RSS titles as HTML: the plain-text title goes in escaped.
    assert [html.unescape(e.title) for e in feed.entries] == ["Third story", TRICKY]
    entry = feed.entries[1]
    assert entry.language == "en" and entry.updated == "2026-11-01T13:00:00Z"
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


def test_feeds_stay_well_formed_xml_around_characters_xml_cannot_hold(
    client, writer, make_source, make_article
):
    make_source(slug="daily")
    # Stored before U+FFFE and U+FFFF were dropped from input...
    make_article(title="Stored \ufffe\uffff title", byline="Ann\x01 Lee")
    # ...and sent now: they are dropped, like control characters.
    sent = {"source": "daily", "title": "Sent \ufffe\uffff title", "body_text": "x\uffff"}
    posted = client.post("/v1/articles", json=sent, headers=writer)
    assert posted.status_code == 201 and posted.json["title"] == "Sent  title"
    for path in ("/feeds/articles.atom", "/feeds/articles.rss"):
        response = client.get(path)
        root = ElementTree.fromstring(response.data)  # raises on a feed that is not XML
        assert root is not None
        titles = [entry.title for entry in feedparser.parse(response.data).entries]
        assert titles == ["Sent  title", "Stored  title"]


def test_feeds_filter_by_language_and_limit(client, articles):
    feed = feedparser.parse(client.get("/feeds/articles.atom?language=de").data)
    assert [e.title for e in feed.entries] == ["Second story"]
    feed = feedparser.parse(client.get("/feeds/articles.rss?limit=1").data)
    assert len(feed.entries) == 1
    assert client.get("/feeds/articles.rss?limit=500").status_code == 422


def test_feeds_filtered_by_time_name_the_filter_in_their_title(client, articles):
    query = "published_after=2026-11-01T00:00:00Z&language=de,en"
    feed = feedparser.parse(client.get(f"/feeds/articles.atom?{query}").data)
    assert feed.feed.title == (
        "Newsdesk: newest articles (language de, en; published_after 2026-11-01T00:00:00Z)"
    )
    for kind in ("rss", "json"):
        assert client.get(f"/feeds/articles.{kind}?{query}").status_code == 200


@pytest.mark.parametrize("app_config", [{"public_base_url": "https://news.example.org"}])
def test_links_use_the_configured_base_url(client, articles):
    feed = feedparser.parse(client.get("/feeds/articles.atom?tag=culture").data)
    assert feed.entries[0].id.startswith("https://news.example.org/v1/articles/")
    own = "https://news.example.org/feeds/articles.{}?tag=culture"
    assert feed.feed.id == own.format("atom")
    assert [link.href for link in feed.feed.links if link.rel == "self"] == [own.format("atom")]
    rss = feedparser.parse(client.get("/feeds/articles.rss?tag=culture").data)
    assert [link.href for link in rss.feed.links if link.rel == "self"] == [own.format("rss")]
    json_feed = client.get("/feeds/articles.json?tag=culture").json
    assert json_feed["feed_url"] == own.format("json")
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


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    '"><script>alert(1)</script>',
    "<iframe src=javascript:alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "<body onload=alert(1)>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<<script>script>alert(1)<</script>/script>",
    "<scr<script>ipt>alert(1)</script>",
    '<div style="background:url(javascript:alert(1))">',
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<video><source onerror=alert(1)>",
    "<marquee onstart=alert(1)>",
    "]]><script>alert(1)</script>",
    "<style>@import 'javascript:alert(1)';</style>",
]


class _Markup(HTMLParser):
    """What a reader rendering ``text`` as HTML would find: tags, and script in attributes."""

    SCRIPTING = {
        "script",
        "iframe",
        "svg",
        "object",
        "embed",
        "style",
        "math",
        "body",
        "input",
        "video",
    }

    def __init__(self, text):
        super().__init__()
        self.found = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag in self.SCRIPTING:
            self.found.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag}[{name}]")


def _dangerous(markup):
    return _Markup(markup).found


def test_no_feed_carries_script_from_any_text_field(client, writer, make_source):
    from xml.etree import ElementTree

    client.post(
        "/v1/sources", json={"slug": "evil", "name": XSS[0], "language": "en"}, headers=writer
    )
    for payload in XSS:
        body = {
            "source": "evil",
            "title": payload,
            "byline": payload,
            "excerpt": payload,
            "body_html": f"<p>Before {payload} after.</p><p>{payload}</p>",
            "tags": [payload[:90]],
        }
        assert client.post("/v1/articles", json=body, headers=writer).status_code == 201
    rss = ElementTree.fromstring(client.get("/feeds/articles.rss?limit=100").data)
    plain = {f"{{{DC}}}creator", "category"}  # plain text by RSS 2.0 and Dublin Core
    for item in rss.iter("item"):
        for element in item:
            # What an RSS reader renders as HTML: the text each element holds, decoded. Plain
            # text goes in escaped, so no markup at all reaches the reader.
            if element.tag not in plain:
                assert "<" not in (element.text or ""), (element.tag, element.text)
        # A creator and a category are the text written, escaped once: a reader shows them
        # as text (feedparser showed "&lt;script&gt;" when they were escaped twice).
        texts = {element.text for element in item if element.tag in plain}
        assert texts and texts <= {payload[:90] for payload in XSS} | set(XSS), texts
    atom = ElementTree.fromstring(client.get("/feeds/articles.atom?limit=100").data)
    for element in atom.iter():
        if element.get("type") == "html":
            assert not _dangerous(element.text or ""), element.text
        elif element.get("type") == "text":
            assert element.text  # plain text by its type: shown as text, never as markup
    feed = json.loads(client.get("/feeds/articles.json?limit=100").data)
    for item in feed["items"]:
        assert not _dangerous(item["content_html"]), item["content_html"]
        # JSON Feed: title, summary, tags and author names are plain text by the spec.


def test_importing_our_own_feeds_keeps_language_and_updated_time(
    app, client, writer, make_source, tmp_path
):
    from api.bulkload import feed_items, import_items
    from models import Article, db

    make_source(slug="wire", name="Wire", language="en")
    languages = ["en", "de", "fr", "es", "ja"] * 4
    for number, language in enumerate(languages):
        body = {
            "source": "wire",
            "title": f"Story {number} <b>&</b>",
            "body_text": f"Text {number}.",
            "language": language,
        }
        assert client.post("/v1/articles", json=body, headers=writer).status_code == 201
    with db.connection_context():
        stored = {a.title: (a.language, a.updated_at) for a in Article.select()}
    for kind in ("rss", "atom"):
        raw = client.get(f"/feeds/articles.{kind}?limit=100").data
        for article in client.get("/v1/articles?limit=100&fields=id").json["data"]:
            assert client.delete(f"/v1/articles/{article['id']}", headers=writer).status_code == 204
        with db.connection_context():
            first = import_items(feed_items(raw))
            again = import_items(feed_items(raw))
            imported = {a.title: (a.language, a.updated_at) for a in Article.select()}
        assert first["created"] == 20 and first["rejected"] == 0, (kind, first["rejections"][:2])
        assert again["unchanged"] == 20, (kind, again)
        assert imported == stored, kind


def test_entries_without_id_or_link_import_once(app, dbconn):
    from api.bulkload import feed_items, import_items
    from models import Article

    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Bare</title>
    <link>https://bare.example/</link><item><title>One</title><description>First text.</description></item>
    <item><title>Two</title><description>Second text.</description></item></channel></rss>"""
    assert import_items(feed_items(rss))["created"] == 2
    assert import_items(feed_items(rss))["unchanged"] == 2
    assert Article.select().count() == 2


def test_metrics_name_their_charset_once(client):
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.count("charset") == 1


@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_a_feed_stays_well_formed_xml_whatever_its_query_holds(client, make_article, kind):
    make_article()
    response = client.get(f"/feeds/articles.{kind}?x=%EF%BF%BE%EF%BF%BF")
    assert response.status_code == 200
    ElementTree.fromstring(response.data)


def test_a_feeds_id_does_not_depend_on_the_order_of_its_parameters(client, articles):
    ids = {
        ElementTree.fromstring(client.get(f"/feeds/articles.atom?{query}").data)
        .find("{http://www.w3.org/2005/Atom}id")
        .text
        for query in (
            "limit=2&tag=culture&source=daily",
            "source=daily&limit=2&tag=culture",
            # Parameters the feed does not take made it another feed: a link shared with
            # tracking parameters had another id.
            "utm_source=x&limit=2&tag=culture&source=daily&fbclid=1",
        )
    }
    assert ids == {"http://localhost/feeds/articles.atom?limit=2&source=daily&tag=culture"}


def test_an_rss_channel_title_is_escaped_as_its_items_titles_are(client, articles):
    raw = client.get("/feeds/articles.rss?source=%3Cb%3Ebold%3C/b%3E").data
    title = ElementTree.fromstring(raw).find("channel/title").text
    assert "<b>" not in title and html.unescape(title).endswith("(source <b>bold</b>)")


def test_a_json_feed_names_a_language_only_when_its_items_share_one(client, articles):
    def language(query):
        return json.loads(client.get(f"/feeds/articles.json?{query}").data).get("language")

    assert language("language=de") == "de"
    assert language("language=de,en") is None  # both are in it
    assert language("language=xx-yy-zz") is None  # no item: no language to name
    assert language("source=wire") == "de"


def test_feeds_show_text_as_it_was_written(client, writer, source, make_article):
    # A lone CR sent is stored as a line feed (schemas.common.Text); one stored before that,
    # as this article's, stays one in the feeds.
    make_article(title="Stored\rbefore", excerpt="Old\rtext", published_at=BASE_TIME)
    body = {
        "source": source.slug,
        "title": "Line\rbreak & more",
        "byline": "Q&A desk\r",
        "excerpt": "One\rtwo",
        "body_text": "Text.",
        "tags": ["R&D"],
    }
    assert client.post("/v1/articles", json=body, headers=writer).status_code == 201
    rss = feedparser.parse(client.get("/feeds/articles.rss").data)
    assert not rss.bozo
    entry, _ = rss.entries
    assert entry.author == "Q&A desk" and [tag.term for tag in entry.tags] == ["R&D"]
    atom = ElementTree.fromstring(client.get("/feeds/articles.atom").data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    new, old = atom.findall("a:entry", ns)
    assert new.find("a:title", ns).text == "Line\nbreak & more"
    assert new.find("a:summary", ns).text == "One\ntwo"
    # A carriage return stays one (XML parsers read a raw one as a line feed).
    assert old.find("a:title", ns).text == "Stored\rbefore"
    assert old.find("a:summary", ns).text == "Old\rtext"
    rss = ElementTree.fromstring(client.get("/feeds/articles.rss").data)
    titles = [item.find("title").text for item in rss.findall("channel/item")]
    assert titles == [html.escape("Line\nbreak & more"), html.escape("Stored\rbefore")]


def test_a_feeds_own_url_is_an_iri(client, make_article):
    make_article()
    odd = "/feeds/articles.atom?tag={a}|b^c`d&source=%22q%22%zz%&utm_source=x"
    atom = ElementTree.fromstring(client.get(odd).data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    expected = "http://localhost/feeds/articles.atom?source=%22q%22%25zz%25&tag=%7Ba%7D%7Cb%5Ec%60d"
    assert atom.find("a:id", ns).text == expected
    assert atom.find("a:link[@rel='self']", ns).get("href") == expected
    feed = client.get(odd.replace(".atom", ".json")).json
    assert feed["feed_url"] == expected.replace(".atom", ".json")
