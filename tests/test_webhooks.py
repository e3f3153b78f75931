"""Webhooks through the API, with the worker's task run where it is called (Huey's immediate
mode) and a real receiver on 127.0.0.1: subscriptions, signatures, events and their filters,
retries, disabling, redirects, safety rules and the delivery log."""

import base64
import dataclasses
import datetime
import itertools
import json
import random
import time

import orjson
import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks import WebhookVerificationError

from api import outbound, tasks
from api.config import Config, ConfigError
from models import (
    Article,
    Change,
    DataVersion,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    db,
    webhooks,
)
from models.ingest import save

from .webhook_receiver import Receiver

ALL_ARTICLE_EVENTS = ["article.published", "article.updated", "article.deleted"]


@pytest.fixture
def app_config():
    return {
        "webhook_allow_private": True,
        "webhook_retry_schedule": (0.1, 0.2),
        "webhook_timeout": 2.0,
    }


@pytest.fixture
def admin(make_key):
    return make_key("admin")


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def subscribe(client, admin, receiver):
    """``subscribe(events, **fields)`` -> the created webhook's answer (with its secret)."""

    def make(events=ALL_ARTICLE_EVENTS, url=None, **fields):
        body = {"url": url or receiver.url, "events": events, **fields}
        response = client.post("/v1/webhooks", json=body, headers=admin)
        assert response.status_code == 201, response.json
        assert response.headers["Cache-Control"] == "private, no-store"  # it shows the secret
        return response.json

    return make


def comment_on(client, make_key, article_id):
    """Ann's comment on the article ``article_id``, as posted."""
    body = {"author_name": "Ann", "body": "At last."}
    response = client.post(
        f"/v1/articles/{article_id}/comments", json=body, headers=make_key("comment")
    )
    return response.json


def article(source, title="Ferry returns", **fields):
    """An article's JSON in ``source`` (a Source or a slug)."""
    slug = getattr(source, "slug", source)
    return {"source": slug, "title": title, "body_text": "The ferry sails again.", **fields}


def verified(received, secret):
    """The payload of a received request, after its signature checked out."""
    return Verifier(secret).verify(received.body, received.headers)


def run_worker(app, until, timeout=10):
    """Run the delivery task (as the worker would, with the app's settings) until ``until()``
    holds: retries are due a fraction of a second later."""
    deadline = time.monotonic() + timeout
    with app.app_context():
        while not until():
            assert time.monotonic() < deadline, "the deliveries did not come about in time"
            tasks.deliver_webhooks.call_local()


def changes_after(client, token):
    return client.get(f"/v1/changes?since={token}").json["data"]


# --- subscriptions ---------------------------------------------------------------------------


def test_create_shows_the_secret_once_and_stores_it_sealed(app, client, admin, subscribe):
    created = subscribe(description="Search index")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert created["events"] == ALL_ARTICLE_EVENTS and created["enabled"] is True
    assert created["source"] == [] and created["tag"] == []
    assert created["description"] == "Search index" and created["disabled_reason"] is None
    shown = client.get(f"/v1/webhooks/{created['id']}", headers=admin)
    assert shown.status_code == 200 and "secret" not in shown.json
    assert shown.json == {key: value for key, value in created.items() if key != "secret"}
    listed = client.get("/v1/webhooks", headers=admin).json
    assert listed["data"] == [shown.json] and listed["has_more"] is False
    stored = db.execute_sql("SELECT secret FROM webhook_subscription").fetchall()[0][0]
    assert secret not in stored and secret[6:] not in stored
    key = app.config["NEWSDESK"].key_for("webhook-secrets")
    assert webhooks.unseal(stored, key) == secret
    other = Config(secret_key="another").key_for("webhook-secrets")
    with pytest.raises(webhooks.SecretUnreadable):
        webhooks.unseal(stored, other)


def test_a_creation_sent_again_with_its_idempotency_key_subscribes_once(
    app, client, admin, make_key, writer, source, receiver
):
    """A client that did not hear the answer sends the creation again: the endpoint is not
    subscribed twice (it would get every event twice); the retry gets the first answer, and
    changes no other answer. The key's value with another request, from another API key, a
    day later or after a rotation of the secret, is told apart."""
    body = {"url": receiver.url, "events": ["article.published"], "description": "Index"}
    once = {**admin, "Idempotency-Key": "3f1c5a4e-create-hook"}
    first = client.post("/v1/webhooks", json=body, headers=once)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    listed = client.get("/v1/articles").headers["ETag"]
    again = client.post("/v1/webhooks", json=body, headers=once)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    for name in ("Location", "ETag", "Cache-Control"):
        assert again.headers[name] == first.headers[name], name
    assert client.get("/v1/articles", headers={"If-None-Match": listed}).status_code == 304
    hook_id = first.json["id"]
    assert [hook["id"] for hook in client.get("/v1/webhooks", headers=admin).json["data"]] == [
        hook_id
    ]
    client.post("/v1/articles", json=article(source), headers=writer)
    (got,) = receiver.wait_for(1)
    assert verified(got, again.json["secret"])["type"] == "article.published"

    other = client.post("/v1/webhooks", json={**body, "description": "Other"}, headers=once)
    assert other.status_code == 422
    assert other.json["errors"] == {
        "Idempotency-Key": [f"This key created another webhook (id {hook_id}): send a new key."]
    }
    colleague = {**make_key("admin"), "Idempotency-Key": once["Idempotency-Key"]}
    theirs = client.post("/v1/webhooks", json=body, headers=colleague)
    assert theirs.status_code == 201 and theirs.json["id"] != hook_id
    with app.app_context():
        created_at = Webhook.get_by_id(hook_id).created_at
        day_ago = datetime.datetime.utcnow() - datetime.timedelta(hours=24, seconds=1)
        Webhook.update(created_at=day_ago).where(Webhook.id == hook_id).execute()
    late = client.post("/v1/webhooks", json=body, headers=once)
    assert late.status_code == 422 and "whsec_" not in late.get_data(True)
    assert late.json["errors"]["Idempotency-Key"] == [
        f"This key created webhook {hook_id} more than 24 hours ago; its secret is not shown"
        " again (rotate it for a new one)."
    ]
    with app.app_context():
        Webhook.update(created_at=created_at).where(Webhook.id == hook_id).execute()
    assert client.post("/v1/webhooks", json=body, headers=once).status_code == 201
    assert client.post(f"/v1/webhooks/{hook_id}/rotate-secret", headers=admin).status_code == 200
    rotated = client.post("/v1/webhooks", json=body, headers=once)
    assert rotated.status_code == 422 and "whsec_" not in rotated.get_data(True)
    assert rotated.json["errors"]["Idempotency-Key"] == [
        f"This key created webhook {hook_id}, whose secret was rotated since: the new one was"
        " shown to the rotation."
    ]
    assert len(client.get("/v1/webhooks", headers=admin).json["data"]) == 2
    spaced = client.post("/v1/webhooks", json=body, headers={**admin, "Idempotency-Key": "a b"})
    assert spaced.status_code == 422 and "Idempotency-Key" in spaced.json["errors"]


def test_a_creation_sent_again_after_its_webhook_was_deleted_subscribes_none(
    client, admin, receiver
):
    """The key lived on the webhook it made: deleted with it, a retry subscribed the endpoint
    an admin had removed again."""
    body = {"url": receiver.url, "events": ["article.published"]}
    once = {**admin, "Idempotency-Key": "hook-deleted-then-retried"}
    first = client.post("/v1/webhooks", json=body, headers=once)
    assert first.status_code == 201
    assert client.delete(first.headers["Location"], headers=admin).status_code == 204
    again = client.post("/v1/webhooks", json=body, headers=once)
    assert again.status_code == 422 and "whsec_" not in again.get_data(True)
    assert again.json["errors"] == {
        "Idempotency-Key": [
            f"This key created webhook {first.json['id']}, deleted since: send a new key."
        ]
    }
    assert client.get("/v1/webhooks", headers=admin).json["data"] == []


