"""Articles: the newest-first list, one article, its related articles, and writing them."""

from flask import request
from flask.views import MethodView
from flask_smorest import abort

from models import DRAFT, EDITORIAL, Article, Relation, ingest, reading
from models.base import locked, runs_again_on_conflict
from models.ingest import writing
from schemas.articles import (
    RELATION_FIELDS,
    ArticleInSchema,
    ArticlePageSchema,
    ArticleQueryArgs,
    ArticleSchema,
    FieldsArgs,
    RelatedArgs,
    RelatedPageSchema,
    RelationInSchema,
    relation_part_schema,
)

from . import caching, paging
from .arguments import Blueprint
from .auth import check_scope, drafts_shown, requires
from .documents import bodies, document, fieldset, list_item, page_limit
from .errors import bad_request
from .responses import location, rendered

blp = Blueprint("articles", __name__, url_prefix="/v1/articles", description="News articles")
#: Related items a relation's POST answers with (the first page of the list).
RELATIONS_SHOWN = 50


def article_filters(args):
    """The article filters among a request's parsed query arguments, as ``reading.list_cards``
    and ``Article.filtered`` take them (shared by the list, search and feeds)."""
    return {
        "sources": args.get("source") or (),
        "tags": args.get("tag") or (),
        "languages": args.get("language") or (),
        "published_after": args.get("published_after"),
        "published_before": args.get("published_before"),
        "updated_since": args.get("updated_since"),
    }


def found(value, key):
    if value is None:
        abort(404, message=f"No article with id or slug {key!r}.")
    return value


def article_id_or_404(key, include_drafts=True):
    """The id of the article ``key`` (an id or slug) names; drafts too unless asked not to."""
    return found(reading.version(key, include_drafts=include_drafts), key)[0]


def write_answer(saved, created=False):
    """The answer to a write: the article as stored, with its new ETag (and ``Location`` when
    created)."""
    article = saved.article
    headers = {"ETag": f'"{caching.resource_tag("article", article)}"'}
    if created:
        headers.update(location("articles.ArticleDetail", key=article.id))
    doc = document(article.card, (saved.body_html, saved.body_text))
    return rendered(doc, 201 if created else 200, headers)


