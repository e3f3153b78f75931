import time

import pytest

from models import Comment


@pytest.fixture
def article(make_article):
    return make_article()


@pytest.fixture
def commenter(make_key):
    return make_key("comment")


def comment_url(article):
    return f"/v1/articles/{article.id}/comments"


def test_post_comment(client, article, commenter):
    response = client.post(
        comment_url(article),
        json={"author_name": " Ann ", "body": "<b>Great</b> piece & more"},
        headers=commenter,
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"] == f"/v1/comments/{body['id']}"
    assert body["author_name"] == "Ann"
    assert body["body"] == "<b>Great</b> piece & more"  # plain text, stored as sent
    assert body["status"] == "visible" and body["parent_id"] is None
    assert body["article_id"] == article.id
    assert client.get(f"/v1/articles/{article.id}").json["comment_count"] == 1
    assert client.get(f"/v1/comments/{body['id']}").json == body


def post_thread(client, article, commenter):
    """A comment and a reply to it: the first's body, and the answer to the reply's POST."""
    parent = client.post(
        comment_url(article), json={"author_name": "A", "body": "First"}, headers=commenter
    ).json
    reply = client.post(
        comment_url(article),
        json={"author_name": "B", "body": "Reply", "parent_id": parent["id"]},
        headers=commenter,
    )
    return parent, reply


def test_reply_to_a_comment(client, article, commenter):
    parent, reply = post_thread(client, article, commenter)
    assert reply.status_code == 201 and reply.json["parent_id"] == parent["id"]
    listed = client.get(comment_url(article)).json["data"]
    assert [c["body"] for c in listed] == ["First", "Reply"]


def test_deleting_a_comment_keeps_its_replies_with_new_etags(client, article, commenter, make_key):
    parent, reply = post_thread(client, article, commenter)
    path = f"/v1/comments/{reply.json['id']}"
    before = client.get(path).headers["ETag"]
    deleted = client.delete(f"/v1/comments/{parent['id']}", headers=make_key("admin"))
    assert deleted.status_code == 204
    after = client.get(path, headers={"If-None-Match": before})
    assert after.status_code == 200 and after.json["parent_id"] is None
    assert after.headers["ETag"] != before


def test_comment_needs_the_comment_scope(client, article, make_key):
    payload = {"author_name": "A", "body": "Hi"}
    assert client.post(comment_url(article), json=payload).status_code == 401
    assert (
        client.post(comment_url(article), json=payload, headers=make_key("read")).status_code == 403
    )
    assert (
        client.post(comment_url(article), json=payload, headers=make_key("write")).status_code
        == 403
    )
    assert Comment.select().count() == 0


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"author_name": "A", "body": ""}, "body"),
        ({"author_name": "A", "body": "   \n "}, "body"),
        ({"author_name": "A", "body": "x" * 5001}, "body"),
        ({"author_name": "", "body": "Hi"}, "author_name"),
        ({"author_name": "x" * 81, "body": "Hi"}, "author_name"),
        ({"body": "Hi"}, "author_name"),
        ({"author_name": "A", "body": "Hi", "parent_id": "1"}, "parent_id"),
        ({"author_name": "A", "body": "Hi", "status": "visible"}, "status"),
    ],
)
def test_invalid_comment_is_422(client, article, commenter, payload, field):
    response = client.post(comment_url(article), json=payload, headers=commenter)
    assert response.status_code == 422
    assert field in response.json["errors"]


def test_longest_comment_is_accepted(client, article, commenter):
    response = client.post(
        comment_url(article), json={"author_name": "x" * 80, "body": "y" * 5000}, headers=commenter
    )
    assert response.status_code == 201


def test_a_reply_needs_a_visible_comment_of_the_same_article_and_says_no_more(
    client, article, commenter, make_article, make_comment
):
    """A comment elsewhere, a missing one and a hidden one get one answer: whether a comment
    is hidden is for admins to know."""
    elsewhere = make_comment(make_article())
    hidden = make_comment(article, status="hidden")
    for parent_id in (elsewhere.id, 999, hidden.id):
        response = client.post(
            comment_url(article),
            json={"author_name": "A", "body": "Hi", "parent_id": parent_id},
            headers=commenter,
        )
        assert response.status_code == 422
        assert response.json["errors"] == {
            "parent_id": ["No visible comment of this article has this id."]
        }
    assert Comment.select().count() == 2


