"""Version 29: the ``Idempotency-Key`` a webhook was created with. A creation sent again (a
client that did not hear the answer) finds the webhook the first made, instead of subscribing
the endpoint twice, which would deliver every event to it twice. ``api_key_id``: the key that
created it (no foreign key: a key's row is never deleted, and the id says who it was);
``idempotency_key``, unique for that key; ``request_digest``: what the request asked for,
which tells a retry from another request sent with the same key."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    migrate(
        migrator.add_column(
            "webhook_subscription", "api_key_id", peewee.BigIntegerField(null=True)
        ),
        migrator.add_column(
            "webhook_subscription", "idempotency_key", peewee.CharField(max_length=255, null=True)
        ),
        migrator.add_column(
            "webhook_subscription", "request_digest", peewee.CharField(max_length=64, null=True)
        ),
        migrator.add_index("webhook_subscription", ("api_key_id", "idempotency_key"), True),
    )
