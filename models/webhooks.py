"""Webhooks: subscriptions, the outbox of events, deliveries and the log of their attempts.

An event is written to the outbox (:class:`WebhookEvent`) by the write that causes it, in that
write's own transaction (:func:`record`, called by ``models.ingest.writing``), with its payload
rendered then; a rolled-back write leaves no event, a committed one always has its event. The
worker then fans each event out to the subscriptions it matches (:func:`fan_out`: one
:class:`WebhookDelivery` per event and endpoint, whose ``message_id`` is the ``webhook-id`` of
every attempt), claims due deliveries one at a time under a lease (:func:`claim`), sends them
outside any transaction and records the outcome (:func:`finish`). A worker killed mid-attempt
leaves a lease that runs out, and the delivery is claimed again: delivery is at least once.
"""

import base64
import contextvars
import dataclasses
import datetime
import hashlib
import os
import random
import secrets

import orjson
import peewee
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from peewee import fn

from schemas.comments import CommentSchema
from schemas.common import one_line
from schemas.sources import SourceSchema
from schemas.webhooks import (
    ARTICLE_DELETED,
    ARTICLE_PUBLISHED,
    ARTICLE_UPDATED,
    PING,
    ArticleGoneSchema,
    PingSchema,
    event_schema,
)

from . import cards
from .articles import Article, ArticleTag, Source, Tag
from .base import BaseModel, db, is_postgres, utcnow, write_transaction
from .base import utcnow_exact as now  # deliveries are scheduled to the microsecond
from .changes import DataVersion

PENDING = "pending"
DELIVERING = "delivering"
SUCCEEDED = "succeeded"
FAILED = "failed"
UNFINISHED = (PENDING, DELIVERING)
#: The largest body sent. An article event over it is sent without body_html and body_text,
#: with ``body_omitted: true`` (the receiver reads the article from the API).
MAX_PAYLOAD_BYTES = 256 * 1024
#: Finished deliveries (and their events) are kept this long for the log and redeliveries.
RETENTION = datetime.timedelta(days=30)
#: A ``Retry-After`` longer than this is taken as this.
MAX_RETRY_AFTER = 24 * 3600
#: Jitter: each retry waits its scheduled delay times a factor drawn from this range.
JITTER = (0.8, 1.2)
#: Advisory lock key serializing fan-outs on PostgreSQL ("NDWH"), so events are fanned out
#: in the order they were committed.
FAN_OUT_LOCK = 0x4E445748
SECRET_PREFIX = "whsec_"
_SEAL_CONTEXT = b"newsdesk webhook signing secret"
#: Set when this context wrote outbox rows or queued a delivery: the worker is to be woken.
_queued = contextvars.ContextVar("webhooks_queued", default=False)
#: What renders the ``changes_since`` token of a change id (``configure``).
_settings = {"changes_token": None}


def configure(changes_token):
    """Set how a change id becomes the ``since`` token of ``GET /v1/changes`` (the app's
    cursor key signs it); ``create_app`` calls this."""
    _settings["changes_token"] = changes_token


def take_queued():
    """Whether deliveries were queued in this context since the last call (and forget it)."""
    queued = _queued.get()
    if queued:
        _queued.set(False)
    return queued


def _csv(values):
    return ",".join(str(value) for value in values)


def _split(text):
    return [part for part in (text or "").split(",") if part]


# --- signing secrets, stored sealed --------------------------------------------------------


def new_secret():
    """A fresh signing secret as Standard Webhooks writes them: ``whsec_`` and 32 random bytes
    in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def seal(secret, key):
    """``secret`` encrypted (AES-256-GCM) with ``key``, for storing: a dump of the database
    alone cannot sign."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), _SEAL_CONTEXT)
    return base64.b64encode(nonce + sealed).decode()


class SecretUnreadable(Exception):
    """A stored secret that the key at hand does not open (NEWSDESK_SECRET_KEY changed)."""


