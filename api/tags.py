"""Tags: the topics of articles."""

from flask.views import MethodView
from flask_smorest import abort

from models import Tag
from schemas.tags import TagListArgs, TagPageSchema, TagSchema

from . import paging
from .arguments import Blueprint
from .auth import drafts_shown
from .feeds import feed_links

blp = Blueprint("tags", __name__, url_prefix="/v1/tags", description="Topics")

#: Each order of the list: its cursors' tag, its sort columns (the last unique) and how a
#: cursor's values are read, and whether it descends.
ORDERS = {
    "-article_count": ("tags", (Tag.article_count, Tag.id), (paging.integer, paging.integer), True),
    "slug": ("tags-slug", (Tag.slug,), (paging.string,), False),
}


@blp.route("")
class TagList(MethodView):
    @blp.arguments(TagListArgs(), location="query", as_kwargs=True)
    @blp.response(200, TagPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, sort, cursor=None):
        """List the tags of published articles, most used first (or by slug).

        Keys that may write (and so see drafts) see the tags of no published article too.
        """
        return paging.ordered_page(Tag.listed(unused=drafts_shown()), ORDERS[sort], limit, cursor)


@blp.route("/<slug>")
class TagDetail(MethodView):
    @blp.response(200, TagSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug):
        """Get one tag by slug."""
        tag = Tag.listed(unused=drafts_shown()).where(Tag.slug == slug).first()
        if tag is None:
            abort(404, message=f"No tag with slug {slug!r}.")
        tag.feeds = feed_links(tag=tag.slug)
        return tag
