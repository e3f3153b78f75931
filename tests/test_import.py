import datetime
import gzip
import json

import pytest
from click.testing import CliRunner

from api.bulkload import feed_items, import_items
from api.cli import main
from models import Article, ArticleTag, Source, Tag, db

NDJSON = "application/x-ndjson"


def line(**fields):
    article = {"source": "daily", "title": "Title", "body_text": "Body text."}
    article.update(fields)
    return json.dumps(article)


def ndjson(*lines):
    return "\n".join(lines) + "\n"


def test_a_byte_order_mark_before_the_first_line_is_not_part_of_it(client, writer, source):
    body = "\ufeff" + ndjson(line(external_id="a"), line(external_id="b"))
    response = client.post("/v1/import", data=body.encode(), content_type=NDJSON, headers=writer)
    assert response.status_code == 200
    assert (response.json["created"], response.json["rejected"]) == (2, 0)


@pytest.mark.parametrize("encoding", ["gzip", "br", "GZIP "])
def test_a_compressed_body_is_415_naming_content_encoding(client, writer, source, encoding):
    body = ndjson(line(external_id="a"))
    for path, content_type, data in (
        ("/v1/import", NDJSON, gzip.compress(body.encode())),
        ("/v1/articles", "application/json", gzip.compress(line(external_id="b").encode())),
    ):
        response = client.post(
            path,
            data=data,
            content_type=content_type,
            headers={**writer, "Content-Encoding": encoding},
        )
        assert response.status_code == 415
        assert list(response.json["errors"]) == ["Content-Encoding"]
    assert Article.select().count() == 0
    identity = {**writer, "Content-Encoding": "identity"}
    response = client.post("/v1/import", data=body, content_type=NDJSON, headers=identity)
    assert response.status_code == 200 and response.json["created"] == 1


def test_import_counts_and_reasons(client, writer, source):
    body = ndjson(
        line(external_id="a", title="First"),
        '{"source": "daily", "title": broken json',
        line(external_id="b", title=""),
        "",
        '["not", "an", "object"]',
        line(external_id="c", source="nobody"),
        line(external_id="d", title="Fourth", tags=["economy"]),
        line(external_id="a", title="First, updated"),
    )
    response = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer)
    assert response.status_code == 200, response.json
    result = response.json
    assert (result["created"], result["updated"], result["unchanged"], result["rejected"]) == (
        2,
        1,
        0,
        4,
    )
    reasons = {r["line"]: r for r in result["rejections"]}
    assert sorted(reasons) == [2, 3, 5, 6]
    assert reasons[2]["reason"].startswith("Line is not valid JSON")
    assert reasons[3]["errors"] == {"title": ["Must not be empty."]}
    assert reasons[5]["reason"] == "Line is not a JSON object."
    assert reasons[6]["errors"] == {"source": ["No source with slug 'nobody'."]}
    titles = sorted(a.title for a in Article.select())
    assert titles == ["First, updated", "Fourth"]
    assert Tag.get(Tag.slug == "economy").article_count == 1
    assert Source.get(Source.slug == "daily").article_count == 2


def test_a_url_with_a_control_character_is_rejected_alone(client, writer, source):
    # PostgreSQL cannot store a NUL in text: the line is refused, not the import.
    body = ndjson(
        line(external_id="a", title="Before"),
        line(external_id="b", url="https://example.org/a\u0000b"),
        line(external_id="c", image_url="https://example.org/\u0007.jpg"),
        line(external_id="d", title="After", url="https://example.org/m\u00e4rkte"),
    )
    response = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer)
    assert response.status_code == 200, response.json
    assert (response.json["created"], response.json["rejected"]) == (2, 2)
    reasons = {r["line"]: r["errors"] for r in response.json["rejections"]}
    assert reasons == {2: {"url": ["Not a valid URL."]}, 3: {"image_url": ["Not a valid URL."]}}
    assert sorted(a.title for a in Article.select()) == ["After", "Before"]
    assert Article.get(Article.title == "After").url == "https://example.org/m\u00e4rkte"


def test_import_twice_changes_nothing(client, writer, source):
    body = ndjson(*(line(external_id=str(n), title=f"Story {n}", tags=["t"]) for n in range(30)))
    first = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer).json
    rows = list(Article.select().order_by(Article.id).dicts())
    second = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer).json
    assert first["created"] == 30 and second["unchanged"] == 30 and second["created"] == 0
    assert list(Article.select().order_by(Article.id).dicts()) == rows


def test_import_needs_ndjson_and_write(client, writer, make_key, source):
    body = ndjson(line())
    assert (
        client.post("/v1/import", data=body, content_type="text/csv", headers=writer).status_code
        == 415
    )
    assert client.post("/v1/import", data=body, content_type=NDJSON).status_code == 401
    assert (
        client.post(
            "/v1/import", data=body, content_type=NDJSON, headers=make_key("comment")
        ).status_code
        == 403
    )


@pytest.mark.parametrize("app_config", [{"max_body_bytes": 1000, "max_import_bytes": 20000}])
def test_import_has_its_own_size_limit(client, writer, source):
    body = ndjson(*(line(external_id=str(n)) for n in range(50)))
    assert 1000 < len(body) < 20000
    assert (
        client.post("/v1/import", data=body, content_type=NDJSON, headers=writer).json["created"]
        == 50
    )
    too_big = ndjson(*(line(external_id=str(n), body_text="x" * 500) for n in range(50)))
    response = client.post("/v1/import", data=too_big, content_type=NDJSON, headers=writer)
    assert response.status_code == 413
    assert Article.select().count() == 50


RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel>
<title>Harbour Gazette</title><link>https://harbour.example/</link><language>en-gb</language>
<item><title>Ferry &amp; port &lt;reopen&gt;</title><link>https://harbour.example/1</link>
<guid>harbour-1</guid><pubDate>Tue, 03 Nov 2026 08:00:00 GMT</pubDate>
<description>&lt;p&gt;The ferry is back.&lt;/p&gt;&lt;script&gt;x()&lt;/script&gt;</description>
<category>Transport</category></item>
<item><title>Second</title><link>https://harbour.example/2</link>
<pubDate>Wed, 04 Nov 2026 08:00:00 GMT</pubDate><description>Body two.</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Valley Times</title><link href="https://valley.example/"/><id>urn:valley</id>
<updated>2026-11-05T10:00:00Z</updated>
<entry><title>Bridge opens</title><id>urn:valley:1</id><link href="https://valley.example/1"/>
<updated>2026-11-05T10:00:00Z</updated><author><name>Kim</name></author>
<content type="html">&lt;p&gt;The bridge opened.&lt;/p&gt;&lt;p&gt;Traffic flows.&lt;/p&gt;</content></entry>
</feed>"""


def invoke(database_url, *args):
    return CliRunner().invoke(main, ["import", *args], env={"NEWSDESK_DATABASE_URL": database_url})


def snapshot():
    with db.connection_context():
        return (
            list(
                Source.select(Source.slug, Source.name, Source.article_count)
                .order_by(Source.slug)
                .tuples()
            ),
            list(
                Article.select(Article.id, Article.title, Article.external_id, Article.version)
                .order_by(Article.id)
                .tuples()
            ),
            ArticleTag.select().count(),
        )


@pytest.mark.parametrize("readers", ["0", "1"])  # feed entries read in another process too
def test_cli_imports_rss_and_atom_by_content(app, database_url, tmp_path, readers):
    rss, atom = tmp_path / "harbour.txt", tmp_path / "valley.data"
    rss.write_text(RSS)
    atom.write_text(ATOM)
    result = invoke(database_url, "--readers", readers, str(rss), str(atom))
    assert result.exit_code == 0, result.output
    assert f"{rss}: 2 created, 0 updated, 0 unchanged, 0 rejected" in result.output
    assert f"{atom}: 1 created" in result.output
    sources, articles, links = snapshot()
    assert sources == [
        ("harbour-gazette", "Harbour Gazette", 2),
        ("valley-times", "Valley Times", 1),
    ]
    assert [a[1] for a in articles] == ["Ferry & port <reopen>", "Second", "Bridge opens"]
    assert [a[2] for a in articles] == ["harbour-1", "https://harbour.example/2", "urn:valley:1"]
    with db.connection_context():
        ferry = Article.get(Article.external_id == "harbour-1")
        assert ferry.published_at.isoformat() == "2026-11-03T08:00:00"
        assert ferry.language == "en"
        body = ferry.bodies.get()
        assert "script" not in body.body_html and body.body_text == "The ferry is back."
        assert Article.get(Article.external_id == "urn:valley:1").byline == "Kim"
    again = invoke(database_url, str(rss), str(atom))
    assert "0 created, 0 updated, 2 unchanged" in again.output
    assert snapshot() == (sources, articles, links)


def rss(title, link, language="en", items=""):
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>{link}</link><language>{language}</language>{items}"
        "</channel></rss>"
    )


def rss_item(title, guid="1", link=None):
    link = f"<link>{link}</link>" if link else ""
    return (
        f'<item><title>{title}</title>{link}<guid isPermaLink="false">{guid}</guid>'
        f"<description>{title}, the body.</description></item>"
    )


def test_a_feeds_title_makes_a_source_name_of_one_line(app, database_url, tmp_path):
    """A name a source could not be given through the API (a tab, a line break, a character
    that turns the text after it right to left) was stored from a feed's title as it came."""
    path = tmp_path / "feed.xml"
    title = "Evil&#x202E;txt.exe\tTabbed&#10;News"
    path.write_text(rss(title, "https://evil.example/", items=rss_item("One")))
    assert "1 created" in invoke(database_url, str(path)).output
    with db.connection_context():
        assert [s.name for s in Source.select()] == ["Evil txt.exe Tabbed News"]


def test_feeds_of_other_publishers_are_other_sources_whatever_their_titles(
    app, database_url, tmp_path
):
    """A feed's source is the one with its link; two publishers' feeds never share one, even
    with titles that make no slug (no Latin letter) or the same one."""
    feeds = [
        ("Новости", "https://ru.example/", "Первая новость"),
        ("日本経済新聞", "https://jp.example/", "最初のニュース"),
        ("News", "https://one.example/", "One"),
        ("News", "https://two.example/", "Two"),
        ("2024", "https://year.example/", "Year"),
    ]
    for number, (title, link, item) in enumerate(feeds):
        path = tmp_path / f"{number}.xml"
        path.write_text(rss(title, link, items=rss_item(item)))
        assert "1 created" in invoke(database_url, str(path)).output
    again = tmp_path / "again.xml"
    again.write_text(rss("Новости", "https://ru.example/", items=rss_item("Вторая", guid="2")))
    assert "1 created" in invoke(database_url, str(again)).output
    with db.connection_context():
        by_source = {
            slug: sorted(
                title
                for (title,) in Article.select(Article.title)
                .where(Article.source == source_id)
                .tuples()
            )
            for source_id, slug in Source.select(Source.id, Source.slug).tuples()
        }
    assert by_source == {
        "ru-example": ["Вторая", "Первая новость"],
        "jp-example": ["最初のニュース"],
        "news": ["One"],
        "news-2": ["Two"],
        "feed-2024": ["Year"],
    }


@pytest.mark.parametrize(
    "again", ["https://h.example", "HTTPS://H.Example/", "https://h.example:443/"]
)
def test_a_feed_whose_link_is_spelled_otherwise_is_the_same_source(
    app, database_url, tmp_path, again
):
    # Matched by the exact string, it made another source, and stored every entry again.
    path = tmp_path / "h.xml"
    path.write_text(rss("Harbour", "https://h.example/", items=rss_item("One")))
    assert "1 created" in invoke(database_url, str(path)).output
    path.write_text(rss("Harbour", again, items=rss_item("One") + rss_item("Two", guid="2")))
    assert "1 created, 0 updated, 1 unchanged" in invoke(database_url, str(path)).output
    with db.connection_context():
        assert [source.slug for source in Source.select()] == ["harbour"]
        assert Article.select().count() == 2


def test_feed_entries_keep_what_can_be_kept_of_links_and_languages(app, database_url, tmp_path):
    items = rss_item("Relative", guid="1", link="/news/1") + (
        "<item><title>Guid only</title><guid>item-2</guid><description>Two.</description></item>"
    )
    path = tmp_path / "h.xml"
    path.write_text(rss("Harbour", "https://h.example/", language="en_US", items=items))
    assert "2 created, 0 updated, 0 unchanged, 0 rejected" in invoke(database_url, str(path)).output
    with db.connection_context():
        assert Source.get(Source.slug == "harbour").language == "en"
        stored = dict(Article.select(Article.external_id, Article.url).tuples())
        assert stored == {"1": "https://h.example/news/1", "item-2": None}
        assert {article.language for article in Article.select()} == {"en"}