def unseal(sealed, key):
    raw = base64.b64decode(sealed)
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], _SEAL_CONTEXT).decode()
    except InvalidTag:
        raise SecretUnreadable(
            "The signing secret cannot be decrypted: NEWSDESK_SECRET_KEY has changed since it "
            "was made; rotate the secret."
        ) from None


# --- the models ----------------------------------------------------------------------------


class Webhook(BaseModel):
    """A subscription: where to POST which events, signed with its secret."""

    id = peewee.AutoField()
    url = peewee.TextField()
    #: Comma-separated event types.
    events = peewee.TextField()
    #: Comma-separated source ids (a source's slug may change; its id does not); empty: any.
    source_ids = peewee.TextField(default="")
    #: Comma-separated tag slugs; empty: any.
    tags = peewee.TextField(default="")
    description = peewee.TextField(null=True)
    #: The signing secret, sealed (:func:`seal`); the one before the last rotation signs too
    #: until ``previous_secret_expires_at``.
    secret = peewee.TextField()
    previous_secret = peewee.TextField(null=True)
    previous_secret_expires_at = peewee.DateTimeField(null=True)
    enabled = peewee.BooleanField(default=True)
    disabled_reason = peewee.TextField(null=True)
    disabled_at = peewee.DateTimeField(null=True)
    #: Events of writes that committed at a data version above this one are delivered to it
    #: (the version when it was created or last enabled).
    since_version = peewee.BigIntegerField(default=0)
    #: The data versions it was last disabled between (``paused_to`` empty while it is): the
    #: events of writes committed then are not its own. Those of before are, disabled or not:
    #: the worker fans them out to it (set aside while it is disabled).
    paused_from = peewee.BigIntegerField(null=True)
    paused_to = peewee.BigIntegerField(null=True)
    last_success_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    #: The API key that created it (its id), and the ``Idempotency-Key`` it sent, if any, with
    #: a digest of what it asked for: a retry finds this webhook (see :meth:`digest`).
    api_key_id = peewee.BigIntegerField(null=True)
    idempotency_key = peewee.CharField(max_length=255, null=True)
    request_digest = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "webhook_subscription"
        indexes = ((("api_key_id", "idempotency_key"), True),)

    @staticmethod
    def digest(data):
        """A digest of a creation's loaded body ``data``: equal for the same request."""
        material = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(material, digest_size=16).hexdigest()

    @property
    def event_list(self):
        return _split(self.events)

    @property
    def tag_list(self):
        return _split(self.tags)

    @property
    def source_id_list(self):
        return [int(part) for part in _split(self.source_ids)]

    def wants(self, event):
        """Whether ``event`` (a WebhookEvent) is one this subscription receives."""
        if event.type not in self.event_list or event.version <= self.since_version:
            return False
        paused = self.paused_from is not None and event.version > self.paused_from
        # A pause left open on an enabled endpoint was ended by code before schema step 20
        # (a server of the version before, during an upgrade): it raised since_version instead.
        if paused and (
            event.version <= self.paused_to if self.paused_to is not None else not self.enabled
        ):
            return False
        sources = self.source_id_list
        if sources and not {event.source_id, event.previous_source_id} & set(sources):
            return False
        tags = self.tag_list
        return not tags or bool(set(tags) & set(_split(event.tags)))

    def signing_secrets(self, key, at):
        """The secrets that sign a message sent at ``at``: the current one, and the one before
        the last rotation while its grace period lasts."""
        sealed = [self.secret]
        if self.previous_secret and at < self.previous_secret_expires_at:
            sealed.append(self.previous_secret)
        return [unseal(item, key) for item in sealed]

    @classmethod
    def attach_source_slugs(cls, webhooks):
        """Give each webhook ``source_slugs`` (its source filter as slugs) with one query."""
        ids = {i for hook in webhooks for i in hook.source_id_list}
        slugs = dict(Source.select(Source.id, Source.slug).where(Source.id.in_(list(ids))).tuples())
        for hook in webhooks:
            hook.source_slugs = [slugs[i] for i in hook.source_id_list if i in slugs]
        return webhooks