def test_webhooks_need_the_admin_scope(client, writer, receiver):
    body = {"url": receiver.url, "events": ["article.published"]}
    assert client.post("/v1/webhooks", json=body).status_code == 401
    assert client.post("/v1/webhooks", json=body, headers=writer).status_code == 403
    assert client.get("/v1/webhooks", headers=writer).status_code == 403
    assert Webhook.select().count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"events": ["article.published"]}, "url"),
        ({"url": "ftp://example.org/x", "events": ["article.published"]}, "url"),
        ({"url": "not a url", "events": ["article.published"]}, "url"),
        ({"url": "https://example.org/x"}, "events"),
        ({"url": "https://example.org/x", "events": []}, "events"),
        ({"url": "https://example.org/x", "events": ["article.exploded"]}, "events.0"),
        ({"url": "https://example.org/x", "events": ["ping"]}, "events.0"),
        ({"url": "https://example.org/x", "events": ["source.created"], "source": ["x"]}, "source"),
        ({"url": "https://example.org/x", "events": ["source.created"], "tag": "a"}, "tag"),
        ({"url": "https://example.org/x", "events": ["source.created"], "tag": ["😀"]}, "tag"),
        ({"url": "https://example.org/x", "events": ["source.created"], "id": 3}, "id"),
        ({"url": "https://example.org/x", "events": ["source.created"], "secret": "s"}, "secret"),
        ({"url": "https://u:p@example.org/x", "events": ["source.created"]}, "url"),
        (
            {"url": "https://example.org/x", "events": ["source.created"], "enabled": "off"},
            "enabled",
        ),
        ({"url": "https://example.org/x", "events": ["source.created"], "enabled": 0}, "enabled"),
    ],
)
def test_invalid_webhook_is_422(client, admin, body, field):
    response = client.post("/v1/webhooks", json=body, headers=admin)
    assert response.status_code == 422, response.json
    assert response.content_type == "application/problem+json"
    assert field in response.json["errors"]
    assert Webhook.select().count() == 0


class TestSafety:
    @pytest.fixture
    def app_config(self):
        return {"webhook_allow_private": False}

    @pytest.mark.parametrize(
        "url",
        [
            "https://127.0.0.1/hook",
            "https://127.9.9.9:8443/hook",
            "https://localhost/hook",
            "https://10.0.0.7/hook",
            "https://172.16.4.4/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.100.100.200/latest/meta-data/",
            "https://0.0.0.0/hook",
            "https://2130706433/hook",
            "https://[::1]/hook",
            "https://[fd00:ec2::254]/hook",
            "https://[fec0::1]/hook",
            "https://[fe80::1]/hook",
            "https://[64:ff9b::a00:1]/hook",
            "https://[2002:7f00:1::]/hook",
            "https://[64:ff9b:1::a9fe:a9fe]/hook",
            "https://[::ffff:0:a9fe:a9fe]/hook",
            "https://[::a9fe:a9fe]/hook",
        ],
    )
    def test_private_addresses_are_refused(self, client, admin, url):
        response = client.post(
            "/v1/webhooks", json={"url": url, "events": ["article.published"]}, headers=admin
        )
        assert response.status_code == 422, response.json
        assert "not a public address" in response.json["errors"]["url"][0]

    def test_mapped_addresses_are_unmapped(self):
        # The URL validator of the schema refuses this spelling already; the check holds anyway.
        problem = outbound.endpoint_problem("https://[::ffff:127.0.0.1]/hook", False)
        assert "::ffff:127.0.0.1, which is not a public address" in problem

    def test_a_url_with_a_control_character_is_refused(self, client, admin):
        body = {"url": "https://93.184.216.34/a\u0000b", "events": ["article.published"]}
        response = client.post("/v1/webhooks", json=body, headers=admin)
        assert response.status_code == 422
        assert response.json["errors"] == {"url": ["Not a valid URL."]}

    @pytest.mark.parametrize("name", ["source", "tag"])
    def test_a_filter_with_a_control_character_is_refused(self, client, admin, name):
        """It was stripped: a filter on `a\\x00b` filtered on `ab`."""
        body = {
            "url": "https://93.184.216.34/hook",
            "events": ["article.published"],
            name: ["ok", "a\u0000b"],
        }
        response = client.post("/v1/webhooks", json=body, headers=admin)
        assert response.status_code == 422, response.json
        assert response.json["errors"] == {f"{name}.1": ["Must not hold control characters."]}

    def test_https_is_required(self, client, admin):
        response = client.post(
            "/v1/webhooks",
            json={"url": "http://93.184.216.34/hook", "events": ["article.published"]},
            headers=admin,
        )
        assert response.status_code == 422
        assert response.json["errors"] == {"url": ["Use https."]}

    def test_a_public_address_is_accepted(self, client, admin):
        body = {"url": "https://93.184.216.34/hook", "events": ["article.published"]}
        response = client.post("/v1/webhooks", json=body, headers=admin)
        assert response.status_code == 201
        patched = client.patch(
            f"/v1/webhooks/{response.json['id']}",
            json={"url": "https://10.0.0.1/hook"},
            headers=admin,
        )
        assert patched.status_code == 422 and "url" in patched.json["errors"]

    def test_the_address_is_checked_again_at_delivery(self, receiver):
        # What resolves to a private address now is refused, whatever it was when created.
        url = receiver.url.replace("http:", "https:")
        outcome = outbound.post(url, b"{}", {}, timeout=2, allow_private=False)
        assert outcome.status is None
        assert outcome.error == (
            "Refused: 127.0.0.1 resolves to 127.0.0.1, which is not a public address"
            " (loopback, private, link-local and metadata addresses are refused)."
        )
        assert receiver.received == []

    def test_https_is_required_at_delivery(self, receiver):
        # A webhook written while private addresses (and plain http) were allowed.
        outcome = outbound.post(receiver.url, b"{}", {}, timeout=2, allow_private=False)
        assert outcome.error == "Refused: use https."
        assert receiver.received == []

    @pytest.mark.parametrize(
        "url, message",
        [
            ("https://93.184.216.34:0/hook", "Not a valid port."),
            (
                "https://user:pw@93.184.216.34/hook",
                "Leave credentials out of the URL (a token goes in its path or query).",
            ),
        ],
    )
    def test_port_0_and_credentials_are_refused(self, client, admin, url, message):
        body = {"url": url, "events": ["article.published"]}
        response = client.post("/v1/webhooks", json=body, headers=admin)
        assert response.status_code == 422
        assert response.json["errors"] == {"url": [message]}


@pytest.mark.parametrize(
    "address, public",
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::", False),
        ("2002:a9fe:a9fe::1", False),
        ("2002:5db8:d822::1", True),
        ("fe80::1%eth0", False),
        ("192.0.0.8", False),  # IETF protocol assignments: some Pythons call them global
        ("192.88.99.1", False),
    ],
)
def test_public_addresses(address, public):
    assert outbound.is_public(address) is public


def test_the_connection_goes_to_the_address_that_was_checked(receiver):
    # The host is a name no resolver knows: the request reaches the receiver all the same,
    # because the connection is made to the checked address, not to a second lookup.
    connection = outbound.PinnedConnection("hooks.example.invalid", receiver.port, "127.0.0.1", 2)
    connection.request("POST", "/pinned", body=b"{}", headers={"Content-Type": "application/json"})
    assert connection.getresponse().status == 204
    connection.close()
    (got,) = receiver.wait_for(1)
    assert got.path == "/pinned" and got.headers["host"] == f"hooks.example.invalid:{receiver.port}"


