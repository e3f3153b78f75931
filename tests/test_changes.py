from concurrent.futures import ThreadPoolExecutor

import pytest

from api import paging
from api.config import LEGACY_SECRET
from models import Article, Change, db
from models.changes import name_for_etags

from .conftest import BASE_TIME

ARTICLE = {"source": "daily", "body_text": "Body."}


def replay(client, since=None, replica=None, limit=3, **params):
    """Follow /v1/changes to its end, applying each change to ``replica``; the last token."""
    replica = {} if replica is None else replica
    while True:
        query = {"limit": limit, **params, **({"since": since} if since else {})}
        page = client.get("/v1/changes", query_string=query)
        assert page.status_code == 200, page.json
        body = page.json
        for change in body["data"]:
            if change["op"] == "upsert":
                replica[change["id"]] = change["article"]
            else:
                assert change["reason"] in ("deleted", "unpublished")
                assert change["article"] is None
                replica.pop(change["id"], None)
        assert body["next_since"]
        since = body["next_since"]
        if not body["has_more"]:
            return since, replica


def server_set(client):
    seen, cursor = {}, None
    while True:
        page = client.get(
            "/v1/articles", query_string={"limit": 100, **({"cursor": cursor} if cursor else {})}
        ).json
        seen.update({a["id"]: a["title"] for a in page["data"]})
        cursor = page["next_cursor"]
        if not cursor:
            return seen


def test_replay_across_writes_and_deletes(client, writer, source):
    # Five different stories: articles telling one story are grouped, which changes their
    # cards (each such change is a change of its own, after the write that caused it).
    bodies = {
        "A": "Harbour ferries resume their winter timetable on Monday.",
        "B": "The chess olympiad opens in Chennai with 180 teams.",
        "C": "Wheat prices fall after a record harvest in the plains.",
        "D": "A bright comet is visible before dawn all week.",
        "E": "Volcanic ash closes three airports in Iceland.",
    }

    def post(title, **extra):
        article = {**ARTICLE, "title": title, "body_text": bodies[title], **extra}
        return client.post("/v1/articles", json=article, headers=writer).json

    a, b, c = post("A"), post("B"), post("C")
    since, replica = replay(client)
    assert {k: v["title"] for k, v in replica.items()} == server_set(client)

    client.patch(f"/v1/articles/{a['id']}", json={"title": "A2"}, headers=writer)
    client.delete(f"/v1/articles/{b['id']}", headers=writer)
    client.patch(f"/v1/articles/{c['id']}", json={"status": "draft"}, headers=writer)
    d = post("D")
    post("E", status="draft")
    page = client.get("/v1/changes", query_string={"since": since}).json
    ops = [(ch["id"], ch["op"], ch["reason"]) for ch in page["data"]]
    assert ops == [
        (a["id"], "upsert", None),
        (b["id"], "delete", "deleted"),
        (c["id"], "delete", "unpublished"),
        (d["id"], "upsert", None),
    ]
    assert page["data"][0]["article"]["title"] == "A2"
    assert page["data"][0]["at"].endswith("Z")
    since, replica = replay(client, since, replica)
    assert (
        {k: v["title"] for k, v in replica.items()}
        == server_set(client)
        == {a["id"]: "A2", d["id"]: "D"}
    )
    # From the start, the same set, each article once at its latest change.
    _, fresh = replay(client)
    assert fresh.keys() == replica.keys()
    # Nothing new: an empty page that keeps the token.
    empty = client.get("/v1/changes", query_string={"since": since}).json
    assert empty == {"data": [], "has_more": False, "next_since": since}


