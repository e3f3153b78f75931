"""Tags: the topics of articles."""

from flask.views import MethodView
from flask_smorest import abort

from models import Tag, seek
from schemas.tags import TagListArgs, TagPageSchema, TagSchema

from . import paging
from .arguments import Blueprint
from .auth import drafts_shown
from .feeds import feed_links

blp = Blueprint("tags", __name__, url_prefix="/v1/tags", description="Topics")


@blp.route("")
class TagList(MethodView):
    @blp.arguments(TagListArgs(), location="query", as_kwargs=True)
    @blp.response(200, TagPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, sort, cursor=None):
        """List the tags of published articles, most used first (or by slug).

        Keys that may write (and so see drafts) see the tags of no published article too.
        """
        query = Tag.listed(unused=drafts_shown())
        if sort == "slug":
            after = paging.decode_cursor(cursor, "tags-slug", (paging.string,)) if cursor else None
            query = seek(query, (Tag.slug,), after, descending=False)
            kind, key = "tags-slug", lambda t: (t.slug,)
        else:
            after = (
                paging.decode_cursor(cursor, "tags", (paging.integer, paging.integer))
                if cursor
                else None
            )
            query = seek(query, (Tag.article_count, Tag.id), after, descending=True)
            kind, key = "tags", lambda t: (t.article_count, t.id)
        tags, next_cursor = paging.paginate(query.limit(limit + 1), limit, kind, key)
        return paging.page(tags, next_cursor)


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
