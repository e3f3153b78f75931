"""Version 16: ``webhook_event.previous_source_id``, the source an article left by the change
an event reports, so that an endpoint filtered on that source hears of it."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    migrate(
        migrator.add_column("webhook_event", "previous_source_id", peewee.IntegerField(null=True))
    )
