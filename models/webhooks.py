"""Webhook subscriptions and the log of their deliveries."""

import peewee

from .base import BaseModel, utcnow

EVENTS = ("article.published", "article.updated", "article.deleted")


class Webhook(BaseModel):
    """A subscription: events posted to ``url``, signed with ``secret``."""

    id = peewee.AutoField()
    url = peewee.TextField()
    #: Comma-separated event names.
    events = peewee.CharField(max_length=200)
    source_slug = peewee.CharField(max_length=100, null=True)
    tag_slug = peewee.CharField(max_length=100, null=True)
    secret = peewee.CharField(max_length=128)
    created_at = peewee.DateTimeField(default=utcnow)


class WebhookDelivery(BaseModel):
    """One event for one subscription, with its attempts."""

    id = peewee.BigAutoField()
    webhook = peewee.ForeignKeyField(Webhook, backref="deliveries", on_delete="CASCADE")
    event = peewee.CharField(max_length=40)
    payload = peewee.TextField()
    status = peewee.CharField(max_length=10, default="pending")
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(default=utcnow, index=True)
    last_error = peewee.TextField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
