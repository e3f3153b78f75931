"""Articles as the read endpoints show them, in plain SQL: list pages, one article, related
articles, articles by id, the tags and bodies they show, and the stored cards lists read.

Every read of an article goes through here. Building these queries with peewee and turning
their rows into models cost several times what the database took to answer them (a list page of
20: about 1.2 ms of 1.5 ms in process, bench/inprocess.py), so the statements are written out.
Lists, details and related lists come back as JSON the database wrote (:func:`_json_object`,
or the card stored when the article last changed); search, feeds and the change log get
:class:`ArticleRow` objects, which the article dumper reads as it reads models.
tests/test_pages.py holds the two equal. Writes, search matching and everything else use the
peewee models in :mod:`models.articles`; the filters here mean what ``Article.filtered`` means
there.
"""

import dataclasses
import datetime
import functools

from .articles import ARTICLE_SORTS, MAX_ID
from .base import db, is_postgres

#: The article columns a page shows, then its source's.
COLUMNS = (
    "a.id, a.slug, a.external_id, a.title, a.excerpt, a.url, a.image_url, a.byline, a.language, "
    "a.status, a.published_at, a.updated_at, a.word_count, a.reading_time_minutes, "
    "a.comment_count, s.id, s.slug, s.name, s.logo_url"
)
#: Where :data:`COLUMNS` are read from.
WITH_SOURCES = "FROM article a JOIN source s ON s.id = a.source_id"
#: Where JSON is read from: the JSON of an article reads its source itself (only when it is
#: not stored already, so a list of cards joins nothing).
ARTICLES = "FROM article a"
PUBLISHED_ONLY = "a.status = 'published'"
#: The fields of ``article.card``: those a list shows by default.
CARD_FIELDS = (
    "id", "slug", "external_id", "title", "excerpt", "url", "image_url", "byline", "language",
    "source", "tags", "status", "published_at", "updated_at", "word_count",
    "reading_time_minutes", "comment_count",
)


@dataclasses.dataclass(slots=True)
class SourceRef:
    id: int
    slug: str
    name: str
    logo_url: str | None


@dataclasses.dataclass(slots=True)
class TagRef:
    slug: str
    name: str


@dataclasses.dataclass(slots=True)
class Body:
    body_html: str = ""
    body_text: str = ""


@dataclasses.dataclass(slots=True)
class RelationRef:
    kind: str
    origin: str
    score: float
    reasons: str

    @property
    def reason_list(self):
        return [reason for reason in self.reasons.split(",") if reason]


@dataclasses.dataclass(slots=True)
class ArticleRow:
    """An article as read for an answer; ``tag_list``, ``body``, ``relation``, ``score`` and
    ``highlights`` are set by whoever reads them."""

    id: int
    slug: str
    external_id: str | None
    title: str
    excerpt: str
    url: str | None
    image_url: str | None
    byline: str | None
    language: str
    status: str
    published_at: datetime.datetime
    updated_at: datetime.datetime
    word_count: int
    reading_time_minutes: int
    comment_count: int
    source: SourceRef
    tag_list: list | None = None
    body: Body | None = None
    relation: RelationRef | None = None
    score: float | None = None
    highlights: dict | None = None


@functools.lru_cache(maxsize=1024)
def _statement(sql, param):
    return sql if param == "?" else sql.replace("?", param)


def _execute(sql, params=()):
    """Run ``sql`` (written with ``?`` placeholders) on the bound database."""
    postgres = is_postgres()
    if not postgres:
        params = [str(p) if isinstance(p, datetime.datetime) else p for p in params]
    return db.execute_sql(_statement(sql, "%s" if postgres else "?"), params)


def _rows(sql, params=()):
    """All rows of ``sql``: all, not one by one, as a statement left open holds SQLite's read
    snapshot."""
    return _execute(sql, params).fetchall()


def _marks(values):
    return ", ".join("?" * len(values))


def _any_of(column, values, lookup=None):
    """SQL for ``column`` equal to any of ``values``, or to what ``lookup`` (``SELECT x FROM t
    WHERE k``) finds for them.

    One value is an equality, which walks the (column, status, published_at, id) index: 83 us a
    page where the IN form walked every published article (242 us).
    """
    operator, test = ("=", "= ?") if len(values) == 1 else ("IN", f"IN ({_marks(values)})")
    return f"{column} {operator} ({lookup} {test})" if lookup else f"{column} {test}"


