"""``GET /v1/changes``: delta sync for offline apps."""

from flask.views import MethodView

from models import Article, Change, pages
from schemas.articles import ARTICLE_FIELDS, ChangeArgs, ChangePageSchema, article_schema
from schemas.common import rfc3339

from . import paging
from .articles import load_parts, requested_fields
from .http import Blueprint, json_response

blp = Blueprint("changes", __name__, url_prefix="/v1", description="Delta sync")


@blp.route("/changes")
class Changes(MethodView):
    @blp.arguments(ChangeArgs(), location="query", as_kwargs=True)
    @blp.response(200, ChangePageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, since=None, field_names=None):
        """Changes to articles since a token, oldest first: upserts carry the article.

        Start without `since` and keep passing back `next_since`. Replaying the feed from the
        start leaves a client with exactly the server's published articles.
        """
        fields = requested_fields(field_names, ARTICLE_FIELDS)
        after = paging.decode_cursor(since, "changes", (paging.integer,), name="since")[0] if since else 0
        changes = list(Change.feed(after).limit(limit + 1))
        has_more = len(changes) > limit
        changes = changes[:limit]
        ids = [c.article_id for c in changes if c.op == "upsert"]
        articles = pages.by_ids(ids)
        load_parts(list(articles.values()), fields)
        schema = article_schema(fields)
        data = []
        for change in changes:
            article = articles.get(change.article_id)
            if change.op == "upsert" and article is not None:
                item = {"op": "upsert", "article": schema.dump(article), "reason": None}
            else:
                # Unpublished or deleted after this change was logged: its tombstone follows.
                reason = change.reason or ("unpublished" if _exists(change.article_id) else "deleted")
                item = {"op": "delete", "article": None, "reason": reason}
            item.update(id=change.article_id, at=rfc3339(change.created_at))
            data.append(item)
        last = changes[-1].id if changes else after
        return json_response(
            {"data": data, "has_more": has_more, "next_since": paging.encode_cursor("changes", [last])}
        )


def _exists(article_id):
    return Article.select().where(Article.id == article_id).exists()