def test_what_cards_show_of_others_is_a_change(client, writer, make_key, source):
    """A comment's count and a source's name show on its articles: delta sync reports them."""
    commenter, admin = make_key("comment"), make_key("admin")
    a = client.post("/v1/articles", json={**ARTICLE, "title": "A"}, headers=writer).json
    draft = {**ARTICLE, "title": "B", "status": "draft"}
    b = client.post("/v1/articles", json=draft, headers=writer).json
    since, replica = replay(client)

    def changes():
        page = client.get("/v1/changes", query_string={"since": since}).json
        return [(change["id"], change["op"], change["article"]) for change in page["data"]]

    comment = client.post(
        f"/v1/articles/{a['id']}/comments",
        json={"author_name": "R", "body": "Hi"},
        headers=commenter,
    ).json
    [(changed, op, article)] = changes()
    assert (changed, op, article["comment_count"]) == (a["id"], "upsert", 1)
    since, replica = replay(client, since, replica)

    client.patch(f"/v1/comments/{comment['id']}", json={"status": "hidden"}, headers=admin)
    assert [(i, article["comment_count"]) for i, _, article in changes()] == [(a["id"], 0)]
    since, replica = replay(client, since, replica)

    renamed = client.patch("/v1/sources/daily", json={"name": "The Morning"}, headers=writer)
    assert renamed.status_code == 200
    # The draft's card shows the new name too, but a draft is not in the feed.
    assert [(i, article["source"]["name"]) for i, _, article in changes()] == [
        (a["id"], "The Morning")
    ]
    assert client.get(f"/v1/articles/{b['id']}", headers=writer).json["source"]["name"] == (
        "The Morning"
    )
    since, replica = replay(client, since, replica)
    assert replica == {a["id"]: client.get(f"/v1/articles/{a['id']}").json}

    # What no card shows changes no article.
    etag = client.get(f"/v1/articles/{a['id']}").headers["ETag"]
    client.patch("/v1/sources/daily", json={"country": "GB"}, headers=writer)
    assert changes() == []
    assert client.get(f"/v1/articles/{a['id']}").headers["ETag"] == etag


def test_changes_fields(client, writer, source):
    client.post("/v1/articles", json={**ARTICLE, "title": "A"}, headers=writer)
    change = client.get("/v1/changes?fields=title,body_text").json["data"][0]
    assert change["article"] == {"title": "A", "body_text": "Body."}
    assert client.get("/v1/changes?fields=nope").status_code == 400


def test_a_page_with_more_links_the_next(client, writer, source):
    for title in ("Ferries resume", "Chess olympiad opens", "Wheat prices fall"):
        client.post("/v1/articles", json={**ARTICLE, "title": title}, headers=writer)
    first = client.get("/v1/changes?limit=2&fields=id")
    since = first.json["next_since"]
    assert first.json["has_more"] is True
    assert first.headers["Link"] == (
        f'<http://localhost/v1/changes?limit=2&fields=id&since={since}>; rel="next"'
    )
    rest = client.get(first.headers["Link"][1:].split(">")[0])
    assert rest.json["data"] and rest.json["has_more"] is False
    assert "Link" not in rest.headers


@pytest.mark.parametrize("since", ["garbage", "WyJjaGFuZ2VzIiwxXQ.AAAAAAAAAAAAAAAA"])
def test_bad_since_is_400(client, since):
    response = client.get("/v1/changes", query_string={"since": since})
    assert response.status_code == 400
    assert list(response.json["errors"]) == ["since"]


def test_a_token_of_another_database_is_410_and_sync_starts_again(
    app, client, writer, source, dbconn
):
    for title in ("One", "Two"):
        client.post("/v1/articles", json={**ARTICLE, "title": title}, headers=writer)
    token, _ = replay(client)
    # Made before tokens named their database: read as before.
    legacy = paging.encode_cursor("changes", [1], app.config["NEWSDESK"].key_for("cursors"))
    assert [c["article"]["title"] for c in client.get(f"/v1/changes?since={legacy}").json["data"]]
    # A backup restored, and given a new name (`newsdesk db init --new-etags`, as the README
    # says): its ids and changes are another history than the one the token followed.
    name_for_etags(renew=True)
    for old in (token, legacy):  # a token made before tokens named it too
        gone = client.get("/v1/changes", query_string={"since": old})
        assert gone.status_code == 410 and gone.content_type == "application/problem+json"
        assert "Sync again from the start, without since." in gone.json["detail"]
    _, replica = replay(client)
    assert sorted(a["title"] for a in replica.values()) == ["One", "Two"]