def _timestamps():
    """What turns a timestamp column's value into a datetime: SQLite hands back text,
    PostgreSQL datetimes."""
    return (lambda value: value) if is_postgres() else datetime.datetime.fromisoformat


def _articles(rows):
    """:class:`ArticleRow` objects from rows of :data:`COLUMNS` (and whatever follows them)."""
    when = _timestamps()
    return [
        ArticleRow(*row[:10], when(row[10]), when(row[11]), *row[12:15], SourceRef(*row[15:19]))
        for row in rows
    ]


def listing(*, limit, **criteria):
    """Up to ``limit`` published articles under the list filters (see :func:`_list_statement`),
    as :class:`ArticleRow` objects."""
    sql, params = _list_statement(COLUMNS, WITH_SOURCES, limit, **criteria)
    return _articles(_rows(sql, params))


def listing_json(fields, *, limit, **criteria):
    """Up to ``limit`` published articles under the list filters (see :func:`_list_statement`),
    as ``(JSON of the fields asked for, (sort value, id))`` pairs.

    The database writes the JSON, and for the fields a list shows by default it has written it
    already, when the article last changed (``article.card``): reading 20 stored cards took
    38 us, writing them 217 us, reading the rows and tags and dumping them in Python about
    twice that (10,000 articles). tests/test_pages.py holds both equal to the article dumper.
    """
    sql, params = _list_statement(_written(tuple(fields)), ARTICLES, limit, **criteria)
    when = _timestamps()
    return [(card, (when(value), id_)) for card, value, id_ in _rows(sql, params)]


def _list_statement(
    select,
    tables,
    limit,
    *,
    sort="-published_at",
    after=None,
    sources=(),
    tags=(),
    languages=(),
    published_after=None,
    published_before=None,
    updated_since=None,
):
    """The list query: ``select`` (from ``tables``), then the sort value and id, of published
    articles under the filters, ordered by ``sort``; ``(sql, params)``.

    ``after`` is the ``(sort value, id)`` of the last row of the previous page; comma lists match
    any of their values. With a single tag and a published_at sort the query walks the
    ``(tag, published_at, article)`` index of article_tag, so a rare tag costs as little as a
    common one; with several sources (or languages), see :func:`_by_each_value`.
    """
    column, descending = ARTICLE_SORTS[sort]
    if column == "published_at" and (len(sources) > 1) != (len(languages) > 1):
        return _by_each_value(
            select, tables, limit, sort=sort, after=after, sources=sources, tags=tags,
            languages=languages, published_after=published_after,
            published_before=published_before, updated_since=updated_since,
        )
    key, tie, published = f"a.{column}", "a.id", "a.published_at"
    joins, where, params = "", [PUBLISHED_ONLY], []
    if len(tags) == 1 and column == "published_at":
        joins = " JOIN article_tag tagged ON tagged.article_id = a.id"
        where.append("tagged.tag_id = (SELECT id FROM tag WHERE slug = ?)")
        params.append(tags[0])
        key, tie = "tagged.published_at", "tagged.article_id"
        published = key
    elif tags:
        where.append(
            "a.id IN (SELECT t.article_id FROM article_tag t JOIN tag ON tag.id = t.tag_id"
            f" WHERE tag.slug IN ({_marks(tags)}))"
        )
        params.extend(tags)
    if sources:
        where.append(_any_of("a.source_id", sources, "SELECT id FROM source WHERE slug"))
        params.extend(sources)
    if languages:
        where.append(_any_of("a.language", languages))
        params.extend(languages)
    if published_after is not None:
        where.append(f"{published} >= ?")
        params.append(published_after)
    if published_before is not None:
        where.append(f"{published} < ?")
        params.append(published_before)
    if updated_since is not None:
        where.append("a.updated_at >= ?")
        params.append(updated_since)
    order = "DESC" if descending else "ASC"
    if after is not None:
        where.append(f"({key}, {tie}) {'<' if descending else '>'} (?, ?)")
        params.extend(after)
    sql = (
        f"SELECT {select}, {key}, {tie} {tables}{joins} WHERE {' AND '.join(where)}"
        f" ORDER BY {key} {order}, {tie} {order} LIMIT ?"
    )
    return sql, [*params, limit]


