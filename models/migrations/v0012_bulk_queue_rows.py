"""Version 12: a queued article says whether a bulk write queued it (an import, the demo data),
so that the worker serves single writes first. ``bulk`` on ``related_queue`` and
``embedding_queue``, whose index orders by it, then by the time queued."""

import peewee
from playhouse.migrate import migrate

#: Each queue and the index on its queue time that the new one replaces.
QUEUES = {
    "related_queue": "relatedqueue_queued_at",
    "embedding_queue": "embedding_queue_queued_at",
}


def upgrade(migrator):
    """Add ``bulk`` (false for what is queued, and by default in the database too: processes of
    the version before, still running while a deployment upgrades, insert rows without it) and
    index ``(bulk, queued_at)``."""
    operations = []
    for table, old_index in QUEUES.items():
        bulk = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT FALSE")])
        operations += [
            migrator.add_column(table, "bulk", bulk),
            migrator.drop_index(table, old_index),
            migrator.add_index(table, ("bulk", "queued_at")),
        ]
    migrate(*operations)