def test_comment_on_a_missing_or_draft_article_is_404(client, commenter, make_article):
    draft = make_article(status="draft")
    for url in ("/v1/articles/999/comments", f"/v1/articles/{draft.id}/comments"):
        assert (
            client.post(url, json={"author_name": "A", "body": "Hi"}, headers=commenter).status_code
            == 404
        )


@pytest.fixture
def posted(client, article, commenter):
    """The URL of a comment posted on ``article``."""
    comment = client.post(
        comment_url(article), json={"author_name": "A", "body": "Spam"}, headers=commenter
    ).json
    return f"/v1/comments/{comment['id']}"


def test_moderation_hides_and_restores(client, article, commenter, make_key, posted):
    admin = make_key("admin")
    url = posted
    assert client.patch(url, json={"status": "hidden"}, headers=commenter).status_code == 403
    assert client.patch(url, json={"status": "hidden"}).status_code == 401
    hidden = client.patch(url, json={"status": "hidden"}, headers=admin)
    assert hidden.status_code == 200 and hidden.json["status"] == "hidden"
    assert client.get(comment_url(article)).json["data"] == []
    assert client.get(f"/v1/articles/{article.id}").json["comment_count"] == 0
    assert client.get(url).status_code == 404
    assert client.get(url, headers=admin).json["status"] == "hidden"
    assert client.patch(url, json={"status": "gone"}, headers=admin).status_code == 422
    client.patch(url, json={"status": "visible"}, headers=admin)
    assert client.get(f"/v1/articles/{article.id}").json["comment_count"] == 1


def test_delete_comment(client, article, commenter, make_key, posted):
    admin = make_key("admin")
    url = posted
    assert client.delete(url, headers=commenter).status_code == 403
    assert client.delete(url, headers=admin).status_code == 204
    assert client.delete(url, headers=admin).status_code == 404
    assert client.get(f"/v1/articles/{article.id}").json["comment_count"] == 0


def test_admins_moderate_the_comments_of_an_unpublished_article(
    client, article, commenter, make_key, posted
):
    admin, writer = make_key("admin"), make_key("write")
    patch = client.patch(f"/v1/articles/{article.id}", json={"status": "draft"}, headers=writer)
    assert patch.status_code == 200
    assert client.get(posted).status_code == 404
    assert client.get(posted, headers=commenter).status_code == 404
    assert client.get(posted, headers=admin).status_code == 200
    hidden = client.patch(posted, json={"status": "hidden"}, headers=admin)
    assert hidden.status_code == 200 and hidden.json["status"] == "hidden"
    assert client.delete(posted, headers=admin).status_code == 204
    assert Comment.select().count() == 0


def test_a_cursor_of_one_articles_comments_is_400_on_anothers(client, commenter, make_article):
    first, second = make_article(), make_article()
    for article in (first, second):
        for n in range(2):
            client.post(
                comment_url(article), json={"author_name": "A", "body": f"{n}"}, headers=commenter
            )
    cursor = client.get(comment_url(first) + "?limit=1").json["next_cursor"]
    assert client.get(comment_url(first) + f"?limit=1&cursor={cursor}").status_code == 200
    other = client.get(comment_url(second) + f"?limit=1&cursor={cursor}")
    assert other.status_code == 400 and list(other.json["errors"]) == ["cursor"]


def test_a_cursor_of_one_status_is_400_with_another(client, commenter, make_key, article):
    admin = make_key("admin")
    for n in range(3):
        client.post(
            comment_url(article), json={"author_name": "A", "body": f"{n}"}, headers=commenter
        )
    url = comment_url(article) + "?limit=1"
    cursor = client.get(url + "&status=all", headers=admin).json["next_cursor"]
    assert client.get(url + f"&status=all&cursor={cursor}", headers=admin).status_code == 200
    other = client.get(url + f"&cursor={cursor}", headers=admin)
    assert other.status_code == 400 and list(other.json["errors"]) == ["cursor"]


@pytest.mark.parametrize("raw", ["[]", "null", '"text"'])
def test_a_body_that_is_no_object_is_told_apart_from_a_bad_comment_body(
    client, article, commenter, raw
):
    """The whole body is ``$`` in a problem's errors; ``body`` is the comment's own field."""
    whole = client.post(
        comment_url(article), data=raw, content_type="application/json", headers=commenter
    )
    assert whole.status_code == 422 and list(whole.json["errors"]) == ["$"]
    assert whole.json["detail"] == "Invalid: the body."
    field = client.post(
        comment_url(article), json={"author_name": "A", "body": ""}, headers=commenter
    )
    assert field.status_code == 422 and list(field.json["errors"]) == ["body"]


