"""The reads behind article answers, in plain SQL: list pages of stored cards, one article with
its body, related articles, cards and bodies by id, and on SQLite the keyword ranking of a
hybrid search.

These run on every list, detail, related and search request, where building the statement with
peewee's query builder cost several times what the database took to answer it, so they are
written out (placeholders in the connected database's style, ``db.param``). What they read is
rendered already: each article's card (``models.cards``). Writes and everything else use the
peewee models; the filters here mean what ``Article.filtered`` means there.
"""

import dataclasses
import datetime

from .articles import ARTICLE_SORTS, EDITORIAL, MAX_ID, PUBLISHED, UNPUBLISHED
from .base import db, is_postgres

PUBLISHED_ONLY = "a.status = 'published'"
#: The same test, written so that no index can serve it, for rows found by their ids: SQLite
#: (without statistics) would rather walk every published article of the status index than
#: look up 20 ids, a walk that grows with the database.
PUBLISHED_CHECK = "a.status || '' = 'published'"


@dataclasses.dataclass(slots=True)
class ArticleRow:
    """An article as a detail reads it: its card and body, and what its answer's headers need."""

    id: int
    version: int
    modified_at: datetime.datetime
    card: str
    body_html: str
    body_text: str


@dataclasses.dataclass(slots=True)
class RelatedRow:
    """A related article's card and the relation that leads to it."""

    id: int
    card: str
    kind: str
    origin: str
    score: float
    reasons: str
    language: str
    #: The relation's id: the last of its sort key, ``(origin, score, relation_id)``.
    relation_id: int

    @property
    def sort_key(self):
        """Where the row is in its list, as :func:`related` takes ``after``."""
        return (self.origin, self.score, self.relation_id)

    @property
    def reason_list(self):
        return [reason for reason in self.reasons.split(",") if reason]


def _rows(sql, params=()):
    """All rows of ``sql``, written with ``?`` placeholders.

    All at once, not one by one: a statement left open holds SQLite's read snapshot.
    """
    if is_postgres():
        sql = sql.replace("?", "%s")
    else:
        params = [str(p) if isinstance(p, datetime.datetime) else p for p in params]
    return db.execute_sql(sql, params).fetchall()


def _marks(values):
    return ", ".join("?" * len(values))


def _timestamp(value):
    """SQLite hands timestamps back as text, PostgreSQL as datetimes."""
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


def list_cards(*, limit, sort="-published_at", after=None, status=PUBLISHED, **filters):
    """Up to ``limit`` articles of ``status`` (published, or draft) under the list ``filters``
    (:func:`article_conditions`), ordered by ``sort``: ``[(card, (sort value, id))]``.

    ``after`` is the ``(sort value, id)`` of the last row of the previous page; comma lists match
    any of their values. Published, with a single tag and a published_at sort, the query walks
    the ``(tag, published_at, article)`` index of article_tag, so a rare tag costs as little as
    a common one (drafts, few, are found through the article's status index).
    """
    column, descending = ARTICLE_SORTS[sort]
    key, tie, published = f"a.{column}", "a.id", "a.published_at"
    joins, where, params = "", ["a.status = ?"], [status]
    tags = filters.get("tags") or ()
    if len(tags) == 1 and column == "published_at" and status == PUBLISHED:
        joins = " JOIN article_tag tagged ON tagged.article_id = a.id"
        where.append("tagged.tag_id = (SELECT id FROM tag WHERE slug = ?)")
        params.append(tags[0])
        key, tie = "tagged.published_at", "tagged.article_id"
        published, filters = key, {**filters, "tags": ()}
    conditions, values = article_conditions(**filters, published=published)
    where += conditions
    params += values
    order = "DESC" if descending else "ASC"
    if after is not None:
        where.append(f"({key}, {tie}) {'<' if descending else '>'} (?, ?)")
        params.extend(after)
    sql = (
        f"SELECT a.card, {key}, {tie} FROM article a{joins} WHERE {' AND '.join(where)}"
        f" ORDER BY {key} {order}, {tie} {order} LIMIT ?"
    )
    return [(card, (_timestamp(value), id_)) for card, value, id_ in _rows(sql, [*params, limit])]


def article_conditions(
    *,
    sources=(),
    tags=(),
    languages=(),
    published_after=None,
    published_before=None,
    updated_since=None,
    published="a.published_at",
):
    """The article filters, as ``Article.filtered`` takes them (and meaning the same), as SQL
    conditions on the article ``a`` and their parameters: ``(conditions, params)``.
    ``published`` is the column the time filters compare (a list by tag reads article_tag's
    copy of it)."""
    where, params = [], []
    if tags:
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
    return where, params