def test_a_feed_entry_link_with_an_unbalanced_bracket_is_no_link(app, database_url, tmp_path):
    # Python's URL parser raises on it: the whole import failed.
    items = rss_item("Bracketed", guid="1", link="https://[::1/news") + rss_item("Plain", guid="2")
    path = tmp_path / "h.xml"
    path.write_text(rss("Harbour", "https://h.example/", items=items))
    assert "2 created, 0 updated, 0 unchanged, 0 rejected" in invoke(database_url, str(path)).output
    with db.connection_context():
        assert dict(Article.select(Article.external_id, Article.url).tuples()) == {
            "1": None,
            "2": None,
        }


def test_feed_entry_links_are_escaped_as_a_browser_escapes_them(app, database_url, tmp_path):
    # feedparser passes them on as they are, and the URL field refused the whole entry.
    # As XML holds it: read back as https://h.example/search?q="storm"&t=<b>`x`
    quoted = 'https://h.example/search?q="storm"&amp;t=&lt;b&gt;`x`'
    items = rss_item("Quoted", guid="1", link=quoted)
    items += rss_item("Backslash", guid="2", link="https://h.example\\@bank.example/")
    path = tmp_path / "h.xml"
    path.write_text(rss("Harbour", "https://h.example/", items=items))
    result = invoke(database_url, str(path))
    assert "2 created, 0 updated, 0 unchanged, 0 rejected" in result.output, result.output
    with db.connection_context():
        assert dict(Article.select(Article.external_id, Article.url).tuples()) == {
            "1": "https://h.example/search?q=%22storm%22&t=%3Cb%3E%60x%60",
            "2": None,
        }


def test_a_feed_repeating_an_entry_id_keeps_the_first_and_says_so(app, database_url, tmp_path):
    items = rss_item("First", guid="1") + rss_item("Second", guid="2") + rss_item("Again", guid="1")
    path = tmp_path / "h.xml"
    path.write_text(rss("Harbour", "https://h.example/", items=items))
    result = invoke(database_url, str(path))
    assert "2 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert f"{path} entry 3: Repeats the id of entry 1 ('1'), which is kept." in result.output
    # Imported again, nothing changes: the entries do not overwrite each other in turn.
    assert "0 created, 0 updated, 2 unchanged, 1 rejected" in invoke(database_url, str(path)).output
    with db.connection_context():
        assert sorted(Article.select(Article.title).tuples()) == [("First",), ("Second",)]


def test_a_feed_entry_of_an_early_year_is_told_which_years_are_taken(app, database_url, tmp_path):
    item = (
        "<item><title>Old</title><guid>old-1</guid>"
        "<pubDate>Tue, 01 Jan 0900 00:00:00 GMT</pubDate><description>Long ago.</description></item>"
    )
    path = tmp_path / "old.xml"
    path.write_text(rss("Archive", "https://archive.example/", items=item))
    result = invoke(database_url, str(path))
    assert f"{path} entry 1: Invalid: published_at." in result.output
    with app.app_context(), db.connection_context():
        ((_, entry),) = feed_items(path.read_bytes())
        answer = import_items([(1, entry)])
    # The years' rule, not "Not a valid datetime." for a year written 900-01-01.
    assert answer["rejections"][0]["errors"] == {
        "published_at": ["Must be in the years 1000 to 8999."]
    }


@pytest.mark.parametrize(
    "when",
    [
        "<updated>9999-12-31T23:59:59-05:00</updated>",  # the year 10000 in UTC
        "<updated>0001-01-01T00:00:00+01:00</updated>",  # the year 0 in UTC
        "<published>9999-12-31T23:00:00-05:00</published>",
    ],
)
def test_a_feed_entry_past_the_years_python_holds_is_refused_alone(
    app, database_url, tmp_path, when
):
    # The import stopped with a traceback: the good entry of the feed, and the files after it,
    # were never imported, and the feed's source was left with no article.
    entry = "<entry><title>{0}</title><id>urn:{0}</id><link href='https://f.example/{0}'/>{1}"
    feed = (
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        "<title>Far</title><link href='https://f.example/'/><id>urn:f</id>"
        "<updated>2026-11-30T10:00:00Z</updated>"
        + entry.format("fine", "<updated>2026-11-30T10:00:00Z</updated>")
        + "<content>ok</content></entry>"
        + entry.format("far", when)
        + "<content>x</content></entry></feed>"
    )
    path, after = tmp_path / "far.xml", tmp_path / "after.ndjson"
    path.write_text(feed)
    after.write_text(ndjson(line(source="far", external_id="after")))
    result = invoke(database_url, str(path), str(after))
    assert f"{path}: 1 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert f"{path} entry 2: Invalid: published_at." in result.output
    assert f"{after}: 1 created" in result.output
    with app.app_context(), db.connection_context():
        assert sorted(Article.select(Article.title).tuples()) == [("Title",), ("fine",)]
        ((_, _), (_, entry)) = feed_items(path.read_bytes())
        answer = import_items([(2, entry)])
    assert answer["rejections"][0]["errors"] == {
        "published_at": ["Must be in the years 1000 to 8999."]
    }


def test_cli_imports_ndjson_and_reports_rejections(app, database_url, tmp_path, source):
    path = tmp_path / "batch.ndjson"
    path.write_text(ndjson(line(external_id="1"), "not json", line(external_id="2", url="ftp://x")))
    result = invoke(database_url, str(path))
    assert result.exit_code == 1
    assert f"{path}: 1 created, 0 updated, 0 unchanged, 2 rejected" in result.output
    assert f"{path}:2: Line is not valid JSON" in result.output
    assert f"{path}:3: Invalid: url." in result.output


@pytest.mark.parametrize(
    "text",
    [
        "<html><body>not a feed",
        '<?xml version="1.0"?><config><item>not a feed</item></config>',
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>https://x.example/</loc></url></urlset>",
    ],
    ids=["html", "other-xml", "sitemap"],
)
def test_cli_rejects_a_file_that_is_no_feed(app, database_url, tmp_path, text):
    path = tmp_path / "junk.xml"
    path.write_text(text)
    result = invoke(database_url, str(path))
    assert "0 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert "Not a" in result.output and result.exit_code == 1
    assert snapshot() == ([], [], 0)  # no source, no article


