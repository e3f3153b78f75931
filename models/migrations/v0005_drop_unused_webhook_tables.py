"""Version 5: drop ``webhook`` and ``webhook_delivery``, created by version 1 and never used."""

import datetime

import peewee


def utcnow():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


class BaseModel(peewee.Model):
    class Meta:
        legacy_table_names = False


class Webhook(BaseModel):
    id = peewee.AutoField()
    url = peewee.TextField()
    events = peewee.CharField(max_length=200)
    source_slug = peewee.CharField(max_length=100, null=True)
    tag_slug = peewee.CharField(max_length=100, null=True)
    secret = peewee.CharField(max_length=128)
    created_at = peewee.DateTimeField(default=utcnow)


class WebhookDelivery(BaseModel):
    id = peewee.BigAutoField()
    webhook = peewee.ForeignKeyField(Webhook, backref="deliveries", on_delete="CASCADE")
    event = peewee.CharField(max_length=40)
    payload = peewee.TextField()
    status = peewee.CharField(max_length=10, default="pending")
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(default=utcnow, index=True)
    last_error = peewee.TextField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)


def upgrade(migrator):
    """Drop both tables, the deliveries first (they reference the subscriptions)."""
    database = migrator.database
    models = [Webhook, WebhookDelivery]
    with database.bind_ctx(models):
        database.drop_tables(models)
