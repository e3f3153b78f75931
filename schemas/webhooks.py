"""Webhooks: subscriptions, the events they receive, and the log of their deliveries.

:class:`EventSchema` renders the body of every delivery (Standard Webhooks: ``type``,
``timestamp``, ``data``); what ``data`` holds is rendered by the resource's own schema
(``ArticleSchema``, ``CommentSchema``, ``SourceSchema``), or by :class:`ArticleGoneSchema` for
a removed article.
"""

from marshmallow import EXCLUDE, Schema, fields, validate

from .common import (
    NOT_BLANK,
    SERVER_OWNED,
    Flag,
    Identifier,
    InputSchema,
    PageArgs,
    PageSchema,
    Text,
    Timestamp,
    Url,
    idempotency_key,
    not_blank,
)

ARTICLE_PUBLISHED = "article.published"
ARTICLE_UPDATED = "article.updated"
ARTICLE_DELETED = "article.deleted"
COMMENT_CREATED = "comment.created"
COMMENT_MODERATED = "comment.moderated"
SOURCE_CREATED = "source.created"
SOURCE_UPDATED = "source.updated"
PING = "ping"
#: What a subscription may ask for (``ping`` is sent on demand to one endpoint only).
EVENT_TYPES = (
    ARTICLE_PUBLISHED,
    ARTICLE_UPDATED,
    ARTICLE_DELETED,
    COMMENT_CREATED,
    COMMENT_MODERATED,
    SOURCE_CREATED,
    SOURCE_UPDATED,
)
DELIVERY_STATUSES = ("pending", "delivering", "succeeded", "failed")

_EVENTS_HELP = "Event types to receive, some of: " + ", ".join(EVENT_TYPES)
_SOURCE_HELP = "Only events about articles of these sources (slugs, any of), and these sources"
_TAG_HELP = "Only events about articles with one of these tags (slugs); source events never match"


