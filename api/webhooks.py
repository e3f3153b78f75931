"""Webhooks (``admin``): subscriptions, their secrets, test pings and the delivery log.

Deliveries follow the Standard Webhooks spec (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``); the events come from an outbox written in each change's own
transaction, and the worker sends them (``api.tasks.deliver_webhooks``).
"""

import datetime

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from models import (
    DataVersion,
    Source,
    SpentIdempotencyKey,
    Webhook,
    WebhookDelivery,
    seek,
    utcnow,
    webhooks,
)
from models.base import locked, runs_again_on_conflict
from models.ingest import writing
from models.text import tag_slug
from schemas.common import PageArgs
from schemas.webhooks import (
    DeliveryArgs,
    DeliveryPageSchema,
    DeliverySchema,
    EventSchema,
    WebhookInSchema,
    WebhookPageSchema,
    WebhookPostHeaders,
    WebhookSchema,
    WebhookSecretSchema,
)

from . import caching, guards, paging
from .arguments import Blueprint
from .auth import current_key, requires
from .errors import bad_request
from .outbound import endpoint_problem
from .responses import location, rendered

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v1/webhooks",
    description="Signed deliveries of events to your endpoints (Standard Webhooks)",
)

#: These POSTs take no body: the JSON guard is told so (its registry of such endpoints).
guards.NON_JSON_BODIES.update({"webhooks.RotateSecret", "webhooks.Ping", "webhooks.Redeliver"})

ID = "<int(max=9223372036854775807):webhook_id>"
DELIVERY_ID = "<int(max=9223372036854775807):delivery_id>"


def document_events(spec):
    """Name the delivery body in the OpenAPI document (``WebhookEvent``)."""
    spec.components.schema("WebhookEvent", schema=EventSchema)


def _config():
    return current_app.config["NEWSDESK"]


def _secret_key():
    return _config().key_for("webhook-secrets")


def get_webhook_or_404(webhook_id, for_update=False):
    """The webhook; ``for_update``: locked until the write ends (see :func:`checked`)."""
    query = Webhook.select().where(Webhook.id == webhook_id)
    hook = (locked(query, Webhook) if for_update else query).first()
    if hook is None:
        abort(404, message=f"No webhook {webhook_id}.")
    return hook


#: An answer that shows a secret is kept by no cache, not even the client's.
SECRET_SHOWN = {"Cache-Control": "private, no-store"}


def shown(hook, secret=None):
    """A webhook ready for its schema: its source filter as slugs, and a new secret if any."""
    Webhook.attach_source_slugs([hook])
    hook.new_secret = secret
    return hook


def answered(hook):
    """The answer showing a webhook, with the ETag a GET of it answers (hashed from the body)."""
    response = rendered(WebhookSchema().dump(shown(hook)))
    response.add_etag()
    return response


def with_secret(hook, secret, headers=None):
    """The answer showing a webhook and its new ``secret``, with the ETag a GET of the webhook
    answers (which never shows the secret)."""
    tag = answered(hook).headers["ETag"]  # shown: its source slugs attached, once
    hook.new_secret = secret
    return hook, {**(headers or {}), **SECRET_SHOWN, "ETag": tag}


def checked(webhook_id):
    """Inside a write: the webhook, locked, after ``If-Match`` named the ETag of its answer as
    it is now (412 otherwise; 404 when there is none)."""
    hook = get_webhook_or_404(webhook_id, for_update=True)
    caching.check_if_match("webhook", hook, lambda hook: answered(hook).get_etag()[0])
    return hook


def check_url(url):
    """422 naming ``url`` when it may not receive webhooks."""
    problem = endpoint_problem(url, _config().webhook_allow_private)
    if problem is not None:
        bad_request("url", problem, status=422)


def source_ids(slugs):
    """The ids of the sources ``slugs`` names (comma text), 422 naming ``source`` for any
    unknown."""
    slugs = list(dict.fromkeys(slugs))
    found = dict(Source.select(Source.slug, Source.id).where(Source.slug.in_(slugs)).tuples())
    unknown = [slug for slug in slugs if slug not in found]
    if unknown:
        bad_request("source", f"No source with slug {', '.join(map(repr, unknown))}.", status=422)
    return ",".join(str(found[slug]) for slug in slugs)


def _filters(data):
    """The stored form of what ``data`` says of events and filters."""
    values = {}
    if "events" in data:
        values["events"] = ",".join(dict.fromkeys(data["events"]))
    if "tag" in data:
        slugs = [tag_slug(tag) for tag in data["tag"] or ()]
        if not all(slugs):
            bad_request("tag", "Give tags as slugs or names with letters or digits.", status=422)
        values["tags"] = ",".join(dict.fromkeys(slugs))
    if "source" in data:
        values["source_ids"] = source_ids(data["source"] or ())
    if "description" in data:
        values["description"] = data["description"]
    if "url" in data:
        values["url"] = data["url"]
    return values