class WebhookEvent(BaseModel):
    """The outbox: an event, written in the transaction of the change it reports."""

    id = peewee.BigAutoField()
    type = peewee.CharField(max_length=40)
    #: What the event is about (``article:42``, ``source:3``): events of one subject reach an
    #: endpoint in order. None: no order (pings).
    subject = peewee.CharField(max_length=40, null=True)
    #: For the subscriptions' filters, as they were when the change was made: the source, the
    #: one an article left by the change, and the tags it had before or after.
    source_id = peewee.IntegerField(null=True)
    previous_source_id = peewee.IntegerField(null=True)
    tags = peewee.TextField(default="")
    #: The data version the write committed at (see ``Webhook.since_version``).
    version = peewee.BigIntegerField()
    #: The body every delivery of it sends, exactly (the signature covers these bytes).
    payload = peewee.TextField()
    dispatched = peewee.BooleanField(default=False)
    #: Made by a bulk write (an import): its deliveries go after the others' (see claim).
    bulk = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("dispatched", "id"), False),)


class WebhookDelivery(BaseModel):
    """One event on its way to one endpoint: its state, and what the last attempt gave (a
    message, as Standard Webhooks calls it)."""

    id = peewee.BigAutoField()
    webhook = peewee.ForeignKeyField(Webhook, backref="deliveries", on_delete="CASCADE")
    event = peewee.ForeignKeyField(WebhookEvent, on_delete="CASCADE")
    #: The ``webhook-id`` header, the same on every attempt: receivers drop duplicates by it.
    message_id = peewee.CharField(max_length=40, unique=True)
    subject = peewee.CharField(max_length=40, null=True)
    status = peewee.CharField(
        max_length=12,
        default=PENDING,
        constraints=[peewee.Check("status IN ('pending', 'delivering', 'succeeded', 'failed')")],
    )
    attempts = peewee.IntegerField(default=0)
    #: Failed attempts since it was queued (or redelivered): the place in the retry schedule.
    failures = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(null=True)
    #: While delivering: until when the worker that claimed it holds it, and its claim.
    lease_until = peewee.DateTimeField(null=True)
    claim = peewee.CharField(max_length=32, null=True)
    first_failed_at = peewee.DateTimeField(null=True)
    response_code = peewee.IntegerField(null=True)
    duration_ms = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)
    #: Its event's: a bulk write's delivery is claimed after the others due (until redelivered).
    bulk = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        table_name = "webhook_message"
        indexes = (
            (("webhook", "event"), True),
            (("status", "bulk", "next_attempt_at", "id"), False),
            (("lease_until",), False),
            (("webhook", "subject", "event"), False),
            (("webhook", "id"), False),
        )

    @property
    def event_type(self):
        return self.event.type

    @property
    def next_retry(self):
        return self.next_attempt_at if self.status == PENDING else None

    @classmethod
    def logged(cls, webhook_id):
        """The deliveries of a webhook, with their events' types."""
        return (
            cls.select(cls, WebhookEvent.id, WebhookEvent.type)
            .join(WebhookEvent)
            .where(cls.webhook == webhook_id)
        )

    @classmethod
    def attach_attempts(cls, deliveries):
        """Give each delivery ``attempt_list`` (oldest first), with one query for them all."""
        by_id = {delivery.id: delivery for delivery in deliveries}
        for delivery in deliveries:
            delivery.attempt_list = []
        if by_id:
            query = (
                WebhookAttempt.select()
                .where(WebhookAttempt.delivery.in_(list(by_id)))
                .order_by(WebhookAttempt.id)
            )
            for attempt in query:
                by_id[attempt.delivery_id].attempt_list.append(attempt)
        return deliveries


class WebhookAttempt(BaseModel):
    """One attempt to deliver: when, what came back, how long it took."""

    id = peewee.BigAutoField()
    delivery = peewee.ForeignKeyField(WebhookDelivery, on_delete="CASCADE")
    number = peewee.IntegerField()
    started_at = peewee.DateTimeField()
    response_code = peewee.IntegerField(null=True)
    duration_ms = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)

    class Meta:
        indexes = ((("delivery", "id"), False),)


