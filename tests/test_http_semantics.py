"""HTTP as real clients and caches read it: repeated parameters, compressed variants and their
validators, conditional writes, errors that caches must not keep."""

import datetime
import json
import time
import types
from pathlib import Path

import pytest
import yaml
from werkzeug.http import http_date

from api import caching
from models import Article, DataVersion, Source, changes, db
from models.base import COMMIT_LAG, Setting, is_postgres
from models.changes import RELEASE_SERVED


def long_articles(make_article, count=6):
    return [make_article(body="A long paragraph of text. " * 40) for _ in range(count)]


# --- repeated query parameters -----------------------------------------------------------


def test_a_repeated_list_parameter_means_the_comma_list(client, make_article, make_source):
    wire = make_source(slug="wire")
    post = make_source(slug="post")
    make_article(source=wire)
    make_article(source=post)
    make_article()
    both = client.get("/v1/articles?source=wire,post").json["data"]
    repeated = client.get("/v1/articles?source=wire&source=post")
    assert repeated.status_code == 200
    assert repeated.json["data"] == both and len(both) == 2
    mixed = client.get("/v1/articles?source=wire&source=post,default-source").json["data"]
    assert len(mixed) == 3


@pytest.mark.parametrize(
    "query", ["limit=1&limit=2", "sort=published_at&sort=-updated_at", "q=a&q=b"]
)
def test_a_repeated_single_parameter_is_400_naming_it(client, query):
    path = "/v1/search" if query.startswith("q=") else "/v1/articles"
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    name = query.split("=")[0]
    assert response.json["errors"] == {name: ["Give this parameter once."]}


# --- compressed variants ------------------------------------------------------------------


def test_a_304_carries_the_etag_of_the_variant_it_confirms(client, make_article):
    article = long_articles(make_article)[0]
    for path in ("/v1/articles", f"/v1/articles/{article.id}"):
        br = client.get(path, headers={"Accept-Encoding": "br"})
        assert br.headers["Content-Encoding"] == "br" and br.headers["ETag"].endswith(':br"')
        again = client.get(
            path, headers={"Accept-Encoding": "br", "If-None-Match": br.headers["ETag"]}
        )
        assert again.status_code == 304, path
        assert again.headers["ETag"] == br.headers["ETag"]


@pytest.mark.parametrize("path", ["/v1/articles", "/v1/articles/{id}", "/openapi.json"])
def test_a_304_to_a_star_carries_the_etag_and_vary_of_its_200(client, make_article, path):
    path = path.format(id=long_articles(make_article)[0].id)
    full = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert full.headers["ETag"].endswith(':gzip"')
    star = client.get(path, headers={"Accept-Encoding": "gzip", "If-None-Match": "*"})
    assert star.status_code == 304
    assert star.headers["ETag"] == full.headers["ETag"]
    assert star.headers["Vary"] == full.headers["Vary"]


@pytest.mark.parametrize(
    ("path", "vary"),
    [
        # A key's answer is private, with an ETag of its own (and the only 200 where reads
        # are not public): the feeds vary by the key as /v1/ does.
        ("/feeds/articles.atom", "Authorization, X-API-Key, Accept-Encoding"),
        ("/openapi.json", "Accept-Encoding"),
    ],
)
def test_a_304_outside_v1_varies_as_its_200(client, make_article, writer, path, vary):
    long_articles(make_article)
    full = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert full.headers["Vary"] == vary
    again = client.get(
        path, headers={"Accept-Encoding": "gzip", "If-None-Match": full.headers["ETag"]}
    )
    assert again.status_code == 304 and again.headers["Vary"] == vary
    keyed = client.get(path, headers={"Accept-Encoding": "gzip", **writer})
    assert keyed.headers["Vary"] == vary


def test_one_variants_etag_does_not_validate_another(client, make_article):
    long_articles(make_article)
    gzip = client.get("/v1/articles", headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    br_only = client.get("/v1/articles", headers={"Accept-Encoding": "br", "If-None-Match": gzip})
    assert br_only.status_code == 200 and br_only.headers["Content-Encoding"] == "br"
    both = client.get(
        "/v1/articles", headers={"Accept-Encoding": "br, gzip", "If-None-Match": gzip}
    )
    assert both.status_code == 304 and both.headers["ETag"] == gzip
    # The identity form is acceptable to every client.
    identity = client.get("/v1/articles").headers["ETag"]
    assert ":" not in identity
    confirmed = client.get(
        "/v1/articles", headers={"Accept-Encoding": "br", "If-None-Match": identity}
    )
    assert confirmed.status_code == 304 and confirmed.headers["ETag"] == identity


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("br;q=0, gzip", "gzip"),
        ("br;q=0", None),
        ("gzip;q=0, br;q=0.5", "br"),
        ("*;q=0", None),
        ("*", "br"),
    ],
)
def test_a_coding_the_client_refuses_is_never_used(client, make_article, accept, coding):
    long_articles(make_article)
    response = client.get("/v1/articles", headers={"Accept-Encoding": accept})
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == coding


