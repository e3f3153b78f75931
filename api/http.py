"""HTTP plumbing shared by the views: fast JSON, conditional GETs and cache headers."""

import hashlib

import orjson
from flask import current_app, g, request
from flask.json.provider import JSONProvider
from flask_smorest import abort

from models import DataVersion
from models.sanitize import CONTROL_CHARACTERS

MAX_URL_LENGTH = 4096
#: Endpoints that answer without the database (nor keys, nor rate limits), so they work while
#: it is down: liveness, metrics, the spec and the docs.
NO_DATABASE = {
    "health.Health",
    "health.Metrics",
    "docs.docs",
    "docs.assets",
    "docs.static",
    "api-docs.openapi_json",
}
#: Endpoints whose body is not JSON.
NON_JSON_BODIES = {"import.Import"}


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: several times faster at dumping a page of articles."""

    def dumps(self, obj, **kwargs):
        option = orjson.OPT_NON_STR_KEYS
        if kwargs.get("indent"):
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(obj, option=option).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)


def json_response(data, last_modified=None, status=200):
    """A JSON response, with ``Last-Modified`` when the resource has a modification time."""
    response = current_app.json.response(data)
    response.status_code = status
    if last_modified is not None:
        response.last_modified = last_modified.replace(tzinfo=None)
    return response


def created(data, location):
    """201 Created with the new resource and its ``Location``."""
    response = json_response(data, status=201)
    response.headers["Location"] = location
    return response


def is_json(mimetype):
    return mimetype == "application/json" or mimetype.endswith("+json")


def check_request():
    """Refuse, before any view runs, what no view could use.

    Control characters in the path or query are a 400 (no slug, filter or cursor holds one, and
    PostgreSQL cannot even compare a string that contains NUL); a body that is not JSON where a
    JSON body is expected is a 415.
    """
    if len(request.full_path) > MAX_URL_LENGTH:
        abort(414, message=f"The URL is longer than {MAX_URL_LENGTH} characters.")
    bad = [
        key or "query"
        for key, value in request.args.items(multi=True)
        if CONTROL_CHARACTERS.search(key) or CONTROL_CHARACTERS.search(value)
    ]
    if CONTROL_CHARACTERS.search(request.path):
        bad.append("path")
    if bad:
        message = "Contains control characters."
        abort(400, message="The URL contains control characters.", errors={k: [message] for k in bad})
    if (
        request.method in ("POST", "PUT", "PATCH")
        and request.endpoint not in NON_JSON_BODIES
        and request.url_rule is not None
        and not is_json(request.mimetype)
    ):
        abort(415, message="Send the body as application/json.")


def _versioned(path):
    """Answers derived from stored data: their ETag comes from the data version."""
    return path.startswith(("/v1/", "/feeds/")) and path != "/v1/me"


def _version_etag(version):
    key = g.get("api_key")
    caller = f"key:{key.id}" if key is not None else "public"
    material = f"{version}|{request.full_path}|{caller}".encode()
    return hashlib.blake2b(material, digest_size=16).hexdigest()


def _matches(etag):
    """Whether If-None-Match names ``etag`` (also as compressed, ``etag:gzip``)."""
    return any(
        candidate == etag or candidate.split(":", 1)[0] == etag
        for candidate in request.if_none_match.as_set()
    ) or request.if_none_match.star_tag


def init_app(app):
    """Request checks; ETag, 304, Cache-Control and Vary on every successful GET and HEAD.

    Answers derived from stored data get an ETag from the data version (raised by every write,
    in the write's transaction), the URL and the caller: a revalidation that still matches is
    answered 304 before the view runs, at the cost of one tiny query, on every worker and host.
    Other answers (the spec, the docs page) get an ETag hashed from their body.
    """
    config = app.config["NEWSDESK"]
    public = f"public, max-age={config.cache_max_age}, stale-while-revalidate={config.cache_stale}"
    app.before_request(check_request)

    def cache_headers(response):
        if request.path.startswith("/v1/"):
            # A key can see more (drafts, hidden comments): answers differ by key.
            response.vary.update(("Authorization", "X-API-Key"))
        if "Cache-Control" not in response.headers:
            keyed = g.get("api_key") is not None or not config.public_read
            response.headers["Cache-Control"] = "private, no-cache" if keyed else public
        return response

    def revalidate():
        """before_request, after authentication: answer a matching If-None-Match with 304."""
        if request.method not in ("GET", "HEAD") or request.url_rule is None:
            return None
        if not _versioned(request.path):
            return None
        g.version_etag = _version_etag(DataVersion.current())
        if request.if_none_match and _matches(g.version_etag):
            response = app.response_class(status=304)
            response.set_etag(g.version_etag)
            return cache_headers(response)
        return None

    @app.after_request
    def conditional_get(response):
        if request.method not in ("GET", "HEAD") or response.status_code != 200:
            return response
        if response.is_streamed or response.direct_passthrough:
            return response
        cache_headers(response)
        if "version_etag" in g:
            response.set_etag(g.version_etag)
        elif response.get_etag()[0] is None:
            response.add_etag()
        return response.make_conditional(request)

    return revalidate
