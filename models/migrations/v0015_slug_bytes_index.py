"""Version 15: on PostgreSQL, an index of ``article.slug`` in byte order (``COLLATE "C"``).

A new article's slug is told apart from those taken by reading the range of slugs that start
with its base (``weather``, ``weather-2``, ...). In a database whose collation ignores
punctuation (en_US.UTF-8, the default of most clusters) that range missed the numbered ones,
so a third article of one title was given a slug already taken and refused. The range is
read in byte order, through this index. SQLite compares bytes already.
"""

import peewee


def upgrade(migrator):
    database = migrator.database
    if isinstance(database, peewee.PostgresqlDatabase):
        database.execute_sql(
            'CREATE INDEX IF NOT EXISTS "article_slug_bytes" ON "article" (("slug" COLLATE "C"))'
        )