# --- errors and caches ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/articles/999999", "/v1/articles?limit=0", "/v1/nowhere"])
def test_errors_are_not_stored_and_vary_like_answers(client, path):
    response = client.get(path)
    assert response.status_code >= 400
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == "Authorization, X-API-Key, Accept-Encoding"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_are_not_stored(client, path):
    assert client.get(path).headers["Cache-Control"] == "no-store"


# --- conditional writes -------------------------------------------------------------------


def test_writes_answer_the_etag_a_read_gives(client, writer, source):
    created = client.post(
        "/v1/articles", json={"source": source.slug, "title": "T", "body_text": "B"}, headers=writer
    )
    read = client.get(f"/v1/articles/{created.json['id']}")
    assert created.headers["ETag"] == read.headers["ETag"]
    patched = client.patch(
        f"/v1/articles/{created.json['id']}", json={"title": "U"}, headers=writer
    )
    assert (
        patched.headers["ETag"] == client.get(f"/v1/articles/{created.json['id']}").headers["ETag"]
    )
    assert patched.headers["ETag"] != read.headers["ETag"]


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_stale_if_match_is_412_and_changes_nothing(client, writer, make_article, method):
    article = make_article(title="Original")
    path = f"/v1/articles/{article.id}"
    stale = client.get(path).headers["ETag"]
    stale_fieldset = client.get(f"{path}?fields=id,title").headers["ETag"]
    assert stale_fieldset != stale  # another answer: If-None-Match tells them apart
    assert client.patch(path, json={"title": "Edited elsewhere"}, headers=writer).status_code == 200
    headers = {**writer, "If-Match": stale_fieldset}
    assert client.patch(path, json={"title": "Mine"}, headers=headers).status_code == 412
    body = (
        {"source": "default-source", "title": "Mine", "body_text": "B"}
        if method != "delete"
        else None
    )
    response = getattr(client, method)(path, json=body, headers={**writer, "If-Match": stale})
    assert response.status_code == 412
    assert response.content_type == "application/problem+json"
    assert client.get(path).json["title"] == "Edited elsewhere"


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_current_or_star_if_match_lets_the_write_through(client, writer, make_article, method):
    for given in ("current", "*", "compressed", "fieldset"):
        article = make_article()
        path = f"/v1/articles/{article.id}"
        etag = client.get(path, headers={"Accept-Encoding": "gzip"}).headers["ETag"]
        if given == "fieldset":  # another answer about the same version of the article
            etag = client.get(f"{path}?fields=id,title").headers["ETag"]
        if given == "current":
            etag = etag.replace(':gzip"', '"')
        elif given == "*":
            etag = "*"
        body = {"title": "Mine"} if method == "patch" else None
        response = getattr(client, method)(path, json=body, headers={**writer, "If-Match": etag})
        assert response.status_code in (200, 204), given


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_if_none_match_star_on_an_existing_article_is_412(client, writer, make_article, method):
    path = f"/v1/articles/{make_article(title='Original').id}"
    body = {"source": "default-source", "title": "Mine", "body_text": "B"}
    response = getattr(client, method)(
        path, json=None if method == "delete" else body, headers={**writer, "If-None-Match": "*"}
    )
    assert response.status_code == 412
    assert list(response.json["errors"]) == ["If-None-Match"]
    assert client.get(path).json["title"] == "Original"


def test_post_takes_if_match_and_if_none_match_star(client, writer, source):
    article = {"source": source.slug, "external_id": "e-1", "title": "First", "body_text": "B"}
    create_only = {**writer, "If-None-Match": "*"}
    created = client.post("/v1/articles", json=article, headers=create_only)
    assert created.status_code == 201
    again = client.post("/v1/articles", json={**article, "title": "Twice"}, headers=create_only)
    assert again.status_code == 412
    stale = created.headers["ETag"]
    edited = client.post("/v1/articles", json={**article, "title": "Edited"}, headers=writer)
    assert edited.status_code == 200
    refused = client.post(
        "/v1/articles", json={**article, "title": "Mine"}, headers={**writer, "If-Match": stale}
    )
    assert refused.status_code == 412 and list(refused.json["errors"]) == ["If-Match"]
    assert client.get(f"/v1/articles/{created.json['id']}").json["title"] == "Edited"
    # If-Match asks for an article that exists: a POST that would create one is refused.
    for tag in ("*", stale):
        new = {**article, "external_id": "e-2"}
        missing = client.post("/v1/articles", json=new, headers={**writer, "If-Match": tag})
        assert missing.status_code == 412
        assert missing.json["errors"] == {"If-Match": ["No such article exists."]}
    assert [a["external_id"] for a in client.get("/v1/articles").json["data"]] == ["e-1"]


