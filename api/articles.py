"""Articles: the newest-first list, one article, and its related articles."""

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from models import Article, Relation
from schemas.articles import (
    ARTICLE_FIELDS,
    BODY_FIELDS,
    LIST_FIELDS,
    ArticlePageSchema,
    ArticleQueryArgs,
    ArticleSchema,
    FieldsArgs,
    RelatedArgs,
    RelatedPageSchema,
    article_schema,
    unknown_fields,
)

from . import paging
from .errors import bad_request
from .http import json_response

blp = Blueprint("articles", __name__, url_prefix="/v1/articles", description="News articles")


def requested_fields(names, default):
    """The sparse fieldset asked for with ``fields=`` (a tuple), or ``default``; 400 if unknown."""
    if not names:
        return default
    unknown = unknown_fields(names)
    if unknown:
        bad_request("fields", "Unknown field(s): " + ", ".join(unknown) + ".")
    return tuple(dict.fromkeys(names))


def load_parts(articles, fields):
    """Fetch tags and bodies for a page of articles only when the fieldset shows them."""
    if "tags" in fields:
        Article.attach_tags(articles)
    if any(name in fields for name in BODY_FIELDS):
        Article.attach_bodies(articles)
    return articles


def get_article_or_404(key):
    article = Article.lookup(key)
    if article is None:
        abort(404, message=f"No article with id or slug {key!r}.")
    return article


@blp.route("")
class ArticleList(MethodView):
    @blp.arguments(ArticleQueryArgs, location="query", as_kwargs=True)
    @blp.response(200, ArticlePageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, sort, cursor=None, field_names=None, **filters):
        """List published articles, newest first.

        Filters combine with AND; each comma list matches any of its values.
        """
        fields = requested_fields(field_names, LIST_FIELDS)
        after = paging.decode_cursor(cursor, sort, (paging.timestamp, paging.integer)) if cursor else None
        query = Article.listing(
            sort=sort,
            after=after,
            sources=filters.get("source") or (),
            tags=filters.get("tag") or (),
            languages=filters.get("language") or (),
            published_after=filters.get("published_after"),
            published_before=filters.get("published_before"),
            updated_since=filters.get("updated_since"),
        )
        articles, next_cursor = paging.paginate(query, limit, sort, lambda a: a.sort_key(sort))
        data = article_schema(fields).dump(load_parts(articles, fields), many=True)
        return paging.page_response(data, next_cursor)


@blp.route("/<key>")
class ArticleDetail(MethodView):
    @blp.arguments(FieldsArgs, location="query", as_kwargs=True)
    @blp.response(200, ArticleSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, field_names=None):
        """Get one article, with its body, by id or slug."""
        fields = requested_fields(field_names, ARTICLE_FIELDS)
        article = get_article_or_404(key)
        load_parts([article], fields)
        return json_response(article_schema(fields).dump(article), last_modified=article.updated_at)


@blp.route("/<key>/related")
class RelatedArticles(MethodView):
    @blp.arguments(RelatedArgs, location="query", as_kwargs=True)
    @blp.response(200, RelatedPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, limit, field_names=None):
        """Related articles, best first: editorial relations, then computed ones.

        Each item carries `relation` with its kind, origin, score and reasons.
        """
        fields = requested_fields(field_names, LIST_FIELDS)
        article = get_article_or_404(key)
        related = load_parts(Relation.for_article(article.id, limit), fields)
        return json_response({"data": article_schema(fields, related=True).dump(related, many=True)})
