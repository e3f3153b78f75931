"""Request guards: what no view could use is refused before any runs."""

import re
from urllib.parse import unquote, unquote_to_bytes

from flask import current_app, request
from flask_smorest import abort
from werkzeug.wsgi import host_is_trusted

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
#: A query string that may hold bytes past ASCII: escaped, or raw (a WSGI string is Latin-1).
MAYBE_NOT_ASCII = re.compile(r"%[89a-fA-F]|[^\x00-\x7f]")
#: Endpoints whose request body is not JSON.
NON_JSON_BODIES = {"import.Import"}
#: Endpoints whose request body is NDJSON, up to ``Config.max_import_bytes``; and its types.
NDJSON_BODIES = {"import.Import"}
NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-lines",
}
#: Query parameters in which clients put API keys and other secrets (no route reads a parameter
#: of these names), by their letters and digits alone: ``api_key``, ``apiKey``, ``api-key[]``
#: are one name. Servers, proxies and caches log and keep URLs, and a page's Link names its
#: query again: a request carrying one is refused, and the request log shows ``REDACTED``.
CREDENTIAL_PARAMETERS = frozenset(
    (
        "key",
        "token",
        "accesstoken",
        "authtoken",
        "auth",
        "authorization",
        "bearer",
        "bearertoken",
        "idtoken",
        "refreshtoken",
        "jwt",
        "pwd",
    )
)
#: What a name holding one of these is a credential too: ``secret_key``, ``api_secret``,
#: ``private_key``, ``myApiKey``, ``filter[api_key]``.
CREDENTIAL_WORDS = (
    "apikey",
    "secret",
    "password",
    "passwd",
    "accesskey",
    "privatekey",
    "credential",
)
_NOT_LETTERS_OR_DIGITS = re.compile(r"[\W_]+")
#: A Newsdesk API key (``models.keys``: ``nd_`` and 32 random bytes, URL-safe base64), on its
#: own: under any parameter name, it is refused and never logged.
API_KEY = re.compile(r"(?<![A-Za-z0-9_-])nd_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")


def is_credential(name):
    """Whether a query parameter of this ``name``, as sent (percent-encoded or not), carries
    a credential (:data:`CREDENTIAL_PARAMETERS`, :data:`CREDENTIAL_WORDS`)."""
    letters = _NOT_LETTERS_OR_DIGITS.sub("", unquote(name.replace("+", " "))).lower()
    return letters in CREDENTIAL_PARAMETERS or any(word in letters for word in CREDENTIAL_WORDS)


def holds_key(value):
    """Whether a query parameter's ``value``, as sent, holds a Newsdesk API key."""
    return API_KEY.search(unquote(value.replace("+", " "))) is not None


def credentials_in(query):
    """The names of the query's parameters that carry a credential, as sent: by their name,
    or a key in their value."""
    parameters = (part.partition("=") for part in query.split("&"))
    return [name for name, _, value in parameters if is_credential(name) or holds_key(value)]


def check_request():
    """Refuse a URL over :data:`MAX_URL_LENGTH` (414), headers over :data:`MAX_HEADER_BYTES`
    or :data:`MAX_HEADERS_BYTES` (431), a URL holding control characters (400; no slug, filter
    or cursor holds one, and PostgreSQL cannot even compare a string with NUL), a write whose
    body is compressed, or is not JSON in UTF-8 where JSON is expected (415), and an import
    of another type (415) or too large by its ``Content-Length`` (413).

    A JSON body is read here, before the request takes a database connection: a client that
    sends its body slowly then holds no connection while it does.
    """
    environ = request.environ
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    if path.startswith("//"):
        # werkzeug's routing drops leading slashes, but the rest of the app reads the path as
        # sent: `//v1/articles`, like `/v1//articles`, is no resource.
        abort(404, message="There is nothing at this URL.")
    if url_too_long(path, query):
        abort(414, message=f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if bad_host(environ):
        # Links and feed ids are made of it (RFC 9112 3.2: a 400).
        message = "The Host header is missing or holds no host name: send the server's name."
        abort(400, message=message, errors={"Host": [message]})
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
    sent_key = credentials_in(query)
    if sent_key:
        message = (
            "An API key goes in the X-API-Key or Authorization header, never in the URL, which"
            " servers, proxies and caches log and keep."
        )
        abort(400, message=f"{message} Nothing was done.", errors={sent_key[0]: [message]})
    not_utf8 = undecodable(path, query)
    if not_utf8:
        message = "Not valid UTF-8 once percent-decoded."
        abort(
            400,
            message="The URL is not valid UTF-8: " + ", ".join(not_utf8) + ".",
            errors={name: [message] for name in not_utf8},
        )
    if unknown := unknown_codings(environ.get("HTTP_TRANSFER_ENCODING")):
        # gunicorn passes gzip, deflate and compress before chunked on undecoded: the body was
        # read as if none was applied (RFC 9112 6.1: a 501).
        message = f"Transfer-Encoding {', '.join(unknown)} is not implemented: send it chunked."
        abort(501, message=message, errors={"Transfer-Encoding": ["Only chunked."]})
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if request.method in ("POST", "PUT", "PATCH") and encoding not in ("", "identity"):
        # Read as it came, a compressed body was refused line by line as not UTF-8.
        abort(
            415,
            message=f"Content-Encoding {encoding} is not accepted: send the body uncompressed.",
            errors={"Content-Encoding": ["Only identity."]},
        )
    if request.method in ("POST", "PUT", "PATCH") and request.url_rule is not None:
        json_body = request.endpoint not in NON_JSON_BODIES
        if json_body and not is_json(request.mimetype):
            abort(415, message="Send the body as application/json.")
        if request.endpoint in NDJSON_BODIES:
            _check_ndjson()
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):  # NDJSON too: lines of JSON
            abort(
                415,
                message=f"JSON is read as UTF-8 (RFC 8259), not {charset}: send it as UTF-8.",
                errors={"Content-Type": ["charset=utf-8 or none."]},
            )
        if json_body:
            body = read_body()  # kept for the view; over MAX_CONTENT_LENGTH: 413
            # JSON in UTF-16 or UTF-32 shows in its first bytes (RFC 4627 3): a byte order
            # mark, or a NUL, which no JSON in UTF-8 starts with.
            if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]:
                abort(
                    415,
                    message="JSON is read as UTF-8 (RFC 8259), not UTF-16 or UTF-32: send UTF-8.",
                    errors={"Content-Type": ["charset=utf-8 or none."]},
                )


