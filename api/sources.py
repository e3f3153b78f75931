"""Sources: the publishers articles come from."""

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from models import Source, seek
from schemas.common import PageArgs
from schemas.sources import SourcePageSchema, SourceSchema

from . import paging
from .http import json_response

blp = Blueprint("sources", __name__, url_prefix="/v1/sources", description="Publishers")
source_schema = SourceSchema()


@blp.route("")
class SourceList(MethodView):
    @blp.arguments(PageArgs, location="query", as_kwargs=True)
    @blp.response(200, SourcePageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, cursor=None):
        """List sources by name."""
        after = paging.decode_cursor(cursor, "sources", (paging.string, paging.integer)) if cursor else None
        query = seek(Source.by_name(), (Source.name, Source.id), after, descending=False)
        sources, next_cursor = paging.paginate(query, limit, "sources", lambda s: (s.name, s.id))
        return paging.page_response(source_schema.dump(sources, many=True), next_cursor)


@blp.route("/<slug>")
class SourceDetail(MethodView):
    @blp.response(200, SourceSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug):
        """Get one source by slug."""
        source = Source.get_or_none(Source.slug == slug)
        if source is None:
            abort(404, message=f"No source with slug {slug!r}.")
        return json_response(source_schema.dump(source), last_modified=source.updated_at)
