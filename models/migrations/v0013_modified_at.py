"""Version 13: ``modified_at`` on ``article`` and ``source``, when what the resource's answer
shows last changed (with its version): its ``Last-Modified``. ``updated_at`` says when its own
fields were last written, and misses what changes its answer besides (a comment counted, its
source renamed, an article of the source published), so ``If-Modified-Since`` could answer 304
for a changed answer."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    """Add ``modified_at``, NULL for the rows there (read as their ``updated_at``), and for the
    rows that processes of the version before write while a deployment upgrades."""
    migrate(
        *(
            migrator.add_column(table, "modified_at", peewee.DateTimeField(null=True))
            for table in ("article", "source")
        )
    )
