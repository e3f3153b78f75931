"""Version 32: a webhook event, and each delivery of it, says whether a bulk write made it (an
import, the demo data), so that the worker sends single writes' deliveries, pings and
redeliveries before an import's: behind a large import's, a single write's waited hours. ``bulk``
on ``webhook_event`` and ``webhook_message``, whose index of due deliveries orders by it, then
by the time due."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    """Add ``bulk`` (false for what is there, and by default in the database too: processes of
    the version before, still running while a deployment upgrades, insert rows without it) and
    index ``(status, bulk, next_attempt_at, id)`` in place of ``(status, next_attempt_at, id)``."""
    operations = []
    for table in ("webhook_event", "webhook_message"):
        bulk = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT FALSE")])
        operations.append(migrator.add_column(table, "bulk", bulk))
    migrate(
        *operations,
        migrator.drop_index("webhook_message", "webhook_message_status_next_attempt_at_id"),
        migrator.add_index("webhook_message", ("status", "bulk", "next_attempt_at", "id")),
    )
