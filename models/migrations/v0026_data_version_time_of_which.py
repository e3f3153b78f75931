"""Version 26: ``data_version.changed_version``, the version ``changed_at`` is the time of. A
server of a release before, still running through the upgrade, raises the version without
stamping the time: ``Last-Modified`` (and a 304 to ``If-Modified-Since`` alone) is given only
while the two agree. Empty until the next write: a time stamped before is not known to be the
version's."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    migrate(
        migrator.add_column("data_version", "changed_version", peewee.BigIntegerField(null=True))
    )
