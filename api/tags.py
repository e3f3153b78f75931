"""Tags: the topics of articles."""

from flask.views import MethodView
from flask_smorest import abort

from models import Tag, seek
from schemas.common import PageArgs
from schemas.tags import TagPageSchema, TagSchema

from . import paging
from .arguments import Blueprint
from .feeds import feed_links

blp = Blueprint("tags", __name__, url_prefix="/v1/tags", description="Topics")


@blp.route("")
class TagList(MethodView):
    @blp.arguments(PageArgs(), location="query", as_kwargs=True)
    @blp.response(200, TagPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, cursor=None):
        """List tags, most used first."""
        after = (
            paging.decode_cursor(cursor, "tags", (paging.integer, paging.integer))
            if cursor
            else None
        )
        query = seek(Tag.most_used(), (Tag.article_count, Tag.id), after, descending=True)
        tags, next_cursor = paging.paginate(
            query.limit(limit + 1), limit, "tags", lambda t: (t.article_count, t.id)
        )
        return paging.page(tags, next_cursor)


@blp.route("/<slug>")
class TagDetail(MethodView):
    @blp.response(200, TagSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug):
        """Get one tag by slug."""
        tag = Tag.get_or_none(Tag.slug == slug)
        if tag is None:
            abort(404, message=f"No tag with slug {slug!r}.")
        tag.feeds = feed_links(tag=tag.slug)
        return tag
