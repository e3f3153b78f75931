"""Anonymous revalidations are answered before Flask: the same 304 the app would give."""

import datetime
import time

import pytest
from click.testing import CliRunner

from api import caching, create_app
from api.cli import main
from api.demo import load_demo
from models import DataVersion, related
from models.changes import name_for_etags

SECURITY = {
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Content-Security-Policy",
}


def revalidate(client, path, etag, **headers):
    return client.get(path, headers={"If-None-Match": etag, **headers})


def test_a_matching_etag_is_304_with_every_header_the_app_sends(client, make_article, make_key):
    article = make_article()
    path = f"/v1/articles/{article.id}"
    first = client.get(path)
    assert first.status_code == 200
    answer = revalidate(client, path, first.headers["ETag"])
    assert answer.status_code == 304
    assert answer.get_data() == b""
    assert answer.headers["ETag"] == first.headers["ETag"]
    assert answer.headers["Cache-Control"] == first.headers["Cache-Control"]
    assert answer.headers["Cache-Control"].startswith("public, max-age=")
    assert answer.headers["Vary"] == "Authorization, X-API-Key, Accept-Encoding"
    assert len(answer.headers["X-Request-ID"]) == 32
    assert (
        int(answer.headers["RateLimit-Remaining"]) == int(first.headers["RateLimit-Remaining"]) - 1
    )
    assert set(answer.headers.keys()) >= SECURITY
    # A caller with a key is revalidated by the app itself: the same headers, private.
    key = make_key("read")
    keyed = client.get(path, headers=key)
    through_app = revalidate(client, path, keyed.headers["ETag"], **key)
    assert through_app.status_code == 304
    assert through_app.headers["Cache-Control"] == "private, no-cache"
    assert set(through_app.headers.keys()) == set(answer.headers.keys())


def test_weak_star_and_listed_etags_match(client, make_article):
    path = f"/v1/articles/{make_article().id}"
    etag = client.get(path).headers["ETag"]
    for given in (f"W/{etag}", "*", f'"other", {etag}', etag.replace('"', "")):
        assert revalidate(client, path, given).status_code == 304, given
    assert revalidate(client, "/v1/articles/999999", "*").status_code == 404
    assert client.head(path, headers={"If-None-Match": etag}).status_code == 304
    assert revalidate(client, path, '"0123456789abcdef0123456789abcdef"').status_code == 200


def test_a_write_makes_the_etag_stale(client, make_article, writer):
    article = make_article()
    path = f"/v1/articles/{article.id}"
    etag = client.get(path).headers["ETag"]
    assert client.patch(path, json={"title": "New title"}, headers=writer).status_code == 200
    fresh = revalidate(client, path, etag)
    assert fresh.status_code == 200 and fresh.json["title"] == "New title"
    assert fresh.headers["ETag"] != etag


@pytest.mark.parametrize("app_config", [{"rate_limit": "3/minute"}])
def test_revalidations_count_against_the_rate_limit(client, make_article):
    path = f"/v1/articles/{make_article().id}"
    etag = client.get(path).headers["ETag"]
    assert [revalidate(client, path, etag).status_code for _ in range(3)] == [304, 304, 429]


def test_revalidations_are_counted_in_the_metrics(client, make_article):
    from tests.test_ops import _sample

    path = f"/v1/articles/{make_article().id}"
    etag = client.get(path).headers["ETag"]
    before = client.get("/metrics").get_data(as_text=True)
    for _ in range(2):
        revalidate(client, path, etag)
    after = client.get("/metrics").get_data(as_text=True)
    rule = "/v1/articles/<key>"
    assert _sample(after, rule, "304") - _sample(before, rule, "304") == 2


def test_etags_that_were_never_given_are_not_304(client, make_article):
    made_up = '"' + "0" * 32 + '"'
    assert revalidate(client, "/v1/articles/999999", made_up).status_code == 404
    assert revalidate(client, "/v1/nothing-here", made_up).status_code == 404


def test_writes_outside_requests_make_etags_stale(client, dbconn, make_article):
    """`newsdesk related rebuild` and `newsdesk demo` change answers, and so their ETags."""
    body = "Harbour ferries resume their winter timetable on Monday after the storm."
    article = make_article(title="Harbour ferries resume", body=body, tags=["ferries"])
    make_article(title="Harbour ferries winter timetable", body=body, tags=["ferries"])
    path = f"/v1/articles/{article.id}/related"
    before = client.get(path)
    assert before.json["data"] == []
    assert related.rebuild() == 2  # no vectors: every list is computed from keywords
    assert client.get(path).json["data"] != []
    assert revalidate(client, path, before.headers["ETag"]).status_code == 200

    lists = {path: client.get(path) for path in ("/v1/articles", "/v1/changes", "/v1/tags")}
    assert load_demo(articles=5) == 5
    for path, answer in lists.items():
        assert revalidate(client, path, answer.headers["ETag"]).status_code == 200, path