# --- events, signed ------------------------------------------------------------------------


def test_article_events_are_signed_and_carry_the_article_and_its_change(
    client, writer, source, subscribe, receiver
):
    secret = subscribe()["secret"]
    created = client.post("/v1/articles", json=article(source, tags=["Harbour"]), headers=writer)
    assert created.status_code == 201
    article_id = created.json["id"]
    (first,) = receiver.wait_for(1)
    assert first.headers["content-type"] == "application/json"
    assert first.headers["webhook-id"].startswith("msg_")
    assert abs(int(first.headers["webhook-timestamp"]) - time.time()) < 60
    assert first.headers["webhook-signature"].startswith("v1,")
    payload = verified(first, secret)
    assert payload["type"] == "article.published"
    assert payload["data"] == client.get(f"/v1/articles/{article_id}").json
    assert payload["data"]["body_text"] == "The ferry sails again."
    assert "body_omitted" not in payload and "action" not in payload
    # The token names this change: the changes after it are none yet.
    assert changes_after(client, payload["changes_since"]) == []

    client.patch(f"/v1/articles/{article_id}", json={"title": "Ferry back"}, headers=writer)
    updated = verified(receiver.wait_for(2)[1], secret)
    assert updated["type"] == "article.updated" and updated["data"]["title"] == "Ferry back"
    after_first = changes_after(client, payload["changes_since"])
    assert [(c["op"], c["id"]) for c in after_first] == [("upsert", article_id)]
    assert after_first[0]["article"]["title"] == "Ferry back"

    client.patch(f"/v1/articles/{article_id}", json={"status": "draft"}, headers=writer)
    unpublished = verified(receiver.wait_for(3)[2], secret)
    assert unpublished["type"] == "article.deleted"
    assert unpublished["data"] == {"id": article_id, "reason": "unpublished"}
    client.patch(f"/v1/articles/{article_id}", json={"title": "Draft only"}, headers=writer)
    client.patch(f"/v1/articles/{article_id}", json={"status": "published"}, headers=writer)
    republished = verified(receiver.wait_for(4)[3], secret)
    assert republished["type"] == "article.published"
    assert republished["data"]["title"] == "Draft only"

    assert client.delete(f"/v1/articles/{article_id}", headers=writer).status_code == 204
    received = receiver.wait_for(5)
    deleted = verified(received[4], secret)
    assert deleted["type"] == "article.deleted"
    assert deleted["data"] == {"id": article_id, "reason": "deleted"}
    assert changes_after(client, deleted["changes_since"]) == []
    assert len({r.id for r in received}) == 5  # one webhook-id per event
    with pytest.raises(WebhookVerificationError):
        Verifier(webhooks.new_secret()).verify(received[0].body, received[0].headers)
    tampered = received[0].body.replace(b"Ferry returns", b"Ferry sinks!!")
    with pytest.raises(WebhookVerificationError):
        Verifier(secret).verify(tampered, received[0].headers)


def test_unchanged_writes_and_drafts_send_nothing(client, writer, source, subscribe, receiver):
    subscribe()
    client.post("/v1/articles", json=article(source, status="draft"), headers=writer)
    body = article(source, title="Same", external_id="x-1")
    assert client.post("/v1/articles", json=body, headers=writer).status_code == 201
    assert client.post("/v1/articles", json=body, headers=writer).status_code == 200
    assert [json.loads(r.body)["type"] for r in receiver.wait_for(1)] == ["article.published"]
    assert WebhookEvent.select().count() == 1


def test_events_follow_type_source_and_tag_filters(
    app, client, writer, admin, make_source, subscribe, receiver
):
    daily, weekly = make_source(slug="daily"), make_source(slug="weekly")
    subscribe(events=["article.published"], source=["daily"], url=receiver.url + "?f=source")
    subscribe(events=["article.published"], tag=["Climate"], url=receiver.url + "?f=tag")
    subscribe(events=["article.updated"], url=receiver.url + "?f=updated")
    for source, title, tags in [
        (daily, "One", []),
        (weekly, "Two", ["Climate"]),
        (weekly, "Three", ["sport"]),
        (daily, "Four", ["climate"]),
    ]:
        client.post("/v1/articles", json=article(source, title, tags=tags), headers=writer)
    received = receiver.wait_for(4)
    got = sorted((r.path.split("=")[1], json.loads(r.body)["data"]["title"]) for r in received)
    assert got == [("source", "Four"), ("source", "One"), ("tag", "Four"), ("tag", "Two")]
    # A source's filter follows it when its slug changes.
    client.patch("/v1/sources/daily", json={"slug": "daily-news"}, headers=writer)
    client.post("/v1/articles", json=article("daily-news", "Five"), headers=writer)
    assert json.loads(receiver.wait_for(5)[4].body)["data"]["title"] == "Five"
    hooks = client.get("/v1/webhooks", headers=admin).json["data"]
    assert [hook["source"] for hook in hooks] == [["daily-news"], [], []]
    assert [hook["tag"] for hook in hooks] == [[], ["climate"], []]


def test_an_endpoint_hears_of_the_change_by_which_an_article_leaves_its_filter(
    client, writer, make_source, subscribe, receiver
):
    daily, weekly = make_source(slug="daily"), make_source(slug="weekly")
    subscribe(tag=["transport"], url=receiver.url + "?f=tag")
    subscribe(source=["daily"], url=receiver.url + "?f=source")
    ferry = client.post("/v1/articles", json=article(daily, tags=["transport"]), headers=writer)
    path = f"/v1/articles/{ferry.json['id']}"
    client.patch(path, json={"tags": ["sport"]}, headers=writer)  # leaves the tag
    client.put(path, json=article(weekly, status="draft"), headers=writer)  # leaves the source
    client.patch(path, json={"status": "published"}, headers=writer)  # neither hears of it
    client.delete(path, headers=writer)
    got = [(r.path.split("=")[1], json.loads(r.body)["type"]) for r in receiver.wait_for(5)]
    assert sorted(got) == [
        ("source", "article.deleted"),  # unpublished, by the move to weekly
        ("source", "article.published"),
        ("source", "article.updated"),
        ("tag", "article.published"),
        ("tag", "article.updated"),  # retagged to sport
    ]
    assert len(receiver.received) == 5


def test_moderating_a_drafts_comments_sends_no_event(
    client, writer, admin, make_key, source, subscribe, receiver
):
    """A draft's activity is no subscriber's to hear of, as the draft itself is not."""
    hook = subscribe(events=["comment.moderated", "comment.created"])
    post = client.post("/v1/articles", json=article(source), headers=writer).json
    comment = comment_on(client, make_key, post["id"])
    patch = client.patch(f"/v1/articles/{post['id']}", json={"status": "draft"}, headers=writer)
    assert patch.status_code == 200
    url = f"/v1/comments/{comment['id']}"
    assert client.patch(url, json={"status": "hidden"}, headers=admin).status_code == 200
    assert client.delete(url, headers=admin).status_code == 204
    client.post(f"/v1/webhooks/{hook['id']}/ping", headers=admin)
    payloads = [verified(r, hook["secret"]) for r in receiver.wait_for(2)]
    assert [p["type"] for p in payloads] == ["comment.created", "ping"]


