"""Comments on articles: reading, posting (``comment`` scope) and moderation (``admin``)."""

from flask.views import MethodView
from flask_smorest import abort

from models import PUBLISHED, Article, Comment, SpentIdempotencyKey, webhooks
from models.base import locked, runs_again_on_conflict
from models.comments import VISIBLE
from models.ingest import writing
from schemas.comments import (
    CommentInSchema,
    CommentListArgs,
    CommentModerationSchema,
    CommentPageSchema,
    CommentPostHeaders,
    CommentSchema,
)
from schemas.webhooks import COMMENT_CREATED, COMMENT_MODERATED

from . import caching, paging
from .arguments import Blueprint
from .articles import found
from .auth import caller_may, check_scope, current_key, requires
from .errors import bad_request
from .responses import location

blp = Blueprint("comments", __name__, url_prefix="/v1", description="Readers' comments")


@blp.route("/articles/<key>/comments")
class ArticleComments(MethodView):
    @blp.arguments(CommentListArgs(), location="query", as_kwargs=True)
    @blp.response(200, CommentPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, limit, status, cursor=None):
        """List the comments of an article, oldest first.

        The visible ones; with an admin key, the hidden ones (`status=hidden`) or all
        (`status=all`), for moderation.
        """
        if status != VISIBLE:
            check_scope("admin")
        article = found(Article.lookup(key, include_drafts=caller_may("admin")), key)
        # A cursor of one article's comments is no other's.
        tag = paging.bound(f"comments:{article.id}", status=status)
        types = (paging.timestamp, paging.integer)
        after = paging.decode_cursor(cursor, tag, types) if cursor else None
        query = Comment.of_article(article.id, after, None if status == "all" else status)
        comments, next_cursor = paging.paginate(
            query.limit(limit + 1), limit, tag, lambda c: (c.created_at, c.id)
        )
        return paging.page(as_shown(comments), next_cursor)

    @requires(blp, "comment")
    @blp.arguments(CommentInSchema())
    @blp.arguments(CommentPostHeaders(), location="headers", as_kwargs=True)
    @blp.response(201, CommentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @runs_again_on_conflict  # a deadlock PostgreSQL broke, or a post of the same key: again
    def post(self, data, key, idempotency_key=None):
        """Post a comment (plain text) on a published article, or a reply to one of its comments.

        `If-Match` names no comment yet: 412."""
        caching.check_if_match("comment", None)
        article = Article.lookup(key)
        if article is None:
            abort(404, message=f"No published article with id or slug {key!r}.")
        parent_id = data.get("parent_id")
        with writing() as touched:
            # Locked first: comments posted at once on it are counted one after the other (each
            # count, read in a statement of its own, could miss the other's comment), and its
            # comments are not deleted or hidden meanwhile (their writes lock it first too).
            locked_article = lock_article(article.id)
            if locked_article is None or locked_article.status != PUBLISHED:
                abort(404, message=f"No published article with id or slug {key!r}.")
            if idempotency_key is not None:
                posted = Comment.get_or_none(
                    (Comment.api_key == current_key())
                    & (Comment.idempotency_key == idempotency_key)
                )
                if posted is not None:
                    touched.changed = False  # a retry answered: no answer changed
                    return replayed(posted, article.id, data)
                if deleted := SpentIdempotencyKey.deleted(
                    "comment", current_key().id, idempotency_key
                ):
                    bad_request(
                        "Idempotency-Key",
                        f"This key posted comment {deleted}, deleted since: send a new key to"
                        " post again.",
                        422,
                    )
            if parent_id is not None and not (
                Comment.select()
                .where(
                    (Comment.id == parent_id)
                    & (Comment.article == article.id)
                    & (Comment.status == VISIBLE)
                )
                .exists()
            ):
                # Hidden ones too: whether a comment is hidden is for admins to know.
                bad_request("parent_id", "No visible comment of this article has this id.", 422)
            comment = Comment.create(
                article=article.id, api_key=current_key(), idempotency_key=idempotency_key, **data
            )
            Comment.refresh_counts([article.id])
            touched.events.append(webhooks.comment_event(COMMENT_CREATED, comment))
        headers = location("comments.CommentDetail", comment_id=comment.id)
        return comment, {**headers, **caching.tagged("comment", comment)}


@blp.route("/comments/<int(max=9223372036854775807):comment_id>")
class CommentDetail(MethodView):
    @blp.response(200, CommentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, comment_id):
        """Get one comment (hidden ones only with an admin key)."""
        comment = get_comment_or_404(comment_id)
        parent_id = comment.parent_id
        as_shown([comment])
        # Its parent hidden (or shown again) changes what the comment shows, not its version:
        # an ETag of the same version, of another variant.
        caching.tagged("comment", comment, "" if comment.parent_id == parent_id else "no-parent")
        return comment

    @requires(blp, "admin")
    @blp.arguments(CommentModerationSchema())
    @blp.response(200, CommentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @runs_again_on_conflict  # a deadlock PostgreSQL broke: the write again
    def patch(self, data, comment_id):
        """Moderate a comment: `hidden` removes it from lists and counts, `visible` restores it.

        With `If-Match`, only if the comment still has that ETag.
        """
        with writing() as touched:
            comment = get_comment_or_404(comment_id, for_update=True)
            caching.check_if_match("comment", comment)
            if comment.status == data["status"]:
                return comment, caching.tagged("comment", comment)  # no new version, no event
            Comment.update(status=data["status"], version=Comment.version + 1).where(
                Comment.id == comment.id
            ).execute()
            Comment.refresh_counts([comment.article_id])
            moderated = Comment.get_by_id(comment.id)
            if comment.on_published:  # a draft's activity is no subscriber's to hear of
                touched.events.append(
                    webhooks.comment_event(COMMENT_MODERATED, moderated, action=data["status"])
                )
        return moderated, caching.tagged("comment", moderated)

    @requires(blp, "admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @runs_again_on_conflict  # a deadlock PostgreSQL broke: the write again
    def delete(self, comment_id):
        """Delete a comment for good (its replies stay, no longer marked as replies).

        With `If-Match`, only if the comment still has that ETag.
        """
        with writing() as touched:
            comment = get_comment_or_404(comment_id, for_update=True, deleting=True)
            caching.check_if_match("comment", comment)
            # Its replies lose their parent_id (ON DELETE SET NULL): their answers change.
            Comment.update(version=Comment.version + 1).where(
                Comment.parent == comment.id
            ).execute()
            Comment.delete().where(Comment.id == comment.id).execute()
            SpentIdempotencyKey.spend("comment", comment)  # a retry of its post makes no other
            Comment.refresh_counts([comment.article_id])
            if comment.on_published:
                touched.events.append(
                    webhooks.comment_event(COMMENT_MODERATED, comment, action="deleted")
                )


def as_shown(comments):
    """``comments`` as the caller may see them: a reply to a hidden comment shows no
    ``parent_id`` but to admins (whether a comment is hidden is for admins to know; a reply to a
    deleted one shows none to anyone)."""
    parents = {c.parent_id for c in comments if c.parent_id is not None}
    if parents and not caller_may("admin"):
        hidden = set(
            Comment.select(Comment.id)
            .where(Comment.id.in_(sorted(parents)) & (Comment.status != VISIBLE))
            .tuples()
        )
        for comment in comments:
            if (comment.parent_id,) in hidden:
                comment.parent_id = None  # not saved
    return comments


def replayed(posted, article_id, data):
    """The answer to a post whose Idempotency-Key made the comment ``posted`` already, when the
    post is the same: the first post's answer again, the comment as it was posted (visible, its
    first version: a moderation since is for admins to know); else a 422, nothing stored."""
    if not posted.posted_as(article_id, data):
        bad_request(
            "Idempotency-Key",
            f"This key posted another comment (id {posted.id}): send a new key with a new comment.",
            422,
        )
    posted.status, posted.version = VISIBLE, 1  # not saved
    headers = location("comments.CommentDetail", comment_id=posted.id)
    headers["Idempotent-Replayed"] = "true"
    return posted, 201, {**headers, **caching.tagged("comment", posted)}


def get_comment_or_404(comment_id, for_update=False, deleting=False):
    """A visible comment of a published article; any comment for admins. ``for_update``: its
    article and then it locked until the write ends (the order in which an article's delete
    takes them), so that no other write changes it between its ``If-Match`` check and the
    update (or the delete: ``deleting``, see :func:`models.base.locked`), and ``on_published``
    saying whether its article is published."""
    query = Comment.select(Comment).join(Article).where(Comment.id == comment_id)
    if not caller_may("admin"):
        query = query.where((Comment.status == VISIBLE) & (Article.status == PUBLISHED))
    comment = query.first()
    if comment is not None and for_update:
        article = lock_article(comment.article_id)
        comment = locked(query, Comment, deleting=deleting).first()
        if comment is not None:
            comment.on_published = article is not None and article.status == PUBLISHED
    if comment is None:
        abort(404, message=f"No comment {comment_id}.")
    return comment


def lock_article(article_id):
    """Inside a write: the article ``article_id`` (its id and status), locked until the write
    ends, or None when it is gone. Comment writes take it first, as an article's delete does."""
    query = Article.select(Article.id, Article.status).where(Article.id == article_id)
    return locked(query, Article).first()
