"""Opaque, integrity-checked cursors and the list envelope with its ``Link`` header.

A cursor is the sort key of the last item of a page: ``[tag, value..., id]`` as JSON, base64url,
followed by a keyed BLAKE2b check; a search's adds how many hits its pages held, and in hybrid
and semantic modes their ids. Anything altered, truncated or made for another sort is a 400; so
is a cursor of a filtered list or a search sent with other filters or words (:func:`bound`).
"""

import base64
import datetime
import hashlib
import hmac
import itertools
import re
from urllib.parse import quote, unquote_plus

import orjson
from flask import current_app, request

from models import seek

from .config import LEGACY_SECRET
from .errors import bad_request

BAD_TOKEN = "Invalid {name}: pass back exactly what a previous answer gave."
OTHER_PARAMETERS = (
    "Invalid {name}: it was made for this list with other filters. Send them (and a search's q)"
    " as the request that gave it did; limit and fields (and a search's facets) may change from"
    " page to page."
)
#: Between a cursor's tag and the digest of the parameters it is bound to (:func:`bound`).
BOUND = "~"
#: What a query may hold as it is (RFC 3986: its sub-delimiters, ``:``, ``@``, ``/``, ``?``, and
#: ``%``, so that escapes stay as sent); ``quote`` keeps letters, digits and ``-._~`` too.
QUERY_SAFE = "%!$&'()*+,;=:@/?"
#: A ``%`` that starts no escape (``%zz``, a lone one): kept as it is, the URL would be none.
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def query_item(item):
    """A query's ``name=value`` as a URI holds it: escapes kept as sent, what a URI cannot
    hold percent-encoded (a WSGI string's characters are its bytes, as Latin-1)."""
    return quote(_LONE_PERCENT.sub("%25", item), safe=QUERY_SAFE, encoding="latin-1")


def _mac(raw, key=None):
    key = key or current_app.config["NEWSDESK"].key_for("cursors")
    return hashlib.blake2b(raw, key=key, digest_size=12).digest()


def _b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _plain(value):
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def signed_before_cursor_keys(token):
    """Whether ``token`` is checked by the key cursors had before they got one of their own
    (the secret itself, as API keys were hashed then: ``Config.legacy_api_key_peppers``): a
    token of a version that old, which a client may have kept since."""
    try:
        body, mac = token.split(".")
        raw, mac = _unb64(body), _unb64(mac)
    except (ValueError, TypeError, UnicodeError):
        return False
    # The secret, and the constant of the versions before one had to be set: a token made
    # then is read after a secret is set too (a 410 is all it can give).
    keys = {*current_app.config["NEWSDESK"].legacy_api_key_peppers(), LEGACY_SECRET}
    return any(hmac.compare_digest(mac, _mac(raw, key[:64])) for key in keys)


def encode_cursor(tag, values, key=None):
    """The cursor for the row whose sort key is ``values`` under the ordering ``tag``, checked
    with ``key`` (default: the app's cursor key, ``Config.key_for("cursors")``)."""
    raw = orjson.dumps([tag, *map(_plain, values)])
    return f"{_b64(raw)}.{_b64(_mac(raw, key))}"


def timestamp(value):
    if not isinstance(value, str):
        raise ValueError("not a timestamp")
    return datetime.datetime.fromisoformat(value)


#: Past the largest id or count either database stores (a signed 64-bit integer).
MAX_INTEGER = 2**63 - 1


def integer(value):
    """An id or count: an integer that a BIGINT holds, never negative."""
    if type(value) is not int or not 0 <= value <= MAX_INTEGER:
        raise ValueError("not an id or count")
    return value


#: Ids a cursor holds at most (a search's hits are 100 at most).
MAX_IDS = 1000


def ids(value):
    """Ids a cursor holds as :func:`id_gaps` gives them: the ids, ascending."""
    if type(value) is not list or len(value) > MAX_IDS:
        raise ValueError("not a list of ids")
    found = list(itertools.accumulate(integer(gap) for gap in value))
    if found and (found[-1] > MAX_INTEGER or 0 in value[1:]):
        raise ValueError("not a list of distinct ids")
    return found


def id_gaps(values):
    """``values`` (ids) as a cursor holds them: the first of them ascending, then the gap
    from each to the next, which is shorter than the ids themselves."""
    ordered = sorted(set(values))
    return [b - a for a, b in zip([0, *ordered], ordered, strict=False)]


def number(value):
    if type(value) not in (int, float):
        raise ValueError("not a number")
    return float(value)


