"""Full-text search over articles: one interface, two engines.

SQLite uses an FTS5 table (``article_search``) and BM25; PostgreSQL a weighted ``tsvector``
(``article_document``) with a GIN index and ``ts_rank``. Both weight the title over the excerpt
over the body, stem English words, fold accents and keep stop words, and are kept in step with article writes by
:func:`index_articles` and :func:`unindex_article`. Besides the text, each document carries a
token naming its publication week, so related-article lookups can stay within a time window
through the same index.
"""

import datetime
import functools
import math
import operator
import time

import peewee
from peewee import fn
from playhouse.postgres_ext import TSVectorField
from playhouse.sqlite_ext import FTS5Model, SearchField

from . import reading
from .articles import (
    PUBLISHED,
    UNPUBLISHED,
    Article,
    ArticleBody,
    ArticleTag,
    Source,
    Tag,
    seek,
)
from .base import BaseModel, binding, db, execute_many, is_postgres, sqlstate
from .query import Term
from .text import search_form

#: BM25 weights of title, excerpt, body and the period token (not searched by users).
FTS_WEIGHTS = (10.0, 4.0, 1.0, 0.0)
TEXT_COLUMNS = "{title excerpt body}"
#: PostgreSQL's text search configuration: English stems, accents folded, no stop words, as
#: FTS5's tokenizer reads words (migration 17 makes it).
PG_CONFIG = "newsdesk"
_EPOCH = datetime.datetime(1970, 1, 1)


class ArticleSearch(FTS5Model):
    """SQLite: the FTS5 index of article text (rowid = article id)."""

    title = SearchField()
    excerpt = SearchField()
    body = SearchField()
    period = SearchField()

    class Meta:
        database = db
        table_name = "article_search"
        options = {"tokenize": "porter unicode61 remove_diacritics 2"}


class ArticleDocument(BaseModel):
    """PostgreSQL: the weighted tsvector of each article (GIN-indexed)."""

    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    document = TSVectorField()

    class Meta:
        table_name = "article_document"


def period_token(moment):
    """The token of the week ``moment`` falls in (weeks of the Julian day count)."""
    julian_day = (moment - _EPOCH).total_seconds() / 86400 + 2440587.5
    return f"zzp{int(julian_day // 7)}"


def period_tokens(moment, weeks):
    """Tokens of the weeks within ``weeks`` of ``moment``'s week."""
    center = int(period_token(moment)[3:])
    return [f"zzp{week}" for week in range(center - weeks, center + weeks + 1)]


def create_index():
    """Create the search table of the connected engine (part of the schema)."""
    if is_postgres():
        ArticleDocument.create_table()
    else:
        ArticleSearch.create_table()


def index_articles(ids):
    """(Re)index the given articles from their stored title, excerpt and body."""
    ids = list(ids)
    if not ids:
        return
    rows = (
        Article.select(
            Article.id, Article.title, Article.excerpt, ArticleBody.body_text, Article.published_at
        )
        .join(ArticleBody, peewee.JOIN.LEFT_OUTER)
        .where(Article.id.in_(ids))
        .tuples()
    )
    index_rows(
        [(i, title, excerpt, body or "", published) for i, title, excerpt, body, published in rows],
        ids,
    )


#: PostgreSQL: the text (title, excerpt and body, in UTF-8) up to which a document is indexed
#: with the others of its batch, in one statement. A tsvector holds at most 1 MiB of distinct
#: words, which lower case can make up to half as long again as the text (``İ``, 2 bytes, is
#: ``i̇``, 3); a document past this is indexed on its own, and cut if it must be
#: (:func:`_index_large`).
SAFE_DOCUMENT_BYTES = 512 * 1024
#: PostgreSQL's SQLSTATE of a value past one of its limits (a tsvector over 1 MiB).
PROGRAM_LIMIT_EXCEEDED = "54000"
_PG_DOCUMENT = (
    "setweight(to_tsvector(%s, %s), 'A') || setweight(to_tsvector(%s, %s), 'B') || "
    "setweight(to_tsvector(%s, %s), 'C') || setweight(to_tsvector('simple', %s), 'D')"
)