def test_an_empty_feed_stores_nothing(app, database_url, tmp_path):
    path = tmp_path / "empty.xml"
    path.write_text(rss("Harbour", "https://h.example/"))
    result = invoke(database_url, str(path))
    assert "0 created, 0 updated, 0 unchanged, 0 rejected" in result.output
    assert result.exit_code == 0 and snapshot() == ([], [], 0)


def test_import_answer_is_bounded_and_says_which_lines_were_stored(client, writer, source):
    lines = []
    for n in range(3000):
        lines.append("{}")
        if n % 1000 == 999:
            lines.append(line(external_id=f"ok-{n}", title=f"Kept {n}"))
    response = client.post("/v1/import", data=ndjson(*lines), content_type=NDJSON, headers=writer)
    assert response.status_code == 200, response.json
    result = response.json
    assert len(response.data) < 40_000
    assert (result["lines"], result["created"], result["rejected"]) == (3003, 3, 3000)
    assert len(result["rejections"]) == 100
    assert result["rejections_omitted"] == 2900
    assert result["rejected_by_code"] == {"invalid": 3000}
    assert [r["line"] for r in result["rejections"]] == list(range(1, 101))
    assert result["rejections"][0]["code"] == "invalid"
    assert result["stored_lines"] == [[1001, 1001], [2002, 2002], [3003, 3003]]
    assert Article.select().count() == 3


def test_stored_lines_are_exact_ranges(client, writer, source):
    body = ndjson(
        line(external_id="a", title="One"),
        line(external_id="b", title="Two"),
        "",
        line(external_id="c", title="Three"),
        line(external_id="d", source="nobody"),
        line(external_id="e", title="Five"),
        "{not json",
        line(external_id="f", title="Seven"),
        line(external_id="a", title="One"),
    )
    result = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer).json
    assert result["stored_lines"] == [[1, 4], [6, 6], [8, 9]]
    assert (result["created"], result["unchanged"], result["rejected"]) == (5, 1, 2)
    assert result["rejected_by_code"] == {"invalid": 1, "not_json": 1}
    assert [(r["line"], r["code"]) for r in result["rejections"]] == [
        (5, "invalid"),
        (7, "not_json"),
    ]
    again = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer).json
    assert again["stored_lines"] == [[1, 4], [6, 6], [8, 9]]
    assert again["unchanged"] == 6


@pytest.mark.parametrize("app_config", [{"max_body_bytes": 1000}])
def test_a_line_too_long_is_rejected_and_never_held(client, writer, source):
    body = ndjson(
        line(external_id="a"), line(external_id="b", body_text="x" * 5000), line(external_id="c")
    )
    result = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer).json
    assert result["rejections"] == [
        {"line": 2, "code": "too_long", "reason": "Line is longer than 1000 bytes."}
    ]
    assert result["stored_lines"] == [[1, 1], [3, 3]]
    assert result["created"] == 2


def test_deeply_nested_line_is_rejected_and_good_lines_stored(client, writer, source):
    body = ndjson(line(external_id="a"), "[" * 100_000, line(external_id="b"))
    response = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer)
    assert response.status_code == 200
    assert response.json["rejected_by_code"] in ({"not_json": 1}, {"not_object": 1})
    assert response.json["stored_lines"] == [[1, 1], [3, 3]]


def background_body(count):
    return ndjson(
        *(
            line(external_id=f"bg-{n}", title=f"Background story {n}", body_text=f"Harbour {n}.")
            if n % 7
            else "{}"
            for n in range(1, count + 1)
        )
    )


@pytest.mark.parametrize("app_config", [{"import_sync_bytes": 2000}])
def test_a_large_import_runs_in_the_background(client, writer, make_key, source):
    body = background_body(100)
    assert len(body) > 2000
    response = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer)
    assert response.status_code == 202, response.json
    location = response.headers["Location"]
    assert location == f"/v1/imports/{response.json['id']}"
    job = client.get(location, headers=writer)
    assert job.status_code == 200
    assert job.headers["Content-Type"] == "application/json"
    result = job.json
    assert result == {**response.json, **result}
    assert result["status"] == "succeeded"
    assert result["bytes"] == len(body)
    assert (result["lines"], result["created"], result["rejected"]) == (100, 86, 14)
    assert result["rejected_by_code"] == {"invalid": 14}
    assert len(result["rejections"]) == 14 and result["rejections_omitted"] == 0
    expected, start = [], None
    for n in range(1, 101):
        if n % 7 and start is None:
            start = n
        if not n % 7 and start is not None:
            expected.append([start, n - 1])
            start = None
    expected.append([start, 100])
    assert result["stored_lines"] == expected
    assert result["error"] is None and result["finished_at"] is not None
    assert Article.select().count() == 86
    # Every stored article is in the search index: keyword mode reaches every match (a hybrid
    # search has at most 100 hits, 50 of them from its keyword ranking).
    hits = client.get("/v1/search?q=harbour&mode=keyword&limit=100&fields=id").json
    assert len(hits["data"]) == 86
    assert client.get(location, headers=make_key("write")).status_code == 404
    assert client.get(location, headers=make_key("admin")).status_code == 200
    assert client.get(location).status_code == 401
    assert client.get("/v1/imports/999", headers=writer).status_code == 404
    too_large = client.get(f"/v1/imports/{2**64}", headers=writer)
    assert too_large.status_code == 404
    assert too_large.headers["Content-Type"] == "application/problem+json"


def test_prefer_respond_async_sends_a_small_import_to_the_background(client, writer, source):
    body = ndjson(line(external_id="a"), line(external_id="b"))
    response = client.post(
        "/v1/import",
        data=body,
        content_type=NDJSON,
        headers={**writer, "Prefer": "respond-async, wait=10"},
    )
    assert response.status_code == 202
    assert response.json["status"] == "succeeded"
    assert response.json["stored_lines"] == [[1, 2]]


