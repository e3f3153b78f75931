"""Version 8: sources and comments count their versions, as articles do: a write names the
version it read (If-Match) and loses nothing another editor wrote in between."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    """Add ``version`` (1 for what is stored) to ``source`` and ``comment``."""
    migrate(
        migrator.add_column("source", "version", peewee.IntegerField(default=1)),
        migrator.add_column("comment", "version", peewee.IntegerField(default=1)),
    )