def test_a_token_of_a_version_before_cursor_keys_is_410(app, client, writer, source):
    """Tokens were once checked with the secret itself: a client that kept one through the
    upgrades is told to sync again, not that its token is wrong."""
    client.post("/v1/articles", json=ARTICLE, headers=writer)
    (old_key,) = app.config["NEWSDESK"].legacy_api_key_peppers()
    for key in (old_key, LEGACY_SECRET):  # the secret, or the constant before one was set
        kept = paging.encode_cursor("changes", [1], key[:64])
        gone = client.get("/v1/changes", query_string={"since": kept})
        assert gone.status_code == 410
        assert gone.json["detail"] == (
            "This token was given by a release of Newsdesk too old to go on from: the changes"
            " since it cannot be told. Sync again from the start, without since."
        )  # not that this database was restored from a backup: nothing was
    forged = paging.encode_cursor("changes", [1], b"not a key of this server")
    assert client.get("/v1/changes", query_string={"since": forged}).status_code == 400


def test_a_cursor_is_not_a_since_token(client, make_article):
    for _ in range(3):
        make_article()
    cursor = client.get("/v1/articles?limit=1").json["next_cursor"]
    assert client.get("/v1/changes", query_string={"since": cursor}).status_code == 400


@pytest.mark.parametrize(
    "app_config", [{"write_rate_limit": "100000/minute", "rate_limit": "100000/minute"}]
)
def test_replay_while_writers_commit_concurrently(app, client, writer, source):
    """Readers following the feed during concurrent writes end with exactly the server's set."""
    db.close()

    def write(thread):
        worker = app.test_client()
        for number in range(15):
            created = worker.post(
                "/v1/articles",
                json={
                    **ARTICLE,
                    "title": f"T{thread}-{number}",
                    "external_id": f"{thread}-{number}",
                },
                headers=writer,
            ).json
            if number % 4 == 0:
                worker.delete(f"/v1/articles/{created['id']}", headers=writer)

    since, replica = None, {}
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(write, t) for t in range(4)]
        # A bounded number of passes over the feed while the writers commit.
        for _ in range(20):
            since, replica = replay(app.test_client(), since, replica, limit=7)
        for future in futures:
            future.result()
    since, replica = replay(client, since, replica)
    with db.connection_context():
        assert Article.select().count() == 4 * 15 - 4 * 4
    assert {k: v["title"] for k, v in replica.items()} == server_set(client)


def test_a_sync_caught_up_is_asked_again_every_time_not_kept(client, writer, source):
    # A client caught up polls the same URL (its token again): cached for a minute, and served
    # stale for five more, the page hid new changes that long.
    client.post("/v1/articles", json=ARTICLE, headers=writer)
    token = client.get("/v1/changes").json["next_since"]
    caught_up = client.get("/v1/changes", query_string={"since": token})
    assert caught_up.json["data"] == []
    assert caught_up.headers["Cache-Control"] == "public, no-cache"
    again = client.get(
        "/v1/changes",
        query_string={"since": token},
        headers={"If-None-Match": caught_up.headers["ETag"]},
    )
    assert again.status_code == 304 and again.headers["Cache-Control"] == "public, no-cache"
    assert client.get("/v1/articles").headers["Cache-Control"].startswith("public, max-age=")