# --- events, recorded in the write's transaction -------------------------------------------


@dataclasses.dataclass
class Event:
    """A change to report, collected while a write runs (``Touched.events``) and written to
    the outbox when it is about to commit. ``render(with_body)`` gives the payload's ``data``;
    ``filters()`` what the subscriptions' filters see: the source id, the one an article left
    (or None), and the tag slugs."""

    type: str
    subject: str | None
    render: object
    filters: object
    change_id: int | None = None
    action: str | None = None
    has_body: bool = False

    def payload(self, at):
        """The delivery body, rendered by the event schema; an article too large to send whole
        goes without its body fields."""
        body = {"type": self.type, "timestamp": at, "data": self.render(True)}
        if self.change_id is not None:
            token = _settings["changes_token"]
            if token is None:
                raise RuntimeError("models.webhooks.configure() was not called")
            body["changes_since"] = token(self.change_id)
        if self.action is not None:
            body["action"] = self.action
        text = orjson.dumps(event_schema.dump(body))
        if len(text) > MAX_PAYLOAD_BYTES and self.has_body:
            body.update(data=self.render(False), body_omitted=True)
            text = orjson.dumps(event_schema.dump(body))
        return text.decode()


def _article_filters(article_id):
    source_id = Article.select(Article.source).where(Article.id == article_id).scalar()
    tags = Tag.select(Tag.slug).join(ArticleTag).where(ArticleTag.article == article_id).tuples()
    return source_id, None, [slug for (slug,) in tags]


def _before_and_after(source_id, tags, before):
    """What a change of an article passes the filters as: its source and tags after it, and
    before it (``before``: ``(source_id, tags)``, None for a new article), so that an endpoint
    filtered on what the article leaves hears of the change by which it leaves."""
    if before is None:
        return source_id, None, list(tags)
    left = before[0] if before[0] != source_id else None
    return source_id, left, sorted({*tags, *before[1]})


def article_written(article, body, change_id, was_published, before=None):
    """``article.published`` or ``article.updated`` for an Article just stored (with its card,
    ``source_id`` and ``tag_list``); ``body`` is ``(html, text)``."""
    return Event(
        ARTICLE_UPDATED if was_published else ARTICLE_PUBLISHED,
        f"article:{article.id}",
        lambda with_body: cards.document(article.card, body if with_body else None),
        lambda: _before_and_after(
            article.source_id, [tag.slug for tag in article.tag_list], before
        ),
        change_id=change_id,
        has_body=True,
    )


def article_gone(article_id, reason, source_id, tags, change_id, before=None):
    """``article.deleted``: the article was deleted or unpublished (``reason``)."""
    data = ArticleGoneSchema().dump({"id": article_id, "reason": reason})
    return Event(
        ARTICLE_DELETED,
        f"article:{article_id}",
        lambda with_body: data,
        lambda: _before_and_after(source_id, tags, before),
        change_id=change_id,
    )


def comment_event(event_type, comment, action=None):
    """A comment event; the comment as ``CommentSchema`` dumps it now."""
    data = CommentSchema().dump(comment)
    article_id = comment.article_id
    return Event(
        event_type,
        f"article:{article_id}",
        lambda with_body: data,
        lambda: _article_filters(article_id),
        action=action,
    )


def source_event(event_type, source):
    """A source event; the source as ``SourceSchema`` dumps it now."""
    data = SourceSchema().dump(source)
    return Event(
        event_type, f"source:{source.id}", lambda with_body: data, lambda: (source.id, None, [])
    )


def subscribed_types():
    """The event types some enabled subscription receives."""
    rows = Webhook.select(Webhook.events).where(Webhook.enabled).tuples()
    return {event_type for (events,) in rows for event_type in _split(events)}