def string(value):
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def bound(tag, /, **parameters):
    """``tag`` bound to ``parameters``: what a list's request holds besides its cursor, limit
    and fields (its filters, a search's words). A cursor made with it is a 400 when sent with
    other parameters: it would give a page of another list from a place in this one, and
    repeat or skip items. Comma lists count as sets; a parameter left out is None, and an empty
    list counts as left out."""
    given = {
        name: _canonical(value)
        for name, value in parameters.items()
        if value is not None and value != []
    }
    digest = hashlib.blake2b(orjson.dumps(given, option=orjson.OPT_SORT_KEYS), digest_size=6)
    return f"{tag}{BOUND}{_b64(digest.digest())}"


def _canonical(value):
    if isinstance(value, list | tuple | set | frozenset):
        return sorted({str(_canonical(item)) for item in value})
    if isinstance(value, datetime.date):  # datetimes too
        return value.isoformat()
    return value if isinstance(value, str | int | float | bool) else str(value)


def decode_cursor(token, tag, types, name="cursor", optional=0):
    """The sort key inside ``token``, checked against ``tag`` and converted by ``types``; the
    last ``optional`` values may be missing (tokens made before they were added): None.

    A token that was altered or made for another list is a 400 naming the parameter ``name``,
    and so is one made for the same list with other parameters (``tag`` made by
    :func:`bound`); one made before its list's tokens were bound is read as it was.
    """
    base = tag.partition(BOUND)[0]
    message = BAD_TOKEN
    try:
        body, mac = token.split(".")
        raw = _unb64(body)
        if not hmac.compare_digest(_unb64(mac), _mac(raw)):
            raise ValueError("altered")
        payload = orjson.loads(raw)
        if not isinstance(payload, list) or not payload:
            raise ValueError("not a cursor")
        if payload[0] not in (tag, base):
            if isinstance(payload[0], str) and payload[0].partition(BOUND)[0] == base:
                message = OTHER_PARAMETERS
            raise ValueError("made for another list")
        if not len(types) - optional < len(payload) <= len(types) + 1:
            raise ValueError("made for another list")
        values = [convert(value) for convert, value in zip(types, payload[1:], strict=False)]
        return (*values, *[None] * (len(types) - len(values)))
    except (ValueError, TypeError, UnicodeError):
        bad_request(name, message.format(name=name))


def paginate(rows, limit, tag, key):
    """One page of ``rows`` (up to ``limit + 1`` of them, the extra one telling that there is a
    next page): ``(rows, next_cursor)``; ``key(row)`` is a row's sort key."""
    rows = list(rows)
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(tag, key(rows[-1]))


def ordered_page(query, order, limit, cursor=None):
    """A page of ``query`` in ``order``: ``(cursor tag, sort columns (the last unique), the
    cursor's types, descending)``, as :func:`page` gives it."""
    tag, columns, types, descending = order
    after = decode_cursor(cursor, tag, types) if cursor else None
    rows, next_cursor = paginate(
        seek(query, columns, after, descending).limit(limit + 1),
        limit,
        tag,
        lambda row: tuple(getattr(row, column.name) for column in columns),
    )
    return page(rows, next_cursor)


def page(data, next_cursor, **extra):
    """A list answer for ``@blp.response``: the envelope (plus ``extra`` members) and, when
    there is a next page, a ``Link: <...>; rel="next"`` header."""
    body = {"data": data, "has_more": next_cursor is not None, "next_cursor": next_cursor, **extra}
    return body, next_link(next_cursor)


def next_link(cursor, name="cursor"):
    """The headers of a page followed by the one ``cursor`` (in the query parameter
    ``name``) starts: ``Link: <...>; rel="next"``, or none without a cursor."""
    if cursor is None:
        return {}
    return {"Link": f'<{next_url(request.environ, request.host, cursor, name)}>; rel="next"'}


def next_url(environ, host, cursor, name="cursor"):
    """This request's URL with ``cursor`` in place of any it had in the query parameter
    ``name`` (a cursor is URL-safe as it is). The rest of the query is kept as the client
    wrote it, but for the characters a URI cannot hold, percent-encoded: a ``<``, ``>`` or
    ``"`` sent as it is would end the URL in a ``Link`` header and start another link."""
    kept = [
        query_item(item)
        for item in environ.get("QUERY_STRING", "").split("&")
        if item and unquote_plus(item.partition("=")[0]) != name
    ]
    query = "&".join([*kept, f"{name}={cursor}"])
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    return f"{environ['wsgi.url_scheme']}://{host}{path}?{query}"