def test_comment_and_source_events(client, writer, admin, make_key, subscribe, receiver):
    secret = subscribe(
        events=["comment.created", "comment.moderated", "source.created", "source.updated"]
    )["secret"]
    source = client.post(
        "/v1/sources", json={"slug": "harbour", "name": "Harbour News"}, headers=writer
    ).json
    renamed = client.patch("/v1/sources/harbour", json={"name": "Harbour Times"}, headers=writer)
    # A write that changes nothing: no new version, no event.
    again = client.patch("/v1/sources/harbour", json={"name": "Harbour Times"}, headers=writer)
    assert again.status_code == 200 and again.headers["ETag"] == renamed.headers["ETag"]
    post = client.post("/v1/articles", json=article("harbour"), headers=writer).json
    comment = comment_on(client, make_key, post["id"])
    hidden = client.patch(f"/v1/comments/{comment['id']}", json={"status": "hidden"}, headers=admin)
    again = client.patch(f"/v1/comments/{comment['id']}", json={"status": "hidden"}, headers=admin)
    assert again.status_code == 200 and again.headers["ETag"] == hidden.headers["ETag"]
    client.delete(f"/v1/comments/{comment['id']}", headers=admin)
    payloads = [verified(r, secret) for r in receiver.wait_for(5)]
    assert len(receiver.received) == 5
    assert [(p["type"], p.get("action")) for p in payloads] == [
        ("source.created", None),
        ("source.updated", None),
        ("comment.created", None),
        ("comment.moderated", "hidden"),
        ("comment.moderated", "deleted"),
    ]
    assert payloads[0]["data"] == source
    assert payloads[1]["data"]["name"] == "Harbour Times"
    assert payloads[2]["data"] == comment
    assert payloads[3]["data"] == hidden.json and payloads[4]["data"] == hidden.json
    assert all("changes_since" not in p for p in payloads)


def test_no_event_when_the_write_rolls_back(app, client, writer, source, subscribe, receiver):
    subscribe()
    with app.app_context():
        with pytest.raises(RuntimeError), db.atomic():  # the write's transaction, inside this one
            save(article(source))
            assert WebhookEvent.select().count() == 1 and Change.select().count() == 1
            raise RuntimeError("rolled back after the write")
        assert WebhookEvent.select().count() == 0 and Change.select().count() == 0
    client.post("/v1/articles", json=article(source, "Kept"), headers=writer)
    (got,) = receiver.wait_for(1)
    assert json.loads(got.body)["data"]["title"] == "Kept"


def test_a_webhook_receives_only_changes_committed_after_it(app, client, writer, source, subscribe):
    client.post("/v1/articles", json=article(source, "Before"), headers=writer)
    first = subscribe(url="http://127.0.0.1:9/first")
    # An event recorded for the first subscription but not fanned out yet.
    with app.app_context():
        save(article(source, "Between"))
    second = subscribe(url="http://127.0.0.1:9/second")
    with app.app_context():
        webhooks.fan_out()
        queued = {
            (d.webhook_id, json.loads(d.event.payload)["data"]["title"])
            for d in WebhookDelivery.select(WebhookDelivery, WebhookEvent).join(WebhookEvent)
        }
    assert queued == {(first["id"], "Between")}
    assert second["id"] != first["id"]


def test_payloads_over_the_cap_go_without_the_body(client, writer, source, subscribe, receiver):
    secret = subscribe()["secret"]
    words = " ".join(f"word{n}" for n in range(25_000))  # about 460 KB of text and HTML
    response = client.post("/v1/articles", json=article(source, body_text=words), headers=writer)
    assert response.status_code == 201
    (got,) = receiver.wait_for(1)
    assert len(got.body) <= webhooks.MAX_PAYLOAD_BYTES
    payload = verified(got, secret)
    assert payload["body_omitted"] is True
    assert "body_html" not in payload["data"] and "body_text" not in payload["data"]
    shown = client.get(f"/v1/articles/{response.json['id']}").json
    assert payload["data"] == {
        k: v for k, v in shown.items() if k not in ("body_html", "body_text")
    }


# --- delivery: retries, ordering, disabling --------------------------------------------------


def deliveries(client, admin, hook):
    return client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin).json["data"]


def test_failures_are_retried_on_the_schedule_with_the_same_id(
    app, client, writer, admin, source, subscribe, receiver
):
    hook = subscribe()
    receiver.answers = [(500, {}), (502, {})]
    client.post("/v1/articles", json=article(source), headers=writer)
    run_worker(app, lambda: len(receiver.received) == 3)
    received = receiver.received
    assert len({r.id for r in received}) == 1
    assert len({r.body for r in received}) == 1
    (logged,) = deliveries(client, admin, hook)
    assert logged["status"] == "succeeded" and logged["attempt"] == 3
    assert logged["message_id"] == received[0].id and logged["event"] == "article.published"
    assert logged["response_code"] == 204 and logged["error"] is None
    assert logged["next_retry_at"] is None
    attempts = logged["attempts"]
    assert [(a["number"], a["response_code"]) for a in attempts] == [(1, 500), (2, 502), (3, 204)]
    assert attempts[0]["error"] == "Answered 500." and all(
        isinstance(a["duration_ms"], int) for a in attempts
    )
    started = [a.started_at for a in WebhookAttempt.select().order_by(WebhookAttempt.id)]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(started)]
    assert gaps[0] >= 0.1 * 0.8 and gaps[1] >= 0.2 * 0.8


@pytest.mark.parametrize(
    "answer, error",
    [
        (
            (500, {}, b"bad\x00 gateway\r\n\x1b[31mupstream\x1b[0m down\n"),
            "Answered 500: bad gateway [31mupstream[0m down",
        ),
        (
            ("raw", b"HTTP/1.1 5\x0000 bad\x1b[2J\r\n\r\n"),
            "Connection failed: HTTP/1.1 500 bad[2J .",
        ),
    ],
)
def test_what_an_endpoint_sent_is_logged_as_one_line_without_control_characters(
    app, client, writer, admin, source, subscribe, receiver, answer, error
):
    """An endpoint's error body or status line with a NUL stopped the worker on PostgreSQL,
    which stores none, before the attempt was recorded: the delivery was sent again and again
    past its schedule. Control characters are dropped and line breaks made spaces, as in
    names."""
    hook = subscribe()
    receiver.answers = [answer]
    client.post("/v1/articles", json=article(source), headers=writer)
    run_worker(app, lambda: len(receiver.received) == 2)
    (logged,) = deliveries(client, admin, hook)
    assert logged["status"] == "succeeded" and logged["attempt"] == 2
    assert logged["attempts"][0]["error"] == error


def test_retry_delays_follow_the_schedule_with_jitter():
    schedule = (5, 300, 1800)
    rng = random.Random(7)
    for failures, base in enumerate(schedule, start=1):
        delays = [webhooks.retry_delay(failures, schedule, rng=rng) for _ in range(200)]
        assert base * 0.8 <= min(delays) < max(delays) <= base * 1.2
    assert webhooks.retry_delay(1, schedule, retry_after=120, rng=rng) == 120
    assert webhooks.retry_delay(2, schedule, retry_after=1, rng=rng) >= 240
    assert webhooks.retry_delay(1, schedule, retry_after=10**9, rng=rng) == 24 * 3600
    defaults = Config().webhook_retry_schedule
    assert len(defaults) + 1 == 10 and 2.5 * 86400 < sum(defaults) < 3.5 * 86400


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(app, client, writer, source, subscribe, receiver, status):
    subscribe()
    receiver.answers = [(status, {"Retry-After": "30"})]
    client.post("/v1/articles", json=article(source), headers=writer)
    receiver.wait_for(1)
    with app.app_context():
        delivery = WebhookDelivery.get()
        assert delivery.status == "pending" and delivery.response_code == status
        wait = (delivery.next_attempt_at - delivery.updated_at).total_seconds()
    assert 30 <= wait < 31


