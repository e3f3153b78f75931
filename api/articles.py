"""Articles: the newest-first list, one article, and its related articles."""

from flask import current_app, url_for
from flask.views import MethodView
from flask_smorest import abort

from models import EDITORIAL, Article, Relation, ingest, pages
from models.ingest import writing
from schemas.articles import (
    ARTICLE_FIELDS,
    BODY_FIELDS,
    LIST_FIELDS,
    ArticleInSchema,
    ArticlePageSchema,
    ArticleQueryArgs,
    ArticleSchema,
    FieldsArgs,
    RelatedArgs,
    RelatedPageSchema,
    RelationInSchema,
    article_schema,
    dump_relation,
    unknown_fields,
)

from . import paging
from .auth import current_key, requires
from .errors import bad_request
from .http import Blueprint, created, json_response, json_text

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
        pages.attach_tags(articles)
    if any(name in fields for name in BODY_FIELDS):
        pages.attach_bodies(articles)
    return articles


def article_filters(args):
    """The article filters among a request's parsed query arguments, as ``pages.listing`` and
    ``Article.filtered`` take them (shared by the list, search and feeds)."""
    return {
        "sources": args.get("source") or (),
        "tags": args.get("tag") or (),
        "languages": args.get("language") or (),
        "published_after": args.get("published_after"),
        "published_before": args.get("published_before"),
        "updated_since": args.get("updated_since"),
    }


def _drafts_shown(include_drafts):
    caller = current_key()
    return include_drafts or (caller is not None and caller.grants("write"))


def _found(article, key):
    if article is None:
        abort(404, message=f"No article with id or slug {key!r}.")
    return article


def related_items(related):
    """The items of a related list: each article's JSON with its ``relation``."""
    loads = current_app.json.loads
    return [{**loads(text), "relation": dump_relation(relation)} for text, relation in related]


def get_article_or_404(key, include_drafts=False):
    """The article ``key`` names, as a model to write; drafts only for callers that may write,
    or when asked."""
    return _found(Article.lookup(key, include_drafts=_drafts_shown(include_drafts)), key)


def written(article, status=200):
    """The full article as a write answers it; 201 adds ``Location``."""
    load_parts([article], ARTICLE_FIELDS)
    data = article_schema(None).dump(article)
    if status == 201:
        return created(data, url_for("articles.ArticleDetail", key=article.id))
    return json_response(data)


@blp.route("")
class ArticleList(MethodView):
    @blp.arguments(ArticleQueryArgs(), location="query", as_kwargs=True)
    @blp.response(200, ArticlePageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, sort, cursor=None, field_names=None, **filters):
        """List published articles, newest first.

        Filters combine with AND; each comma list matches any of its values.
        """
        fields = requested_fields(field_names, LIST_FIELDS)
        after = paging.decode_cursor(cursor, sort, (paging.timestamp, paging.integer)) if cursor else None
        criteria = article_filters(filters)
        rows = pages.listing_json(fields, sort=sort, after=after, limit=limit + 1, **criteria)
        cards, next_cursor = paging.paginate(rows, limit, sort, lambda row: row[1])
        return paging.page_response([json_text(card) for card, _ in cards], next_cursor)

    @requires(blp, "write")
    @blp.arguments(ArticleInSchema())
    @blp.response(201, ArticleSchema)
    @blp.alt_response(200, schema=ArticleSchema, description="Same (source, external_id): updated")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Create an article, or update the one with the same (source, external_id).

        Re-posting the same content changes nothing and answers 200 with the stored article.
        """
        article, outcome = ingest.save(data)
        return written(article, 201 if outcome == "created" else 200)


@blp.route("/<key>")
class ArticleDetail(MethodView):
    @blp.arguments(FieldsArgs(), location="query", as_kwargs=True)
    @blp.response(200, ArticleSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, field_names=None):
        """Get one article, with its body, by id or slug."""
        fields = requested_fields(field_names, ARTICLE_FIELDS)
        text, updated_at = _found(pages.lookup_json(key, fields, _drafts_shown(False)), key)
        return json_response(json_text(text), last_modified=updated_at)

    @requires(blp, "write")
    @blp.arguments(ArticleInSchema())
    @blp.response(200, ArticleSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def put(self, data, key):
        """Replace an article. Optional fields left out are reset (slug and published_at kept)."""
        article, _ = ingest.save(data, article=get_article_or_404(key, include_drafts=True))
        return written(article)

    @requires(blp, "write")
    @blp.arguments(ArticleInSchema(partial=True))
    @blp.response(200, ArticleSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, data, key):
        """Update some fields of an article."""
        article, _ = ingest.save(data, article=get_article_or_404(key, include_drafts=True), partial=True)
        return written(article)

    @requires(blp, "write")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, key):
        """Delete an article, with its comments and relations; /v1/changes reports it deleted."""
        ingest.delete(get_article_or_404(key, include_drafts=True))


@blp.route("/<key>/related")
class RelatedArticles(MethodView):
    @blp.arguments(RelatedArgs(), location="query", as_kwargs=True)
    @blp.response(200, RelatedPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, limit, field_names=None):
        """Related articles, best first: editorial relations, then computed ones.

        Each item carries `relation` with its kind, origin, score and reasons.
        """
        fields = requested_fields(field_names, LIST_FIELDS)
        related = _found(pages.related_json(key, fields, limit, _drafts_shown(False)), key)
        return json_response({"data": related_items(related)})


@blp.route("/<key>/relations")
class Relations(MethodView):
    @requires(blp, "write")
    @blp.arguments(RelationInSchema())
    @blp.response(201, RelatedPageSchema)
    @blp.alt_response(200, schema=RelatedPageSchema, description="The relation existed: updated")
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, data, key):
        """Relate another article to this one by hand (editorial relations come first).

        Relating the same pair again updates the kind; there is never a second row.
        """
        article = get_article_or_404(key, include_drafts=True)
        other_id = data["article_id"]
        if other_id == article.id:
            bad_request("article_id", "An article cannot relate to itself.", status=422)
        if not Article.select().where(Article.id == other_id).exists():
            bad_request("article_id", f"No article with id {other_id}.", status=422)
        with writing():
            values = {"kind": data["kind"], "origin": EDITORIAL, "score": 1.0, "reasons": ""}
            updated = (
                Relation.update(**values)
                .where((Relation.article == article.id) & (Relation.related == other_id))
                .execute()
            )
            if not updated:
                Relation.insert(article=article.id, related=other_id, **values).execute()
        related = pages.related_json(str(article.id), LIST_FIELDS, 50, include_drafts=True)
        return json_response({"data": related_items(related)}), 200 if updated else 201


@blp.route("/<key>/relations/<int(max=9223372036854775807):other_id>")
class RelationDetail(MethodView):
    @requires(blp, "write")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, key, other_id):
        """Remove the relation from this article to another."""
        article = get_article_or_404(key, include_drafts=True)
        removed = (
            Relation.delete()
            .where((Relation.article == article.id) & (Relation.related == other_id))
            .execute()
        )
        if not removed:
            abort(404, message=f"Article {article.id} has no relation to {other_id}.")
