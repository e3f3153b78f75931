"""Version 20: ``webhook_subscription.paused_from`` and ``paused_to``: the data versions an
endpoint was disabled between (``paused_to`` empty while it is), whose events it does not
receive. The events of its enabled time are fanned out to it by the worker, disabled or not,
not all inside the request or attempt that disables or enables it."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    migrate(
        migrator.add_column(
            "webhook_subscription", "paused_from", peewee.BigIntegerField(null=True)
        ),
        migrator.add_column("webhook_subscription", "paused_to", peewee.BigIntegerField(null=True)),
    )
