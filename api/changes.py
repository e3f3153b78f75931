"""``GET /v1/changes``: delta sync for offline apps."""

from flask.views import MethodView
from flask_smorest import abort

from models import Article, Change, reading
from models.changes import etag_epoch, token_holds
from schemas.articles import ChangeArgs, ChangePageSchema

from . import paging
from .arguments import Blueprint
from .documents import PAGE_BODY_BYTES, document, fieldset, shows_body

#: Why a token of another database names nothing here.
GONE = (
    "This token is of another database (this one was restored from a backup, or made again):"
    " the changes since it cannot be told. Sync again from the start, without since."
)
#: Why a token of a release long gone names nothing here.
TOO_OLD = (
    "This token was given by a release of Newsdesk too old to go on from: the changes since"
    " it cannot be told. Sync again from the start, without since."
)

blp = Blueprint("changes", __name__, url_prefix="/v1", description="Delta sync")


@blp.route("/changes")
class Changes(MethodView):
    @blp.arguments(ChangeArgs(), location="query", as_kwargs=True)
    @blp.response(200, ChangePageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(410, response="GONE")
    def get(self, limit, since=None, field_names=None):
        """Changes to articles since a token, oldest first: upserts carry the article.

        Start without `since` and keep passing back `next_since`. A page with bodies ends
        early, with `has_more`, once they pass 8 MiB. Replaying the feed from the
        start leaves a client with exactly the server's published articles. A token of another
        database (this one restored from a backup, or made again) is a 410: the changes since
        it are not this database's to tell; start again without `since`.
        """
        fields = fieldset(field_names)
        if since and paging.signed_before_cursor_keys(since):
            abort(410, message=TOO_OLD)  # its ids may not hold
        after, database = (
            paging.decode_cursor(
                since, "changes", (paging.integer, paging.string), name="since", optional=1
            )
            if since
            else (0, None)
        )
        if since and not token_holds(database):
            abort(410, message=GONE)
        changes = list(Change.feed(after).limit(limit + 1))
        has_more = len(changes) > limit
        changes = changes[:limit]
        with_bodies = fields is None or shows_body(fields)
        if with_bodies:  # what fits PAGE_BODY_BYTES; the rest on the next page
            upserts = [c.article_id if c.op == "upsert" else None for c in changes]
            fit = reading.bodies_that_fit(upserts, PAGE_BODY_BYTES)
            has_more, changes = has_more or fit < len(changes), changes[:fit]
        cards = reading.cards(c.article_id for c in changes if c.op == "upsert")
        bodies = reading.bodies(cards) if with_bodies else {}
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
        next_since = paging.encode_cursor("changes", [last, etag_epoch()])
        body = {"data": changes, "has_more": has_more, "next_since": next_since}
        return body, paging.next_link(next_since if has_more else None, name="since")


def _exists(article_id):
    return Article.select().where(Article.id == article_id).exists()
