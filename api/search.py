"""``GET /v1/search``: search over title, excerpt and body by words, by meaning, or both."""

from flask import current_app
from flask.views import MethodView

from models import embeddings, hybrid, reading
from models import search as search_index
from models.base import time_limit
from models.highlight import highlight
from models.query import QueryError, parse_query
from schemas.articles import (
    CARD_FIELDS,
    HIT_FIELDS,
    SearchArgs,
    SearchPageSchema,
    hit_part_schema,
)

from . import paging
from .arguments import Blueprint
from .articles import article_filters
from .documents import document, fieldset, shows_body
from .errors import bad_request

blp = Blueprint("search", __name__, url_prefix="/v1", description="Search")


class Hit:
    """What a search hit adds to its article: its score, how it matched, and highlights."""

    __slots__ = ("highlights", "match", "score")

    def __init__(self, score, match, highlights):
        self.score = score
        self.match = match
        self.highlights = highlights


@blp.route("/search")
class Search(MethodView):
    @blp.arguments(SearchArgs(), location="query", as_kwargs=True)
    @blp.response(200, SearchPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, q, limit, sort, mode, cursor=None, field_names=None, facets=None, **filters):
        """Search articles by words, by meaning or both (`mode`), best match first (or newest
        first with `sort=-published_at`).

        Every article filter of the list combines with `q`. Each hit has a `score`, a `match`
        (`keyword`, `semantic` or `both`) and `highlights` of the title and a body snippet,
        with the query's words in `<mark>`.
        """
        fields = fieldset(field_names, HIT_FIELDS)
        try:
            parsed = parse_query(q)
        except QueryError as error:
            bad_request("q", str(error))
        # Keyword cursors keep the tag they had before there were modes.
        tag = f"search{sort}" if mode == "keyword" else f"search{mode}{sort}"
        tag = paging.bound(tag, q=q, **filters)
        # The last hit's sort key, how many hits the pages up to it held, and in hybrid and
        # semantic modes by relevance their ids (see hybrid.after). Cursors made before the
        # count or the ids were kept lack what was added after them.
        key_type = paging.number if sort == "relevance" else paging.timestamp
        types = (key_type, paging.integer, paging.integer)
        kept = mode != "keyword" and sort == "relevance"
        if kept:
            types += (paging.ids,)
        optional = 2 if kept else 1
        after = paging.decode_cursor(cursor, tag, types, optional=optional) if cursor else None
        criteria = article_filters(filters)
        if mode != "keyword":
            embeddings.prepare_index()
        # The last guard of a bounded answer, after the limits on the query's shape: a
        # statement past it is stopped, and answered 503 (api/errors.py).
        with time_limit(current_app.config["NEWSDESK"].statement_timeout_ms):
            extra, served = {}, None
            if mode == "keyword":
                key, seen = (after[:2], after[2]) if after else (None, 0)
                rows, start = search_index.search_page(
                    parsed, sort=sort, after=key, seen=seen, **criteria
                )
                hits = [hybrid.Hit(*row, "keyword") for row in rows.limit(limit + 1)]
                if facets:
                    extra["facets"] = search_index.facets(parsed, dict.fromkeys(facets), **criteria)
                seen = None if start is None else start + limit
            else:
                every = hybrid.ranked(parsed, mode, sort, **criteria)
                rest, served = hybrid.after(every, sort, after)
                hits = rest[: limit + 1]
                if facets:
                    ids = [hit.id for hit in every]
                    extra["facets"] = search_index.facets_among(ids, dict.fromkeys(facets))
                # Hits up to this page's last, and by relevance their ids.
                if kept:
                    seen = len(served) + limit
                    served = [*served, *(hit.id for hit in hits[:limit])]
                else:
                    seen = len(every) - len(rest) + limit
            hits, next_cursor = paging.paginate(
                hits, limit, tag, lambda hit: _cursor_key(hit, sort, seen, served)
            )
            items = _items(hits, parsed, fields)
        return paging.page(items, next_cursor, **extra)


def _cursor_key(hit, sort, seen, served=None):
    """What a cursor after ``hit`` holds: its sort key, how many hits the pages up to it held
    (``seen``; None when a cursor made before it was kept did not say), and the ids of those
    hits (``served``, by relevance in hybrid and semantic modes: see hybrid.after)."""
    key = hybrid.sort_key(hit, sort)
    if seen is not None:
        key = (*key, seen)
    return key if served is None else (*key, paging.id_gaps(served))


def _items(hits, parsed, fields):
    """The page's hits, in hit order: each article's card (or fieldset), score, match and
    highlights."""
    cards = reading.cards([hit.id for hit in hits])
    bodies = reading.bodies(cards)
    rendered = shows_body(fields)  # the body fields, else only the text the snippet reads
    items = []
    for hit in hits:
        card = cards.get(hit.id)
        if card is None:
            continue  # deleted or unpublished between the two queries
        body = bodies[hit.id]
        full = document(card, body if rendered else None)
        highlights = {
            "title": highlight(full["title"], parsed.terms),
            "body": highlight(body[1], parsed.terms, window=30),
        }
        doc = {name: full[name] for name in (CARD_FIELDS if fields is None else fields)}
        part = Hit(round(hit.score, 6), hit.match, highlights)
        items.append({**doc, **hit_part_schema.dump(part)})
    return items