def test_an_import_past_half_its_deadline_goes_on_in_the_worker(
    app, client, writer, source, monkeypatch
):
    # Cut off by its deadline, an import answered 503 "try again" with batches stored: sent
    # again, lines without an external_id were stored twice.
    from api import bulkload
    from api import imports as import_api
    from models import imports

    monkeypatch.setattr(bulkload, "BATCH_SIZE", 20)
    monkeypatch.setattr(import_api, "HAND_OVER_AT", 0)  # spent once the first batch is stored
    body = ndjson(*(line(title=f"No external id {n}") for n in range(1, 51)))
    response = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer)
    assert response.status_code == 202
    assert response.headers["Location"] == f"/v1/imports/{response.json['id']}"
    # The worker (run where it is called, in the tests) went on from line 21.
    assert response.json["status"] == "succeeded"
    assert response.json["created"] == 50 and response.json["stored_lines"] == [[1, 50]]
    with app.app_context():
        assert Article.select().count() == 50
        # The request's run counts as no attempt: the worker has its three.
        assert imports.ImportJob.get_by_id(response.json["id"]).attempts == 1


def test_an_import_whose_last_batch_is_stored_is_answered_whatever_the_time(
    app, client, writer, source, monkeypatch
):
    # Its last batch stored when a batch filled (before the blank line after it), the request
    # handed the worker a job with nothing left to do: a 202 to poll for a finished import.
    from api import bulkload
    from api import imports as import_api

    monkeypatch.setattr(bulkload, "BATCH_SIZE", 20)
    monkeypatch.setattr(import_api, "HAND_OVER_AT", 0)  # spent at every check
    body = ndjson(*(line(title=f"Line {n}") for n in range(1, 21))) + "\n"
    response = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer)
    assert response.status_code == 200
    assert response.json["created"] == 20 and response.json["stored_lines"] == [[1, 20]]


def test_a_job_its_request_never_ended_is_left_to_no_worker(app, source):
    # Cut off by its deadline inside a batch, or its server killed, the request left its job
    # running under a lease: the sweep finished it, and the client, told to try again (or
    # told nothing), stored the body twice.
    from models import imports

    with app.app_context():
        db.connect(reuse_if_open=True)
        job = imports.start_job(None, [(1, line(title="Left").encode())])
        assert imports.runnable() == [] and imports.claim(job.id) is None
        imports.ImportJob.update(
            created_at=imports.utcnow()
            - imports.ABANDONED_IN_REQUEST
            - datetime.timedelta(seconds=1)
        ).execute()
        imports.clean_up()
        assert imports.ImportJob.select().count() == imports.ImportChunk.select().count() == 0


def test_an_import_answered_in_the_request_leaves_no_job(app, client, writer, source, monkeypatch):
    from api import bulkload
    from models import imports

    monkeypatch.setattr(bulkload, "BATCH_SIZE", 1)  # several batches: run as a job
    body = ndjson(line(external_id="a"), "{", line(external_id="b"))
    response = client.post("/v1/import", data=body, content_type=NDJSON, headers=writer)
    assert response.status_code == 200
    assert response.json["stored_lines"] == [[1, 1], [3, 3]]
    with app.app_context():
        assert imports.ImportJob.select().count() == 0
        assert imports.ImportChunk.select().count() == 0


