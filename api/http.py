"""HTTP plumbing shared by the views: fast JSON, conditional GETs and cache headers."""

import orjson
from flask import current_app, request
from flask.json.provider import JSONProvider


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: several times faster at dumping a page of articles."""

    def dumps(self, obj, **kwargs):
        option = orjson.OPT_NON_STR_KEYS
        if kwargs.get("indent"):
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(obj, option=option).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)


def json_response(data, last_modified=None):
    """A JSON response, with ``Last-Modified`` when the resource has a modification time."""
    response = current_app.json.response(data)
    if last_modified is not None:
        response.last_modified = last_modified.replace(tzinfo=None)
    return response


def init_app(app):
    """ETag, 304 and Cache-Control on every successful GET and HEAD."""
    config = app.config["NEWSDESK"]
    public = f"public, max-age={config.cache_max_age}, stale-while-revalidate={config.cache_stale}"

    @app.after_request
    def conditional_get(response):
        if request.method not in ("GET", "HEAD") or response.status_code != 200:
            return response
        if response.is_streamed or response.direct_passthrough:
            return response
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = public
        if response.get_etag()[0] is None:
            response.add_etag()
        return response.make_conditional(request)
