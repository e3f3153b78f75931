"""``POST /v1/import``: many articles in one NDJSON body."""

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort

from schemas.articles import ImportResultSchema

from .arguments import Blueprint
from .auth import requires
from .bulkload import import_items, ndjson_items
from .guards import read_body

blp = Blueprint("import", __name__, url_prefix="/v1", description="Bulk import")
NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-lines",
}


@blp.route("/import")
class Import(MethodView):
    @requires(blp, "write")
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/x-ndjson": {
                    "schema": {
                        "type": "string",
                        "description": "One article per line, as for POST /v1/articles",
                    }
                }
            },
        }
    )
    @blp.response(200, ImportResultSchema)
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    def post(self):
        """Import articles from NDJSON, one article object per line.

        Lines are written in batches; the answer counts created, updated, unchanged and rejected
        lines, with the line number and reason of each rejection. Bad lines never stop good ones.
        """
        if request.mimetype not in NDJSON_TYPES:
            abort(415, message="Send the body as application/x-ndjson, one JSON object per line.")
        request.max_content_length = current_app.config["NEWSDESK"].max_import_bytes
        result = import_items(ndjson_items(read_body(cache=False)))
        return result