def test_a_retry_after_that_is_no_number_leaves_the_schedule_to_say(
    app, client, writer, source, subscribe, receiver
):
    # "²" is a digit to str.isdigit, not to float: the attempt raised, and the delivery was
    # sent again every lease, for good, holding up the article's later events.
    subscribe()
    receiver.answers = [(429, {"Retry-After": "\u00b2"})]
    client.post("/v1/articles", json=article(source), headers=writer)
    receiver.wait_for(1)
    with app.app_context():
        delivery = WebhookDelivery.get()
        assert delivery.status == "pending" and delivery.response_code == 429
        wait = (delivery.next_attempt_at - delivery.updated_at).total_seconds()
    assert wait < 1  # the schedule's 0.1 s, with jitter


def test_later_events_of_an_article_wait_for_earlier_ones(
    app, client, writer, admin, source, subscribe, receiver
):
    subscribe()
    receiver.answers = [(503, {"Retry-After": "2"})]
    posted = client.post("/v1/articles", json=article(source, "One"), headers=writer).json
    other = client.post("/v1/articles", json=article(source, "Other"), headers=writer).json
    client.patch(f"/v1/articles/{posted['id']}", json={"title": "Two"}, headers=writer)
    # The first event of the article failed and waits for its retry; the other article's event
    # went at once, the article's second event waits behind its first.
    titles = [json.loads(r.body)["data"]["title"] for r in receiver.received]
    assert titles == ["One", "Other"]
    run_worker(app, lambda: len(receiver.received) == 4)
    titles = [json.loads(r.body)["data"]["title"] for r in receiver.received]
    assert titles == ["One", "Other", "One", "Two"]
    assert other["id"] != posted["id"]


def test_a_spent_schedule_disables_the_endpoint_and_says_why(
    app, client, writer, admin, source, subscribe, receiver
):
    hook = subscribe()
    receiver.answers = [(500, {})] * 3
    client.post("/v1/articles", json=article(source), headers=writer)
    run_worker(app, lambda: len(receiver.received) == 3)
    run_worker(app, lambda: not Webhook.get_by_id(hook["id"]).enabled)
    shown = client.get(f"/v1/webhooks/{hook['id']}", headers=admin).json
    assert shown["enabled"] is False and shown["disabled_at"] is not None
    assert shown["disabled_reason"].startswith("Every attempt failed from ")
    assert "(3 attempts of message msg_" in shown["disabled_reason"]
    assert shown["disabled_reason"].endswith("the last: Answered 500.")
    (logged,) = deliveries(client, admin, hook)
    assert logged["status"] == "failed" and logged["attempt"] == 3
    # Disabled: nothing more is queued for it, nothing is sent.
    client.post("/v1/articles", json=article(source, "While disabled"), headers=writer)
    assert len(receiver.received) == 3 and len(deliveries(client, admin, hook)) == 1
    ping = client.post(f"/v1/webhooks/{hook['id']}/ping", headers=admin)
    assert ping.status_code == 409
    # Enabled again: the changes from then on are sent.
    enabled = client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers=admin)
    assert enabled.json["enabled"] is True and enabled.json["disabled_reason"] is None
    client.post("/v1/articles", json=article(source, "Enabled again"), headers=writer)
    got = receiver.wait_for(4)[3]
    assert json.loads(got.body)["data"]["title"] == "Enabled again"


def test_a_success_meanwhile_keeps_the_endpoint_enabled(
    app, client, writer, admin, source, subscribe, receiver
):
    hook = subscribe()
    receiver.answer_for = lambda got: (400, {}) if b"Refused" in got.body else (204, {})
    client.post("/v1/articles", json=article(source, "Refused"), headers=writer)
    client.post("/v1/articles", json=article(source, "Accepted"), headers=writer)
    run_worker(app, lambda: len(receiver.received) == 4)
    logged = {d["id"]: d for d in deliveries(client, admin, hook)}
    assert [logged[i]["status"] for i in sorted(logged)] == ["failed", "succeeded"]
    assert logged[min(logged)]["attempt"] == 3
    assert client.get(f"/v1/webhooks/{hook['id']}", headers=admin).json["enabled"] is True


def test_410_disables_the_endpoint_at_once(client, writer, admin, source, subscribe, receiver):
    hook = subscribe()
    receiver.answers = [(410, {})]
    client.post("/v1/articles", json=article(source), headers=writer)
    receiver.wait_for(1)
    shown = client.get(f"/v1/webhooks/{hook['id']}", headers=admin).json
    assert shown["enabled"] is False
    assert shown["disabled_reason"].startswith("The endpoint answered 410 Gone at ")
    (logged,) = deliveries(client, admin, hook)
    assert (logged["status"], logged["response_code"], logged["attempt"]) == ("failed", 410, 1)


def test_a_disabled_endpoint_keeps_its_queue_aside_until_enabled(
    app, client, writer, admin, source, subscribe, receiver, monkeypatch
):
    hook = subscribe()
    monkeypatch.setattr(tasks.huey, "immediate", False)  # both events queued, none sent yet
    client.post("/v1/articles", json=article(source, "One"), headers=writer)
    client.post("/v1/articles", json=article(source, "Two"), headers=writer)
    monkeypatch.setattr(tasks.huey, "immediate", True)
    receiver.answers = [(410, {})]
    run_worker(app, lambda: not Webhook.get_by_id(hook["id"]).enabled)
    assert len(receiver.received) == 1
    waiting = [d for d in deliveries(client, admin, hook) if d["status"] == "pending"]
    assert len(waiting) == 1 and waiting[0]["next_retry_at"] is None and waiting[0]["attempt"] == 0
    with app.app_context():
        tasks.deliver_webhooks.call_local()
    assert len(receiver.received) == 1  # set aside: not sent, nor walked over by claims
    enabled = client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers=admin)
    assert enabled.status_code == 200
    sent = receiver.wait_for(2)[1]
    assert sent.id == waiting[0]["message_id"]
    assert json.loads(sent.body)["data"]["title"] == "Two"


def test_an_endpoint_gets_the_events_of_the_time_it_was_enabled(
    app, client, writer, admin, source, subscribe, receiver, monkeypatch
):
    hook = subscribe()
    path = f"/v1/webhooks/{hook['id']}"
    monkeypatch.setattr(tasks.huey, "immediate", False)  # no worker runs meanwhile
    client.post("/v1/articles", json=article(source, "While enabled"), headers=writer)
    client.patch(path, json={"enabled": False}, headers=admin)
    client.post("/v1/articles", json=article(source, "While disabled"), headers=writer)
    client.patch(path, json={"enabled": True}, headers=admin)
    client.post("/v1/articles", json=article(source, "Enabled again"), headers=writer)
    monkeypatch.setattr(tasks.huey, "immediate", True)
    run_worker(app, lambda: len(receiver.received) == 2)
    titles = [json.loads(r.body)["data"]["title"] for r in receiver.received]
    assert titles == ["While enabled", "Enabled again"]


def test_an_endpoint_created_disabled_gets_the_events_of_the_time_it_was_enabled(
    app, client, writer, admin, source, subscribe, receiver, monkeypatch
):
    # Another endpoint wants the events, so they are in the outbox while this one is disabled.
    subscribe(url=receiver.url + "/other")
    hook = subscribe(url=receiver.url + "/paused", enabled=False)
    monkeypatch.setattr(tasks.huey, "immediate", False)  # no worker runs meanwhile
    client.post("/v1/articles", json=article(source, "While disabled"), headers=writer)
    enabled = client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers=admin)
    assert enabled.status_code == 200
    client.post("/v1/articles", json=article(source, "Enabled"), headers=writer)
    monkeypatch.setattr(tasks.huey, "immediate", True)
    run_worker(app, lambda: len(receiver.received) == 3)
    titles = [
        json.loads(r.body)["data"]["title"] for r in receiver.received if r.path == "/hook/paused"
    ]
    assert titles == ["Enabled"]


