"""Reading JSON from clients: request bodies and NDJSON import lines.

orjson reads them: it refuses nesting deeper than :data:`MAX_DEPTH` (where the standard
library's parser would exhaust the stack), text that is not UTF-8 and lone surrogates
(``"\\ud800"``, which no database column can store). A body refused for a lone surrogate is
read a second time, by the standard library's parser, only to name the field that holds it.
"""

import json

import orjson

#: What a problem's ``errors`` name the whole body by (a string member of a body's own may be
#: called ``body``, as a comment's is).
WHOLE_BODY = "$"

#: Deepest nesting of arrays and objects read (orjson's own limit).
MAX_DEPTH = 1024


class BadJSON(ValueError):
    """JSON that cannot be read: ``field`` names where (:data:`WHOLE_BODY` for all of it),
    ``message`` says why, ``status`` is 400 (not JSON: ``reason`` is the parser's) or 422
    (JSON holding text that no column can store)."""

    def __init__(self, field, message, status=400, reason=None):
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status
        self.reason = reason


def loads(raw, unique_names=False):
    """The JSON value of ``raw`` bytes; raises :class:`BadJSON`. With ``unique_names``, an
    object that names a member twice is refused too: orjson keeps the last value, and the
    first would be dropped without a word (read a second time, by the standard library's
    parser, which says where: about 35 us for an article of 2 KB)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        field = surrogate_field(raw)
        if field is not None:
            raise BadJSON(
                field,
                "Not valid Unicode text: holds a lone surrogate (a \\ud800-\\udfff escape "
                "without its pair).",
                status=422,
            ) from None
        reason = str(error)
        if "depth" in reason or "recursion" in reason:
            reason = f"nested deeper than {MAX_DEPTH} levels of arrays and objects"
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as undecodable:  # orjson says "str is not valid UTF-8:
            # surrogates not allowed" of any byte that is not UTF-8
            reason = f"not UTF-8 text (RFC 8259) at byte {undecodable.start}"
        raise BadJSON(WHOLE_BODY, f"Not valid JSON: {reason}.", reason=reason) from None
    if unique_names and isinstance(value, dict | list):
        try:
            json.loads(raw, object_pairs_hook=_named_once)
        except _NamedTwice as error:
            message = f"An object of the body names {printable(error.name)!r} twice: send it once."
            raise BadJSON(WHOLE_BODY, message, status=422) from None
        except RecursionError:
            pass  # deeper than the second parser goes (orjson read it): no body the API takes
    return value


class _NamedTwice(ValueError):
    def __init__(self, name):
        super().__init__(name)
        self.name = name


def _named_once(pairs):
    """object_pairs_hook: the object, unless it names a member twice."""
    seen = set()
    for name, _ in pairs:
        if name in seen:
            raise _NamedTwice(name)
        seen.add(name)
    return dict(pairs)


def surrogate_field(raw):
    """Where in the JSON ``raw`` a string (a value or a member name) holds a lone surrogate:
    ``title``, ``tags.2``, or None when it is not valid JSON for another reason."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    try:
        return _find_surrogate(value, "")
    except RecursionError:
        return WHOLE_BODY


def _find_surrogate(value, path):
    if isinstance(value, str):
        return (path or WHOLE_BODY) if has_surrogate(value) else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        name = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and has_surrogate(key):
            return printable(name)
        found = _find_surrogate(item, name)
        if found is not None:
            return found
    return None


def has_surrogate(text):
    """Whether ``text`` holds a lone surrogate (one that cannot be encoded as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def printable(text):
    """``text`` with any lone surrogate written as its escape (``\\ud800``), so it can be
    answered as JSON."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
