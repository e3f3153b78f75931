"""Version 7: ids of articles, comments and sources are never reused.

SQLite gives a deleted row's id to the next new one unless the table's key is AUTOINCREMENT,
and bookmarks, caches and feed entry ids (permanent by RFC 4287 and JSON Feed) would then name
another article. Each table is made again with AUTOINCREMENT, as SQLite changes a table: the
new table from the old one's own SQL, the rows copied, the old dropped, the new renamed, its
indexes made again. The counter starts past every id ever used: for articles, the change log
remembers deleted ones. PostgreSQL sequences never hand out an id twice: nothing to do there.
"""

import re

from playhouse.migrate import SqliteMigrator

TABLES = ("source", "article", "comment")
#: Where each table's highest id ever used may be remembered besides the table itself.
REMEMBERED = {"article": "SELECT MAX(article_id) FROM change"}


def upgrade(migrator):
    if not isinstance(migrator, SqliteMigrator):
        return  # PostgreSQL
    for table in TABLES:
        _with_autoincrement(migrator.database, table)


def _with_autoincrement(database, table):
    (sql,) = database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if "AUTOINCREMENT" in sql.upper():
        return
    new_sql, replaced = re.subn(
        r'("id" INTEGER NOT NULL PRIMARY KEY)', r"\1 AUTOINCREMENT", sql, count=1
    )
    if not replaced:
        raise RuntimeError(f"no integer primary key named id in {table}: {sql}")
    indexes = [
        row[0]
        for row in database.execute_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (table,),
        ).fetchall()
    ]
    highest = [database.execute_sql(f'SELECT MAX(id) FROM "{table}"').fetchone()[0]]
    if table in REMEMBERED:
        highest.append(database.execute_sql(REMEMBERED[table]).fetchone()[0])
    database.execute_sql(
        new_sql.replace(f'CREATE TABLE "{table}"', f'CREATE TABLE "new_{table}"', 1)
    )
    database.execute_sql(f'INSERT INTO "new_{table}" SELECT * FROM "{table}"')
    database.execute_sql(f'DROP TABLE "{table}"')
    database.execute_sql(f'ALTER TABLE "new_{table}" RENAME TO "{table}"')
    for index in indexes:
        database.execute_sql(index)
    database.execute_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
    database.execute_sql(
        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
        (table, max((value for value in highest if value is not None), default=0)),
    )
