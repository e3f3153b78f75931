"""Version 31: the search index holds text in Unicode's compatibility form (NFKC), the form
queries are read in: a ligature (``ﬂ``), full-width and half-width letters (``ＡＩ``,
``ﾃﾚﾋﾞ``), circled and superscript digits are the plain letters and digits. SQLite's tokenizer
kept them as they were, so ``flood`` did not find ``ﬂood``; PostgreSQL's ``unaccent`` mapped
some of them, not half-width katakana or circled digits. Each article whose title, excerpt or
body text is not in that form is indexed again (the others are as they would be); on
PostgreSQL, its document keeps the words of its publication period, and a body too long for a
document is indexed by as much of its start as fits, as a write indexes it. Nothing a client
reads changes, so no version, change or event is made."""

import unicodedata

import peewee

from ..base import sqlstate

#: Rows read at once.
BATCH = 500
#: The text search configuration of version 17.
CONFIG = "newsdesk"
#: PostgreSQL's SQLSTATE of a value past one of its limits (a tsvector over 1 MiB).
PROGRAM_LIMIT_EXCEEDED = "54000"
#: PostgreSQL: the text (title, excerpt and body, in UTF-8) up to which a document is sure to
#: fit (``models.search.SAFE_DOCUMENT_BYTES``, as this step was written).
SAFE_DOCUMENT_BYTES = 512 * 1024


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
    """Index an article's text again. A long one is indexed in a savepoint, and when its
    distinct words are more than a search document holds (they can grow in NFKC), by the first
    half of its body, and so on, as a write indexes it (``models.search._index_large``)."""
    title, excerpt, body = texts
    if sum(len(text.encode()) for text in texts) <= SAFE_DOCUMENT_BYTES:
        _update_document(database, article_id, title, excerpt, body)
        return
    while True:
        try:
            with database.atomic():
                _update_document(database, article_id, title, excerpt, body)
            return
        except peewee.OperationalError as error:
            if sqlstate(error) != PROGRAM_LIMIT_EXCEEDED or not body:
                raise
            body = body[: len(body) // 2]


def _update_document(database, article_id, title, excerpt, body):
    """The article's document from its text, with the words of its publication period kept."""
    database.execute_sql(
        f"UPDATE article_document SET document = setweight(to_tsvector('{CONFIG}', %s), 'A')"
        f" || setweight(to_tsvector('{CONFIG}', %s), 'B')"
        f" || setweight(to_tsvector('{CONFIG}', %s), 'C')"
        " || ts_filter(document, '{d}') WHERE article_id = %s",
        (title, excerpt, body, article_id),
    )
