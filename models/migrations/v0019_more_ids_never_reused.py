"""Version 19: the ids of webhooks, their deliveries, import jobs and stories are never reused
either (API.md: "Ids are never reused"). Each is in a URL (``/v1/webhooks/{id}``, its
``deliveries/{id}``, ``/v1/imports/{id}``, ``/v1/stories/{id}``), and on SQLite a deleted
webhook's id went to the next one made: a client holding the old id changed another
subscription. Made AUTOINCREMENT as version 7 made articles, sources and comments (its own
function: steps never change). PostgreSQL sequences never hand out an id twice.
"""

from playhouse.migrate import SqliteMigrator

from .v0007_ids_never_reused import _with_autoincrement

TABLES = ("webhook_subscription", "webhook_message", "import_job", "story")


def upgrade(migrator):
    if not isinstance(migrator, SqliteMigrator):
        return  # PostgreSQL
    for table in TABLES:
        _with_autoincrement(migrator.database, table)
