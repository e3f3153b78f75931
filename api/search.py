"""``GET /v1/search``: full-text search over title, excerpt and body."""

from flask import current_app
from flask.views import MethodView

from models import reading
from models import search as search_index
from models.base import time_limit
from models.highlight import highlight
from models.query import QueryError, parse_query
from schemas.articles import CARD_FIELDS, SearchArgs, SearchPageSchema, hit_part_schema

from . import paging
from .arguments import Blueprint
from .articles import article_filters
from .documents import document, fieldset
from .errors import bad_request

blp = Blueprint("search", __name__, url_prefix="/v1", description="Full-text search")


class Hit:
    """What a search hit adds to its article: its score and highlights."""

    __slots__ = ("highlights", "score")

    def __init__(self, score, highlights):
        self.score = score
        self.highlights = highlights


@blp.route("/search")
class Search(MethodView):
    @blp.arguments(SearchArgs, location="query", as_kwargs=True)
    @blp.response(200, SearchPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, q, limit, sort, cursor=None, field_names=None, facets=None, **filters):
        """Search articles, best match first (or newest first with `sort=-published_at`).

        Every article filter of the list combines with `q`. Each hit has a `score` and
        `highlights` of the title and a body snippet, with matches in `<mark>`.
        """
        fields = fieldset(field_names)
        try:
            parsed = parse_query(q)
        except QueryError as error:
            bad_request("q", str(error))
        types = (paging.number if sort == "relevance" else paging.timestamp, paging.integer)
        after = paging.decode_cursor(cursor, f"search{sort}", types) if cursor else None
        criteria = article_filters(filters)
        # The last guard of a bounded answer, after the limits on the query's shape: a
        # statement past it is stopped, and answered 503 (api/errors.py).
        with time_limit(current_app.config["NEWSDESK"].statement_timeout_ms):
            hits, next_cursor = paging.paginate(
                search_index.search(parsed, sort=sort, after=after, **criteria).limit(limit + 1),
                limit,
                f"search{sort}",
                lambda hit: (hit[1] if sort == "relevance" else hit[2], hit[0]),
            )
            extra = {}
            if facets:
                extra["facets"] = search_index.facets(parsed, dict.fromkeys(facets), **criteria)
            items = _items(hits, parsed, fields)
        return paging.page(items, next_cursor, **extra)


def _items(hits, parsed, fields):
    """The page's hits, in hit order: each article's card (or fieldset), score and highlights."""
    ids = [hit[0] for hit in hits]
    cards = reading.cards(ids)
    bodies = reading.bodies(cards)
    items = []
    for article_id, score, _ in hits:
        card = cards.get(article_id)
        if card is None:
            continue  # deleted or unpublished between the two queries
        body = bodies[article_id]
        full = document(card, body)
        highlights = {
            "title": highlight(full["title"], parsed.terms),
            "body": highlight(body[1], parsed.terms, window=30),
        }
        doc = {name: full[name] for name in fields or CARD_FIELDS}
        items.append({**doc, **hit_part_schema.dump(Hit(round(score, 6), highlights))})
    return items
