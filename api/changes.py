"""``GET /v1/changes``: delta sync for offline apps."""

from flask.views import MethodView

from models import Article, Change, reading
from schemas.articles import ChangeArgs, ChangePageSchema

from . import paging
from .arguments import Blueprint
from .documents import document, fieldset, shows_body

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
        fields = fieldset(field_names)
        after = (
            paging.decode_cursor(since, "changes", (paging.integer,), name="since")[0]
            if since
            else 0
        )
        changes = list(Change.feed(after).limit(limit + 1))
        has_more = len(changes) > limit
        changes = changes[:limit]
        cards = reading.cards(c.article_id for c in changes if c.op == "upsert")
        bodies = reading.bodies(cards) if fields is None or shows_body(fields) else {}
        for change in changes:
            card = cards.get(change.article_id)
            if change.op == "upsert" and card is not None:
                change.article = document(card, bodies.get(change.article_id), fields)
            else:
                # Unpublished or deleted after this change was logged: its tombstone follows.
                if change.reason is None:
                    change.reason = "unpublished" if _exists(change.article_id) else "deleted"
                change.op, change.article = "delete", None
        last = changes[-1].id if changes else after
        next_since = paging.encode_cursor("changes", [last])
        body = {"data": changes, "has_more": has_more, "next_since": next_since}
        return body, paging.next_link(next_since if has_more else None, name="since")


def _exists(article_id):
    return Article.select().where(Article.id == article_id).exists()