def record(events, version, bulk=False):
    """Write ``events`` to the outbox, inside the transaction of the write that made them and
    after it raised the data version to ``version``: one query for the subscriptions, one
    insert for the events some subscription wants. Returns how many were written. ``bulk``:
    a bulk write (an import) made them, whose deliveries wait for the others'.

    On PostgreSQL the raised version keeps its row locked until commit, so writes get here one
    at a time in commit order: a subscription an earlier write created is seen, and outbox ids
    follow the order the changes commit in.
    """
    if not events:
        return 0
    wanted = subscribed_types()
    chosen = [event for event in events if event.type in wanted]
    if not chosen:
        return 0
    at = utcnow()
    rows = []
    for event in chosen:
        source_id, previous_source_id, tags = event.filters()
        rows.append(
            {
                "type": event.type,
                "subject": event.subject,
                "source_id": source_id,
                "previous_source_id": previous_source_id,
                "tags": _csv(tags),
                "version": version,
                "payload": event.payload(at),
                "bulk": bulk,
                "created_at": at,
            }
        )
    WebhookEvent.insert_many(rows).execute()
    _queued.set(True)
    return len(rows)


# --- the worker's side: fan-out, claims, outcomes ------------------------------------------


def _has_deliveries():
    """SQL: the outbox event at hand has deliveries."""
    return fn.EXISTS(
        WebhookDelivery.select(WebhookDelivery.id).where(WebhookDelivery.event == WebhookEvent.id)
    )


def _message_id():
    return "msg_" + secrets.token_hex(12)


def fan_out(limit=500):
    """Turn up to ``limit`` new outbox events, oldest first, into deliveries to the enabled
    subscriptions they match; events nobody wants are dropped. Returns how many were read.

    Fan-outs take turns (an advisory lock on PostgreSQL, the write lock on SQLite), so events
    of one subject always become deliveries in their order.
    """
    with write_transaction():
        if is_postgres():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (FAN_OUT_LOCK,))
        events = list(
            WebhookEvent.select(
                WebhookEvent.id,
                WebhookEvent.type,
                WebhookEvent.subject,
                WebhookEvent.source_id,
                WebhookEvent.previous_source_id,
                WebhookEvent.tags,
                WebhookEvent.version,
                WebhookEvent.bulk,
            )
            .where(~WebhookEvent.dispatched)
            .order_by(WebhookEvent.id)
            .limit(limit)
        )
        if not events:
            return 0
        hooks = list(Webhook.select())
        at = now()
        rows = [
            {
                "webhook": hook.id,
                "event": event.id,
                "message_id": _message_id(),
                "subject": event.subject,
                "status": PENDING,
                "next_attempt_at": at if hook.enabled else None,  # set aside while disabled
                "bulk": event.bulk,
                "created_at": at,
                "updated_at": at,
            }
            for event in events
            for hook in hooks
            if hook.wants(event)
        ]
        if rows:
            WebhookDelivery.insert_many(rows).on_conflict_ignore().execute()
        ids = [event.id for event in events]
        WebhookEvent.update(dispatched=True).where(WebhookEvent.id.in_(ids)).execute()
        WebhookEvent.delete().where(WebhookEvent.id.in_(ids) & ~_has_deliveries()).execute()
    return len(events)


@dataclasses.dataclass
class Claim:
    """A delivery a worker holds while it sends one attempt."""

    delivery_id: int
    event_id: int
    subject: str | None
    token: str
    attempt: int
    failures: int
    first_failed_at: datetime.datetime | None
    started_at: datetime.datetime
    message_id: str
    payload: str
    webhook: Webhook


def _first(query):
    """The first row of ``query``, locked for this transaction (skipping rows other workers
    hold, on PostgreSQL)."""
    if is_postgres():
        query = query.for_update(of=WebhookDelivery, skip_locked=True)
    return query.first()