def test_a_job_cut_short_resumes_after_its_last_committed_batch(
    app, client, writer, source, monkeypatch
):
    from api import bulkload, tasks
    from api.bulkload import import_items, ndjson_items
    from models import imports

    monkeypatch.setattr(bulkload, "BATCH_SIZE", 20)
    BATCH_SIZE = 20
    count = BATCH_SIZE * 2 + 15
    body = ndjson(*(line(title=f"No external id {n}") for n in range(1, count + 1))).encode()
    with app.app_context():
        db.connect(reuse_if_open=True)
        job = imports.create_job(None)
        half = body.index(b"\n", len(body) // 2) + 1
        imports.add_chunk(job, 0, 1, body[: half - 1])
        imports.add_chunk(job, 1, body[:half].count(b"\n") + 1, body[half:])
        imports.queue_job(job, len(body))

        def cut_short(lines):
            for number, item in lines:
                if number > BATCH_SIZE * 2 + 5:
                    raise RuntimeError("worker killed")
                yield number, item

        job = imports.claim(job.id)
        with pytest.raises(RuntimeError):
            import_items(cut_short(ndjson_items(imports.lines_from(job), 10_000)), job=job)
        stored = imports.ImportJob.get_by_id(job.id)
        assert (stored.status, stored.next_line, stored.created) == (
            "running",
            BATCH_SIZE * 2 + 1,
            BATCH_SIZE * 2,
        )
        assert tasks.run_import.call_local(job.id) is None  # its lease still holds
        lapsed = imports.utcnow() - datetime.timedelta(seconds=1)
        imports.ImportJob.update(lease_until=lapsed).where(imports.ImportJob.id == job.id).execute()
        tasks.run_import.call_local(job.id)
        db.close()
    result = client.get(f"/v1/imports/{job.id}", headers=writer)
    assert result.status_code == 404  # started by no key: only admin keys see it
    with app.app_context():
        db.connect(reuse_if_open=True)
        done = imports.ImportJob.get_by_id(job.id)
        assert (done.status, done.created, done.lines, done.rejected) == (
            "succeeded",
            count,
            count,
            0,
        )
        assert imports.ranges(done) == [[1, count]]
        assert imports.ImportChunk.select().count() == 0
        titles = [a.title for a in Article.select().order_by(Article.id)]
        db.close()
    assert titles == [f"No external id {n}" for n in range(1, count + 1)]


def test_cli_prints_every_rejection(app, database_url, tmp_path, source, monkeypatch):
    from api import bulkload

    monkeypatch.setattr(bulkload, "BATCH_SIZE", 10)  # rejections of several batches, in order
    path = tmp_path / "many.ndjson"
    lines = ["not json"] * 105 + [line(external_id="kept"), line(title="")]
    path.write_text(ndjson(*lines))
    result = invoke(database_url, str(path))
    assert result.exit_code == 1
    printed = [row for row in result.output.splitlines() if row.startswith(f"  {path}:")]
    not_json = "Line is not valid JSON: invalid literal, expected 'null': line 1 column 1 (char 0)."
    assert printed == [f"  {path}:{n}: {not_json}" for n in range(1, 106)] + [
        f"  {path}:107: Invalid: title. title: Must not be empty."
    ]
    assert f"{path}: 1 created, 0 updated, 0 unchanged, 106 rejected" in result.output


def test_cli_reading_in_other_processes_imports_as_one_process_does(
    app, database_url, tmp_path, source, monkeypatch
):
    """With reader processes (`--readers`), items are read ahead in small slabs, here across
    batches: every outcome is the one process's, rejections printed in line order, an article
    named twice in a batch stored twice, one updated in a later batch updated."""
    from api import bulkload

    monkeypatch.setattr(bulkload, "BATCH_SIZE", 4)
    monkeypatch.setattr(bulkload, "READ_AHEAD", 5)
    monkeypatch.setattr(bulkload, "READ_CHUNK", 2)
    lines = [line(external_id=f"n{number}", title=f"Story {number}") for number in range(1, 16)]
    lines[4:4] = ["not json"]
    lines[9:9] = [line(external_id="n8", title="Story 8 again")]  # n8 is in this batch
    lines[12:12] = [line(title="")]
    lines.append(line(external_id="n2", title="Story 2 again"))
    path = tmp_path / "many.ndjson"
    path.write_text(ndjson(*lines))
    result = invoke(database_url, "--readers", "2", str(path))
    assert result.exit_code == 1, result.output
    printed = [row for row in result.output.splitlines() if row.startswith(f"  {path}:")]
    not_json = "Line is not valid JSON: invalid literal, expected 'null': line 1 column 1 (char 0)."
    assert printed == [
        f"  {path}:5: {not_json}",
        f"  {path}:13: Invalid: title. title: Must not be empty.",
    ]
    assert f"{path}: 15 created, 2 updated, 0 unchanged, 2 rejected" in result.output
    _, articles, _ = snapshot()
    assert [(title, external_id, version) for _, title, external_id, version in articles] == [
        (f"Story {n}{' again' if n in (2, 8) else ''}", f"n{n}", 2 if n in (2, 8) else 1)
        for n in range(1, 16)
    ]


@pytest.mark.parametrize("reference", ["&#xD800;", "&#57343;", "&#x110000;", "&#99999999999;"])
def test_cli_imports_a_feed_with_references_to_no_character(app, database_url, tmp_path, reference):
    path = tmp_path / "odd.xml"
    path.write_text(RSS.replace("Body two.", f"Body {reference} two."))
    result = invoke(database_url, str(path))
    assert result.exit_code == 0, result.output
    assert f"{path}: 2 created, 0 updated, 0 unchanged, 0 rejected" in result.output
    with db.connection_context():
        second = Article.get(Article.external_id == "https://harbour.example/2")
        assert second.bodies.get().body_text == "Body \ufffd two."


def test_a_run_that_outlives_its_lease_stops_and_stores_nothing_twice(
    app, writer, source, monkeypatch
):
    from api import bulkload, tasks
    from api.bulkload import import_items, ndjson_items
    from models import imports

    monkeypatch.setattr(bulkload, "BATCH_SIZE", 10)
    body = ndjson(*(line(title=f"No external id {n}") for n in range(1, 31))).encode()
    with app.app_context():
        db.connect(reuse_if_open=True)
        job = imports.create_job(None)
        imports.add_chunk(job, 0, 1, body)
        imports.queue_job(job, len(body))
        slow = imports.claim(job.id)

        def overtaken(lines):
            for number, item in lines:
                if number == 15:  # this run is slow: its lease runs out, another takes the job
                    lapsed = imports.utcnow() - datetime.timedelta(seconds=1)
                    imports.ImportJob.update(lease_until=lapsed).execute()
                    tasks.run_import.call_local(job.id)
                yield number, item

        with pytest.raises(imports.LeaseLost):
            import_items(overtaken(ndjson_items(imports.lines_from(slow), 10_000)), job=slow)
        done = imports.ImportJob.get_by_id(job.id)
        assert (done.status, done.created, done.lines) == ("succeeded", 30, 30)
        assert Article.select().count() == 30
        db.close()


def test_a_line_holding_a_lone_surrogate_names_it_in_words(client, writer, source):
    body = '"\\ud800"\n{"source": "daily", "title": "T", "body_text": "\\ud800 text"}\n'
    answer = client.post("/v1/import", data=body.encode(), content_type=NDJSON, headers=writer)
    first, second = answer.json["rejections"]
    assert (first["reason"], list(first["errors"])) == ("Invalid: the body.", ["$"])
    assert (second["reason"], list(second["errors"])) == ("Invalid: body_text.", ["body_text"])


def test_a_feed_without_a_link_is_refused_whole(app, database_url, tmp_path):
    """Two feeds of one title and no link could not be told apart: the second's entries
    overwrote the first's, in one source."""
    for name in ("a", "b"):
        path = tmp_path / f"{name}.xml"
        path.write_text(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>'
            + rss_item(f"Feed {name} story", guid="1")
            + "</channel></rss>"
        )
        result = invoke(database_url, str(path))
        assert result.exit_code == 1
        assert "0 created, 0 updated, 0 unchanged, 1 rejected" in result.output
        assert f"  {path}: The feed has no link to its site" in result.output
    assert snapshot() == ([], [], 0)


def atom_entry(title, updated, entry_id="urn:a:1", body="The body."):
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        '<title>Valley</title><link href="https://valley.example/"/><id>urn:valley</id>'
        f"<updated>{updated}</updated><entry><title>{title}</title><id>{entry_id}</id>"
        f'<updated>{updated}</updated><content type="html">{body}</content></entry></feed>'
    )


def test_an_older_copy_of_a_feed_changes_neither_a_newer_entry_nor_an_edit(
    client, writer, database_url, tmp_path
):
    old, new = tmp_path / "old.xml", tmp_path / "new.xml"
    old.write_text(atom_entry("First title", "2026-11-10T10:00:00Z"))
    new.write_text(atom_entry("Second title", "2026-11-15T10:00:00Z"))
    assert "1 created" in invoke(database_url, str(old)).output
    assert "0 created, 1 updated" in invoke(database_url, str(new)).output
    assert "0 created, 0 updated, 1 unchanged" in invoke(database_url, str(old)).output
    (article,) = client.get("/v1/articles").json["data"]
    assert (article["title"], article["updated_at"]) == ("Second title", "2026-11-15T10:00:00Z")
    edited = client.patch(
        f"/v1/articles/{article['id']}", json={"title": "Edited here"}, headers=writer
    )
    assert edited.status_code == 200
    for path in (old, new):
        assert "0 created, 0 updated, 1 unchanged" in invoke(database_url, str(path)).output
    after = client.get(f"/v1/articles/{article['id']}").json
    assert (after["title"], after["updated_at"]) == ("Edited here", edited.json["updated_at"])
    newer = tmp_path / "newer.xml"
    newer.write_text(atom_entry("Third title", "2099-01-01T00:00:00Z"))  # later than now: now
    assert "0 created, 1 updated" in invoke(database_url, str(newer)).output
    assert client.get(f"/v1/articles/{article['id']}").json["title"] == "Third title"


