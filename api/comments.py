"""Comments on articles."""

from flask.views import MethodView
from flask_smorest import Blueprint

from models import Comment
from schemas.common import PageArgs
from schemas.comments import CommentPageSchema, CommentSchema

from . import paging
from .articles import get_article_or_404

blp = Blueprint("comments", __name__, url_prefix="/v1", description="Readers' comments")
comment_schema = CommentSchema()


@blp.route("/articles/<key>/comments")
class ArticleComments(MethodView):
    @blp.arguments(PageArgs, location="query", as_kwargs=True)
    @blp.response(200, CommentPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, limit, cursor=None):
        """List the visible comments of an article, oldest first."""
        article = get_article_or_404(key)
        after = paging.decode_cursor(cursor, "comments", (paging.timestamp, paging.integer)) if cursor else None
        query = Comment.visible_for(article.id, after)
        comments, next_cursor = paging.paginate(
            query, limit, "comments", lambda c: (c.created_at, c.id)
        )
        return paging.page_response(comment_schema.dump(comments, many=True), next_cursor)
