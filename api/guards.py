"""Request guards: what no view could use is refused before any runs."""

import re

from flask import request
from flask_smorest import abort

from schemas.common import CONTROL_CHARACTERS

MAX_URL_LENGTH = 4096
#: Largest header (``Name: value``; the fields of one name joined, as the server joins them)
#: and largest sum of all headers, in bytes (431 above; gunicorn's own limits are set above
#: these in gunicorn.conf.py, so that this answer comes first).
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 16 * 1024
#: A control character in a query string, raw or percent-escaped.
RAW_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
ESCAPED_CONTROL_CHARACTERS = re.compile(r"%(?:[01][0-9a-fA-F]|7[fF])")
#: Endpoints whose request body is not JSON.
NON_JSON_BODIES = {"import.Import"}


def check_request():
    """Refuse a URL over :data:`MAX_URL_LENGTH` (414), headers over :data:`MAX_HEADER_BYTES`
    or :data:`MAX_HEADERS_BYTES` (431), a URL holding control characters (400; no slug, filter
    or cursor holds one, and PostgreSQL cannot even compare a string with NUL), and a write
    whose body is not JSON where JSON is expected (415).

    A JSON body is read here, before the request takes a database connection: a client that
    sends its body slowly then holds no connection while it does.
    """
    environ = request.environ
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    if url_too_long(path, query):
        abort(414, message=f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if headers_too_large(environ):
        abort(
            431,
            message=(
                f"A header is longer than {MAX_HEADER_BYTES} bytes, or all of them are longer "
                f"than {MAX_HEADERS_BYTES}."
            ),
        )
    if has_control_characters(path, query):
        _refuse_control_characters()
    if (
        request.method in ("POST", "PUT", "PATCH")
        and request.endpoint not in NON_JSON_BODIES
        and request.url_rule is not None
    ):
        if not is_json(request.mimetype):
            abort(415, message="Send the body as application/json.")
        request.get_data()  # kept for the view; over MAX_CONTENT_LENGTH: 413


def is_json(mimetype):
    return mimetype == "application/json" or mimetype.endswith("+json")


def url_too_long(path, query):
    return len(path) + 1 + len(query) > MAX_URL_LENGTH


def headers_too_large(environ):
    """Whether a header, or all of them, is over its limit. ``HTTP_X_API_KEY`` stands for
    ``X-Api-Key: ``: as long as the key less ``HTTP_``, plus two."""
    total = 0
    for name, value in environ.items():
        if name[:5] == "HTTP_":
            size = len(name) + len(value) - 3
            if size > MAX_HEADER_BYTES:
                return True
            total += size
    return total > MAX_HEADERS_BYTES


def has_control_characters(path, query):
    """Whether the raw path or query string holds a control character, raw or escaped."""
    return bool(
        CONTROL_CHARACTERS.search(path)
        or RAW_CONTROL_CHARACTERS.search(query)
        or ESCAPED_CONTROL_CHARACTERS.search(query)
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