def test_a_feed_imported_again_keeps_the_status_an_editor_gave(
    client, writer, database_url, tmp_path
):
    path = tmp_path / "h.xml"
    path.write_text(rss("Harbour", "https://h.example/", items=rss_item("Story", guid="1")))
    assert "1 created" in invoke(database_url, str(path)).output
    (article,) = client.get("/v1/articles").json["data"]
    response = client.patch(
        f"/v1/articles/{article['id']}", json={"status": "draft"}, headers=writer
    )
    assert response.status_code == 200
    # The entry has no date: its new text is stored, the article stays a draft.
    path.write_text(rss("Harbour", "https://h.example/", items=rss_item("Story, v2", guid="1")))
    assert "0 created, 1 updated" in invoke(database_url, str(path)).output
    stored = client.get(f"/v1/articles/{article['id']}?status=draft", headers=writer).json
    assert (stored["title"], stored["status"]) == ("Story, v2", "draft")
    assert client.get("/v1/articles").json["data"] == []
    assert b"Story" not in client.get("/feeds/articles.rss").data


def test_a_feed_cut_short_is_refused_whole(app, database_url, tmp_path):
    """Read leniently, a cut file gave an article made of half an entry."""
    cut = tmp_path / "cut.xml"
    cut.write_text(RSS[: RSS.index("<pubDate>Wed")])
    result = invoke(database_url, str(cut))
    assert result.exit_code == 1
    assert "0 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert f"  {cut}: The feed ends before its XML does (line " in result.output
    assert "Nothing of the feed was imported." in result.output
    assert snapshot() == ([], [], 0)


def test_faults_of_xml_real_feeds_have_are_read_as_meant(app, database_url, tmp_path):
    """An HTML entity and a prefix never declared: XML's parser refuses them, feedparser's
    lenient reading reads them as meant."""
    path = tmp_path / "loose.xml"
    path.write_text(
        RSS.replace("<title>Second</title>", "<title>Caf&eacute; &amp; bar reopen</title>").replace(
            "<description>Body two.", "<media:thumbnail url='x'/><description>Body two."
        )
    )
    result = invoke(database_url, str(path))
    assert f"{path}: 2 created, 0 updated, 0 unchanged, 0 rejected" in result.output
    assert [a[1] for a in snapshot()[1]] == ["Ferry & port <reopen>", "Café & bar reopen"]


def test_a_reference_to_a_control_character_leaves_a_feed_readable(app, database_url, tmp_path):
    path = tmp_path / "odd.xml"
    path.write_text(RSS.replace("<title>Second</title>", "<title>Sec&#x1;ond &#8;</title>"))
    result = invoke(database_url, str(path))
    assert "2 created, 0 updated, 0 unchanged, 0 rejected" in result.output
    assert [a[1] for a in snapshot()[1]] == ["Ferry & port <reopen>", "Second"]


def test_atom_text_of_type_html_is_stored_as_the_text_it_shows(app, database_url, tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(
        atom_entry("x", "2026-11-10T10:00:00Z")
        .replace(
            "<title>x</title>", '<title type="html">Fish &amp;amp; Chips &amp;lt;b&amp;gt;</title>'
        )
        .replace("<title>Valley</title>", '<title type="html">Atom &amp;amp; Co</title>')
    )
    assert "1 created" in invoke(database_url, str(path)).output
    ((_, name, _),), ((_, title, _, _),), _ = snapshot()
    assert (name, title) == ("Atom & Co", "Fish & Chips <b>")


def stored_body_of_an_rss_item(database_url, tmp_path, body):
    """The body_html stored for an RSS item of ``body`` (escaped HTML) whose link is
    https://h.example/story/2, imported with the CLI."""
    item = (
        "<item><title>T</title><link>https://h.example/story/2</link><guid>g</guid>"
        f"<description>{body}</description></item>"
    )
    path = tmp_path / "h.xml"
    path.write_text(rss("Harbour", "https://h.example/", items=item))
    assert "1 created" in invoke(database_url, str(path)).output
    with db.connection_context():
        return Article.get().bodies.get().body_html


def test_relative_links_of_a_feed_body_are_the_entrys(app, database_url, tmp_path):
    body = (
        '&lt;p&gt;&lt;a href="/rel/link"&gt;a&lt;/a&gt; &lt;img src="img/x.png"&gt;'
        ' &lt;a href="https://other.example/x"&gt;b&lt;/a&gt;&lt;/p&gt;'
    )
    stored = stored_body_of_an_rss_item(database_url, tmp_path, body)
    assert 'href="https://h.example/rel/link"' in stored
    assert 'src="https://h.example/story/img/x.png"' in stored
    assert 'href="https://other.example/x"' in stored


def test_a_source_made_from_a_feed_has_no_homepage_the_api_would_refuse(
    client, writer, database_url, tmp_path
):
    # Its 5,000-character link was stored, and a PATCH sending the source back was a 422.
    link = "https://long.example/" + "a" * 5000
    path = tmp_path / "long.xml"
    path.write_text(rss("Long Link", link, items=rss_item("One")))
    assert "1 created" in invoke(database_url, str(path)).output
    source = client.get("/v1/sources/long-link").json
    assert source["homepage_url"] is None
    sent_back = {name: source[name] for name in ("name", "homepage_url", "language")}
    assert client.patch("/v1/sources/long-link", json=sent_back, headers=writer).status_code == 200
    # Imported again, its entries go to the same source.
    assert "0 created, 0 updated, 1 unchanged" in invoke(database_url, str(path)).output


def test_a_feed_entry_of_many_categories_or_a_long_id_is_imported(client, database_url, tmp_path):
    # Refused whole: over 30 categories, one over 100 characters, or an id over 500.
    categories = [f"Topic {number}" for number in range(40)]
    # Too long, a repeat, no letter or digit, blank, and a slug taken: left out.
    categories[1:1] = ["T" * 101, "Topic 0", "★", "\u200b", "topic-0"]
    long_id = "urn:long:" + "x" * 600
    item = (
        f"<item><title>Many</title><guid isPermaLink='false'>{long_id}</guid>"
        + "".join(f"<category>{name}</category>" for name in categories)
        + "<description>The body.</description></item>"
    )
    path = tmp_path / "many.xml"
    path.write_text(rss("Many", "https://many.example/", items=item))
    assert "1 created, 0 updated, 0 unchanged, 0 rejected" in invoke(database_url, str(path)).output
    article = client.get("/v1/articles?fields=id,external_id,tags").json["data"][0]
    assert sorted(tag["name"] for tag in article["tags"]) == sorted(f"Topic {n}" for n in range(30))
    assert article["external_id"].startswith("sha256:") and len(article["external_id"]) == 47
    # The same id again is the same article.
    assert "0 created, 0 updated, 1 unchanged" in invoke(database_url, str(path)).output


def test_unsafe_links_of_a_feed_body_are_dropped_not_made_the_entrys(app, database_url, tmp_path):
    # feedparser empties an unsafe href, and the empty one was made the entry's own URL.
    body = (
        '&lt;p&gt;&lt;a href="javascript:alert(1)"&gt;bad&lt;/a&gt;'
        ' &lt;a href="data:text/html,x"&gt;d&lt;/a&gt; &lt;a href=""&gt;e&lt;/a&gt;'
        ' &lt;img src="javascript:x" alt="i"&gt;&lt;/p&gt;'
    )
    stored = stored_body_of_an_rss_item(database_url, tmp_path, body)
    assert "https://h.example/story/2" not in stored and "href" not in stored, stored
    assert stored.count('<a rel="noopener noreferrer nofollow">') == 3, stored


def test_a_feed_in_utf_16_is_read_as_a_feed(app, database_url, tmp_path):
    path = tmp_path / "wide.xml"
    path.write_bytes(
        RSS.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-16"?>').encode(
            "utf-16"
        )
    )
    result = invoke(database_url, str(path))
    assert f"{path}: 2 created, 0 updated, 0 unchanged, 0 rejected" in result.output
    assert [a[1] for a in snapshot()[1]] == ["Ferry & port <reopen>", "Second"]


def test_an_atom_feed_with_a_self_link_alone_is_that_links(app, database_url, tmp_path):
    path = tmp_path / "self.xml"
    path.write_text(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>Valley</title><id>urn:v</id>'
        '<link rel="self" href="https://valley.example/feed.atom"/>'
        "<entry><id>urn:v:1</id><title>Bridge</title><content>Open.</content></entry></feed>"
    )
    assert "1 created" in invoke(database_url, str(path)).output
    with db.connection_context():
        assert Source.get().homepage_url == "https://valley.example/feed.atom"


@pytest.mark.parametrize("end", ["<pubDate>Wed", "</item>\n", "</channel>"])
def test_a_feed_cut_short_after_another_fault_of_xml_is_refused_whole(
    app, database_url, tmp_path, end
):
    """XML's parser stops at a feed's first fault, an HTML entity here: the cut was not seen,
    and the half entry stored."""
    cut = tmp_path / "cut.xml"
    loose = RSS.replace("Harbour Gazette", "Harbour Caf&eacute;")  # before any cut
    cut.write_text(loose[: loose.index(end) + len(end)])
    result = invoke(database_url, str(cut))
    assert result.exit_code == 1
    assert "0 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert (
        f"  {cut}: The feed ends before its XML does (its root element is never closed)."
        in result.output
    )
    assert snapshot() == ([], [], 0)
    # Whole, with a comment after it: read as meant.
    whole = tmp_path / "whole.xml"
    whole.write_text(loose + "\n<!-- made by hand -->\n")
    assert (
        "2 created, 0 updated, 0 unchanged, 0 rejected" in invoke(database_url, str(whole)).output
    )