def _by_each_value(select, tables, limit, *, sort, sources, languages, **criteria):
    """The list query for several sources or several languages (not both), as one page per
    value merged: ``(sql, params)`` as :func:`_list_statement` makes them.

    Walked in time order, ``source_id IN (...)`` looks up every article's row to test its
    source: for two of eight sources about four rows per row kept, and more the rarer they
    are. Each value's own ``(source_id, status, published_at, id)`` index gives its page from
    the index alone; the pages are merged and only the articles kept are read (two sources
    of the benchmark corpus: 118-160 us to 86-105 us).
    """
    split, values = ("sources", sources) if len(sources) > 1 else ("languages", languages)
    rest = {"sources": sources, "languages": languages, **criteria}
    branches, params = [], []
    for value in values:
        sql, branch_params = _list_statement("a.id", ARTICLES, limit, sort=sort, **{**rest, split: (value,)})
        branches.append(f"SELECT * FROM ({sql}) AS by_{len(branches)}")
        params.extend(branch_params)
    order = "DESC" if ARTICLE_SORTS[sort][1] else "ASC"
    sql = (
        f"WITH page(id, k, t) AS ({' UNION ALL '.join(branches)} ORDER BY 2 {order}, 3 {order} LIMIT ?)"
        f" SELECT {select}, page.k, page.t FROM page JOIN article a ON a.id = page.id"
        f"{tables.removeprefix(ARTICLES)} ORDER BY page.k {order}, page.t {order}"
    )
    return sql, [*params, limit]


def refresh_cards(ids=None, source_id=None):
    """Write ``article.card`` again for the articles ``ids``, or of a source, or all of them.

    Every write that changes what a list shows of an article calls this in its transaction.
    """
    where, params = "", []
    if ids is not None:
        ids = list(ids)
        if not ids:
            return
        where, params = f" WHERE a.id IN ({_marks(ids)})", ids
    elif source_id is not None:
        where, params = " WHERE a.source_id = ?", [source_id]
    _execute(f"UPDATE article AS a SET card = {_json_object(CARD_FIELDS, is_postgres())}{where}", params)


def _written(fields):
    """SQL for the JSON of an article with ``fields``: its stored card when that is what they
    are (and it is not NULL), else written now.

    SQLite hands it over as bytes: as text, the sqlite3 module would decode it and orjson
    encode it again (a list page of cards holds 18 KB).
    """
    postgres = is_postgres()
    written = _json_object(fields, postgres)
    if fields == CARD_FIELDS:
        written = f"coalesce(a.card, {written})"
    return written if postgres else f"CAST({written} AS BLOB)"


#: Article fields that are a column as it is.
_PLAIN = {
    "id", "slug", "external_id", "title", "excerpt", "url", "image_url", "byline", "language",
    "status", "word_count", "reading_time_minutes", "comment_count",
}


