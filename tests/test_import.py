import json

import pytest
from click.testing import CliRunner

from api.cli import main
from models import Article, ArticleTag, Source, Tag, db

NDJSON = "application/x-ndjson"


def line(**fields):
    article = {"source": "daily", "title": "Title", "body_text": "Body text."}
    article.update(fields)
    return json.dumps(article)


def ndjson(*lines):
    return "\n".join(lines) + "\n"


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


def test_cli_imports_rss_and_atom_by_content(app, database_url, tmp_path):
    rss, atom = tmp_path / "harbour.txt", tmp_path / "valley.data"
    rss.write_text(RSS)
    atom.write_text(ATOM)
    result = invoke(database_url, str(rss), str(atom))
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


def test_cli_imports_ndjson_and_reports_rejections(app, database_url, tmp_path, source):
    path = tmp_path / "batch.ndjson"
    path.write_text(ndjson(line(external_id="1"), "not json", line(external_id="2", url="ftp://x")))
    result = invoke(database_url, str(path))
    assert result.exit_code == 1
    assert f"{path}: 1 created, 0 updated, 0 unchanged, 2 rejected" in result.output
    assert f"{path}:2: Line is not valid JSON" in result.output
    assert f"{path}:3: Invalid: url." in result.output


def test_cli_rejects_a_file_that_is_no_feed(app, database_url, tmp_path):
    path = tmp_path / "junk.xml"
    path.write_text("<html><body>not a feed")
    result = invoke(database_url, str(path))
    assert "rejected" in result.output and result.exit_code == 1
