"""``GET /v1/search``: full-text search over title, excerpt and body."""

from flask.views import MethodView

from models import pages
from models import search as search_index
from models.highlight import highlight
from models.query import QueryError, parse_query
from schemas.articles import LIST_FIELDS, SearchArgs, SearchPageSchema, search_hit_schema

from . import paging
from .articles import article_filters, load_parts, requested_fields
from .errors import bad_request
from .http import Blueprint

blp = Blueprint("search", __name__, url_prefix="/v1", description="Full-text search")


@blp.route("/search")
class Search(MethodView):
    @blp.arguments(SearchArgs(), location="query", as_kwargs=True)
    @blp.response(200, SearchPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, q, limit, sort, cursor=None, field_names=None, facets=None, **filters):
        """Search articles, best match first (or newest first with `sort=-published_at`).

        Every article filter of the list combines with `q`. Each hit has a `score` and
        `highlights` of the title and a body snippet, with matches in `<mark>`.
        """
        fields = requested_fields(field_names, LIST_FIELDS)
        try:
            parsed = parse_query(q)
        except QueryError as error:
            bad_request("q", str(error))
        types = (paging.number if sort == "relevance" else paging.timestamp, paging.integer)
        after = paging.decode_cursor(cursor, f"search{sort}", types) if cursor else None
        criteria = article_filters(filters)
        hits, next_cursor = paging.paginate(
            search_index.search(parsed, sort=sort, after=after, **criteria).limit(limit + 1),
            limit,
            f"search{sort}",
            lambda hit: (hit[1] if sort == "relevance" else hit[2], hit[0]),
        )
        articles = load_parts(_articles(hits, parsed), fields)
        extra = {}
        if facets:
            extra["facets"] = search_index.facets(parsed, dict.fromkeys(facets), **criteria)
        data = search_hit_schema(fields).dump(articles, many=True)
        return paging.page_response(data, next_cursor, **extra)


def _articles(hits, parsed):
    """The articles of a page of hits, in hit order, with score and highlights."""
    ids = [hit[0] for hit in hits]
    articles = pages.by_ids(ids)
    pages.attach_bodies(list(articles.values()))
    ordered = []
    for article_id, score, _ in hits:
        article = articles.get(article_id)
        if article is None:
            continue  # deleted or unpublished between the two queries
        article.score = round(score, 6)
        article.highlights = {
            "title": highlight(article.title, parsed.terms),
            "body": highlight(article.body.body_text, parsed.terms, window=30),
        }
        ordered.append(article)
    return ordered