@functools.lru_cache(maxsize=256)
def _json_object(fields, postgres):
    """SQL for the JSON object of an article (alias ``a``) with ``fields``, in that order, as
    the article dumper writes it."""
    if postgres:
        obj, wrap = "json_build_object", ""
        stamp = """to_char({}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
        tags = (
            "(SELECT coalesce(json_agg(json_build_object('slug', tag.slug, 'name', tag.name)"
            " ORDER BY tag.slug), '[]'::json) FROM article_tag link"
            " JOIN tag ON tag.id = link.tag_id WHERE link.article_id = a.id)"
        )
    else:
        # json(): a subquery's result would otherwise be embedded as a string.
        obj, wrap = "json_object", "json"
        stamp = "strftime('%Y-%m-%dT%H:%M:%SZ', {})"
        tags = (
            "json((SELECT json_group_array(json_object('slug', slug, 'name', name)) FROM"
            " (SELECT tag.slug, tag.name FROM article_tag link JOIN tag ON tag.id = link.tag_id"
            " WHERE link.article_id = a.id ORDER BY tag.slug)))"
        )
    special = {
        "source": (
            f"{wrap}((SELECT {obj}('id', s.id, 'slug', s.slug, 'name', s.name, 'logo_url', s.logo_url)"
            " FROM source s WHERE s.id = a.source_id))"
        ),
        "tags": tags,
        "published_at": stamp.format("a.published_at"),
        "updated_at": stamp.format("a.updated_at"),
        "body_html": "coalesce((SELECT body_html FROM article_body WHERE article_id = a.id), '')",
        "body_text": "coalesce((SELECT body_text FROM article_body WHERE article_id = a.id), '')",
    }
    pairs = ", ".join(f"'{name}', {f'a.{name}' if name in _PLAIN else special[name]}" for name in fields)
    # As text: psycopg2 would parse a json value into Python objects.
    return f"{obj}({pairs})::text" if postgres else f"{obj}({pairs})"


def lookup(key, include_drafts=False):
    """The article whose id or slug is ``key`` (published only, unless asked), or None."""
    rows = _lookup(COLUMNS, WITH_SOURCES, key, include_drafts)
    return _articles(rows)[0] if rows else None


def lookup_json(key, fields, include_drafts=False):
    """``(JSON of the fields asked for, updated_at)`` of the article whose id or slug is
    ``key`` (published only, unless asked), or None; the database writes the JSON, as for
    :func:`listing_json`."""
    rows = _lookup(f"{_written(tuple(fields))}, a.updated_at", ARTICLES, key, include_drafts)
    if not rows:
        return None
    text, updated_at = rows[0]
    return text, _timestamps()(updated_at)


def _lookup(select, tables, key, include_drafts):
    if key.isascii() and key.isdigit():
        if int(key) > MAX_ID:
            return []
        condition, value = "a.id = ?", int(key)
    else:
        condition, value = "a.slug = ?", key
    if not include_drafts:
        condition += f" AND {PUBLISHED_ONLY}"
    return _rows(f"SELECT {select} {tables} WHERE {condition}", [value])


def by_ids(ids):
    """The published ones of ``ids``, by id.

    Looked up by primary key, the status checked here: with the status in the WHERE clause,
    SQLite would rather walk the status index over every published article.
    """
    ids = list(ids)
    if not ids:
        return {}
    rows = _articles(_rows(f"SELECT {COLUMNS} {WITH_SOURCES} WHERE a.id IN ({_marks(ids)})", ids))
    return {row.id: row for row in rows if row.status == "published"}


def related_json(key, fields, limit, include_drafts=False):
    """Articles related to the article whose id or slug is ``key``, editorial first, then by
    score: ``[(JSON of the fields asked for, its RelationRef)]``, or None when there is
    no such article. The database writes the JSON, as for :func:`listing_json`."""
    found = _lookup("a.id", ARTICLES, key, include_drafts)
    if not found:
        return None
    condition = "" if include_drafts else f" AND {PUBLISHED_ONLY}"
    sql = (
        f"SELECT {_written(tuple(fields))}, r.kind, r.origin, r.score, r.reasons FROM relation r"
        " JOIN article a ON a.id = r.related_id"
        f" WHERE r.article_id = ?{condition}"
        # 'editorial' sorts after 'computed': descending puts editorial relations first.
        " ORDER BY r.origin DESC, r.score DESC, r.id LIMIT ?"
    )
    return [(text, RelationRef(*relation)) for text, *relation in _rows(sql, [found[0][0], limit])]


def attach_tags(articles):
    """Give each article (a row or a model) its ``tag_list``, with one query for them all."""
    by_article = {article.id: [] for article in articles}
    if by_article:
        sql = (
            "SELECT t.article_id, tag.slug, tag.name FROM article_tag t"
            " JOIN tag ON tag.id = t.tag_id"
            f" WHERE t.article_id IN ({_marks(by_article)}) ORDER BY t.article_id, tag.slug"
        )
        for article_id, slug, name in _rows(sql, list(by_article)):
            by_article[article_id].append(TagRef(slug, name))
    for article in articles:
        article.tag_list = by_article[article.id]
    return articles


def attach_bodies(articles):
    """Give each article (a row or a model) its ``body``, with one query for them all."""
    bodies = {}
    if articles:
        ids = [article.id for article in articles]
        sql = f"SELECT article_id, body_html, body_text FROM article_body WHERE article_id IN ({_marks(ids)})"
        bodies = {article_id: Body(html, text) for article_id, html, text in _rows(sql, ids)}
    for article in articles:
        article.body = bodies.get(article.id) or Body()
    return articles