class WebhookSchema(Schema):
    id = fields.Integer(dump_only=True)
    url = fields.String(metadata={"description": "Where events are POSTed"})
    events = fields.List(fields.String(), attribute="event_list")
    source = fields.List(
        fields.String(), attribute="source_slugs", metadata={"description": _SOURCE_HELP}
    )
    tag = fields.List(fields.String(), attribute="tag_list", metadata={"description": _TAG_HELP})
    description = fields.String(allow_none=True)
    enabled = fields.Boolean(
        metadata={"description": "False: nothing is sent (see `disabled_reason`)"}
    )
    disabled_reason = fields.String(
        allow_none=True, metadata={"description": "Why the endpoint was disabled"}
    )
    disabled_at = Timestamp(allow_none=True)
    previous_secret_expires_at = Timestamp(
        allow_none=True,
        metadata={"description": "Until then the secret before the last rotation signs too"},
    )
    last_success_at = Timestamp(allow_none=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class WebhookSecretSchema(WebhookSchema):
    secret = fields.String(
        attribute="new_secret",
        metadata={
            "description": "The signing secret (`whsec_...`): shown this once (and to a retry"
            " with the creation's Idempotency-Key), store it"
        },
    )


class WebhookPostHeaders(Schema):
    """The headers a webhook's creation reads (others are not its business)."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = idempotency_key(
        "Any unique value of the client's, sent again with a retry of the same request: a"
        " webhook this key (the API key's) already created is not created again (its endpoint"
        " would receive every event twice); within 24 hours, and before any rotation of its"
        " secret, the retry is answered as the first was, the webhook as it is now with its"
        " signing secret, and `Idempotent-Replayed: true`. Sent with another request, or"
        " later, it is a 422."
    )


class WebhookPageSchema(PageSchema):
    data = fields.List(fields.Nested(WebhookSchema), required=True)


class WebhookInSchema(InputSchema):
    """A subscription as clients write it (POST; PATCH takes any subset)."""

    server_owned = SERVER_OWNED | {
        "disabled_reason",
        "disabled_at",
        "previous_secret_expires_at",
        "last_success_at",
        "secret",
    }

    url = Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        metadata={"description": "https; no loopback, private, link-local or metadata address"},
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        required=True,
        validate=validate.Length(min=1, max=len(EVENT_TYPES)),
        metadata={"description": _EVENTS_HELP},
    )
    source = fields.List(
        Identifier(validate=[not_blank, validate.Length(max=100)], metadata=NOT_BLANK),
        validate=validate.Length(max=50),
        metadata={"description": _SOURCE_HELP},
    )
    tag = fields.List(
        Identifier(validate=[not_blank, validate.Length(max=100)], metadata=NOT_BLANK),
        validate=validate.Length(max=50),
        metadata={"description": _TAG_HELP},
    )
    description = Text(allow_none=True, validate=validate.Length(max=500))
    enabled = Flag(metadata={"description": "true re-enables a disabled endpoint; false pauses it"})


class AttemptSchema(Schema):
    number = fields.Integer(metadata={"description": "1 for the first attempt"})
    at = Timestamp(attribute="started_at")
    response_code = fields.Integer(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)


class DeliverySchema(Schema):
    id = fields.Integer()
    message_id = fields.String(
        metadata={"description": "The `webhook-id` header: the same on every attempt"}
    )
    event_id = fields.Integer()
    event = fields.String(attribute="event_type", metadata={"description": "The event type"})
    status = fields.String(
        validate=validate.OneOf(DELIVERY_STATUSES),
        metadata={"description": ", ".join(DELIVERY_STATUSES)},
    )
    attempt = fields.Integer(attribute="attempts", metadata={"description": "Attempts made so far"})
    response_code = fields.Integer(allow_none=True, metadata={"description": "Of the last attempt"})
    duration_ms = fields.Integer(allow_none=True, metadata={"description": "Of the last attempt"})
    error = fields.String(allow_none=True, metadata={"description": "Of the last attempt"})
    next_retry_at = Timestamp(
        allow_none=True, attribute="next_retry", metadata={"description": "While pending"}
    )
    created_at = Timestamp()
    updated_at = Timestamp()
    attempts = fields.List(
        fields.Nested(AttemptSchema),
        attribute="attempt_list",
        metadata={"description": "Oldest first"},
    )


class DeliveryPageSchema(PageSchema):
    data = fields.List(fields.Nested(DeliverySchema), required=True)


class DeliveryArgs(PageArgs):
    status = fields.String(
        validate=validate.OneOf(DELIVERY_STATUSES),
        metadata={"description": "Only deliveries in this state"},
    )


class ArticleGoneSchema(Schema):
    """The ``data`` of ``article.deleted``."""

    id = fields.Integer()
    reason = fields.String(
        validate=validate.OneOf(["deleted", "unpublished"]),
        metadata={"description": "`deleted` or `unpublished`"},
    )


class PingSchema(Schema):
    """The ``data`` of ``ping``."""

    webhook_id = fields.Integer()


class EventSchema(Schema):
    """The JSON body of every webhook delivery."""

    type = fields.String(metadata={"description": ", ".join((*EVENT_TYPES, PING))})
    timestamp = Timestamp(metadata={"description": "When the change was committed"})
    data = fields.Raw(
        metadata={
            "description": "article.published and article.updated: the article as the API "
            "shows it (with body_html and body_text); article.deleted: `{id, reason}`; "
            "comment events: the comment; source events: the source; ping: `{webhook_id}`"
        }
    )
    changes_since = fields.String(
        metadata={
            "description": "Article events: pass as `since` to GET /v1/changes to get the "
            "changes committed after this one"
        }
    )
    body_omitted = fields.Boolean(
        metadata={"description": "True when the article was too large to send with its body"}
    )
    action = fields.String(
        metadata={"description": "comment.moderated: `hidden`, `visible` or `deleted`"}
    )


event_schema = EventSchema()