def test_disabling_leaves_the_backlog_to_the_worker_and_keeps_it_aside(
    app, client, writer, admin, source, subscribe, receiver, monkeypatch
):
    hook = subscribe()
    path = f"/v1/webhooks/{hook['id']}"
    monkeypatch.setattr(tasks.huey, "immediate", False)  # no worker runs meanwhile
    client.post("/v1/articles", json=article(source, "While enabled"), headers=writer)
    assert client.patch(path, json={"enabled": False}, headers=admin).status_code == 200
    with app.app_context():
        # Not fanned out by the request that disabled it (a backlog took it seconds)...
        assert WebhookEvent.select().where(~WebhookEvent.dispatched).count() == 1
    client.post("/v1/articles", json=article(source, "While disabled"), headers=writer)
    with app.app_context():
        while webhooks.fan_out():  # ...but by the worker, which keeps it aside
            pass
    (waiting,) = deliveries(client, admin, hook)
    assert (waiting["status"], waiting["next_retry_at"]) == ("pending", None)
    assert client.patch(path, json={"enabled": True}, headers=admin).status_code == 200
    monkeypatch.setattr(tasks.huey, "immediate", True)
    run_worker(app, lambda: len(receiver.received) == 1)
    assert [json.loads(r.body)["data"]["title"] for r in receiver.received] == ["While enabled"]
    assert receiver.received[0].id == waiting["message_id"]


def test_an_endpoint_enabled_by_the_code_before_pauses_gets_events_again(
    app, client, writer, admin, source, subscribe, receiver, monkeypatch
):
    """A server of schema step 19, still running while step 20 is rolled out, enables an
    endpoint by raising ``since_version`` alone: the pause the new code opened is over."""
    hook = subscribe()
    path = f"/v1/webhooks/{hook['id']}"
    monkeypatch.setattr(tasks.huey, "immediate", False)  # no worker runs meanwhile
    assert client.patch(path, json={"enabled": False}, headers=admin).status_code == 200
    client.post("/v1/articles", json=article(source, "While disabled"), headers=writer)
    with app.app_context():  # what step 19's enable wrote
        Webhook.update(enabled=True, since_version=DataVersion.bump()).where(
            Webhook.id == hook["id"]
        ).execute()
    client.post("/v1/articles", json=article(source, "Enabled again"), headers=writer)
    monkeypatch.setattr(tasks.huey, "immediate", True)
    run_worker(app, lambda: len(receiver.received) == 1)
    assert [json.loads(r.body)["data"]["title"] for r in receiver.received] == ["Enabled again"]


def test_enabling_and_disabling_leave_the_backlog_to_the_worker(
    app, client, writer, admin, source, subscribe, receiver, monkeypatch
):
    """Neither the disable nor the enable fans the outbox out in the request: the versions the
    endpoint was disabled between say which events are not its own, whenever the worker fans
    them out. A second pause first fans out what the first's end leaves (none, unless the
    worker is behind)."""
    hook = subscribe()
    path = f"/v1/webhooks/{hook['id']}"
    monkeypatch.setattr(tasks.huey, "immediate", False)  # no worker runs meanwhile

    def undispatched():
        with app.app_context():
            return WebhookEvent.select().where(~WebhookEvent.dispatched).count()

    def toggle(enabled):
        answer = client.patch(path, json={"enabled": enabled}, headers=admin)
        assert answer.status_code == 200

    client.post("/v1/articles", json=article(source, "Before the first pause"), headers=writer)
    toggle(False)
    client.post("/v1/articles", json=article(source, "In the first pause"), headers=writer)
    toggle(True)
    assert undispatched() == 1  # (no enabled endpoint wanted the pause's: none was recorded)
    client.post("/v1/articles", json=article(source, "Between the pauses"), headers=writer)
    toggle(False)  # the first pause's events are fanned out now: it gives way to this one
    assert undispatched() == 0
    client.post("/v1/articles", json=article(source, "In the second pause"), headers=writer)
    toggle(True)
    client.post("/v1/articles", json=article(source, "After"), headers=writer)
    assert undispatched() == 1
    monkeypatch.setattr(tasks.huey, "immediate", True)
    run_worker(app, lambda: len(receiver.received) == 3)
    titles = [json.loads(r.body)["data"]["title"] for r in receiver.received]
    assert titles == ["Before the first pause", "Between the pauses", "After"]


def test_redirects_are_not_followed(app, client, writer, admin, source, subscribe, receiver):
    hook = subscribe()
    receiver.answers = [(307, {"Location": receiver.url + "/elsewhere"})]
    client.post("/v1/articles", json=article(source), headers=writer)
    run_worker(app, lambda: len(receiver.received) == 2)
    assert [r.path for r in receiver.received] == ["/hook", "/hook"]
    attempts = deliveries(client, admin, hook)[0]["attempts"]
    assert attempts[0]["response_code"] == 307
    assert attempts[0]["error"] == (
        f"Answered 307, a redirect (not followed) to {receiver.url}/elsewhere."
    )


class TestTimeout:
    @pytest.fixture
    def app_config(self):
        return {"webhook_allow_private": True, "webhook_timeout": 0.5}

    def test_a_slow_endpoint_times_out(self, client, writer, admin, source, subscribe, receiver):
        hook = subscribe()
        receiver.answers = ["stall"]
        started = time.monotonic()
        client.post("/v1/articles", json=article(source), headers=writer)
        assert time.monotonic() - started < 5
        (logged,) = deliveries(client, admin, hook)
        assert logged["status"] == "pending" and logged["response_code"] is None
        assert logged["error"] == "Timed out after 0.5 s."
        assert 400 <= logged["duration_ms"] < 3000

    def test_a_success_whose_body_comes_slowly_is_a_success(
        self, client, writer, admin, source, subscribe, receiver
    ):
        hook = subscribe()
        receiver.answers = ["trickle"]
        client.post("/v1/articles", json=article(source), headers=writer)
        (logged,) = deliveries(client, admin, hook)
        assert logged["status"] == "succeeded" and logged["response_code"] == 200
        assert logged["error"] is None and logged["duration_ms"] < 400


def test_connection_errors_are_retried(client, writer, admin, source, subscribe):
    hook = subscribe(url="http://127.0.0.1:9/nobody-listens")
    client.post("/v1/articles", json=article(source), headers=writer)
    (logged,) = deliveries(client, admin, hook)
    assert logged["status"] == "pending" and logged["next_retry_at"] is not None
    assert logged["error"].startswith("Connection failed:")


def test_a_run_of_deliveries_gives_its_thread_back_once_it_has_had_its_time(
    app, client, admin, source, subscribe, monkeypatch
):
    # A backlog to an endpoint slow to answer held the worker's threads: the sweep and the
    # imports to resume waited behind it.
    hook = subscribe(url="http://127.0.0.1:9/nobody-listens")
    monkeypatch.setattr(tasks.huey, "immediate", False)
    monkeypatch.setattr(tasks, "RUN_SECONDS", 0)  # out of time after each attempt
    # A failed attempt's retry is not due within the test, however slow the machine (the
    # default's first is 5 s after it).
    monkeypatch.setitem(
        app.config,
        "NEWSDESK",
        dataclasses.replace(app.config["NEWSDESK"], webhook_retry_schedule=(3600,)),
    )
    tasks.huey.flush()
    with app.app_context():
        for n in range(2):
            save(article(source, f"Ferry returns, part {n}"))
        tasks.deliver_webhooks.call_local()
    logged = deliveries(client, admin, hook)
    assert sorted(len(d["attempts"]) for d in logged) == [0, 1]
    assert "deliver_webhooks" in {task.name for task in tasks.huey.pending()}
    with app.app_context():
        while (task := tasks.huey.dequeue()) is not None:
            tasks.huey.execute(task)
    assert [len(d["attempts"]) for d in deliveries(client, admin, hook)] == [1, 1]


