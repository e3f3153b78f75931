"""Peewee models and the queries on them. No Flask here."""

from . import cards, reading, related, webhooks
from .articles import (
    ARTICLE_SORTS,
    ARTICLE_STATUSES,
    COMPUTED,
    DRAFT,
    EDITORIAL,
    PUBLISHED,
    RELATION_KINDS,
    Article,
    ArticleBody,
    ArticleTag,
    Relation,
    Source,
    Tag,
    is_empty,
    seek,
)
from .base import (
    Setting,
    bind_database,
    close_all,
    connected,
    db,
    drop_connection,
    end_request,
    is_postgres,
    make_database,
    utcnow,
)
from .changes import Change, DataVersion
from .comments import COMMENT_STATUSES, Comment
from .keys import SCOPES, ApiKey
from .migrations import LATEST_VERSION, current_version, init_db
from .related import RelatedQueue
from .summaries import Summary
from .webhooks import Webhook, WebhookAttempt, WebhookDelivery, WebhookEvent

#: The live models (tests empty their tables between tests; the migrations make them).
MODELS = [
    Source,
    Tag,
    Article,
    ArticleBody,
    ArticleTag,
    Relation,
    ApiKey,
    Comment,
    Change,
    DataVersion,
    Summary,
    RelatedQueue,
    Setting,
    Webhook,
    WebhookEvent,
    WebhookDelivery,
    WebhookAttempt,
]

__all__ = [
    "ARTICLE_SORTS",
    "ARTICLE_STATUSES",
    "COMMENT_STATUSES",
    "COMPUTED",
    "DRAFT",
    "EDITORIAL",
    "LATEST_VERSION",
    "MODELS",
    "PUBLISHED",
    "RELATION_KINDS",
    "SCOPES",
    "ApiKey",
    "Article",
    "ArticleBody",
    "ArticleTag",
    "Change",
    "Comment",
    "DataVersion",
    "RelatedQueue",
    "Relation",
    "Setting",
    "Source",
    "Summary",
    "Tag",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEvent",
    "bind_database",
    "cards",
    "close_all",
    "connected",
    "current_version",
    "db",
    "drop_connection",
    "end_request",
    "init_db",
    "is_empty",
    "is_postgres",
    "make_database",
    "reading",
    "related",
    "seek",
    "utcnow",
    "webhooks",
]