def test_etags_name_the_database(client, database_url, make_article):
    """A database made again, or restored from a backup, counts ids and versions from the start
    again: given a new name (`newsdesk db init --new-etags`), its answers match no tag given
    before."""
    article = make_article()
    paths = (f"/v1/articles/{article.id}", "/v1/articles", f"/v1/articles/{article.id}/related")

    def newsdesk(*args):
        env = {"NEWSDESK_DATABASE_URL": database_url}
        result = CliRunner().invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.output

    newsdesk("db", "init")  # names the database, once
    tags = {path: client.get(path).headers["ETag"] for path in paths}
    newsdesk("db", "init")
    assert [revalidate(client, path, tag).status_code for path, tag in tags.items()] == [304] * 3
    newsdesk("db", "init", "--new-etags")
    assert [revalidate(client, path, tag).status_code for path, tag in tags.items()] == [200] * 3


def test_answers_of_many_rows_are_last_modified_at_the_last_write(
    client, database_url, make_article, writer
):
    """Lists, searches, feeds and the change log carry the time of the last write anywhere
    (what their ETag comes from): If-Modified-Since is 304 until any write, a delete too."""
    kept, deleted = make_article(title="Harbour kept"), make_article(title="Harbour deleted")
    paths = (
        "/v1/articles",
        "/v1/search?q=harbour",
        "/v1/changes",
        "/feeds/articles.atom",
        "/feeds/articles.rss",
        "/feeds/articles.json",
        f"/v1/articles/{kept.id}/related",
    )
    long_ago = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)  # no later write can share it

    def last_written_long_ago():
        stamp = {"changed_at": int(long_ago.timestamp()), "changed_version": DataVersion.value}
        DataVersion.update(stamp).execute()

    last_written_long_ago()
    since = {"If-Modified-Since": "Thu, 01 Jan 2026 00:00:00 GMT"}
    for path in paths:
        first = client.get(path)
        assert (
            first.status_code == 200
            and first.headers["Last-Modified"] == since["If-Modified-Since"]
        ), path
        fresh = client.get(path, headers=since)
        assert fresh.status_code == 304 and fresh.headers["ETag"] == first.headers["ETag"], path
        earlier = {"If-Modified-Since": "Wed, 31 Dec 2025 23:59:59 GMT"}
        assert client.get(path, headers=earlier).status_code == 200, path
    # The feed's articles keep their times: only the write's time shows the delete.
    assert client.delete(f"/v1/articles/{deleted.id}", headers=writer).status_code == 204
    for path in paths:
        answer = client.get(path, headers=since)
        assert answer.status_code == 200, path
        assert "Last-Modified" not in answer.headers  # the write is too recent: see README
    # A server of a release before this time was kept, running through an upgrade, raises
    # the version alone: the time is no longer the last write's, and no answer gives it.
    last_written_long_ago()
    assert client.get("/v1/articles", headers=since).status_code == 304
    DataVersion.update(value=DataVersion.value + 1).execute()
    for path in paths:
        answer = client.get(path, headers=since)
        assert answer.status_code == 200, path
        assert "Last-Modified" not in answer.headers, path
    # The next write by this release stamps the time of its version again.
    assert client.delete(f"/v1/articles/{kept.id}", headers=writer).status_code == 204
    written = DataVersion.get()
    assert written.changed_version == written.value
    DataVersion.update(changed_at=int(long_ago.timestamp())).execute()
    assert client.get("/v1/articles", headers=since).status_code == 304
    # A restored backup given a new name (db init --new-etags): later than any date given
    # before, even one an earlier release's server left unstamped.
    DataVersion.update(value=DataVersion.value + 1).execute()
    name_for_etags(renew=True)
    assert client.get("/v1/articles", headers=since).status_code == 200
    renamed = DataVersion.get()
    assert time.time() - renamed.changed_at < 60 and renamed.changed_version == renamed.value


def test_tags_of_another_release_match_no_more_but_a_write_read_before_goes_through(
    client, database_url, make_article, writer, monkeypatch
):
    """After an upgrade an answer may have another shape: a tag the release before gave is
    answered with the whole answer, before Flask (an anonymous article) and after it. A write
    is conditional on the article's version, which the upgrade did not change."""
    article = make_article(title="Storm over the harbour")
    paths = [f"/v1/articles/{article.id}", f"/v1/articles/{article.id}?fields=id", "/v1/articles"]
    before = {path: client.get(path).headers["ETag"] for path in paths}
    for path, etag in before.items():
        assert revalidate(client, path, etag).status_code == 304, path
    monkeypatch.setattr(caching, "release", lambda: "the next release")
    upgraded = create_app({"database_url": database_url, "testing": True}).test_client()
    for path, etag in before.items():
        answer = revalidate(upgraded, path, etag)
        assert answer.status_code == 200, path
        assert answer.headers["ETag"] != etag
        assert revalidate(upgraded, path, answer.headers["ETag"]).status_code == 304, path
    edit = {"title": "Storm over the bay"}
    headers = {**writer, "If-Match": before[paths[0]]}
    assert upgraded.patch(paths[0], json=edit, headers=headers).status_code == 200
    headers["If-Match"] = before[paths[0]]  # the version changed with the write
    assert upgraded.patch(paths[0], json=edit, headers=headers).status_code == 412