def claim(lease_seconds):
    """Claim the next due delivery for one attempt, or None when nothing is due.

    Due: held by a worker whose lease ran out (it died mid-attempt; the attempt is logged as
    interrupted), or pending and its time has come, but not while an earlier event of the same
    subject to the same endpoint is unfinished, so those arrive in order; never a disabled
    endpoint's. A pending delivery of a bulk write (an import) is claimed only when no other is
    due: a single write's event, a ping or a redelivery does not wait for a large import's
    events. On PostgreSQL the row is locked with SKIP LOCKED, on SQLite the claim holds the
    write lock: two workers never hold the same delivery at once. The lookups walk the index
    on ``(status, bulk, next_attempt_at, id)`` from its start, however long the backlog.
    """
    at = now()
    Delivery = WebhookDelivery
    earlier = WebhookDelivery.alias()
    blocked = earlier.select(earlier.id).where(
        (earlier.webhook == Delivery.webhook)
        & (earlier.subject == Delivery.subject)
        & (earlier.event < Delivery.event)
        & earlier.status.in_(UNFINISHED)
    )
    candidates = Delivery.select(Delivery).join(Webhook).where(Webhook.enabled)
    lost = candidates.where((Delivery.status == DELIVERING) & (Delivery.lease_until <= at))
    pending = candidates.where(
        (Delivery.status == PENDING) & (Delivery.next_attempt_at <= at) & ~fn.EXISTS(blocked)
    )
    with write_transaction():

        def due(bulk):
            query = pending.where(Delivery.bulk == bulk)
            return _first(query.order_by(Delivery.next_attempt_at, Delivery.id))

        lost_first = lost.order_by(Delivery.lease_until, Delivery.id)
        delivery = _first(lost_first) or due(bulk=False) or due(bulk=True)
        if delivery is None:
            return None
        if delivery.status == DELIVERING:
            WebhookAttempt.insert(
                delivery=delivery.id,
                number=delivery.attempts,
                started_at=delivery.updated_at,
                error="Interrupted: the worker stopped before the outcome was recorded.",
            ).execute()
        token = secrets.token_hex(8)
        Delivery.update(
            status=DELIVERING,
            lease_until=at + datetime.timedelta(seconds=lease_seconds),
            claim=token,
            attempts=Delivery.attempts + 1,
            updated_at=at,
        ).where(Delivery.id == delivery.id).execute()
        payload = WebhookEvent.select(WebhookEvent.payload).where(
            WebhookEvent.id == delivery.event_id
        )
        return Claim(
            delivery_id=delivery.id,
            event_id=delivery.event_id,
            subject=delivery.subject,
            token=token,
            attempt=delivery.attempts + 1,
            failures=delivery.failures,
            first_failed_at=delivery.first_failed_at,
            started_at=at,
            message_id=delivery.message_id,
            payload=payload.scalar(),
            webhook=Webhook.get_by_id(delivery.webhook_id),
        )


@dataclasses.dataclass
class Outcome:
    """What one attempt gave: the answer's status (None when there was none), the time taken,
    an error to log, the ``Retry-After`` asked for (seconds), and whether the endpoint said it
    is gone for good."""

    status: int | None
    duration_ms: int
    error: str | None = None
    retry_after: float | None = None
    gone: bool = False

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300