def test_last_modified_moves_with_everything_an_answer_shows(
    client, dbconn, make_article, make_key
):
    """If-Modified-Since is not 304 once an article's comment count or source name changed,
    nor a source's once it has one article more: their Last-Modified moved with their ETag."""
    admin = make_key("admin,comment,write")
    article = make_article()
    source_path = f"/v1/sources/{article.source.slug}"
    article_path = f"/v1/articles/{article.id}"

    def still_fresh(path, headers):
        since = {"If-Modified-Since": headers["Last-Modified"]}
        return client.get(path, headers=since).status_code == 304

    for path, change in [
        (
            article_path,
            lambda: client.post(
                f"{article_path}/comments", json={"author_name": "A", "body": "B"}, headers=admin
            ),
        ),
        (article_path, lambda: client.patch(source_path, json={"name": "Renamed"}, headers=admin)),
        (
            source_path,
            lambda: client.post(
                "/v1/articles",
                json={"source": article.source.slug, "title": "New", "body_text": "Text."},
                headers=admin,
            ),
        ),
    ]:
        # Last modified long ago (an HTTP date counts whole seconds; the changes take less).
        long_ago = datetime.datetime(2026, 1, 1)
        Article.update(modified_at=long_ago).execute()
        Source.update(modified_at=long_ago).execute()
        before = client.get(path).headers
        assert before["Last-Modified"] == "Thu, 01 Jan 2026 00:00:00 GMT"
        assert still_fresh(path, before)
        change()
        after = client.get(path).headers
        assert after["ETag"] != before["ETag"]
        assert not still_fresh(path, before)


def test_no_last_modified_until_no_change_can_share_it(client, dbconn, make_article, monkeypatch):
    """A second change stamped within the same second would have the same date, and a write
    stamps its time before it commits: until no such change can still commit (COMMIT_LAG), an
    answer has no Last-Modified, and If-Modified-Since is not compared."""
    article = make_article()
    changed = datetime.datetime(2026, 12, 1, 9, 30, 15)
    Article.update(modified_at=changed).where(Article.id == article.id).execute()
    path, date = f"/v1/articles/{article.id}", http_date(changed)
    at = changed.replace(tzinfo=datetime.UTC).timestamp()
    lag = COMMIT_LAG.total_seconds()
    for now in (at + 0.5, at + lag):
        monkeypatch.setattr(caching, "time", types.SimpleNamespace(time=lambda now=now: now))
        answer = client.get(path, headers={"If-Modified-Since": date})
        assert answer.status_code == 200 and "Last-Modified" not in answer.headers
    monkeypatch.setattr(caching, "time", types.SimpleNamespace(time=lambda: at + lag + 1))
    assert client.get(path, headers={"If-Modified-Since": date}).status_code == 304
    assert client.get(path).headers["Last-Modified"] == date


def test_an_upgrade_is_not_modified_since_a_date_an_earlier_release_gave(
    client, dbconn, make_article, monkeypatch
):
    """An upgrade may change what every answer shows: no answer of a release carries a date
    from before it first served the database, so If-Modified-Since with a date an earlier
    release gave is not a 304. A database no release served before keeps its dates."""
    article = make_article()
    Article.update(modified_at=datetime.datetime(2026, 1, 1)).execute()
    Source.update(modified_at=datetime.datetime(2026, 1, 1)).execute()
    paths = (f"/v1/articles/{article.id}", "/v1/articles", f"/v1/sources/{article.source.slug}")
    date = "Thu, 01 Jan 2026 00:00:00 GMT"
    DataVersion.update(changed_at=1767225600, changed_version=DataVersion.value).execute()
    for path in paths:  # the first release to serve it: the dates are the data's
        assert client.get(path).headers["Last-Modified"] == date, path
        assert client.get(path, headers={"If-Modified-Since": date}).status_code == 304, path
    [(name, stamp)] = (
        Setting.select(Setting.name, Setting.value)
        .where(Setting.name.startswith(RELEASE_SERVED))
        .tuples()
    )
    assert stamp == "0"

    # The next release starts (a new digest; here the one before is renamed instead).
    Setting.update(name=f"{RELEASE_SERVED}earlier").where(Setting.name == name).execute()
    changes._release_served.cache_clear()  # what a new process knows
    before = time.time()
    for path in paths:  # stamped just now: no date until no change can share its second
        answer = client.get(path, headers={"If-Modified-Since": date})
        assert answer.status_code == 200 and "Last-Modified" not in answer.headers, path
    served = int(Setting.get_value(name))
    assert before - 1 <= served <= time.time()
    later = served + COMMIT_LAG.total_seconds() + 1
    monkeypatch.setattr(caching, "time", types.SimpleNamespace(time=lambda: later))
    for path in paths:
        assert client.get(path, headers={"If-Modified-Since": date}).status_code == 200, path
        upgraded = client.get(path).headers["Last-Modified"]
        assert upgraded == http_date(served), path
        assert client.get(path, headers={"If-Modified-Since": upgraded}).status_code == 304, path