@blp.route("")
class WebhookList(MethodView):
    @requires(blp, "admin")
    @blp.arguments(PageArgs(), location="query", as_kwargs=True)
    @blp.response(200, WebhookPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, cursor=None):
        """List webhooks, oldest first."""
        after = paging.decode_cursor(cursor, "webhooks", (paging.integer,)) if cursor else None
        query = seek(Webhook.select(), (Webhook.id,), after, descending=False)
        hooks, next_cursor = paging.paginate(
            query.limit(limit + 1), limit, "webhooks", lambda h: (h.id,)
        )
        return paging.page(Webhook.attach_source_slugs(hooks), next_cursor)

    @requires(blp, "admin")
    @blp.arguments(WebhookInSchema())
    @blp.arguments(WebhookPostHeaders(), location="headers", as_kwargs=True)
    @blp.response(201, WebhookSecretSchema)
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @runs_again_on_conflict  # a creation of the same Idempotency-Key at once: again, found
    def post(self, data, idempotency_key=None):
        """Subscribe an endpoint to events; the answer shows the signing secret, this once.

        Only a retry of the creation with its `Idempotency-Key` gets it again: the same
        request within 24 hours, before any rotation.

        The endpoint receives the events of every change committed from now on. `If-Match`
        names no subscription yet: 412.
        """
        caching.check_if_match("webhook", None)
        check_url(data["url"])
        secret = webhooks.new_secret()
        now = utcnow()
        enabled = data.get("enabled", True)
        key_id, digest = current_key().id, Webhook.digest(data)
        with writing() as touched:
            if idempotency_key is not None:
                created = Webhook.get_or_none(
                    (Webhook.api_key_id == key_id) & (Webhook.idempotency_key == idempotency_key)
                )
                if created is not None:
                    touched.changed = False  # a retry answered: no answer changed
                    return replayed(created, digest, now)
                if deleted := SpentIdempotencyKey.deleted("webhook", key_id, idempotency_key):
                    bad_request(
                        "Idempotency-Key",
                        f"This key created webhook {deleted}, deleted since: send a new key.",
                        status=422,
                    )
            since = DataVersion.current()
            hook = Webhook.create(
                api_key_id=key_id,
                idempotency_key=idempotency_key,
                request_digest=digest,
                **_filters({"source": [], "tag": [], **data}),
                enabled=enabled,
                disabled_reason=None if enabled else "Created disabled.",
                disabled_at=None if enabled else now,
                # Created disabled, it is paused from the start, as if disabled then.
                paused_from=None if enabled else since,
                secret=webhooks.seal(secret, _secret_key()),
                since_version=since,
                created_at=now,
                updated_at=now,
            )
        return with_secret(hook, secret, location("webhooks.WebhookDetail", webhook_id=hook.id))


#: How long a retry of a creation is answered as the first was (with the secret).
REPLAYED_FOR = datetime.timedelta(hours=24)


def replayed(created, digest, now):
    """The answer to a creation whose Idempotency-Key made the webhook ``created`` already:
    when the request is the same (``digest``), came within :data:`REPLAYED_FOR` and the secret
    was not rotated since, the first answer again, the webhook as it is now with its secret;
    else a 422, nothing stored."""
    if created.request_digest != digest:
        problem = f"This key created another webhook (id {created.id}): send a new key."
    elif created.previous_secret_expires_at is not None:
        problem = (
            f"This key created webhook {created.id}, whose secret was rotated since: the new"
            " one was shown to the rotation."
        )
    elif now - created.created_at > REPLAYED_FOR:
        problem = (
            f"This key created webhook {created.id} more than 24 hours ago; its secret is not"
            " shown again (rotate it for a new one)."
        )
    else:
        try:
            secret = webhooks.unseal(created.secret, _secret_key())
        except webhooks.SecretUnreadable as error:
            problem = f"Webhook {created.id} was created with this key. {error}"
        else:
            headers = location("webhooks.WebhookDetail", webhook_id=created.id)
            return with_secret(created, secret, {**headers, "Idempotent-Replayed": "true"})
    bad_request("Idempotency-Key", problem, status=422)


