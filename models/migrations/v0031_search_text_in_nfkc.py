"""Version 31: the search index holds text in Unicode's compatibility form (NFKC), the form
queries are read in: a ligature (``ﬂ``), full-width and half-width letters (``ＡＩ``,
``ﾃﾚﾋﾞ``), circled and superscript digits are the plain letters and digits. SQLite's tokenizer
kept them as they were, so ``flood`` did not find ``ﬂood``; PostgreSQL's ``unaccent`` mapped
some of them, not half-width katakana or circled digits. Each article whose title, excerpt or
body text is not in that form is indexed again (the others are as they would be); on
PostgreSQL, its document keeps the words of its publication period. Nothing a client reads
changes, so no version, change or event is made."""

import logging
import unicodedata

import peewee

from ..base import sqlstate

#: Rows read at once.
BATCH = 500
#: The text search configuration of version 17.
CONFIG = "newsdesk"
#: PostgreSQL's SQLSTATE of a value past one of its limits (a tsvector over 1 MiB).
PROGRAM_LIMIT_EXCEEDED = "54000"


def upgrade(migrator):
    database = migrator.database
    postgres = isinstance(database, peewee.PostgresqlDatabase)
    for article_id, texts in _not_in_nfkc(database):
        if postgres:
            _index_postgresql(database, article_id, texts)
        else:
            database.execute_sql(
                "UPDATE article_search SET title = ?, excerpt = ?, body = ? WHERE rowid = ?",
                (*texts, article_id),
            )


def _not_in_nfkc(database):
    """``(article id, (title, excerpt, body text) in NFKC)`` of each article whose text is not
    in that form, by id."""
    mark, last = database.param, 0
    while True:
        rows = database.execute_sql(
            "SELECT a.id, a.title, a.excerpt, b.body_text FROM article AS a"
            " LEFT JOIN article_body AS b ON b.article_id = a.id"
            f" WHERE a.id > {mark} ORDER BY a.id LIMIT {BATCH}",
            (last,),
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        for article_id, *texts in rows:
            texts = [text or "" for text in texts]
            if not all(unicodedata.is_normalized("NFKC", text) for text in texts):
                yield article_id, [unicodedata.normalize("NFKC", text) for text in texts]


def _index_postgresql(database, article_id, texts):
    """Index an article's text again, in a savepoint: a document past a tsvector's limit once
    in NFKC (it can grow) keeps the one it had, and the upgrade goes on."""
    title, excerpt, body = texts
    try:
        with database.atomic():
            database.execute_sql(
                f"UPDATE article_document SET document = setweight(to_tsvector('{CONFIG}', %s),"
                f" 'A') || setweight(to_tsvector('{CONFIG}', %s), 'B')"
                f" || setweight(to_tsvector('{CONFIG}', %s), 'C')"
                " || ts_filter(document, '{d}') WHERE article_id = %s",
                (title, excerpt, body, article_id),
            )
    except peewee.OperationalError as error:
        if sqlstate(error) != PROGRAM_LIMIT_EXCEEDED:
            raise
        logging.getLogger(__name__).warning(
            "article %d is indexed as before: its text in NFKC is past the limits of a"
            " search document",
            article_id,
        )
