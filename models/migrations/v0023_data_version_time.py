"""Version 23: ``data_version.changed_at``, when the version was last raised (seconds since the
epoch): the ``Last-Modified`` of answers read from many rows, whose ETag the version gives.
Empty until the next write."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    migrate(migrator.add_column("data_version", "changed_at", peewee.BigIntegerField(null=True)))