def best_of_newest_matches(match, excluded, weights, limit, newest, filters):
    """SQLite: the ids of the ``limit`` best (by BM25 with column ``weights``) of the newest
    ``newest`` published articles the FTS5 expression ``match`` finds and ``excluded`` (one,
    or None) does not, under the article ``filters``; best first, then newest.

    ``models.search.best_of_newest`` reads a hybrid search's keyword ranking here: the same
    statement built by peewee took more than half what SQLite took to answer it. As there
    (``_fts_hits``), the index is the outer loop, and a match is joined to its article row
    only when a filter needs it.
    """
    where, params = ["article_search MATCH ?"], [match]
    if excluded:
        where.append(
            "article_search.rowid NOT IN"
            " (SELECT rowid FROM article_search WHERE article_search MATCH ?)"
        )
        params.append(excluded)
    joins = ""
    if any(filters.values()):
        joins = " CROSS JOIN article a"
        conditions, values = article_conditions(**filters)
        where += ["a.id = article_search.rowid", PUBLISHED_ONLY, *conditions]
        params += values
    else:
        where.append(
            "article_search.rowid NOT IN"
            f" (SELECT a.id FROM article a WHERE a.status IN ({_marks(UNPUBLISHED)}))"
        )
        params += UNPUBLISHED
    sql = (
        "SELECT id FROM (SELECT article_search.rowid AS id,"
        f" -bm25(article_search, {', '.join(map(str, weights))}) AS score"
        f" FROM article_search{joins} WHERE {' AND '.join(where)}"
        " ORDER BY article_search.rowid DESC LIMIT ?) ORDER BY score DESC, id DESC LIMIT ?"
    )
    return [article_id for (article_id,) in _rows(sql, [*params, newest, limit])]


def _any_of(column, values, lookup=None):
    """SQL for ``column`` equal to any of ``values``, or to what ``lookup`` (``SELECT x FROM t
    WHERE k``) finds for them. One value is an equality, which SQLite walks by its index."""
    test = "= ?" if len(values) == 1 else f"IN ({_marks(values)})"
    if lookup:
        return f"{column} {'=' if len(values) == 1 else 'IN'} ({lookup} {test})"
    return f"{column} {test}"


def _by_key(key, include_drafts):
    """The condition naming the article ``key`` (an id or a slug; published only, unless asked)
    and its parameter, or None when it is an id too large to name any article."""
    if key.isascii() and key.isdigit():
        if int(key) > MAX_ID:
            return None
        where, value = "a.id = ?", int(key)
    else:
        where, value = "a.slug = ?", key
    if not include_drafts:
        where += f" AND {PUBLISHED_ONLY}"
    return where, value


def article(key, include_drafts=False):
    """The article whose id or slug is ``key`` (published only, unless asked), as an
    :class:`ArticleRow`, or None."""
    condition = _by_key(key, include_drafts)
    if condition is None:
        return None
    where, value = condition
    rows = _rows(
        "SELECT a.id, a.version, coalesce(a.modified_at, a.updated_at), a.card,"
        " coalesce(b.body_html, ''),"
        " coalesce(b.body_text, '') FROM article a LEFT JOIN article_body b ON b.article_id = a.id"
        f" WHERE {where}",
        [value],
    )
    if not rows:
        return None
    id_, version, modified_at, card, body_html, body_text = rows[0]
    return ArticleRow(id_, version, _timestamp(modified_at), card, body_html, body_text)


def version(key, include_drafts=False):
    """``(id, version)`` of the article whose id or slug is ``key`` (published only, unless
    asked), or None."""
    condition = _by_key(key, include_drafts)
    if condition is None:
        return None
    where, value = condition
    rows = _rows(f"SELECT a.id, a.version FROM article a WHERE {where}", [value])
    return rows[0] if rows else None


def cards(ids, include_drafts=False):
    """The cards of the published ones of ``ids`` (all of them with drafts), by id."""
    ids = list(ids)
    if not ids:
        return {}
    where = f"a.id IN ({_marks(ids)})"
    if not include_drafts:
        where += f" AND {PUBLISHED_CHECK}"
    return dict(_rows(f"SELECT a.id, a.card FROM article a WHERE {where}", ids))


