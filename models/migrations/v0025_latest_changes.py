"""Version 25: ``change.superseded``, set on a change once its article has a later one, and an
index of the changes that are not: ``/v1/changes`` reads them in one range, instead of each
change logged since the token with a look for a later one. The index of ``article_id`` becomes
one of ``(article_id, id)``, in which that look is one step (PostgreSQL walked the whole log
backwards for an article changed long ago: see bench/README.md)."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    database = migrator.database
    migrate(
        # A default in the table too: servers of the release before, still running through
        # the upgrade, log changes without the column.
        migrator.add_column(
            "change",
            "superseded",
            peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT FALSE")]),
        ),
        migrator.drop_index("change", "change_article_id"),
        migrator.add_index("change", ("article_id", "id"), False),
    )
    database.execute_sql(
        "UPDATE change SET superseded = TRUE WHERE id < (SELECT MAX(later.id) FROM change later"
        " WHERE later.article_id = change.article_id)"
    )
    database.execute_sql('CREATE INDEX "change_latest" ON "change" ("id") WHERE NOT superseded')