def retry_delay(failures, schedule, retry_after=None, rng=random):
    """Seconds to wait after the ``failures``-th failure in a row: its place in ``schedule``
    with jitter, and never less than a ``Retry-After`` asked for (up to a day)."""
    delay = schedule[failures - 1] * rng.uniform(*JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def finish(held, outcome, schedule):
    """Record the outcome of the attempt on ``held`` (a :class:`Claim`): success; a retry at
    the next place in ``schedule``; or failure for good, when the schedule is spent or the
    endpoint answered 410 (then the endpoint is disabled, and also when it failed throughout
    the schedule). A claim lost meanwhile (the lease ran out) records nothing."""
    at = now()
    # What the endpoint sent (an answer's body, a status line it got wrong) is kept as one
    # line without control characters: PostgreSQL stores no NUL, and the log is read in
    # terminals.
    error = outcome.error and one_line(outcome.error)
    values = {
        "lease_until": None,
        "claim": None,
        "response_code": outcome.status,
        "duration_ms": outcome.duration_ms,
        "error": error,
        "updated_at": at,
    }
    disable = None
    if outcome.ok:
        values.update(status=SUCCEEDED, next_attempt_at=None, failures=0, first_failed_at=None)
    else:
        failures = held.failures + 1
        first_failed_at = held.first_failed_at or held.started_at
        values.update(failures=failures, first_failed_at=first_failed_at)
        if outcome.gone:
            values.update(status=FAILED, next_attempt_at=None)
            disable = f"The endpoint answered 410 Gone at {at:%Y-%m-%dT%H:%M:%SZ}."
        elif failures <= len(schedule):
            delay = retry_delay(failures, schedule, outcome.retry_after)
            values.update(status=PENDING, next_attempt_at=at + datetime.timedelta(seconds=delay))
        else:
            values.update(status=FAILED, next_attempt_at=None)
            spent = (
                f"Every attempt failed from {first_failed_at:%Y-%m-%dT%H:%M:%SZ} to "
                f"{at:%Y-%m-%dT%H:%M:%SZ} ({held.attempt} attempts of message "
                f"{held.message_id}); the last: {error}"
            )
    with write_transaction():
        kept = (
            WebhookDelivery.update(values)
            .where(
                (WebhookDelivery.id == held.delivery_id)
                & (WebhookDelivery.claim == held.token)
                & (WebhookDelivery.status == DELIVERING)
            )
            .execute()
        )
        if not kept:
            return False
        WebhookAttempt.insert(
            delivery=held.delivery_id,
            number=held.attempt,
            started_at=held.started_at,
            response_code=outcome.status,
            duration_ms=outcome.duration_ms,
            error=error,
        ).execute()
        if values["status"] == PENDING and held.subject is not None:
            # What waits behind it is not due before it: claims need not walk past it.
            WebhookDelivery.update(next_attempt_at=values["next_attempt_at"]).where(
                (WebhookDelivery.webhook == held.webhook.id)
                & (WebhookDelivery.subject == held.subject)
                & (WebhookDelivery.event > held.event_id)
                & (WebhookDelivery.status == PENDING)
                & (WebhookDelivery.next_attempt_at < values["next_attempt_at"])
            ).execute()
        if outcome.ok:
            Webhook.update(last_success_at=at).where(Webhook.id == held.webhook.id).execute()
        elif values["status"] == FAILED and disable is None:
            # Spent its schedule: the endpoint is disabled unless something reached it since.
            last_success = (
                Webhook.select(Webhook.last_success_at)
                .where(Webhook.id == held.webhook.id)
                .scalar()
            )
            if last_success is None or _datetime(last_success) < values["first_failed_at"]:
                disable = spent
        if disable is not None:
            set_enabled(held.webhook.id, False, disable)
    return True


def set_enabled(webhook_id, enabled, reason=None):
    """Enable a webhook, or disable it saying why, inside the caller's write transaction.

    It receives the events of changes committed while it is enabled, no others. So the data
    version is raised first (on PostgreSQL, writes that record events now wait for this one).
    Disabled, its pending deliveries are set aside (no next attempt: claims never walk over
    them), and the events committed before it was disabled are fanned out to it as to the
    others, by the worker, set aside too; enabled again, its deliveries are due at once. The
    versions it was disabled between say which events are not its own (``paused_from``,
    ``paused_to``): fanning the outbox's backlog out here instead took seconds, or past the
    request's deadline. One such pause is kept: disabled again, the events up to the end of
    the last are fanned out first, here (none are left unless the worker is far behind).
    """
    if is_postgres():  # fan-outs running meanwhile see it either enabled or disabled
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (FAN_OUT_LOCK,))
    version = DataVersion.bump()
    at = now()
    pending = (WebhookDelivery.webhook == webhook_id) & (WebhookDelivery.status == PENDING)
    if enabled:
        Webhook.update(
            enabled=True,
            disabled_reason=None,
            disabled_at=None,
            paused_to=version,
            updated_at=at,
        ).where((Webhook.id == webhook_id) & ~Webhook.enabled).execute()
        resumed = (
            WebhookDelivery.update(next_attempt_at=at)
            .where(pending & WebhookDelivery.next_attempt_at.is_null())
            .execute()
        )
        if resumed:
            _queued.set(True)
    else:
        paused_to = Webhook.select(Webhook.paused_to).where(Webhook.id == webhook_id).scalar()
        since = {}
        if paused_to is not None:  # the last pause gives way: its events are not left to want
            oldest = WebhookEvent.select(fn.MIN(WebhookEvent.version)).where(
                ~WebhookEvent.dispatched
            )
            while (first := oldest.scalar()) is not None and first <= paused_to:
                fan_out()
            since = {"since_version": paused_to}
        Webhook.update(
            enabled=False,
            disabled_reason=reason[:1000],
            disabled_at=at,
            paused_from=version,
            paused_to=None,
            updated_at=at,
            **since,
        ).where((Webhook.id == webhook_id) & Webhook.enabled).execute()
        WebhookDelivery.update(next_attempt_at=None).where(pending).execute()