def _check_ndjson():
    """Refuse an NDJSON body of another type (415) or whose ``Content-Length`` is over the
    import limit (413), which the view then reads to (a chunked body: line by line)."""
    if request.mimetype not in NDJSON_TYPES:
        abort(415, message="Send the body as application/x-ndjson, one JSON object per line.")
    request.max_content_length = current_app.config["NEWSDESK"].max_import_bytes
    if (request.content_length or 0) > request.max_content_length:
        abort(413, message=too_large_message())


def too_large_message():
    """The detail of a 413 for a body over ``request.max_content_length``."""
    return f"The request body is larger than the {request.max_content_length} bytes allowed."


def read_body(cache=True):
    """The request body, up to ``request.max_content_length``: 413 past it, 400 when it ends
    before its ``Content-Length`` (:func:`check_whole`).

    werkzeug stops reading a body sent without ``Content-Length`` (chunked) at the limit and
    hands back what it read; one more byte left in the WSGI input means there was more.
    """
    data = request.get_data(cache=cache)
    if body_over_limit(len(data)):
        abort(413, message=too_large_message())
    check_whole(len(data))
    return data


def check_whole(read):
    """400 when the body ended after ``read`` bytes, before its ``Content-Length``: the client
    went away mid-upload, and what arrived must not be taken for the whole (RFC 9112 8).
    gunicorn hands the app its input as terminated (it reads chunked bodies), and werkzeug
    then reads it to its end, however short, without comparing."""
    length = request.content_length
    if length is not None and read < length:
        abort(
            400,
            message=f"The request body ended after {read} of the {length} bytes its"
            " Content-Length announced: nothing was stored; send it again, whole.",
        )


def body_over_limit(read):
    """Whether a body sent without ``Content-Length``, of which ``read`` bytes were read, went
    on past ``request.max_content_length`` (werkzeug stops at the limit without saying so)."""
    limit = request.max_content_length
    return (
        request.content_length is None
        and limit is not None
        and read >= limit
        and bool(request.environ["wsgi.input"].read(1))
    )


def is_json(mimetype):
    return mimetype == "application/json" or mimetype.endswith("+json")


def unknown_codings(header):
    """The transfer codings of a ``Transfer-Encoding`` header other than chunked (none when
    there is no header)."""
    if not header:
        return []
    codings = (coding.strip().lower() for coding in header.split(","))
    return [coding for coding in codings if coding not in ("", "chunked", "identity")]


def bad_host(environ):
    """Whether an HTTP/1.1 request has no Host header, or one that names no host links can be
    made of: werkzeug makes them of an empty host (``http:///v1/...``) for a port that is
    empty or past 65535, or a name of other characters than letters, digits, dots and
    hyphens."""
    host = environ.get("HTTP_HOST")
    if host is None:
        return environ.get("SERVER_PROTOCOL") == "HTTP/1.1"
    if not host_is_trusted(host):  # what werkzeug checks before it makes links of a host
        return True
    if host.startswith("["):  # an IPv6 address
        return False
    try:  # a name with an empty label (`a..b`): a link to it cannot be written
        host.partition(":")[0].encode("idna")
    except UnicodeError:
        return True
    return False


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


def undecodable(path, query):
    """What of the URL is not UTF-8 once percent-decoded (where a lone surrogate, ``%ED%A0%80``,
    would be read as replacement characters): ``path`` and the names of query parameters."""
    bad = []
    if not path.isascii():
        try:
            path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            bad.append("path")
    if MAYBE_NOT_ASCII.search(query):
        for item in query.split("&"):
            key, _, value = item.partition("=")
            for part in (key, value):
                try:
                    unquote_to_bytes(part.encode("latin-1")).decode("utf-8")
                except UnicodeError:
                    bad.append(unquote(key.replace("+", " "), errors="backslashreplace") or "query")
                    break
    return bad


def _refuse_control_characters():
    # Those has_control_characters refuses in a query (tab and line ends too), decoded.
    bad = [
        key or "query"
        for key, value in request.args.items(multi=True)
        if RAW_CONTROL_CHARACTERS.search(key) or RAW_CONTROL_CHARACTERS.search(value)
    ]
    if CONTROL_CHARACTERS.search(request.path):
        bad.append("path")
    message = "Contains control characters."
    abort(400, message="The URL contains control characters.", errors={k: [message] for k in bad})