def test_a_release_that_cannot_stamp_its_start_still_answers(
    client, dbconn, make_article, monkeypatch
):
    """A database that takes no write (read only, or its disk full) still answers reads after
    an upgrade: with no date until the release's first answer is stamped, not with an error."""
    article = make_article()
    Article.update(modified_at=datetime.datetime(2026, 1, 1)).execute()
    Source.update(modified_at=datetime.datetime(2026, 1, 1)).execute()
    Setting.insert(name=f"{RELEASE_SERVED}earlier", value="0").execute()  # an upgrade
    path, date = f"/v1/articles/{article.id}", "Thu, 01 Jan 2026 00:00:00 GMT"
    if is_postgres():
        db.execute_sql(
            "CREATE FUNCTION read_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'cannot execute INSERT in a read-only transaction'"
            " USING ERRCODE = 'read_only_sql_transaction'; END $$"
        )
        db.execute_sql(
            "CREATE TRIGGER read_only BEFORE INSERT ON setting"
            " FOR EACH ROW EXECUTE FUNCTION read_only()"
        )
    else:
        db.execute_sql("PRAGMA query_only = ON")  # the connection the requests use
    try:
        for _ in range(2):  # not kept: each asks again
            answer = client.get(path, headers={"If-Modified-Since": date})
            assert answer.status_code == 200 and "Last-Modified" not in answer.headers
    finally:
        if is_postgres():
            db.execute_sql("DROP TRIGGER read_only ON setting")
            db.execute_sql("DROP FUNCTION read_only()")
        else:
            db.execute_sql("PRAGMA query_only = OFF")
    assert Setting.select().where(Setting.name.startswith(RELEASE_SERVED)).count() == 1
    later = time.time() + COMMIT_LAG.total_seconds() + 1
    assert client.get(path).status_code == 200  # stamped now
    assert Setting.select().where(Setting.name.startswith(RELEASE_SERVED)).count() == 2
    monkeypatch.setattr(caching, "time", types.SimpleNamespace(time=lambda: later))
    assert client.get(path, headers={"If-Modified-Since": date}).status_code == 200


def test_if_match_on_a_missing_article_is_404(client, writer):
    response = client.delete("/v1/articles/999999", headers={**writer, "If-Match": "*"})
    assert response.status_code == 404


# --- writes do a fixed amount of work ------------------------------------------------------


def test_writes_run_a_fixed_number_of_queries_however_many_tags(
    client, writer, source, count_queries, monkeypatch
):
    from api import tasks

    monkeypatch.setattr(tasks.huey, "immediate", False)  # related lists are the worker's
    client.get("/v1/me", headers=writer)  # the key's first use is noted once
    client.get("/v1/articles")  # and the database's name in ETags read once
    counts = []
    for number, tags in enumerate((["one"], [f"tag-{n}" for n in range(20)])):
        body = {
            "source": source.slug,
            "title": f"Story {number}",
            "body_text": "Text.",
            "tags": tags,
        }
        before = len(count_queries.queries)
        response = client.post("/v1/articles", json=body, headers=writer)
        assert response.status_code == 201
        created = len(count_queries.queries) - before
        before = len(count_queries.queries)
        # Tags new to the database cost a read and an insert more than stored ones: new in both.
        body["tags"] = [*tags, f"more-{number}", f"again-{number}"]
        path = f"/v1/articles/{response.json['id']}"
        assert client.put(path, json=body, headers=writer).status_code == 200
        replaced = len(count_queries.queries) - before
        before = len(count_queries.queries)
        patch = client.patch(path, json={"title": f"Story {number} again"}, headers=writer)
        assert patch.status_code == 200
        counts.append((created, replaced, len(count_queries.queries) - before))
    assert counts[0] == counts[1], counts
    assert max(counts[0]) <= 25, counts


# --- the spec says what the server enforces ------------------------------------------------


def test_lengths_hold_for_what_the_client_sent(client, writer):
    name = "N" * 199 + "\x07" + "N"  # 201 characters, one of them a control character
    response = client.post("/v1/sources", json={"slug": "s", "name": name}, headers=writer)
    assert response.status_code == 422
    assert response.json["errors"]["name"] == ["Longer than maximum length 200."]
    fits = client.post(
        "/v1/sources", json={"slug": "s", "name": "N" * 199 + "\x07"}, headers=writer
    )
    assert fits.status_code == 201 and fits.json["name"] == "N" * 199