def index_rows(rows, replaced=()):
    """Index ``(id, title, excerpt, body_text, published_at)`` rows in one statement, replacing
    what the articles ``replaced`` had in the index. The text is indexed in the form queries
    are read in (:func:`models.text.search_form`)."""
    if not rows:
        return
    rows = [
        (i, *(text and search_form(text) for text in texts), published)
        for i, *texts, published in rows
    ]
    if is_postgres():
        small, large = [], []
        for row in rows:
            (large if _text_bytes(row) > SAFE_DOCUMENT_BYTES else small).append(row)
        _index_pg(small)
        for row in large:
            _index_large(row)
        return
    if replaced:
        ArticleSearch.delete().where(ArticleSearch.rowid.in_(list(replaced))).execute()
    execute_many(
        'INSERT INTO "article_search" ("rowid", "title", "excerpt", "body", "period")'
        " VALUES ({0}, {0}, {0}, {0}, {0})",
        [
            (i, title, excerpt, body, period_token(published))
            for i, title, excerpt, body, published in rows
        ],
    )


def _text_bytes(row):
    return sum(len(text.encode()) for text in row[1:4])


def _index_pg(rows):
    if not rows:
        return
    values, params = [], []
    for article_id, title, excerpt, body, published_at in rows:
        values.append(f"(%s, {_PG_DOCUMENT})")
        params += [
            article_id,
            PG_CONFIG,
            title,
            PG_CONFIG,
            excerpt,
            PG_CONFIG,
            body,
            period_token(published_at),
        ]
    db.execute_sql(
        f"INSERT INTO article_document (article_id, document) VALUES {', '.join(values)}"
        " ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document",
        params,
    )