def test_admins_list_hidden_comments_others_only_visible_ones(
    client, article, commenter, make_key, make_comment
):
    admin, reader = make_key("admin"), make_key("read")
    shown = make_comment(article)
    hidden = make_comment(article, status="hidden")
    url = comment_url(article)

    def ids(answer):
        assert answer.status_code == 200, answer.json
        return [comment["id"] for comment in answer.json["data"]]

    assert ids(client.get(url)) == [shown.id]
    assert ids(client.get(f"{url}?status=hidden", headers=admin)) == [hidden.id]
    assert ids(client.get(f"{url}?status=all", headers=admin)) == [shown.id, hidden.id]
    assert client.get(f"{url}?status=hidden").status_code == 401
    assert client.get(f"{url}?status=all", headers=reader).status_code == 403
    assert client.get(f"{url}?status=gone", headers=admin).status_code == 422


def test_a_post_sent_again_with_its_idempotency_key_makes_one_comment(
    client, article, commenter, make_key, make_article
):
    sent = {"author_name": "Ann", "body": "Posted once"}
    once = {**commenter, "Idempotency-Key": "7c1e7b2a-retry"}
    first = client.post(comment_url(article), json=sent, headers=once)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    admin = make_key("admin")  # hidden meanwhile: for admins to know, not the retry
    hidden = client.patch(first.headers["Location"], json={"status": "hidden"}, headers=admin)
    assert hidden.status_code == 200
    listed = client.get("/v1/articles").headers["ETag"]

    again = client.post(comment_url(article), json=sent, headers=once)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    for name in ("Location", "ETag"):
        assert again.headers[name] == first.headers[name], name
    assert Comment.select().count() == 1
    # Nothing changed: no answer's ETag does.
    assert client.get("/v1/articles", headers={"If-None-Match": listed}).status_code == 304

    # The value with another comment, or on another article: 422, and nothing stored.
    for url, body in (
        (comment_url(article), {**sent, "body": "Another"}),
        (comment_url(make_article()), sent),
    ):
        other = client.post(url, json=body, headers=once)
        assert other.status_code == 422
        assert other.json["errors"] == {
            "Idempotency-Key": [
                f"This key posted another comment (id {first.json['id']}): send a new key"
                " with a new comment."
            ]
        }
    assert Comment.select().count() == 1
    # Each API key has its own values; without one, each post is a comment.
    theirs = {**make_key("comment"), "Idempotency-Key": once["Idempotency-Key"]}
    assert client.post(comment_url(article), json=sent, headers=theirs).status_code == 201
    assert client.post(comment_url(article), json=sent, headers=commenter).status_code == 201
    assert Comment.select().count() == 3


def test_a_reply_sent_again_after_its_parent_was_deleted_is_the_same_reply(
    client, article, commenter, make_key
):
    parent = client.post(
        comment_url(article), json={"author_name": "A", "body": "First"}, headers=commenter
    ).json
    reply = {"author_name": "B", "body": "Reply", "parent_id": parent["id"]}
    once = {**commenter, "Idempotency-Key": "reply-1"}
    first = client.post(comment_url(article), json=reply, headers=once)
    assert first.status_code == 201
    deleted = client.delete(f"/v1/comments/{parent['id']}", headers=make_key("admin"))
    assert deleted.status_code == 204
    again = client.post(comment_url(article), json=reply, headers=once)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == first.json["id"] and Comment.select().count() == 1


def test_a_post_sent_again_after_its_comment_was_deleted_makes_none(
    client, article, commenter, make_key
):
    """The key lived on the comment it made: deleted with it, a retry made the comment a
    moderator had deleted again."""
    sent = {"author_name": "Ann", "body": "Deleted by a moderator"}
    once = {**commenter, "Idempotency-Key": "deleted-then-retried"}
    first = client.post(comment_url(article), json=sent, headers=once)
    assert first.status_code == 201
    deleted = client.delete(first.headers["Location"], headers=make_key("admin"))
    assert deleted.status_code == 204
    again = client.post(comment_url(article), json=sent, headers=once)
    assert again.status_code == 422
    assert again.json["errors"] == {
        "Idempotency-Key": [
            f"This key posted comment {first.json['id']}, deleted since: send a new key to post"
            " again."
        ]
    }
    assert Comment.select().count() == 0
    assert client.get(comment_url(article)).json["data"] == []
    renewed = {**commenter, "Idempotency-Key": "deleted-then-posted-anew"}
    assert client.post(comment_url(article), json=sent, headers=renewed).status_code == 201