def test_a_url_outside_ascii_is_sent_as_the_wire_carries_it(
    client, writer, source, subscribe, receiver
):
    # An IRI: its path goes percent-encoded (it raised in http.client, and the delivery stayed
    # "delivering" for good).
    hook = subscribe(url=receiver.url + "/caf\u00e9?f=\u00fc")
    assert hook["url"].endswith("/caf\u00e9?f=\u00fc")
    client.post("/v1/articles", json=article(source), headers=writer)
    (delivered,) = receiver.wait_for(1)
    assert delivered.path.endswith("/caf%C3%A9?f=%C3%BC")


def test_rotation_signs_with_both_secrets_for_the_grace_period(
    app, client, writer, admin, source, subscribe, receiver
):
    hook = subscribe()
    old = hook["secret"]
    rotated = client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200
    assert rotated.headers["Cache-Control"] == "private, no-store"
    new = rotated.json["secret"]
    assert new.startswith("whsec_") and new != old
    expires = datetime.datetime.fromisoformat(rotated.json["previous_secret_expires_at"][:-1])
    assert 86000 < (expires - datetime.datetime.utcnow()).total_seconds() <= 86400
    client.post("/v1/articles", json=article(source), headers=writer)
    (got,) = receiver.wait_for(1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verified(got, new) == verified(got, old)
    with app.app_context():
        Webhook.update(previous_secret_expires_at=datetime.datetime(2020, 1, 1)).execute()
    client.post("/v1/articles", json=article(source, "After the grace"), headers=writer)
    late = receiver.wait_for(2)[1]
    assert len(late.headers["webhook-signature"].split(" ")) == 1
    assert verified(late, new)["data"]["title"] == "After the grace"
    with pytest.raises(WebhookVerificationError):
        verified(late, old)


def test_ping_and_redeliver(client, admin, subscribe, receiver):
    hook = subscribe()
    ping = client.post(f"/v1/webhooks/{hook['id']}/ping", headers=admin)
    assert ping.status_code == 202
    (got,) = receiver.wait_for(1)
    payload = verified(got, hook["secret"])
    assert payload["type"] == "ping" and payload["data"] == {"webhook_id": hook["id"]}
    assert ping.json["message_id"] == got.id and ping.json["event"] == "ping"
    path = f"/v1/webhooks/{hook['id']}/deliveries/{ping.json['id']}"
    assert client.get(path, headers=admin).json["status"] == "succeeded"
    again = client.post(path + "/redeliver", headers=admin)
    assert again.status_code == 202
    second = receiver.wait_for(2)[1]
    assert second.id == got.id and second.body == got.body
    shown = client.get(path, headers=admin).json
    assert shown["attempt"] == 2 and [a["number"] for a in shown["attempts"]] == [1, 2]
    assert (
        client.post(
            f"/v1/webhooks/{hook['id']}/deliveries/999/redeliver", headers=admin
        ).status_code
        == 404
    )
    assert client.post("/v1/webhooks/999/ping", headers=admin).status_code == 404


def test_the_delivery_log_is_cursor_paged(client, admin, subscribe, receiver):
    hook = subscribe()
    ids = [
        client.post(f"/v1/webhooks/{hook['id']}/ping", headers=admin).json["id"] for _ in range(3)
    ]
    url = f"/v1/webhooks/{hook['id']}/deliveries?limit=2"
    first = client.get(url, headers=admin)
    assert [d["id"] for d in first.json["data"]] == ids[::-1][:2]
    assert first.json["has_more"] is True and 'rel="next"' in first.headers["Link"]
    second = client.get(f"{url}&cursor={first.json['next_cursor']}", headers=admin).json
    assert [d["id"] for d in second["data"]] == ids[:1] and second["has_more"] is False
    assert client.get(f"{url}&cursor=bad", headers=admin).status_code == 400
    # A cursor of the whole log is none of its failed deliveries'.
    other = client.get(f"{url}&status=failed&cursor={first.json['next_cursor']}", headers=admin)
    assert other.status_code == 400 and list(other.json["errors"]) == ["cursor"]
    failed = client.get(f"{url}&status=failed", headers=admin).json
    assert failed["data"] == []
    assert client.get(f"{url}&status=lost", headers=admin).status_code == 422


def test_update_and_delete(client, admin, subscribe, make_source):
    make_source(slug="daily")
    hook = subscribe()
    path = f"/v1/webhooks/{hook['id']}"
    patched = client.patch(
        path, json={"events": ["source.updated"], "source": ["daily"], "tag": ["x"]}, headers=admin
    )
    assert patched.status_code == 200
    assert (patched.json["events"], patched.json["source"], patched.json["tag"]) == (
        ["source.updated"],
        ["daily"],
        ["x"],
    )
    paused = client.patch(path, json={"enabled": False}, headers=admin).json
    assert paused["enabled"] is False and paused["disabled_reason"] == "Disabled by an admin."
    assert client.patch(path, json={"source": ["nowhere"]}, headers=admin).status_code == 422
    assert client.delete(path, headers=admin).status_code == 204
    assert client.get(path, headers=admin).status_code == 404
    assert client.delete(path, headers=admin).status_code == 404


def test_what_the_server_sets_is_named_so_in_a_write(client, admin, subscribe):
    """A webhook's disabled_reason, disabled_at, secret... were unknown fields to a write,
    while its id was "set by the server": each is now told so."""
    hook = subscribe()
    sent = {"disabled_reason": "x", "secret": "whsec_x", "last_success_at": None, "id": 5}
    refused = client.patch(f"/v1/webhooks/{hook['id']}", json=sent, headers=admin)
    assert refused.status_code == 422
    assert refused.json["errors"] == {key: ["Set by the server; leave it out."] for key in sent}
    shown = client.get(f"/v1/webhooks/{hook['id']}", headers=admin).json
    assert (shown["id"], shown["disabled_reason"], shown["updated_at"]) == (
        hook["id"],
        None,
        hook["updated_at"],
    )


def test_webhook_answers_revalidate(client, admin, subscribe):
    hook = subscribe()
    path = f"/v1/webhooks/{hook['id']}/deliveries"
    first = client.get(path, headers=admin)
    tag = first.headers["ETag"]
    assert client.get(path, headers={**admin, "If-None-Match": tag}).status_code == 304
    client.post(f"/v1/webhooks/{hook['id']}/ping", headers=admin)
    # The worker wrote to the log (no data version raised): the old tag no longer matches.
    assert client.get(path, headers={**admin, "If-None-Match": tag}).status_code == 200


# --- the worker's machinery -------------------------------------------------------------------


def test_a_claim_is_held_by_one_worker_and_a_lost_one_is_taken_again(
    app, client, writer, source, subscribe, monkeypatch
):
    subscribe(url="http://127.0.0.1:9/hook")
    monkeypatch.setattr(tasks.huey, "immediate", False)  # the test plays the worker
    client.post("/v1/articles", json=article(source), headers=writer)
    with app.app_context():
        webhooks.fan_out()
        held = webhooks.claim(lease_seconds=0.2)
        assert held is not None and held.attempt == 1
        assert webhooks.claim(lease_seconds=0.2) is None  # held, and nothing else is due
        deadline = time.monotonic() + 5
        while (again := webhooks.claim(lease_seconds=30)) is None:  # the lease runs out
            assert time.monotonic() < deadline
        assert again.delivery_id == held.delivery_id and again.attempt == 2
        assert again.message_id == held.message_id
        # The first holder's late outcome is not recorded over the second's claim.
        assert not webhooks.finish(held, webhooks.Outcome(204, 5), (0.1,))
        assert webhooks.finish(again, webhooks.Outcome(204, 5), (0.1,))
        attempts = list(WebhookAttempt.select().order_by(WebhookAttempt.id))
        assert [(a.number, a.response_code) for a in attempts] == [(1, None), (2, 204)]
        assert attempts[0].error.startswith("Interrupted:")
        assert WebhookDelivery.get().status == "succeeded"


def test_single_writes_pings_and_redeliveries_go_before_an_imports_deliveries(
    app, client, writer, admin, source, subscribe, monkeypatch
):
    """Behind a large import's deliveries, a single write's waited for every one of them (hours,
    at the pace an endpoint takes them); it goes first now, as pings and redeliveries do. The
    events of one article still go in order."""
    hook = subscribe(url="http://127.0.0.1:9/hook")
    monkeypatch.setattr(tasks.huey, "immediate", False)  # the test plays the worker

    def import_titles(*titles):
        lines = [json.dumps(article(source, title, external_id=title)) for title in titles]
        response = client.post(
            "/v1/import", data="\n".join(lines), content_type="application/x-ndjson", headers=writer
        )
        assert response.json["created"] == len(titles)

    def sent_in_order():
        sent = []
        with app.app_context():
            webhooks.fan_out()
            while (held := webhooks.claim(lease_seconds=30)) is not None:
                payload = json.loads(held.payload)
                sent.append(payload["data"].get("title", payload["type"]))
                webhooks.finish(held, webhooks.Outcome(204, 5), (0.1,))
        return sent

    import_titles("Imported 0", "Imported 1", "Imported 2")
    client.post("/v1/articles", json=article(source, "Breaking"), headers=writer)
    with app.app_context():
        first = Article.get(Article.external_id == "Imported 0")
    client.patch(f"/v1/articles/{first.id}", json={"title": "Corrected"}, headers=writer)
    # The correction waits for the article's import event, then goes before the import's rest.
    assert sent_in_order() == ["Breaking", "Imported 0", "Corrected", "Imported 1", "Imported 2"]

    import_titles("Later 0", "Later 1")
    log = client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=admin).json["data"]
    imported_2 = sorted(log, key=lambda delivery: delivery["event_id"])[2]  # an import's
    path = f"/v1/webhooks/{hook['id']}/deliveries/{imported_2['id']}"
    assert client.post(f"{path}/redeliver", headers=admin).status_code == 202
    assert client.post(f"/v1/webhooks/{hook['id']}/ping", headers=admin).status_code == 202
    assert sent_in_order() == ["Imported 2", "ping", "Later 0", "Later 1"]