def bodies(ids):
    """``{id: (body_html, body_text)}`` of the articles ``ids`` (a missing body is empty)."""
    ids = list(ids)
    found = {}
    if ids:
        sql = f"SELECT article_id, body_html, body_text FROM article_body WHERE article_id IN ({_marks(ids)})"
        found = {article_id: (html, text) for article_id, html, text in _rows(sql, ids)}
    return {article_id: found.get(article_id, ("", "")) for article_id in ids}


def bodies_that_fit(ids, budget):
    """How many of the articles ``ids``, in their order, have bodies (HTML and text) of
    ``budget`` bytes or less in all (in UTF-8); at least one, so a page always moves on. An id
    of None stands for an item without a body. PostgreSQL tells a long body's length without
    unpacking it; SQLite reads the body for it. (Another write may change a body between this
    and the page's read: the budget is a bound on what a page asks for, not an exact one.)"""
    ids = list(ids)
    wanted = [article_id for article_id in ids if article_id is not None]
    if not wanted:
        return len(ids)
    size = (
        "octet_length(body_html) + octet_length(body_text)"
        if is_postgres()
        else "length(CAST(body_html AS BLOB)) + length(CAST(body_text AS BLOB))"
    )
    sql = f"SELECT article_id, {size} FROM article_body WHERE article_id IN ({_marks(wanted)})"
    sizes = dict(_rows(sql, wanted))
    total = 0
    for count, article_id in enumerate(ids):
        total += sizes.get(article_id) or 0
        if total > budget:
            return max(count, 1)
    return len(ids)


def _text(alias):
    """SQL for the text the article ``alias`` carries: the article it copies, or itself."""
    return f"COALESCE({alias}.duplicate_of_id, {alias}.id)"


def related(article_id, limit, include_drafts=False, after=None):
    """Articles related to ``article_id``, editorial first, then by score: :class:`RelatedRow`;
    those past ``after`` (a row's :attr:`RelatedRow.sort_key`) when given.

    Computed relations name each text once: not the article's own (its copies, the article it
    copies, that one's other copies: ``duplicate_of``), and of the copies of another text the
    best alone. The stories' worker marks copies after the relations may have been computed,
    so this is read, not stored. A reader has read a text once already. An editor's relation
    is read whatever it names, and a computed relation to a text an editor's relation the reader
    sees names is left out. A computed relation names a published article (relations are
    computed among those): one whose article was unpublished since is left out for every
    reader; an editor's relation to a draft is read by those who see drafts."""
    text = _text("a")
    published = PUBLISHED_ONLY
    if include_drafts:
        published = f"({PUBLISHED_ONLY} OR r.origin = '{EDITORIAL}')"
    edited = (
        "SELECT 1 FROM relation e JOIN article ea ON ea.id = e.related_id"
        f" WHERE e.article_id = r.article_id AND e.origin = '{EDITORIAL}'"
        f" AND {_text('ea')} = {text}" + ("" if include_drafts else " AND ea.status = 'published'")
    )
    listed = (
        "SELECT a.id, a.card, r.kind, r.origin, r.score, r.reasons, a.language,"
        " r.id AS relation_id, ROW_NUMBER() OVER ("
        f"PARTITION BY r.origin, CASE WHEN r.origin = '{EDITORIAL}' THEN r.id ELSE {text} END"
        " ORDER BY r.score DESC, r.id) AS nth"
        " FROM relation r JOIN article a ON a.id = r.related_id"
        " JOIN article s ON s.id = r.article_id"
        f" WHERE r.article_id = ? AND {published}"
        f" AND (r.origin = '{EDITORIAL}'"
        f" OR ({text} <> {_text('s')} AND NOT EXISTS ({edited})))"
    )
    condition, params = "", [article_id]
    if after is not None:
        origin, score, relation_id = after
        # The order's directions differ, so no row comparison: each step spelled out. The
        # score is compared as the column's type (REAL: a float4 on PostgreSQL).
        condition = (
            " AND (origin < ? OR (origin = ? AND (score < CAST(? AS REAL)"
            " OR (score = CAST(? AS REAL) AND relation_id > ?))))"
        )
        params += [origin, origin, score, score, relation_id]
    sql = (
        "SELECT id, card, kind, origin, score, reasons, language, relation_id"
        f" FROM ({listed}) listed WHERE nth = 1{condition}"
        # 'editorial' sorts after 'computed': descending puts editorial relations first.
        " ORDER BY origin DESC, score DESC, relation_id LIMIT ?"
    )
    return [RelatedRow(*row) for row in _rows(sql, [*params, limit])]