@pytest.mark.parametrize("value", ["", "two words", "café", "x" * 256, "k1, k1"])
def test_an_idempotency_key_that_is_no_token_is_422(client, article, commenter, value):
    headers = {**commenter, "Idempotency-Key": value.encode().decode("latin-1")}
    sent = {"author_name": "Ann", "body": "Posted once"}
    refused = client.post(comment_url(article), json=sent, headers=headers)
    assert refused.status_code == 422
    assert list(refused.json["errors"]) == ["Idempotency-Key"]
    assert Comment.select().count() == 0


def test_a_reply_to_a_hidden_comment_names_its_parent_to_admins_alone(
    client, article, commenter, make_key
):
    admin = make_key("admin")
    parent, reply = post_thread(client, article, commenter)
    parent_url = f"/v1/comments/{parent['id']}"
    reply_url = reply.headers["Location"]
    before = client.get(reply_url).headers["ETag"]
    assert client.patch(parent_url, json={"status": "hidden"}, headers=admin).status_code == 200
    revalidated = client.get(reply_url, headers={"If-None-Match": before})
    assert revalidated.status_code == 200 and revalidated.json["parent_id"] is None

    listed = client.get(comment_url(article)).json["data"]
    assert [(c["id"], c["parent_id"]) for c in listed] == [(reply.json["id"], None)]
    assert client.get(reply_url).json["parent_id"] is None
    assert client.get(reply_url, headers=commenter).json["parent_id"] is None
    assert client.get(reply_url, headers=admin).json["parent_id"] == parent["id"]
    everything = client.get(comment_url(article) + "?status=all", headers=admin).json["data"]
    assert [c["parent_id"] for c in everything] == [None, parent["id"]]

    assert client.patch(parent_url, json={"status": "visible"}, headers=admin).status_code == 200
    assert client.get(reply_url).json["parent_id"] == parent["id"]


def test_a_member_given_twice_is_422_not_the_last_taken(client, article, commenter, make_key):
    twice = b'{"author_name": "Ann", "body": "first", "body": "second"}'
    headers = {**commenter, "Content-Type": "application/json"}
    refused = client.post(comment_url(article), data=twice, headers=headers)
    assert refused.status_code == 422
    assert refused.json["errors"] == {
        "$": ["An object of the body names 'body' twice: send it once."]
    }
    assert Comment.select().count() == 0
    # However many members an object has (a quadratic look for the repeated one took a worker
    # two minutes), and however deep (past the second parser's depth: read as it is).
    many = "{" + ",".join(f'"{n:x}": 0' for n in range(50_000)) + ', "0": 1}'
    started = time.monotonic()
    assert client.post(comment_url(article), data=many, headers=headers).status_code == 422
    assert time.monotonic() - started < 5
    deep = "[" * 1000 + "]" * 1000
    assert client.post(comment_url(article), data=deep, headers=headers).status_code == 422
    posted = client.post(
        comment_url(article), json={"author_name": "A", "body": "B"}, headers=headers
    )
    admin = {**make_key("admin"), "Content-Type": "application/json"}
    moderation = b'{"status": "hidden", "status": "visible"}'
    url = posted.headers["Location"]
    assert client.patch(url, data=moderation, headers=admin).status_code == 422
    assert client.get(url, headers=admin).json["status"] == "visible"


@pytest.mark.parametrize("name", ["Ann\nEditor", "Ann\tEditor", "Ann\u202eEditor", "A\u2028B"])
def test_a_name_is_one_line_without_characters_that_reorder_it(
    client, article, commenter, make_key, name
):
    refused = client.post(
        comment_url(article), json={"author_name": name, "body": "Hi"}, headers=commenter
    )
    assert refused.status_code == 422
    assert refused.json["errors"] == {
        "author_name": [
            "Must be one line, without line breaks, tabs or characters that reorder text."
        ]
    }
    source = {"slug": "wire", "name": name}
    assert client.post("/v1/sources", json=source, headers=make_key("write")).status_code == 422
    assert Comment.select().count() == 0
    # White space around a name is trimmed, as before.
    trimmed = {"author_name": " Ann \n", "body": "Hi"}
    posted = client.post(comment_url(article), json=trimmed, headers=commenter)
    assert posted.status_code == 201 and posted.json["author_name"] == "Ann"
