"""Version 18: on PostgreSQL, indexes of ``source.name`` (with the id) and ``tag.slug`` in byte
order (``COLLATE "C"``): the lists of sources by name and of tags by slug page in byte order on
every database (``models.articles.seek``), which the indexes in the database's collation do
not serve. SQLite compares bytes already."""

import peewee


def upgrade(migrator):
    database = migrator.database
    if isinstance(database, peewee.PostgresqlDatabase):
        database.execute_sql(
            'CREATE INDEX IF NOT EXISTS "source_name_bytes" ON "source"'
            ' (("name" COLLATE "C"), "id")'
        )
        database.execute_sql(
            'CREATE INDEX IF NOT EXISTS "tag_slug_bytes" ON "tag" (("slug" COLLATE "C"))'
        )