@blp.route("")
class ArticleList(MethodView):
    @blp.arguments(ArticleQueryArgs(), location="query", as_kwargs=True)
    @blp.response(200, ArticlePageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    def get(self, limit, sort, status, cursor=None, field_names=None, **filters):
        """List published articles, newest first (or drafts, to keys with `write`).

        Filters combine with AND; each comma list matches any of its values.
        """
        if status == DRAFT:
            check_scope("write")
        fields = fieldset(field_names)
        tag = paging.bound(sort, status=status, **filters)
        after = (
            paging.decode_cursor(cursor, tag, (paging.timestamp, paging.integer))
            if cursor
            else None
        )
        rows = reading.list_cards(
            sort=sort, after=after, limit=limit + 1, status=status, **article_filters(filters)
        )
        limit = page_limit([key[1] for _, key in rows], limit, fields)
        rows, next_cursor = paging.paginate(rows[: limit + 1], limit, tag, lambda row: row[1])
        shown = bodies([key[1] for _, key in rows], fields)
        return paging.page(
            [list_item(card, fields, shown.get(key[1])) for card, key in rows], next_cursor
        )

    @requires(blp, "write")
    @blp.arguments(ArticleInSchema())
    @blp.response(201, ArticleSchema)
    @blp.alt_response(
        200, schema=ArticleSchema, description="Same (source, external_id): updated", success=True
    )
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def post(self, data):
        """Create an article, or update the one with the same (source, external_id).

        Re-posting the same content changes nothing and answers 200 with the stored article.
        With `If-Match`, the article is only updated, and only if it still has that ETag (412
        otherwise, and when there is no such article); with `If-None-Match: *`, the article is
        only created (412 when it exists). The `external_id` is what makes a retry safe: an
        `Idempotency-Key` without one is a 400.
        """
        if "Idempotency-Key" in request.headers and data.get("external_id") is None:
            # Ignored, a retry of a post without one made a second article.
            message = (
                "An article is posted again safely by its external_id, not an Idempotency-Key:"
                " send the publisher's id for it (or one of your own), and a retry updates the"
                " article it made instead of making another."
            )
            abort(400, message=message, errors={"Idempotency-Key": [message]})
        saved = ingest.save(data, check=caching.if_match_check("article"))
        return write_answer(saved, created=saved.outcome == "created")


@blp.route("/<key>")
class ArticleDetail(MethodView):
    @blp.arguments(FieldsArgs(), location="query", as_kwargs=True)
    @blp.response(200, ArticleSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, field_names=None):
        """Get one article, with its body, by id or slug."""
        fields = fieldset(field_names)
        row = found(reading.article(key, include_drafts=drafts_shown()), key)
        caching.tagged("article", row, request.query_string.decode())
        response = rendered(document(row.card, (row.body_html, row.body_text), fields))
        response.last_modified = row.modified_at
        return response

    @requires(blp, "write")
    @blp.arguments(ArticleInSchema())
    @blp.response(200, ArticleSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def put(self, data, key):
        """Replace an article. Optional fields left out are reset (slug and published_at kept).

        With `If-Match`, only if the article still has that ETag.
        """
        article_id = article_id_or_404(key)
        return write_answer(
            ingest.save(data, article_id=article_id, check=caching.if_match_check("article"))
        )

    @requires(blp, "write")
    @blp.arguments(ArticleInSchema(partial=True))
    @blp.response(200, ArticleSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def patch(self, data, key):
        """Update some fields of an article; with `If-Match`, only if it still has that ETag."""
        article_id = article_id_or_404(key)
        saved = ingest.save(
            data, article_id=article_id, partial=True, check=caching.if_match_check("article")
        )
        return write_answer(saved)

    @requires(blp, "write")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def delete(self, key):
        """Delete an article, with its comments and relations; /v1/changes reports it deleted.

        With `If-Match`, only if the article still has that ETag.
        """
        ingest.delete(article_id_or_404(key), check=caching.if_match_check("article"))


def related_items(rows, fields):
    """The items of a related list: each article's card (or fieldset) with its relation."""
    shown = bodies([row.id for row in rows], fields)
    return [
        {
            **document(row.card, shown.get(row.id), fields),
            **relation_part_schema.dump({"relation": row}),
        }
        for row in rows
    ]


@blp.route("/<key>/related")
class RelatedArticles(MethodView):
    @blp.arguments(RelatedArgs(), location="query", as_kwargs=True)
    @blp.response(200, RelatedPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, limit, cursor=None, field_names=None):
        """Related articles, best first: editorial relations, then computed ones.

        Each item carries `relation` with its kind, origin, score and reasons. Computed
        relations name published articles; keys with `write` also see editorial relations to
        drafts.
        """
        drafts = drafts_shown()
        article_id = article_id_or_404(key, include_drafts=drafts)
        fields = fieldset(field_names, RELATION_FIELDS)
        return related_page(article_id, limit, drafts, cursor, fields)


def related_page(article_id, limit, drafts, cursor=None, fields=None):
    """A page of an article's related list, as :func:`paging.page` gives it."""
    tag = f"related:{article_id}"  # a cursor of one article's list is no other's
    types = (paging.string, paging.number, paging.integer)
    after = paging.decode_cursor(cursor, tag, types) if cursor else None
    rows = reading.related(article_id, limit + 1, drafts, after)
    limit = page_limit([row.id for row in rows], limit, fields)
    rows, next_cursor = paging.paginate(rows[: limit + 1], limit, tag, lambda row: row.sort_key)
    return paging.page(related_items(rows, fields), next_cursor)


@blp.route("/<key>/relations")
class Relations(MethodView):
    @requires(blp, "write")
    @blp.arguments(RelationInSchema())
    @blp.response(201, RelatedPageSchema)
    @blp.alt_response(
        200, schema=RelatedPageSchema, description="The relation existed: updated", success=True
    )
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @runs_again_on_conflict  # the pair related meanwhile (PostgreSQL): the next run updates it
    def post(self, data, key):
        """Relate another article to this one by hand (editorial relations come first).

        Relating the same pair again updates the kind (200); there is never a second row. A
        computed relation of the pair becomes this one (201). A relation has no answer of its
        own, so no ETag: `If-None-Match: *` relates the pair only if it has no editorial
        relation yet, `If-Match: *` only if it has one (412 otherwise; any other `If-Match`
        fails).
        """
        article_id = article_id_or_404(key)
        other_id = data["article_id"]
        if other_id == article_id:
            bad_request("article_id", "An article cannot relate to itself.", status=422)
        pair = (Relation.article == article_id) & (Relation.related == other_id)
        check = caching.if_match_check("relation", tag_of=lambda _: None)
        with writing():
            if not Article.select().where(Article.id == other_id).exists():
                bad_request("article_id", f"No article with id {other_id}.", status=422)
            stored = stored_relation(pair)
            existed = stored is not None and stored.origin == EDITORIAL
            if check is not None:
                check(stored if existed else None)
            values = {"kind": data["kind"], "origin": EDITORIAL, "score": 1.0, "reasons": ""}
            if stored is None:
                Relation.insert(article=article_id, related=other_id, **values).execute()
            else:
                Relation.update(**values).where(pair).execute()
        # The list's first page, as GET .../related shows it to this key (its next_cursor
        # goes there: no Link, which would name this URL).
        body, _ = related_page(article_id, RELATIONS_SHOWN, drafts=True)
        if existed:
            return body, 200
        # What names the relation created (what removes it: it has no answer of its own).
        return body, 201, location("articles.RelationDetail", key=article_id, other_id=other_id)


def stored_relation(pair):
    """The relation of ``pair`` (a condition on both its articles), editorial or computed,
    locked until the write ends (a computed one is not replaced by the worker meanwhile), or
    None."""
    return locked(Relation.select(Relation.id, Relation.origin).where(pair), Relation).first()


@blp.route("/<key>/relations/<int(max=9223372036854775807):other_id>")
class RelationDetail(MethodView):
    @requires(blp, "write")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def delete(self, key, other_id):
        """Remove the editorial relation from this article to another (404 when it has none:
        computed relations are the worker's, which works the article's list out again, where
        the other article may come back as a computed one).

        A relation has no answer of its own, so no ETag: `If-Match: *` removes it if it
        exists, any other `If-Match` fails (412). A relation that does not exist is a 404
        whatever the preconditions (RFC 9110 13.2.1), as an article is.
        """
        article_id = article_id_or_404(key)
        pair = (
            (Relation.article == article_id)
            & (Relation.related == other_id)
            & (Relation.origin == EDITORIAL)
        )
        check = caching.if_match_check("relation", tag_of=lambda _: None)
        missing = f"Article {article_id} has no editorial relation to {other_id}."
        with writing() as touched:
            relation = Relation.select().where(pair).first()
            if relation is None:
                abort(404, message=missing)
            if check is not None:
                check(relation)
            if not Relation.delete().where(pair).execute():  # another removed it meanwhile
                abort(404, message=missing)
            touched.articles.add(article_id)  # its computed list, without the editor's