@blp.route(f"/{ID}")
class WebhookDetail(MethodView):
    @requires(blp, "admin")
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, webhook_id):
        """Get one webhook (never its secret)."""
        return shown(get_webhook_or_404(webhook_id))

    @requires(blp, "admin")
    @blp.arguments(WebhookInSchema(partial=True))
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def patch(self, data, webhook_id):
        """Change a webhook; `enabled: true` re-enables a disabled one, `false` pauses it.

        Enabled again, it receives the events of changes committed from then on, and the
        deliveries queued before it was disabled are sent at once. With `If-Match`, only if
        the webhook still has that ETag (it changes with every field shown, such as
        `last_success_at`).
        """
        if "url" in data:
            check_url(data["url"])
        with writing():
            hook = checked(webhook_id)
            values = _filters(data)
            if values:
                Webhook.update(values, updated_at=utcnow()).where(Webhook.id == hook.id).execute()
            if data.get("enabled") is not None and data["enabled"] != hook.enabled:
                webhooks.set_enabled(hook.id, data["enabled"], "Disabled by an admin.")
        return answered(Webhook.get_by_id(hook.id))

    @requires(blp, "admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def delete(self, webhook_id):
        """Delete a webhook, with its queued deliveries and their log; with `If-Match`, only
        if it still has that ETag."""
        with writing():
            hook = checked(webhook_id)
            Webhook.delete().where(Webhook.id == hook.id).execute()
            SpentIdempotencyKey.spend("webhook", hook)  # a retry of its creation makes no other


@blp.route(f"/{ID}/rotate-secret")
class RotateSecret(MethodView):
    @requires(blp, "admin")
    @blp.response(200, WebhookSecretSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, webhook_id):
        """Give the webhook a new signing secret, shown this once.

        For a grace period (`NEWSDESK_WEBHOOK_SECRET_GRACE`, a day by default) deliveries carry
        two signatures, by the new secret and the old one, so the receiver can switch over.
        """
        secret = webhooks.new_secret()
        now = utcnow()
        grace = datetime.timedelta(seconds=_config().webhook_secret_grace)
        with writing():
            # Locked: a rotation at the same time keeps this secret as its previous one.
            hook = get_webhook_or_404(webhook_id, for_update=True)
            Webhook.update(
                secret=webhooks.seal(secret, _secret_key()),
                previous_secret=hook.secret,
                previous_secret_expires_at=now + grace,
                updated_at=now,
            ).where(Webhook.id == hook.id).execute()
        return with_secret(Webhook.get_by_id(hook.id), secret)


@blp.route(f"/{ID}/ping")
class Ping(MethodView):
    @requires(blp, "admin")
    @blp.response(202, DeliverySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, webhook_id):
        """Queue a test event (`ping`) to this endpoint; its delivery shows in the log."""
        hook = get_webhook_or_404(webhook_id)
        if not hook.enabled:
            abort(409, message="The webhook is disabled; enable it first.")
        delivery = webhooks.ping(hook)
        return WebhookDelivery.attach_attempts([delivery])[0]


@blp.route(f"/{ID}/deliveries")
class Deliveries(MethodView):
    @requires(blp, "admin")
    @blp.arguments(DeliveryArgs(), location="query", as_kwargs=True)
    @blp.response(200, DeliveryPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, webhook_id, limit, cursor=None, status=None):
        """The delivery log of a webhook, newest first: each delivery's state and attempts."""
        get_webhook_or_404(webhook_id)
        # A cursor of one webhook's log is no other's.
        tag = paging.bound(f"deliveries:{webhook_id}", status=status)
        after = paging.decode_cursor(cursor, tag, (paging.integer,)) if cursor else None
        query = WebhookDelivery.logged(webhook_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        query = seek(query, (WebhookDelivery.id,), after, descending=True)
        deliveries, next_cursor = paging.paginate(
            query.limit(limit + 1), limit, tag, lambda d: (d.id,)
        )
        return paging.page(WebhookDelivery.attach_attempts(deliveries), next_cursor)


def get_delivery_or_404(webhook_id, delivery_id):
    delivery = WebhookDelivery.logged(webhook_id).where(WebhookDelivery.id == delivery_id).first()
    if delivery is None:
        abort(404, message=f"Webhook {webhook_id} has no delivery {delivery_id}.")
    return WebhookDelivery.attach_attempts([delivery])[0]


@blp.route(f"/{ID}/deliveries/{DELIVERY_ID}")
class DeliveryDetail(MethodView):
    @requires(blp, "admin")
    @blp.response(200, DeliverySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, webhook_id, delivery_id):
        """One delivery with its attempts."""
        return get_delivery_or_404(webhook_id, delivery_id)


@blp.route(f"/{ID}/deliveries/{DELIVERY_ID}/redeliver")
class Redeliver(MethodView):
    @requires(blp, "admin")
    @blp.response(202, DeliverySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, webhook_id, delivery_id):
        """Send a delivery again now, with the same `webhook-id`.

        Should it fail, the whole retry schedule follows.
        """
        hook = get_webhook_or_404(webhook_id)
        get_delivery_or_404(webhook_id, delivery_id)
        if not hook.enabled:
            abort(409, message="The webhook is disabled; enable it first.")
        if not webhooks.redeliver(delivery_id):
            abort(409, message="An attempt of this delivery is under way.")
        return get_delivery_or_404(webhook_id, delivery_id)
