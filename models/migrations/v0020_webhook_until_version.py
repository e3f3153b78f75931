"""Version 20: ``webhook_subscription.until_version``: a disabled endpoint's events of the time
it was enabled (data versions up to this one) are still fanned out to it, by the worker, not
all inside the request or attempt that disables it."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    migrate(
        migrator.add_column(
            "webhook_subscription", "until_version", peewee.BigIntegerField(null=True)
        )
    )