def test_only_each_articles_latest_change_is_read(client, writer, source, dbconn):
    """A change is marked superseded by the writer of its article's next one (a write, a
    comment count, a source renamed), and the feed reads the changes that are not; a change
    logged without the mark, as a server of the release before logs them through an upgrade,
    still shows its article once."""
    ids = [
        client.post("/v1/articles", json={**ARTICLE, "title": f"T{n}"}, headers=writer).json["id"]
        for n in range(3)
    ]
    client.patch(f"/v1/articles/{ids[0]}", json={"title": "Again"}, headers=writer)
    client.patch("/v1/sources/daily", json={"name": "The Morning"}, headers=writer)

    def latest():
        rows = Change.select(Change.article_id).where(~Change.superseded).tuples()
        return sorted(i for (i,) in rows)

    assert Change.select().count() > 5 and latest() == ids  # (the rename logged 3)
    Change.insert(article_id=ids[1], op="upsert", created_at=BASE_TIME).execute()
    db.execute_sql(
        "INSERT INTO change (article_id, op, created_at) VALUES (?, 'upsert', ?)".replace(
            "?", db.param
        ),
        (ids[2], BASE_TIME),
    )  # as the release before logs it: the column's default
    assert latest() == [ids[0], ids[1], ids[1], ids[2], ids[2]]
    page = client.get("/v1/changes").json["data"]
    assert [change["id"] for change in page] == [ids[0], ids[1], ids[2]]
    assert page[0]["article"]["title"] == "Again"


def test_pages_with_bodies_end_before_eight_mebibytes(client, writer, source):
    # A page of a thousand changes of the longest bodies was a gigabyte in one request.
    body = "語" * 262_144  # 768 KiB in UTF-8, and as much again as HTML: 1.5 MiB an article
    ids = []
    for number in range(6):
        article = {**ARTICLE, "title": f"Long {number}", "body_text": body}
        response = client.post("/v1/articles", json=article, headers=writer)
        assert response.status_code == 201
        ids.append(response.json["id"])
    short = client.post("/v1/articles", json={**ARTICLE, "title": "Short"}, headers=writer)
    ids.append(short.json["id"])

    first = client.get("/v1/changes?limit=100")
    assert [c["id"] for c in first.json["data"]] == ids[:5]
    assert first.json["has_more"] is True and "Link" in first.headers
    assert len(first.data) < 8 * 1024 * 1024
    rest = client.get("/v1/changes", query_string={"since": first.json["next_since"]})
    assert [c["id"] for c in rest.json["data"]] == ids[5:]
    assert rest.json["has_more"] is False
    # Without bodies, the page is whole.
    cards = client.get("/v1/changes?limit=100&fields=id,title").json
    assert ([c["id"] for c in cards["data"]], cards["has_more"]) == (ids, False)

    # A list asking for a body field: newest first, the short one and five long ones, then
    # the last after the cursor.
    page = client.get("/v1/articles?limit=100&fields=id,body_text").json
    assert [a["id"] for a in page["data"]] == ids[::-1][:6]
    after = client.get("/v1/articles", query_string={"cursor": page["next_cursor"]}).json
    assert [a["id"] for a in after["data"]] == ids[:1]
    assert len(client.get("/v1/articles?limit=100").json["data"]) == 7

    # A related list asking for a body field: the editor's order, five, then the last.
    for article_id in ids[:6]:
        relation = {"article_id": article_id, "kind": "background"}
        made = client.post(f"/v1/articles/{ids[6]}/relations", json=relation, headers=writer)
        assert made.status_code == 201
    related = client.get(f"/v1/articles/{ids[6]}/related?limit=50&fields=id,body_html").json
    first_ids = [item["id"] for item in related["data"]]
    assert len(first_ids) == 5 and related["has_more"] is True
    more = client.get(
        f"/v1/articles/{ids[6]}/related", query_string={"cursor": related["next_cursor"]}
    ).json
    assert sorted(first_ids + [item["id"] for item in more["data"]]) == ids[:6]

    # A feed holds as many of the newest as fit.
    feed = client.get("/feeds/articles.json?limit=100").json
    assert [item["id"].rsplit("/", 1)[-1] for item in feed["items"]] == [
        str(article_id) for article_id in ids[::-1][:6]
    ]
