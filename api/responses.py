"""JSON answers: Flask's JSON through orjson, and answers rendered by a schema already."""

import orjson
from flask import current_app, request, url_for
from flask.json.provider import JSONProvider


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson (faster at dumping a page of articles than the standard
    library; see bench/README.md), which writes the stored renderings that
    :class:`schemas.common.Rendered` hands it as they are."""

    def dumps(self, obj, **kwargs):
        option = orjson.OPT_NON_STR_KEYS
        if kwargs.get("indent"):
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(obj, option=option).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)


def rendered(document, status=200, headers=None):
    """An answer whose JSON a schema has rendered already: an article's document (its stored
    card and its body fields), or a sparse fieldset of it.

    ``@blp.response`` returns a Response as it is, so the schema it names documents the answer
    without dumping it a second time.
    """
    response = current_app.json.response(document)
    response.status_code = status
    if headers:
        response.headers.extend(headers)
    return response


def location(endpoint, **values):
    """The ``Location`` header of a created resource."""
    return {"Location": url_for(endpoint, **values)}


def untyped_when_empty(response):
    """after_request: an answer that has no body (a 204; Flask's own answer to OPTIONS) names
    no content type, which Flask gives every answer."""
    empty = response.status_code == 204 or (
        request.method == "OPTIONS" and not response.is_streamed and not response.get_data()
    )
    if empty:
        del response.headers["Content-Type"]
    return response
