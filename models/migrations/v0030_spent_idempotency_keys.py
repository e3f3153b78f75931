"""Version 30: ``spent_idempotency_key``, the ``Idempotency-Key`` of each comment and webhook
deleted since it was made. The key lived on the row it made, so a retry of the request after
the delete (a client that did not hear the first answer) found no row and made another: a
comment a moderator deleted, or a subscription an admin removed, came back."""

import datetime

import peewee


class BaseModel(peewee.Model):
    class Meta:
        legacy_table_names = False


class SpentIdempotencyKey(BaseModel):
    api_key_id = peewee.BigIntegerField()
    kind = peewee.CharField(max_length=20)
    idempotency_key = peewee.CharField(max_length=255)
    resource_id = peewee.BigIntegerField()
    deleted_at = peewee.DateTimeField(default=datetime.datetime.utcnow)

    class Meta:
        table_name = "spent_idempotency_key"
        primary_key = peewee.CompositeKey("api_key_id", "kind", "idempotency_key")


def upgrade(migrator):
    """Create the table."""
    with migrator.database.bind_ctx([SpentIdempotencyKey]):
        migrator.database.create_tables([SpentIdempotencyKey])