def test_a_disabled_endpoints_lost_claim_is_nothing_to_wake_for(
    app, client, writer, admin, source, subscribe, monkeypatch
):
    hook = subscribe(url="http://127.0.0.1:9/hook")
    monkeypatch.setattr(tasks.huey, "immediate", False)  # the test plays the worker
    client.post("/v1/articles", json=article(source), headers=writer)
    with app.app_context():
        webhooks.fan_out()
        assert webhooks.claim(lease_seconds=30) is not None  # then the worker is killed
    path = f"/v1/webhooks/{hook['id']}"
    assert client.patch(path, json={"enabled": False}, headers=admin).status_code == 200
    with app.app_context():
        WebhookDelivery.update(lease_until=webhooks.now()).execute()  # the lease ran out
        assert webhooks.claim(lease_seconds=30) is None
        # Not due now: a worker waking for it finds nothing, and would wake again at once.
        assert webhooks.next_due() is None
    assert client.patch(path, json={"enabled": True}, headers=admin).status_code == 200
    with app.app_context():
        assert webhooks.next_due() <= webhooks.now()
        assert webhooks.claim(lease_seconds=30).attempt == 2


def test_the_sweep_delivers_what_no_wake_up_announced(app, source, subscribe, receiver):
    secret = subscribe()["secret"]
    with app.app_context():
        save(article(source, "Written by a process that died before waking the worker"))
        webhooks.take_queued()
    assert receiver.received == []
    with app.app_context():
        tasks.sweep.call_local()
    (got,) = receiver.wait_for(1)
    assert verified(got, secret)["type"] == "article.published"


def test_a_part_of_the_sweep_that_fails_leaves_the_others_to_run(
    app, source, subscribe, receiver, monkeypatch, caplog
):
    secret = subscribe()["secret"]
    with app.app_context():
        save(article(source, "Written by a process that died before waking the worker"))
        webhooks.take_queued()

    def broken(*args, **kwargs):  # as Huey's lock on the Redis storage of a server before 7.4 was
        raise NotImplementedError("ttl requires hash-field TTL support")

    monkeypatch.setattr(tasks, "run_lock", broken)
    with app.app_context():
        tasks.sweep.call_local()
    (got,) = receiver.wait_for(1)
    assert verified(got, secret)["type"] == "article.published"
    assert "the sweep's part 'embeddings and stories' failed" in caplog.text
    assert "the sweep's part 'related lists' failed" in caplog.text


def test_old_deliveries_are_forgotten(app, client, admin, subscribe, receiver):
    hook = subscribe()
    client.post(f"/v1/webhooks/{hook['id']}/ping", headers=admin)
    receiver.wait_for(1)
    with app.app_context():
        webhooks.clean_up()
        assert WebhookDelivery.select().count() == 1
        long_ago = webhooks.now() - webhooks.RETENTION - datetime.timedelta(hours=1)
        WebhookDelivery.update(updated_at=long_ago).execute()
        WebhookEvent.update(created_at=long_ago).execute()
        webhooks.clean_up()
        assert WebhookDelivery.select().count() == 0 and WebhookEvent.select().count() == 0
        assert WebhookAttempt.select().count() == 0


def test_the_outbox_takes_one_insert_per_write(
    client, writer, source, subscribe, count_queries, monkeypatch
):
    subscribe(url="http://127.0.0.1:9/hook")
    monkeypatch.setattr(tasks.huey, "immediate", False)  # related lists are the worker's
    tags = [f"tag-{n}" for n in range(10)]
    lines = "\n".join(
        orjson.dumps(article(source, f"Story {n}", tags=tags)).decode() for n in range(50)
    )
    count_queries.queries.clear()
    response = client.post(
        "/v1/import", data=lines, headers={**writer, "Content-Type": "application/x-ndjson"}
    )
    assert response.json["created"] == 50
    inserts = [q for q in count_queries.queries if 'INSERT INTO "webhook_event"' in q]
    assert len(inserts) == 1
    assert WebhookEvent.select().count() == 50


def test_webhook_settings_from_the_environment():
    config = Config.from_env(
        {
            "NEWSDESK_WEBHOOK_TIMEOUT": "2.5",
            "NEWSDESK_WEBHOOK_RETRY_SCHEDULE": "0.1, 0.2,60",
            "NEWSDESK_WEBHOOK_SECRET_GRACE": "600",
            "NEWSDESK_WEBHOOK_ALLOW_PRIVATE": "true",
        }
    )
    assert config.webhook_timeout == 2.5 and config.webhook_lease == 6.0
    assert config.webhook_retry_schedule == (0.1, 0.2, 60.0)
    assert config.webhook_secret_grace == 600 and config.webhook_allow_private is True
    defaults = Config.from_env({})
    assert defaults.webhook_timeout == 15 and defaults.webhook_allow_private is False
    for name, value in [
        ("NEWSDESK_WEBHOOK_TIMEOUT", "0"),
        ("NEWSDESK_WEBHOOK_TIMEOUT", "soon"),
        ("NEWSDESK_WEBHOOK_RETRY_SCHEDULE", "5,,10"),
        ("NEWSDESK_WEBHOOK_RETRY_SCHEDULE", "5,-1"),
        ("NEWSDESK_WEBHOOK_ALLOW_PRIVATE", "maybe"),
    ]:
        with pytest.raises(ConfigError, match=name):
            Config.from_env({name: value})
