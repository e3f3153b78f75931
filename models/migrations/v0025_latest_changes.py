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
        # NOT NULL with its default in one statement: no table rewrite on PostgreSQL (peewee's
        # way, a null column filled then made NOT NULL, rewrote every row twice). The default
        # stays in the table: servers of the release before, still running through the
        # upgrade, log changes without the column.
        migrator.add_column(
            "change",
            "superseded",
            peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT FALSE")]),
            allow_not_null=True,
        ),
        migrator.drop_index("change", "change_article_id"),
        migrator.add_index("change", ("article_id", "id"), False),
    )
    # Every change but its article's latest, found from each article's latest: one pass over
    # the log (a look-up per change, through the index just made, took PostgreSQL twice as
    # long: bench/README.md).
    database.execute_sql(
        "UPDATE change SET superseded = TRUE"
        " FROM (SELECT article_id, MAX(id) AS latest FROM change GROUP BY article_id) AS last"
        " WHERE change.article_id = last.article_id AND change.id < last.latest"
    )
    database.execute_sql('CREATE INDEX "change_latest" ON "change" ("id") WHERE NOT superseded')
