"""Version 7: webhooks. ``webhook_subscription`` (endpoints, their secrets sealed),
``webhook_event`` (the outbox, written in the transaction of each change), ``webhook_message``
(an event on its way to one endpoint: a delivery) and ``webhook_attempt`` (the log of every
attempt). Not ``webhook`` nor ``webhook_delivery``: those were version 1's, dropped by 5."""

import peewee


class BaseModel(peewee.Model):
    class Meta:
        legacy_table_names = False


class Webhook(BaseModel):
    id = peewee.AutoField()
    url = peewee.TextField()
    events = peewee.TextField()
    source_ids = peewee.TextField(default="")
    tags = peewee.TextField(default="")
    description = peewee.TextField(null=True)
    secret = peewee.TextField()
    previous_secret = peewee.TextField(null=True)
    previous_secret_expires_at = peewee.DateTimeField(null=True)
    enabled = peewee.BooleanField(default=True)
    disabled_reason = peewee.TextField(null=True)
    disabled_at = peewee.DateTimeField(null=True)
    since_version = peewee.BigIntegerField(default=0)
    last_success_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        table_name = "webhook_subscription"


class WebhookEvent(BaseModel):
    id = peewee.BigAutoField()
    type = peewee.CharField(max_length=40)
    subject = peewee.CharField(max_length=40, null=True)
    source_id = peewee.IntegerField(null=True)
    tags = peewee.TextField(default="")
    version = peewee.BigIntegerField()
    payload = peewee.TextField()
    dispatched = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("dispatched", "id"), False),)


class WebhookDelivery(BaseModel):
    id = peewee.BigAutoField()
    webhook = peewee.ForeignKeyField(Webhook, on_delete="CASCADE")
    event = peewee.ForeignKeyField(WebhookEvent, on_delete="CASCADE")
    message_id = peewee.CharField(max_length=40, unique=True)
    subject = peewee.CharField(max_length=40, null=True)
    status = peewee.CharField(
        max_length=12,
        default="pending",
        constraints=[peewee.Check("status IN ('pending', 'delivering', 'succeeded', 'failed')")],
    )
    attempts = peewee.IntegerField(default=0)
    failures = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(null=True)
    lease_until = peewee.DateTimeField(null=True)
    claim = peewee.CharField(max_length=32, null=True)
    first_failed_at = peewee.DateTimeField(null=True)
    response_code = peewee.IntegerField(null=True)
    duration_ms = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        table_name = "webhook_message"
        indexes = (
            (("webhook", "event"), True),
            (("status", "next_attempt_at", "id"), False),
            (("lease_until",), False),
            (("webhook", "subject", "event"), False),
            (("webhook", "id"), False),
        )


class WebhookAttempt(BaseModel):
    id = peewee.BigAutoField()
    delivery = peewee.ForeignKeyField(WebhookDelivery, on_delete="CASCADE")
    number = peewee.IntegerField()
    started_at = peewee.DateTimeField()
    response_code = peewee.IntegerField(null=True)
    duration_ms = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)

    class Meta:
        indexes = ((("delivery", "id"), False),)


MODELS = [Webhook, WebhookEvent, WebhookDelivery, WebhookAttempt]


def upgrade(migrator):
    """Create the four tables."""
    database = migrator.database
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS)
