"""HTTP plumbing shared by the views: fast JSON, conditional GETs and cache headers."""

import hashlib
import inspect
import re
from urllib.parse import parse_qsl

import flask
import flask_compress
import flask_smorest
import orjson
from flask import current_app, g, request
from flask.json.provider import JSONProvider
from flask_smorest import abort
from webargs.flaskparser import FlaskParser

from models import DataVersion
from models.sanitize import CONTROL_CHARACTERS

from .cache import CACHED_ENDPOINTS, AnswerCache

MAX_URL_LENGTH = 4096
#: A control character in a query string, raw or percent-escaped.
RAW_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
ESCAPED_CONTROL_CHARACTERS = re.compile(r"%(?:[01][0-9a-fA-F]|7[fF])")
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
#: The environ key under which the revalidation layer (api/revalidation.py) leaves the data
#: version it read for a request it passes on to the app.
DATA_VERSION = "newsdesk.data_version"
#: What answers under /v1/ vary by: the key (a key can see more) and the compression.
VARY = "Authorization, X-API-Key, Accept-Encoding"
#: Endpoints whose body is not JSON.
NON_JSON_BODIES = {"import.Import"}


class Flask(flask.Flask):
    """Flask, asking once per function whether it is a coroutine function.

    Flask asks on every request, for each hook and view it calls (18 times for a list page:
    about 50 us in all); a function's kind does not change. Bound methods (a MethodView's
    ``get``, a new one per request) are asked about by the function they bind.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._coroutine_functions = {}

    def ensure_sync(self, func):
        plain = getattr(func, "__func__", func)
        try:
            coroutine = self._coroutine_functions[plain]
        except KeyError:
            coroutine = self._coroutine_functions[plain] = inspect.iscoroutinefunction(func)
        except TypeError:  # not hashable: ask Flask as it is
            return super().ensure_sync(func)
        return self.async_to_sync(func) if coroutine else func


class ArgumentParser(FlaskParser):
    """webargs' parser, with the query string read as a plain dict.

    Query schemas take comma lists (DelimitedList), never repeated keys, so the first value of
    each key is all they read, as before. webargs' MultiDictProxy looked every declared field up
    in the MultiDict, and werkzeug raises (and catches) an exception for each one absent: a
    third of the cost of parsing a list's arguments. The query is parsed as ``request.args``
    parses it, into a dict rather than a MultiDict (a third of the time); a query with nothing
    escaped (no ``%``, no ``+``) needs only splitting, which is what ``parse_qsl`` then does.
    """

    def load_querystring(self, req, schema):
        query = req.query_string.decode()
        if "%" in query or "+" in query:
            pairs = parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
        else:
            pairs = (item.partition("=")[::2] for item in query.split("&") if item)
        args = {}
        for key, value in pairs:
            args.setdefault(key, value)
        return args


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, parsing arguments with :class:`ArgumentParser`."""

    ARGUMENTS_PARSER = ArgumentParser()


class Compress(flask_compress.Compress):
    """flask-compress, done at once with the answer to a client that accepts no encoding.

    flask-compress adds ``Accept-Encoding`` to every answer's ``Vary``, then reads the
    request's ``Accept-Encoding``, the answer's type and length, and finds nothing to do:
    for such a client only the first step is kept.
    """

    def after_request(self, response):
        if request.environ.get("HTTP_ACCEPT_ENCODING"):
            return super().after_request(response)
        vary = response.headers.get("Vary")
        if not vary:
            response.headers["Vary"] = "Accept-Encoding"
        elif "accept-encoding" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Accept-Encoding"
        return response


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: several times faster at dumping a page of articles."""

    def dumps(self, obj, **kwargs):
        option = orjson.OPT_NON_STR_KEYS
        if kwargs.get("indent"):
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(obj, option=option).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)

    def response(self, *args, **kwargs):
        """A JSON response whose body is orjson's bytes as they are (not decoded, re-encoded)."""
        body = orjson.dumps(self._prepare_response_obj(args, kwargs), option=orjson.OPT_NON_STR_KEYS)
        return self._app.response_class(body, mimetype="application/json")


