"""Version 17: on PostgreSQL, a text search configuration of Newsdesk's own, ``newsdesk``,
which reads words as SQLite's FTS5 index does: English stems, accents folded, no stop words.

PostgreSQL's ``english`` left out stop words (a search for `The Who` found nothing, and `-the`
excluded nothing) and kept accents (`cafe` did not find `café`). ``newsdesk`` is ``english``
with its word mappings sent through the ``unaccent`` extension's dictionary (where it can be
installed: PostgreSQL's contrib, a trusted extension since version 13) and a Snowball English
stemmer with no stop-word list. Every article's document is made again with it (its week
token, weight D, kept as it is); at 100,000 articles this takes a few minutes.
"""

import logging

import peewee

CONFIG = "newsdesk"
WORDS = "asciiword, asciihword, hword_asciipart, word, hword, hword_part"


def upgrade(migrator):
    database = migrator.database
    if not isinstance(database, peewee.PostgresqlDatabase):
        return
    try:
        with database.atomic():  # a savepoint: the step goes on without it
            database.execute_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
        dictionaries = "unaccent, newsdesk_stem"
    except peewee.DatabaseError as error:
        dictionaries = "newsdesk_stem"
        logging.getLogger(__name__).warning(
            "the unaccent extension could not be installed (%s): searches on this database"
            " do not fold accents (cafe does not find café)",
            str(error).strip(),
        )
    database.execute_sql(
        "CREATE TEXT SEARCH DICTIONARY newsdesk_stem (TEMPLATE = snowball, Language = english)"
    )
    database.execute_sql(f"CREATE TEXT SEARCH CONFIGURATION {CONFIG} (COPY = english)")
    database.execute_sql(
        f"ALTER TEXT SEARCH CONFIGURATION {CONFIG} ALTER MAPPING FOR {WORDS} WITH {dictionaries}"
    )
    database.execute_sql(
        "UPDATE article_document AS d SET document ="
        f" setweight(to_tsvector('{CONFIG}', a.title), 'A')"
        f" || setweight(to_tsvector('{CONFIG}', coalesce(a.excerpt, '')), 'B')"
        f" || setweight(to_tsvector('{CONFIG}', coalesce(b.body_text, '')), 'C')"
        " || ts_filter(d.document, '{d}')"
        " FROM article AS a LEFT JOIN article_body AS b ON b.article_id = a.id"
        " WHERE a.id = d.article_id"
    )