def test_the_spec_states_the_limits_the_server_enforces(client):
    spec = client.get("/openapi.json").json
    schemas = spec["components"]["schemas"]
    assert schemas["SourceIn"]["properties"]["name"]["minLength"] == 1
    assert schemas["SourceIn"]["properties"]["homepage_url"]["format"] == "uri"
    assert schemas["ArticleIn"]["properties"]["image_url"]["format"] == "uri"
    assert schemas["CommentIn"]["properties"]["author_name"]["minLength"] == 1
    assert schemas["CommentIn"]["properties"]["body"]["minLength"] == 1
    (key,) = [p for p in spec["paths"]["/v1/articles/{key}"]["parameters"] if p["name"] == "key"]
    assert key["schema"]["pattern"] == "^[^/\\u0000-\\u001f\\u007f]+$"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_if_unmodified_since_is_a_precondition_of_writes(client, writer, make_article, method):
    article = make_article(title="Original")
    path = f"/v1/articles/{article.id}"
    # Changed at 12:00:00.6; its Last-Modified shows whole seconds, 12:00:00.
    changed = datetime.datetime(2026, 1, 1, 12, 0, 0, 600_000)
    Article.update(modified_at=changed).where(Article.id == article.id).execute()
    shown = http_date(changed.replace(microsecond=0, tzinfo=datetime.UTC))
    body = {"source": "default-source", "title": "Mine", "body_text": "B"}
    body = {"title": "Mine"} if method == "patch" else None if method == "delete" else body

    def send(**headers):
        return getattr(client, method)(path, json=body, headers={**writer, **headers})

    earlier = http_date(changed - datetime.timedelta(seconds=1))
    refused = send(**{"If-Unmodified-Since": earlier})
    assert refused.status_code == 412
    assert refused.content_type == "application/problem+json"
    assert refused.json["errors"] == {
        "If-Unmodified-Since": ["The article has changed since that date."]
    }
    assert client.get(path).json["title"] == "Original"
    # If-Match, when sent, is the precondition (RFC 9110 13.1.4), and a date that cannot be
    # read is ignored.
    etag = client.get(path).headers["ETag"]
    assert send(**{"If-Unmodified-Since": "yesterday"}).status_code in (200, 204)
    if method != "delete":
        assert client.get(path).json["title"] == "Mine"
        etag = client.get(path).headers["ETag"]
        assert send(**{"If-Unmodified-Since": shown}).status_code == 412  # changed since
        both = {"If-Unmodified-Since": shown, "If-Match": etag}
        assert send(**both).status_code == 200


def test_if_unmodified_since_holds_for_the_second_last_modified_shows(
    client, writer, make_article, source
):
    article = make_article(title="Original")
    changed = datetime.datetime(2026, 1, 1, 12, 0, 0, 600_000)
    Article.update(modified_at=changed).where(Article.id == article.id).execute()
    Source.update(modified_at=changed).where(Source.id == source.id).execute()
    shown = {"If-Unmodified-Since": "Thu, 01 Jan 2026 12:00:00 GMT"}
    patched = client.patch(
        f"/v1/articles/{article.id}", json={"title": "Mine"}, headers={**writer, **shown}
    )
    assert patched.status_code == 200 and patched.json["title"] == "Mine"
    earlier = {"If-Unmodified-Since": "Thu, 01 Jan 2026 11:59:59 GMT"}
    source_path = f"/v1/sources/{source.slug}"
    refused = client.patch(source_path, json={"name": "Lost"}, headers={**writer, **earlier})
    assert refused.status_code == 412
    assert list(refused.json["errors"]) == ["If-Unmodified-Since"]
    assert client.get(source_path).json["name"] != "Lost"
    kept = client.patch(source_path, json={"name": "Kept"}, headers={**writer, **shown})
    assert kept.status_code == 200 and client.get(source_path).json["name"] == "Kept"