def json_text(text):
    """JSON already written (by the database) to put into an answer as it is."""
    return orjson.Fragment(text)


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
    environ = request.environ
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    if url_too_long(path, query):
        abort(414, message=f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if has_control_characters(path, query):
        _refuse_control_characters()
    if (
        environ["REQUEST_METHOD"] in ("POST", "PUT", "PATCH")
        and request.endpoint not in NON_JSON_BODIES
        and request.url_rule is not None
        and not is_json(request.mimetype)
    ):
        abort(415, message="Send the body as application/json.")


def url_too_long(path, query):
    return len(path) + 1 + len(query) > MAX_URL_LENGTH


def has_control_characters(path, query):
    """Whether the raw path or query string holds a control character: decoded, a query holds
    one only where the raw one has it or escapes it.

    Every request asks, so the quick tests go first: a string that ``isprintable`` holds no
    control character, and one without ``%`` escapes none (2.5 us to 0.8 us a list query).
    """
    return bool(
        (not path.isprintable() and CONTROL_CHARACTERS.search(path))
        or (not query.isprintable() and RAW_CONTROL_CHARACTERS.search(query))
        or ("%" in query and ESCAPED_CONTROL_CHARACTERS.search(query))
    )


def _refuse_control_characters():
    bad = [
        key or "query"
        for key, value in request.args.items(multi=True)
        if CONTROL_CHARACTERS.search(key) or CONTROL_CHARACTERS.search(value)
    ]
    if CONTROL_CHARACTERS.search(request.path):
        bad.append("path")
    message = "Contains control characters."
    abort(400, message="The URL contains control characters.", errors={k: [message] for k in bad})


def versioned(path):
    """Answers derived from stored data: their ETag comes from the data version."""
    return path.startswith(("/v1/", "/feeds/")) and path != "/v1/me"


def version_etag(version, environ, caller, secret):
    """The ETag of the answer to this URL for ``caller`` (``public`` or ``key:ID``) while the
    data version is ``version``; keyed with ``secret``, so that no one can make up the ETag of
    an answer they were not given."""
    material = f"{version}|{environ['PATH_INFO']}?{environ.get('QUERY_STRING', '')}|{caller}"
    return hashlib.blake2b(material.encode(), key=secret, digest_size=16).hexdigest()


def etag_key(config):
    return config.secret_key.encode()[:64]


def not_modified_headers(etag, cache_control, path):
    """The headers of a 304 (before the rate-limit, request-id and security headers)."""
    headers = [("ETag", f'"{etag}"'), ("Cache-Control", cache_control)]
    if path.startswith("/v1/"):
        headers.append(("Vary", VARY))
    return headers


def public_cache_control(config):
    return f"public, max-age={config.cache_max_age}, stale-while-revalidate={config.cache_stale}"


def matches(header, etag):
    """Whether an If-None-Match header names ``etag`` (also as compressed, ``etag:gzip``).

    Weak comparison, as RFC 9110 has it for If-None-Match. ``*`` is left to the answer itself
    (``make_conditional``): only an answer knows whether there is anything to match.
    """
    for candidate in header.split(","):
        candidate = candidate.strip().removeprefix("W/").strip('"')
        if candidate == etag or candidate.split(":", 1)[0] == etag:
            return True
    return False


def init_app(app):
    """Request checks; ETag, 304, Cache-Control and Vary on every successful GET and HEAD.

    Answers derived from stored data get an ETag from the data version (raised by every write,
    in the write's transaction), the URL and the caller: a revalidation that still matches is
    answered 304 before the view runs, at the cost of one tiny query, on every worker and host.
    The answers of searches and feeds are kept under that ETag (:mod:`api.cache`) and given
    again without running the view. Other answers (the spec, the docs page) get an ETag hashed
    from their body.

    These run on every request, so they read the WSGI environ rather than werkzeug's parsed
    headers where they can.
    """
    config = app.config["NEWSDESK"]
    public = public_cache_control(config)
    secret = etag_key(config)
    answers = AnswerCache(config.answer_cache_bytes) if config.answer_cache_bytes else None
    app.before_request(check_request)

    def kept_answer_key(req, etag):
        """The answer cache's key for this request, or None when its answer is not kept."""
        if answers is None or req.endpoint not in CACHED_ENDPOINTS:
            return None
        environ = req.environ
        # The host too: next-page links and feed URLs are absolute.
        return f"{etag}|{environ['wsgi.url_scheme']}://{environ.get('HTTP_HOST', '')}"

    def cache_control(context):
        keyed = context.get("api_key") is not None or not config.public_read
        return "private, no-cache" if keyed else public

    def cache_headers(response, path, context):
        """Vary, Cache-Control and the ETag, where the answer has not set its own."""
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        if path.startswith("/v1/") and "vary" not in present:
            # A key can see more (drafts, hidden comments): answers differ by key.
            headers.add("Vary", VARY)
        if "cache-control" not in present:
            headers.add("Cache-Control", cache_control(context))
        if "etag" not in present:
            etag = context.get("version_etag")
            if etag is None:
                response.add_etag()  # hashed from the body
            else:
                headers.add("ETag", f'"{etag}"')

    def revalidate():
        """before_request, after authentication: answer a matching If-None-Match with 304."""
        # The request and g through their objects, not the proxies (see auth.authenticate).
        req, context = request._get_current_object(), g._get_current_object()
        environ = req.environ
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD") or req.url_rule is None:
            return None
        path = environ["PATH_INFO"]
        if not versioned(path):
            return None
        key = context.get("api_key")
        caller = f"key:{key.id}" if key is not None else "public"
        version = environ.get(DATA_VERSION)  # read already when the revalidation layer was not sure
        if version is None:
            version = DataVersion.current()
        context.version_etag = etag = version_etag(version, environ, caller, secret)
        given = environ.get("HTTP_IF_NONE_MATCH")
        if given and matches(given, etag):
            headers = not_modified_headers(etag, cache_control(context), path)
            return app.response_class(status=304, headers=headers)
        key = kept_answer_key(req, etag)
        if key is not None:
            kept = answers.get(key)
            if kept is not None:
                body, headers = kept
                return app.response_class(body, headers=headers)
            context.answer_key = key  # kept once answered (conditional_get)
        return None

    @app.after_request
    def conditional_get(response):
        req = request._get_current_object()
        environ = req.environ
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD") or response.status_code != 200:
            return response
        if response.is_streamed or response.direct_passthrough:
            return response
        context = g._get_current_object()
        key = context.get("answer_key")
        if key is not None:
            headers = [item for item in response.headers.items() if item[0] != "Content-Length"]
            answers.put(key, response.get_data(), headers)
        cache_headers(response, environ["PATH_INFO"], context)
        if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:
            return response.make_conditional(req)
        return response

    return revalidate