def test_import_reads_standard_input(app, database_url):
    """``-`` is standard input, which cannot be sought back to its start: reading a pipe ended
    in a traceback."""
    env = {"NEWSDESK_DATABASE_URL": database_url}
    fed = CliRunner().invoke(main, ["import", "-"], input=RSS, env=env)
    assert fed.exit_code == 0, fed.output
    assert "-: 2 created, 0 updated, 0 unchanged, 0 rejected" in fed.output
    lines = '{"title": "No source", "body_text": "B."}\n[1]\n'
    read = CliRunner().invoke(main, ["import", "-"], input=lines, env=env)
    assert read.exit_code == 1 and isinstance(read.exception, SystemExit)  # no traceback
    assert "-: 0 created, 0 updated, 0 unchanged, 2 rejected" in read.output
    assert "  -:2: " in read.output
    assert len(snapshot()[1]) == 2


def test_a_whole_feed_with_comments_around_it_is_read_in_bounded_time(app, database_url, tmp_path):
    """The check of a feed's end read comments and processing instructions with a pattern that
    ran across the document: a generator's comment before the root and a cache's after it
    made a whole feed "cut short", and 20,000 comments took minutes."""
    import time

    loose = RSS.replace("Harbour Gazette", "Harbour Caf&eacute;")  # XML's parser stops there
    wordpress = loose.replace(
        "<rss", '<!-- generator="WordPress/6.5" -->\n<!DOCTYPE rss [<!ENTITY b "<b>x</b>">]>\n<rss'
    )
    path = tmp_path / "wp.xml"
    path.write_text(wordpress + "\n<!-- Cached page generated by WP-Super-Cache -->\n<?pi x?>\n")
    result = invoke(database_url, str(path))
    assert f"{path}: 2 created, 0 updated, 0 unchanged, 0 rejected" in result.output
    many = tmp_path / "many.xml"
    many.write_text(loose.replace("</channel>", "<!-- c --><?p x?>" * 20_000 + "</channel>"))
    started = time.monotonic()
    result = invoke(database_url, str(many))
    assert "0 created, 0 updated, 2 unchanged, 0 rejected" in result.output
    assert time.monotonic() - started < 10  # it took 285 s