def test_if_unmodified_since_on_reads(client, writer, source):
    body = {"source": source.slug, "title": "T", "body_text": "B"}
    path = f"/v1/articles/{client.post('/v1/articles', json=body, headers=writer).json['id']}"
    etag = client.get(path).headers["ETag"]
    long_ago = {"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}
    later = {"If-Unmodified-Since": http_date(time.time() + 86400)}
    for read in (path, "/v1/articles"):
        refused = client.get(read, headers={**long_ago, "If-None-Match": etag})
        assert refused.status_code == 412, read
        assert refused.headers["Cache-Control"] == "no-store"
        assert list(refused.json["errors"]) == ["If-Unmodified-Since"]
        assert client.get(read, headers=later).status_code == 200
    # Before If-None-Match (RFC 9110 13.2.2): a 304 only when the date holds.
    assert client.get(path, headers={**later, "If-None-Match": etag}).status_code == 304


def test_sources_and_comments_take_if_match_too(client, writer, make_key, make_article, source):
    admin = make_key("admin,comment")
    path = f"/v1/sources/{source.slug}"
    stale = client.get(path).headers["ETag"]
    patched = client.patch(path, json={"name": "First edit"}, headers=writer)
    assert (
        patched.status_code == 200 and patched.headers["ETag"] == client.get(path).headers["ETag"]
    )
    refused = client.patch(path, json={"name": "Lost"}, headers={**writer, "If-Match": stale})
    assert refused.status_code == 412 and client.get(path).json["name"] == "First edit"
    current = client.get(path).headers["ETag"]
    assert (
        client.patch(
            path, json={"name": "Second"}, headers={**writer, "If-Match": current}
        ).status_code
        == 200
    )

    article = make_article(source=source)
    posted = client.post(
        f"/v1/articles/{article.id}/comments",
        json={"author_name": "A", "body": "Hi"},
        headers=admin,
    )
    comment_path = f"/v1/comments/{posted.json['id']}"
    assert posted.headers["ETag"] == client.get(comment_path).headers["ETag"]
    stale = posted.headers["ETag"]
    assert client.patch(comment_path, json={"status": "hidden"}, headers=admin).status_code == 200
    assert client.delete(comment_path, headers={**admin, "If-Match": stale}).status_code == 412
    assert (
        client.patch(
            comment_path, json={"status": "visible"}, headers={**admin, "If-Match": stale}
        ).status_code
        == 412
    )
    assert client.get(comment_path, headers=admin).json["status"] == "hidden"
    fresh = client.get(comment_path, headers=admin).headers["ETag"]
    assert client.delete(comment_path, headers={**admin, "If-Match": fresh}).status_code == 204


@pytest.mark.parametrize("app_config", [{"webhook_allow_private": True}])
def test_a_post_that_creates_is_412_with_if_match_and_stores_nothing(
    client, make_key, make_article, source
):
    """If-Match names a resource that exists: the one a comment, source or webhook post would
    make does not yet (RFC 9110 13.1.1: a false condition, the method not performed)."""
    admin = make_key("admin")
    article = make_article(source=source)
    posts = (
        (f"/v1/articles/{article.id}/comments", {"author_name": "A", "body": "Hi"}),
        ("/v1/sources", {"slug": "wire", "name": "Wire"}),
        ("/v1/webhooks", {"url": "http://127.0.0.1:9/in", "events": ["article.published"]}),
    )
    for path, body in posts:
        for condition in ('"abc"', "*"):
            refused = client.post(path, json=body, headers={**admin, "If-Match": condition})
            assert refused.status_code == 412, (path, condition)
            assert list(refused.json["errors"]) == ["If-Match"]
    assert client.get(f"/v1/articles/{article.id}/comments").json["data"] == []
    assert client.get("/v1/sources/wire").status_code == 404
    assert client.get("/v1/webhooks", headers=admin).json["data"] == []
    for path, body in posts:  # If-None-Match: * holds for what does not exist yet
        created = client.post(path, json=body, headers={**admin, "If-None-Match": "*"})
        assert created.status_code == 201, path


def test_a_source_etag_changes_when_its_article_count_does(client, writer, source):
    path = f"/v1/sources/{source.slug}"
    before = client.get(path)
    body = {"source": source.slug, "title": "New", "body_text": "Text."}
    assert client.post("/v1/articles", json=body, headers=writer).status_code == 201
    after = client.get(path, headers={"If-None-Match": before.headers["ETag"]})
    assert (
        after.status_code == 200 and after.json["article_count"] == before.json["article_count"] + 1
    )


def test_if_match_on_reads_and_if_none_match_on_writes_are_preconditions(
    client, writer, make_article
):
    article = make_article()
    path = f"/v1/articles/{article.id}"
    etag = client.get(path).headers["ETag"]
    # A read with If-Match has its answer only while the answer has that tag (RFC 9110 13.1.1),
    # whatever its If-None-Match says.
    assert client.get(path, headers={"If-Match": etag}).status_code == 200
    for read in (path, f"{path}?fields=title", "/v1/articles"):
        refused = client.get(read, headers={"If-Match": '"0123"', "If-None-Match": etag})
        assert refused.status_code == 412, read
        assert refused.content_type == "application/problem+json"
        assert refused.headers["Cache-Control"] == "no-store"
    # A write with If-None-Match naming the current tag is not done (RFC 9110 13.1.2).
    unchanged = {**writer, "If-None-Match": f'"other", W/{etag}'}
    refused = client.patch(path, json={"byline": "X"}, headers=unchanged)
    assert refused.status_code == 412
    assert refused.json["errors"] == {"If-None-Match": ["The article has this ETag still."]}
    assert client.get(path).json["byline"] != "X"
    changed = {**writer, "If-None-Match": '"other"'}
    assert client.patch(path, json={"byline": "X"}, headers=changed).status_code == 200


def test_deleted_ids_are_never_given_again(client, writer, source, make_key):
    admin = make_key("admin,comment")
    body = {"source": source.slug, "title": "Gone", "body_text": "Text."}
    first = client.post("/v1/articles", json=body, headers=writer).json["id"]
    comment = client.post(
        f"/v1/articles/{first}/comments", json={"author_name": "A", "body": "B"}, headers=admin
    ).json["id"]
    assert client.delete(f"/v1/comments/{comment}", headers=admin).status_code == 204
    assert client.delete(f"/v1/articles/{first}", headers=writer).status_code == 204
    second = client.post("/v1/articles", json={**body, "title": "Next"}, headers=writer).json["id"]
    assert second > first
    again = client.post(
        f"/v1/articles/{second}/comments", json={"author_name": "A", "body": "B"}, headers=admin
    ).json["id"]
    assert again > comment


@pytest.mark.parametrize("app_config", [{"webhook_allow_private": True}])
def test_a_deleted_webhooks_id_is_never_given_again(client, make_key):
    admin = make_key("admin")
    body = {"url": "http://127.0.0.1:9/in", "events": ["article.published"]}
    first = client.post("/v1/webhooks", json=body, headers=admin).json["id"]
    assert client.delete(f"/v1/webhooks/{first}", headers=admin).status_code == 204
    assert client.post("/v1/webhooks", json=body, headers=admin).json["id"] > first


def test_every_id_in_a_url_is_never_reused_on_sqlite(app, dbconn):
    if is_postgres():
        pytest.skip("PostgreSQL sequences never hand out an id twice")
    tables = {"source", "article", "comment", "webhook_subscription", "webhook_message"}
    tables |= {"import_job", "story"}
    rows = dbconn.execute_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    made = {name: sql for name, sql in rows if name in tables}
    assert {name for name, sql in made.items() if "AUTOINCREMENT" in sql} == tables


@pytest.mark.parametrize("app_config", [{"webhook_allow_private": True}])
def test_webhooks_take_if_match_on_the_etag_of_their_answer(client, make_key):
    admin = make_key("admin")
    body = {"url": "http://127.0.0.1:9/in", "events": ["article.published"]}
    answer = client.post("/v1/webhooks", json=body, headers=admin)
    created = answer.json
    path = f"/v1/webhooks/{created['id']}"
    stale = client.get(path, headers=admin).headers["ETag"]
    assert answer.headers["ETag"] == stale  # the webhook's, not that of the answer's secret
    unchanged = client.patch(path, json={}, headers=admin)
    assert unchanged.status_code == 200 and unchanged.headers["ETag"] == stale
    rotated = client.post(f"{path}/rotate-secret", headers=admin)
    assert rotated.headers["ETag"] == client.get(path, headers=admin).headers["ETag"] != stale
    stale = rotated.headers["ETag"]
    patched = client.patch(path, json={"description": "First"}, headers=admin)
    assert patched.status_code == 200
    assert patched.headers["ETag"] == client.get(path, headers=admin).headers["ETag"] != stale

    refused = client.patch(path, json={"description": "Lost"}, headers={**admin, "If-Match": stale})
    assert refused.status_code == 412
    assert refused.json["errors"] == {"If-Match": ["The webhook has changed since this ETag."]}
    assert client.delete(path, headers={**admin, "If-Match": stale}).status_code == 412
    assert client.get(path, headers=admin).json["description"] == "First"

    current = patched.headers["ETag"]
    again = client.patch(
        path, json={"description": "Second"}, headers={**admin, "If-Match": current}
    )
    assert again.status_code == 200 and again.json["description"] == "Second"
    assert (
        client.delete(path, headers={**admin, "If-Match": again.headers["ETag"]}).status_code == 204
    )
    gone = client.delete(path, headers={**admin, "If-Match": "*"})
    assert gone.status_code == 404


def test_a_relation_delete_takes_if_match_star_only(client, writer, make_article):
    article, other = make_article(), make_article()
    path = f"/v1/articles/{article.id}/relations"
    relation = {"article_id": other.id, "kind": "follow_up"}
    assert client.post(path, json=relation, headers=writer).status_code == 201
    tag = client.get(f"/v1/articles/{article.id}/related").headers["ETag"]
    refused = client.delete(f"{path}/{other.id}", headers={**writer, "If-Match": tag})
    assert refused.status_code == 412
    related = client.get(f"/v1/articles/{article.id}/related").json["data"]
    assert [item["id"] for item in related] == [other.id]

    star = {**writer, "If-Match": "*"}
    assert client.delete(f"{path}/{other.id}", headers=star).status_code == 204
    # Gone, it is a 404 whatever the preconditions, as an article is (RFC 9110 13.2.1: none
    # is evaluated for an answer that would not be a 2xx without it); If-Match: * was a 412.
    for precondition in ({"If-Match": "*"}, {"If-Match": tag}, {}):
        missing = client.delete(f"{path}/{other.id}", headers={**writer, **precondition})
        assert missing.status_code == 404, precondition
        assert missing.json["detail"] == (
            f"Article {article.id} has no editorial relation to {other.id}."
        )


def test_the_next_link_replaces_a_cursor_whose_name_was_percent_encoded(client, make_article):
    for _ in range(5):
        make_article()
    first = client.get("/v1/articles?limit=2").json["next_cursor"]
    link = client.get(f"/v1/articles?limit=2&%63ursor={first}").headers["Link"]
    assert link.count("cursor=") == 1 and "%63ursor" not in link
    url = link[1 : link.index(">")].replace("http://localhost", "")
    assert client.get(url).status_code == 200


# --- the headers the OpenAPI document promises -----------------------------------------------


DOCUMENT = yaml.safe_load((Path(__file__).resolve().parent.parent / "openapi.yaml").read_text())


def documented_headers(path, method, status):
    response = DOCUMENT["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return set(response.get("headers", {}))


def test_answers_carry_the_headers_the_document_names(client, writer, make_key, make_article):
    article, other = make_article(), make_article()
    admin = make_key("admin,comment")
    comment = {"author_name": "Ann", "body": "Well put."}
    ndjson = {**writer, "Content-Type": "application/x-ndjson", "Prefer": "respond-async"}
    line = b'{"source": "default-source", "title": "T", "body_text": "B."}\n'
    calls = [
        ("/v1/articles", "get", 200, lambda: client.get("/v1/articles?limit=1", headers=writer)),
        (
            "/v1/articles",
            "post",
            201,
            lambda: client.post(
                "/v1/articles",
                json={"source": "default-source", "title": "New", "body_text": "Body."},
                headers=writer,
            ),
        ),
        (
            "/v1/sources/{slug}",
            "patch",
            200,
            lambda: client.patch("/v1/sources/default-source", json={"name": "D"}, headers=admin),
        ),
        (
            "/v1/articles/{key}/comments",
            "post",
            201,
            lambda: client.post(f"/v1/articles/{article.id}/comments", json=comment, headers=admin),
        ),
        (
            "/v1/articles/{key}/relations",
            "post",
            201,
            lambda: client.post(
                f"/v1/articles/{article.id}/relations", json={"article_id": other.id}, headers=admin
            ),
        ),
        ("/v1/import", "post", 202, lambda: client.post("/v1/import", data=line, headers=ndjson)),
        ("/v1/me", "get", 401, lambda: client.get("/v1/me", headers={"X-API-Key": "nd_unknown"})),
    ]
    for path, method, status, call in calls:
        response = call()
        assert response.status_code == status, (path, method, response.json)
        # Every header named, the Link of a list too: the first page of two articles has a next.
        missing = documented_headers(path, method, status) - set(response.headers.keys())
        assert not missing, (path, method, missing)


@pytest.mark.parametrize("app_config", [{"rate_limit": "1/minute"}])
def test_a_429_carries_the_headers_the_document_names(client):
    assert client.get("/v1/tags").status_code == 200
    limited = client.get("/v1/tags")
    assert limited.status_code == 429
    assert documented_headers("/v1/tags", "get", 429) <= set(limited.headers.keys())


def test_answers_without_a_body_name_no_content_type(client, writer, make_article):
    options = client.options("/v1/articles")
    assert options.status_code == 200 and "GET" in options.headers["Allow"]
    assert options.data == b"" and "Content-Type" not in options.headers
    deleted = client.delete(f"/v1/articles/{make_article().id}", headers=writer)
    assert deleted.status_code == 204 and "Content-Type" not in deleted.headers


@pytest.mark.parametrize("path", ["//v1/articles", "///feeds/articles.json", "//healthz"])
def test_a_path_starting_with_two_slashes_is_no_resource(client, make_article, path):
    # Routing drops the leading slashes, but caching read the path as sent: such answers were
    # served with a body-hashed ETag and without Vary: Authorization.
    make_article()
    response = client.get("/", environ_overrides={"PATH_INFO": path})
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("charset, status", [("latin-1", 415), ("utf-16", 415), ("UTF-8", 201)])
def test_a_json_body_is_read_as_utf_8_alone(client, writer, source, charset, status):
    body = {"source": source.slug, "title": "Caf\u00e9", "body_text": "Open."}
    response = client.post(
        "/v1/articles",
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={**writer, "Content-Type": f"application/json; charset={charset}"},
    )
    assert response.status_code == status, response.json
    if status == 415:
        assert response.json["errors"] == {"Content-Type": ["charset=utf-8 or none."]}
    line = json.dumps({**body, "external_id": "cafe-1"}, ensure_ascii=False).encode() + b"\n"
    imported = client.post(
        "/v1/import",
        data=line,
        headers={**writer, "Content-Type": f"application/x-ndjson; charset={charset}"},
    )
    assert imported.status_code == (200 if status == 201 else status), imported.json
    if status == 415:
        assert imported.json["errors"] == {"Content-Type": ["charset=utf-8 or none."]}
    else:
        assert imported.json["created"] == 1