def _index_large(row):
    """PostgreSQL: index a long document on its own; when its distinct words make more than a
    tsvector holds (a body of about 1 MiB of them), index the first half of its body, and so
    on: a body within the limits of a write is always stored, and found by its first words."""
    *head, body, published_at = row
    while True:
        try:
            with db.atomic():  # a savepoint: the statement that failed is undone alone
                _index_pg([(*head, body, published_at)])
            return
        except peewee.OperationalError as error:
            if sqlstate(error) != PROGRAM_LIMIT_EXCEEDED or not body:
                raise
            body = body[: len(body) // 2]


def unindex_article(article_id):
    if not is_postgres():  # PostgreSQL drops the document with the article (ON DELETE CASCADE)
        ArticleSearch.delete().where(ArticleSearch.rowid == article_id).execute()


# --- compiling a parsed query for each engine ------------------------------------------------


def _fts_term(term):
    return '"' + " ".join(term.words) + '"'


def _fts_any(terms):
    return f"{TEXT_COLUMNS} : (" + " OR ".join(_fts_term(t) for t in terms) + ")"


def _fts_positive(parsed):
    """The FTS5 expression of the required clauses: what a hit must have."""
    required = " AND ".join(
        "(" + " OR ".join(_fts_term(t) for t in clause) + ")" for clause in parsed.required
    )
    return f"{TEXT_COLUMNS} : ({required})"


def _fts_expression(parsed):
    """The whole query as one FTS5 expression (related articles and the frequency of words
    build theirs the same way)."""
    expression = _fts_positive(parsed)
    if parsed.excluded:
        expression += " NOT " + _fts_any(parsed.excluded)
    return expression


def _pg_term(term):
    return fn.phraseto_tsquery(PG_CONFIG, term.text or " ".join(term.words))


def _pg_any(terms):
    terms = list(terms)
    query = _pg_term(terms[0])
    for term in terms[1:]:
        query = peewee.Expression(query, "||", _pg_term(term))
    return query


def _pg_tsquery(parsed):
    query = None
    for clause in parsed.required:
        alternatives = _pg_any(clause)
        query = alternatives if query is None else peewee.Expression(query, "&&", alternatives)
    if parsed.excluded:
        excluded = peewee.NodeList((peewee.SQL("!!"), _pg_any(parsed.excluded)))
        query = peewee.Expression(query, "&&", excluded)
    return query


def _pg_score(tsquery, normalization=1):
    """``ts_rank`` of a document for ``tsquery``.

    ``normalization`` 1 divides the rank by 1 + the log of the document length (search); 0 does
    not, so that an article is the best match of its own words (related articles).
    """
    # A float8, not ts_rank's float4: a float4 read as text and sent back as a cursor would not
    # compare equal to itself, and a page could repeat a hit.
    return fn.ts_rank(ArticleDocument.document, tsquery, normalization).coerce(False).cast("float8")


def _matching_pg(tsquery, normalization=1):
    """Published articles matching a tsquery, and their relevance: ``(query, score)``."""
    query = (
        Article.select()
        .join(ArticleDocument, on=(ArticleDocument.article == Article.id))
        .where(peewee.Expression(ArticleDocument.document, "@@", tsquery))
        .where(Article.status == PUBLISHED)
    )
    return query, _pg_score(tsquery, normalization)


def _matching_fts(expression):
    """Published articles matching an FTS5 expression, and their relevance (-BM25)."""
    score = ArticleSearch.bm25(*FTS_WEIGHTS) * -1
    query = (
        Article.select()
        .join(ArticleSearch, on=(ArticleSearch.rowid == Article.id))
        .where(ArticleSearch.match(expression))
        .where(Article.status == PUBLISHED)
    )
    return query, score


def _fts_hits(parsed, *columns, filtered=False, **filters):
    """SQLite: a query over the FTS5 matches of ``parsed``'s required clauses, selecting
    ``columns``, with the excluded terms' matches taken out and the published articles kept.

    The index is the outer loop, and each other condition is tested on its matches only:
    asked for one match at a time (the article table's order, or one exclusion after another
    inside one expression), FTS5 evaluates the whole expression again for each row, which cost
    minutes on a large corpus. With ``filtered`` (or filters given) each match is joined to
    its article row (forced by SQLite's CROSS JOIN) and the filters are tested on it.
    :func:`models.reading.best_of_newest_matches` writes the same statement out.
    """
    query = ArticleSearch.select(*columns).where(ArticleSearch.match(_fts_positive(parsed)))
    if parsed.excluded:
        excluded = ArticleSearch.select(ArticleSearch.rowid).where(
            ArticleSearch.match(_fts_any(parsed.excluded))
        )
        query = query.where(ArticleSearch.rowid.not_in(excluded))
    if not (filtered or any(filters.values())):
        unpublished = Article.select(Article.id).where(Article.status.in_(UNPUBLISHED))
        return query.where(ArticleSearch.rowid.not_in(unpublished))
    query = (
        query.join(Article, peewee.JOIN.CROSS)
        .where(Article.id == ArticleSearch.rowid)
        .where(Article.status == PUBLISHED)
    )
    return Article.filtered(query, **filters)


def search(parsed, *, sort="relevance", after=None, **filters):
    """Hits of ``parsed`` as ``(article id, score, published_at)`` rows, best first (or newest).

    Keyset paging with ``after`` = ``(score, id)`` or ``(published_at, id)``: the rows past
    it (:func:`search_page` pages by the hits as they rank now). ``published_at`` is None in
    the rows of a search by relevance on SQLite.
    """
    if is_postgres():
        return _search_pg(parsed, sort, after, filters)
    score = ArticleSearch.bm25(*FTS_WEIGHTS) * -1
    if sort == "relevance":
        query = _fts_hits(
            parsed, ArticleSearch.rowid, score.alias("score"), peewee.Value(None), **filters
        )
        keys = (score, ArticleSearch.rowid)
    else:
        query = _fts_hits(
            parsed,
            Article.id,
            score.alias("score"),
            Article.published_at,
            filtered=True,
            **filters,
        )
        keys = (Article.published_at, Article.id)
    return seek(query, keys, after, descending=True).tuples()


def search_page(parsed, *, sort="relevance", after=None, seen=None, **filters):
    """The hits past the last one a page showed, as :func:`search` gives them: ``(rows,
    seen)``. ``after`` is that hit's sort key, and ``seen`` how many hits the pages up to it
    held (None: not known); the ``seen`` returned is the rank the rows start at.

    On SQLite, BM25 weighs words by the whole index, so every write moves every score: by
    relevance, the rows go on below the last hit's score as it is now, not as the cursor
    recorded it, or a write between pages would skip or repeat most of the remaining hits.
    When that hit is gone (deleted, unpublished), they start at the rank it left, where the
    hit below it moved up to.
    """
    if after is None or sort != "relevance" or is_postgres():
        return search(parsed, sort=sort, after=after, **filters), seen
    score = ArticleSearch.bm25(*FTS_WEIGHTS) * -1
    hit = _fts_hits(parsed, score, **filters).where(ArticleSearch.rowid == after[1])
    now = hit.scalar()
    if now is not None:
        return search(parsed, sort=sort, after=(now, after[1]), **filters), seen
    if seen is None:  # a cursor made before it was kept
        return search(parsed, sort=sort, after=after, **filters), seen
    start = max(seen - 1, 0)
    return search(parsed, sort=sort, **filters).offset(start), start


def best_of_newest(parsed, limit, newest, **filters):
    """The ids of the ``limit`` best hits of ``parsed`` among its ``newest`` hits (the most
    recently stored: highest ids), best first.

    BM25 or ``ts_rank`` is computed for those hits only: ranking every match of a common word
    costs as much as it has matches (bench/README.md), and the newest matches are found in
    index order without ranking the others. Hits older than the newest ``newest`` are not
    ranked at all: the trade hybrid search makes for a bounded answer.
    """
    if is_postgres():
        recent = (
            Article.filtered(
                Article.select(Article.id)
                .join(ArticleDocument, on=(ArticleDocument.article == Article.id))
                .where(peewee.Expression(ArticleDocument.document, "@@", _pg_tsquery(parsed)))
                .where(Article.status == PUBLISHED),
                **filters,
            )
            .order_by(Article.id.desc())
            .limit(newest)
            .cte("recent", materialized=True, columns=("id",))
        )
        score = _pg_score(_pg_tsquery(parsed))
        query = (
            ArticleDocument.select(ArticleDocument.article)
            .join(recent, on=(recent.c.id == ArticleDocument.article))
            .order_by(score.desc(), ArticleDocument.article.desc())
            .limit(limit)
            .with_cte(recent)
        )
        return [article_id for (article_id,) in query.tuples()]
    excluded = _fts_any(parsed.excluded) if parsed.excluded else None
    return reading.best_of_newest_matches(
        _fts_positive(parsed), excluded, FTS_WEIGHTS, limit, newest, filters
    )


def _pg_matches(parsed, scored):
    """PostgreSQL: the articles whose document matches ``parsed`` (and their score), as a
    materialized common table, so that they are found first, by the GIN index or one pass
    over the documents: left to itself, the planner may walk the articles newest first and
    test each one's document, which costs as many tests as there are articles when the query
    matches few of them. The score is computed once, in that pass."""
    tsquery = _pg_tsquery(parsed)
    columns = [ArticleDocument.article.alias("article_id")]
    if scored:
        columns.append(_pg_score(tsquery).alias("score"))
    matches = ArticleDocument.select(*columns).where(
        peewee.Expression(ArticleDocument.document, "@@", tsquery)
    )
    return matches.cte("matches", materialized=True)


def _search_pg(parsed, sort, after, filters):
    matches = _pg_matches(parsed, scored=True)
    query = (
        Article.select(Article.id, matches.c.score, Article.published_at)
        .join(matches, on=(matches.c.article_id == Article.id))
        .where(Article.status == PUBLISHED)
        .with_cte(matches)
    )
    query = Article.filtered(query, **filters)
    if sort == "relevance":
        keys = (matches.c.score, Article.id)
    else:
        keys = (Article.published_at, Article.id)
    return seek(query, keys, after, descending=True).tuples()


#: The facets a search can count its hits by.
FACETS = ("source", "tag", "language")
#: Values kept per facet, most frequent first.
FACET_VALUES = 50


def facets(parsed, names, **filters):
    """Counts per value of each facet in ``names`` (source, tag, language) over every hit.

    The hits are found once, into a materialized common table, and every facet is counted
    from it in the same statement.
    """
    names = [name for name in names if name in FACETS]
    if not names:
        return {}
    tables = []
    if is_postgres():
        matches = _pg_matches(parsed, scored=False)
        query = (
            Article.select(Article.id, Article.source, Article.language)
            .join(matches, on=(matches.c.article_id == Article.id))
            .where(Article.status == PUBLISHED)
        )
        query = Article.filtered(query, **filters)
        tables.append(matches)
    else:
        query = _fts_hits(
            parsed, Article.id, Article.source, Article.language, filtered=True, **filters
        )
    return _count_facets(query, names, tables)


def facets_among(ids, names):
    """Counts per value of each facet in ``names`` over the published articles ``ids`` (the
    hits of a search by meaning, already filtered)."""
    names = [name for name in names if name in FACETS]
    if not names:
        return {}
    query = Article.select(Article.id, Article.source, Article.language).where(
        Article.id.in_(list(ids) or [0]) & (Article.status == PUBLISHED)
    )
    return _count_facets(query, names, [])


def _count_facets(query, names, tables):
    """Count the facets ``names`` over the ``(id, source_id, language)`` rows of ``query``
    (with the common ``tables`` it reads), in one statement."""
    hits = query.cte("hits", materialized=True, columns=("id", "source_id", "language"))
    count = fn.COUNT(peewee.SQL("*"))
    counts = {
        "source": (
            peewee.Select((hits,), (peewee.Value("source"), Source.slug, count))
            .join(Source, on=(Source.id == hits.c.source_id))
            .group_by(Source.slug)
        ),
        "language": peewee.Select(
            (hits,), (peewee.Value("language"), hits.c.language, count)
        ).group_by(hits.c.language),
        "tag": (
            peewee.Select((hits,), (peewee.Value("tag"), Tag.slug, count))
            .join(ArticleTag, on=(ArticleTag.article == hits.c.id))
            .join(Tag, on=(Tag.id == ArticleTag.tag))
            .group_by(Tag.slug)
        ),
    }
    statement = functools.reduce(operator.add, [counts[name] for name in names])
    rows = statement.with_cte(*tables, hits).bind(db).tuples()
    result = {name: [] for name in names}
    for name, value, number in sorted(rows, key=lambda row: (row[0], -row[2], row[1])):
        if len(result[name]) < FACET_VALUES:
            result[name].append({"value": value, "count": number})
    return result


def matching_any(terms, ids):
    """Which of the articles ``ids`` have any of ``terms`` in their text (the exclusions of a
    query, applied to hits found by meaning)."""
    ids = list(ids)
    if not ids or not terms:
        return set()
    if is_postgres():
        query = ArticleDocument.select(ArticleDocument.article).where(
            peewee.Expression(ArticleDocument.document, "@@", _pg_any(terms))
            & ArticleDocument.article.in_(ids)
        )
    else:
        query = ArticleSearch.select(ArticleSearch.rowid).where(
            ArticleSearch.match(_fts_any(terms)) & ArticleSearch.rowid.in_(ids)
        )
    return {article_id for (article_id,) in query.tuples()}


def similar(words, around, weeks, limit=50, where=None):
    """Published articles whose text has any of ``words``, within ``weeks`` of ``around``, and
    that meet ``where`` (a condition on :class:`Article`) when given.

    Returns ``[(article id, score)]``, best first: the candidates of computed relations.
    """
    terms = [Term((word,)) for word in words]
    periods = period_tokens(around, weeks)
    if is_postgres():
        window = fn.to_tsquery("simple", " | ".join(periods))
        query, score = _matching_pg(peewee.Expression(_pg_any(terms), "&&", window), 0)
    else:
        text = " OR ".join(_fts_term(t) for t in terms)
        expression = f"{TEXT_COLUMNS} : ({text}) AND period : ({' OR '.join(periods)})"
        query, score = _matching_fts(expression)
    query = query.select(Article.id, score.alias("score"))
    if where is not None:
        query = query.where(where)
    return list(query.order_by(score.desc(), Article.id).limit(limit).tuples())


#: Counts of articles (all, and with a word) are kept per process this long: they change
#: slowly, but a worker started on a small database scored by its first counts for good.
COUNTS_KEPT = 3600


@functools.lru_cache(maxsize=65536)
def _frequency(bound, word, period):
    """How many articles have ``word``, in the database ``bound`` names (``binding()``), as
    counted in the :data:`COUNTS_KEPT` ``period`` asked first."""
    if is_postgres():
        tsquery = fn.plainto_tsquery(PG_CONFIG, word)
        query = ArticleDocument.select().where(
            peewee.Expression(ArticleDocument.document, "@@", tsquery)
        )
    else:
        query = ArticleSearch.select().where(ArticleSearch.match(f'{TEXT_COLUMNS} : "{word}"'))
    return query.count()


@functools.lru_cache(maxsize=64)
def _size(bound, period):
    """How many articles the database ``bound`` names holds (at least 1), as counted in the
    ``period`` asked first."""
    return max(1, Article.select().count())


def counting_period():
    """The number of the :data:`COUNTS_KEPT` period this process is in."""
    return int(time.monotonic() // COUNTS_KEPT)


def inverse_frequency(word):
    """How rare ``word`` is among all articles (IDF), counted again every :data:`COUNTS_KEPT`
    seconds in each process: it changes slowly."""
    period = counting_period()
    documents = _size(binding(), period)
    return math.log(1 + documents / (1 + _frequency(binding(), word, period)))