def next_due():
    """When the worker next has something to do (a new event, a retry, a lease running out),
    or None when nothing is pending.

    Deliveries due already are left out: what a claim passed over is waiting behind an earlier
    delivery (whose retry or lease counts here) or was just claimed by another worker.
    """
    if WebhookEvent.select().where(~WebhookEvent.dispatched).exists():
        return now()
    # Of enabled endpoints only, as claim() takes: a disabled one's lease run out made the
    # worker wake itself at once, again and again.
    of_enabled = WebhookDelivery.webhook.in_(Webhook.select(Webhook.id).where(Webhook.enabled))
    pending = (
        WebhookDelivery.select(fn.MIN(WebhookDelivery.next_attempt_at))
        .where(
            (WebhookDelivery.status == PENDING)
            & (WebhookDelivery.next_attempt_at > now())
            & of_enabled
        )
        .scalar()
    )
    leased = (
        WebhookDelivery.select(fn.MIN(WebhookDelivery.lease_until))
        .where((WebhookDelivery.status == DELIVERING) & of_enabled)
        .scalar()
    )
    times = [_datetime(value) for value in (pending, leased) if value is not None]
    return min(times) if times else None


def _datetime(value):
    # SQLite hands back an aggregate of a datetime column as text.
    return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)


def clean_up():
    """Forget finished deliveries older than :data:`RETENTION`, and events no delivery needs."""
    cutoff = now() - RETENTION
    with write_transaction():
        WebhookDelivery.delete().where(
            WebhookDelivery.status.in_((SUCCEEDED, FAILED)) & (WebhookDelivery.updated_at < cutoff)
        ).execute()
        WebhookEvent.delete().where(
            WebhookEvent.dispatched & (WebhookEvent.created_at < cutoff) & ~_has_deliveries()
        ).execute()


# --- what admins do ------------------------------------------------------------------------


def ping(webhook):
    """Queue a ``ping`` to ``webhook`` alone; returns its delivery."""
    at = now()
    data = PingSchema().dump({"webhook_id": webhook.id})
    payload = orjson.dumps(event_schema.dump({"type": PING, "timestamp": at, "data": data}))
    with write_transaction():
        event = WebhookEvent.create(
            type=PING,
            version=DataVersion.current(),
            payload=payload.decode(),
            dispatched=True,
            created_at=at,
        )
        delivery = WebhookDelivery.create(
            webhook=webhook.id,
            event=event.id,
            message_id=_message_id(),
            status=PENDING,
            next_attempt_at=at,
            created_at=at,
            updated_at=at,
        )
    _queued.set(True)
    delivery.event = event
    return delivery


def redeliver(delivery_id):
    """Send a delivery again (the same ``webhook-id``), now, with the whole retry schedule
    before it; returns whether it was queued (not while an attempt is under way)."""
    at = now()
    queued = (
        WebhookDelivery.update(
            status=PENDING,
            next_attempt_at=at,
            failures=0,
            first_failed_at=None,
            bulk=False,  # asked for by someone: it does not wait for an import's deliveries
            updated_at=at,
        )
        .where((WebhookDelivery.id == delivery_id) & (WebhookDelivery.status != DELIVERING))
        .execute()
    )
    if queued:
        _queued.set(True)
    return bool(queued)
