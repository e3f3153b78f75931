"""Fields and schemas shared by every resource."""

import datetime
import re
import unicodedata
from urllib.parse import urlsplit

import orjson
from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema
from webargs.fields import DelimitedList

MAX_LIMIT = 100
SLUG_PATTERN = r"^(?![0-9]+$)[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_MESSAGE = "Use lowercase letters, digits and single hyphens (not digits alone)."
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$"
#: Control characters other than tab, newline and carriage return, and the noncharacters
#: U+FFFE and U+FFFF: never part of stored text, of a URL the API answers, or of anything a
#: client sends (XML, which feeds are, cannot hold any of them).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
#: What a one-line text (:class:`Line`) may not hold: line breaks and tabs, Unicode's line and
#: paragraph separators, and the bidirectional embeddings, overrides and isolates, which reorder
#: the text after them. (The marks, such as U+200F, only place the characters beside them, as
#: names written right to left need: they stay.)
LAYOUT_CHARACTERS = re.compile(r"[\t\n\r\x85\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def one_line(text):
    """``text`` made what a :class:`Line` takes, for a name read from elsewhere (a feed's title):
    control characters dropped, each run of line breaks, tabs and bidirectional controls one
    space."""
    return " ".join(LAYOUT_CHARACTERS.sub(" ", CONTROL_CHARACTERS.sub("", text)).split())


#: The longest URL stored (a link, an image, a homepage, an endpoint): longer than any real
#: one, and an article's webhook payload stays within its cap (models.webhooks).
MAX_STORED_URL = 2048
#: Fields the server sets; a client sending one is told so instead of being ignored.
SERVER_OWNED = {
    "id",
    "created_at",
    "updated_at",
    "word_count",
    "reading_time_minutes",
    "comment_count",
    "article_count",
    "version",
}


class Text(fields.String):
    """A string with control characters removed and surrounding white space trimmed.

    Its length limits hold for what the client sent as well as for what is kept: a value too
    long is refused, never cut down to fit by the stripping.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        for validator in self.validators:
            if isinstance(validator, validate.Length) and validator.max is not None:
                validator(text)
        # Line breaks in one form: CRLF, and a lone CR (old Mac text), as LF.
        text = CONTROL_CHARACTERS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
        # Only format characters (a zero-width space, say) show nothing either: as blank.
        if all(unicodedata.category(c) == "Cf" or c.isspace() or c in BLANK_LETTERS for c in text):
            return ""
        return text


#: Characters that are letters to Unicode yet show nothing (the Hangul fillers, the blank
#: Braille pattern): a title of them alone was kept as a title no one could see.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


class Line(Text):
    """A :class:`Text` that is one line, as a name is: no line break or tab, nor a character
    that reorders the text around it where it is shown (the bidirectional controls, such as
    U+202E, which turns what follows it right to left)."""

    default_error_messages = {
        "line": "Must be one line, without line breaks, tabs or characters that reorder text."
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and LAYOUT_CHARACTERS.search(value.strip()):
            raise self.make_error("line")
        return super()._deserialize(value, attr, data, **kwargs)


class Identifier(Text):
    """A client's own identifier: a :class:`Text` that holds no control character (stripped,
    ``a\x00b`` named the article ``ab``, and took its place)."""

    default_error_messages = {"control": "Must not hold control characters."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and CONTROL_CHARACTERS.search(value):
            raise self.make_error("control")
        return super()._deserialize(value, attr, data, **kwargs)


def canonical_language(tag):
    """A language tag in the case RFC 5646 (2.1.1) recommends, as tags are the same whatever
    their case: ``EN-gb`` is ``en-GB``, ``zh-hant-tw`` ``zh-Hant-TW``. A region (two letters)
    in capitals, a script (four letters) capitalized, the language and every other subtag in
    lower case. What is not such a tag (``\u212aa``, whose K is the Kelvin sign, is ``ka`` in
    lower case) is left as it is, for :data:`LANGUAGE_PATTERN` to refuse."""
    if not re.fullmatch(LANGUAGE_PATTERN, tag):
        return tag
    first, *rest = tag.split("-")
    subtags = [first.lower()]
    for subtag in rest:
        if len(subtag) == 2:
            subtags.append(subtag.upper())
        elif len(subtag) == 4 and subtag.isalpha():
            subtags.append(subtag.capitalize())
        else:
            subtags.append(subtag.lower())
    return "-".join(subtags)


class LanguageTag(Identifier):
    """A language tag, kept and compared in one case (:func:`canonical_language`): ``en-gb``
    was stored as sent, and a filter on ``en-GB`` did not find it."""

    def _deserialize(self, value, attr, data, **kwargs):
        return canonical_language(super()._deserialize(value, attr, data, **kwargs))


def idempotency_key(description):
    """The ``Idempotency-Key`` header of a POST that creates something (``description``: what a
    retry with it gets)."""
    return fields.String(
        data_key="Idempotency-Key",
        validate=validate.Regexp(
            r"^[\x21-\x2b\x2d-\x7e]{1,255}$",
            error=(
                "Use 1-255 printable ASCII characters, without spaces or commas (a UUID, say),"
                " in one header."
            ),
        ),
        metadata={"description": description},
    )


class Count(fields.Integer):
    """A whole number of a query string, written in the digits 0-9 and nothing else (Python's
    ``int``, which marshmallow's Integer uses, also reads ``3_0``, ``+3``, `` 3`` and digits of
    other scripts)."""

    default_error_messages = {"invalid": "Not a whole number written in the digits 0-9."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Flag(fields.Boolean):
    """JSON's ``true`` or ``false``, nothing else (marshmallow's Boolean also takes ``"off"``,
    ``0``, ``"yes"``...)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


#: Characters a URL never holds as they are (RFC 3986), which a browser escapes: a client that
#: writes a link of one into an attribute without escaping it would close the attribute.
ESCAPED_BY_BROWSERS = '"<>`'
#: Those, and the backslash, a slash to a browser but not to a URL parser
#: (``https://e.example\\@bank``).
NEVER_IN_A_URL = re.compile(f"[{re.escape(ESCAPED_BY_BROWSERS)}\\\\]")


class Url(fields.URL):
    """A URL without control characters (marshmallow's URL takes a NUL, which PostgreSQL cannot
    store in text), credentials or a port past 65535, of at most :data:`MAX_STORED_URL`
    characters."""

    default_error_messages = {
        "credentials": "Leave credentials out of the URL (a token goes in its path or query).",
        "port": "Not a valid port.",
    }

    def __init__(self, **kwargs):
        given = kwargs.pop("validate", None)
        given = [] if given is None else [given] if callable(given) else list(given)
        super().__init__(validate=[validate.Length(max=MAX_STORED_URL), *given], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        url = super()._deserialize(value, attr, data, **kwargs)
        if CONTROL_CHARACTERS.search(url) or NEVER_IN_A_URL.search(url):
            raise self.make_error("invalid")
        try:  # before marshmallow's own URL check, which runs after this
            parts = urlsplit(url)
        except ValueError:  # an unbalanced "[" or "]" in the host
            raise self.make_error("invalid") from None
        if parts.username is not None or parts.password is not None:
            raise self.make_error("credentials")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise self.make_error("port")
        return url


class CommaList(DelimitedList):
    """A query parameter holding a comma list; repeating the parameter adds to the list.

    ``source=a,b`` and ``source=a&source=b`` mean the same: webargs hands a field with
    ``is_multiple`` every value of a repeated key.
    """

    is_multiple = True

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list | tuple):
            value = ",".join(value)
        if isinstance(value, str):
            # Empty items say nothing: `source=,` is `source=` (no filter), `source=a,` `source=a`.
            value = ",".join(item for item in value.split(",") if item.strip())
        return super()._deserialize(value, attr, data, **kwargs)


def not_blank(value):
    if not value:
        raise ValidationError("Must not be empty.")


#: What a field validated by :func:`not_blank` says of itself in the OpenAPI document.
NOT_BLANK = {"minLength": 1}


class InputSchema(Schema):
    """Base of request bodies: unknown fields are errors, server-owned ones say so, each
    with every other error of the body."""

    #: The fields the server sets in what this body writes (and its answer shows).
    server_owned = SERVER_OWNED

    def _server_owned(self, data):
        return sorted(self.server_owned & set(data) - set(self.load_fields))

    @pre_load
    def set_aside_server_owned(self, data, **kwargs):
        """Fields the server sets are left out of the load (or each would be an unknown field)
        and named by :meth:`reject_server_owned`."""
        owned = self._server_owned(data) if isinstance(data, dict) else None
        if owned:
            return {name: value for name, value in data.items() if name not in owned}
        return data

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def reject_server_owned(self, data, original_data, **kwargs):
        owned = self._server_owned(original_data) if isinstance(original_data, dict) else None
        if owned:
            raise ValidationError({name: ["Set by the server; leave it out."] for name in owned})


def rfc3339(value):
    """A naive UTC datetime as RFC 3339 to the second: ``2026-11-28T09:55:56Z`` (None as is)."""
    if value is None:
        return None
    return value.isoformat(timespec="seconds") + "Z"


#: An RFC 3339 time (section 5.6; a space for the ``T``, as its note allows), in capitals, its
#: offset optional (a time without one is UTC) and its colon too (``+0000``, as PHP's and
#: Java's ISO 8601 formats write it). Python's ``fromisoformat``, which marshmallow reads
#: with, takes more of ISO 8601: week dates, offsets with seconds, a space before ``Z``.
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?"
)


class Timestamp(fields.DateTime):
    """RFC 3339 in UTC with a ``Z`` (``2026-11-28T09:55:56Z``); naive UTC inside.

    On input any RFC 3339 offset is accepted and converted to UTC (``t`` and ``z`` as RFC 3339
    allows them, in lowercase too); a date alone means midnight UTC. A time to store is read
    to the second it is shown to (``stored=True``): a fraction kept unseen made the filters
    disagree with what they showed. A filter's keeps its fraction.
    """

    def __init__(self, *, stored=False, **kwargs):
        super().__init__(**kwargs)
        self.stored = stored

    #: One message for what is no time, whatever its form.
    default_error_messages = {"invalid": "Not a valid date or RFC 3339 timestamp."}

    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339(value)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = value.upper()
        if isinstance(value, str) and len(value) == 10:
            try:
                return datetime.datetime.strptime(value, "%Y-%m-%d")
            except ValueError:
                raise ValidationError("Not a valid date or RFC 3339 timestamp.") from None
        if isinstance(value, str) and not RFC3339.fullmatch(value):
            if " " in value[19:] and RFC3339.fullmatch(value[:19] + value[19:].replace(" ", "+")):
                # `+02:00` sent as it is in a URL's query, where a `+` reads as a space.
                raise ValidationError(
                    "Not a valid date or RFC 3339 timestamp: a '+' in a URL's query reads as"
                    " a space; write it %2B."
                )
            raise self.make_error("invalid")
        # A leap second (23:59:60, RFC 3339 5.7), which Python's times cannot hold: the second
        # after 23:59:59, as PostgreSQL reads it.
        leap = isinstance(value, str) and value[17:19] == "60"
        if leap:
            value = f"{value[:17]}59{value[19:]}"
        moment = super()._deserialize(value, attr, data, **kwargs)
        if leap:
            try:
                moment += datetime.timedelta(seconds=1)
            except OverflowError:
                raise ValidationError("Not a time between the years 1 and 9999 in UTC.") from None
        if moment.tzinfo is not None:
            try:
                moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
            except OverflowError:  # 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
                raise ValidationError("Not a time between the years 1 and 9999 in UTC.") from None
        return moment.replace(microsecond=0) if self.stored else moment


class Stored:
    """JSON that a schema rendered earlier and that was stored, such as an article's card."""

    __slots__ = ("json",)

    def __init__(self, json):
        self.json = json


class Rendered(fields.Nested):
    """A nested object that may arrive rendered by its schema already.

    A :class:`Stored` rendering is written into the answer as it is (an ``orjson.Fragment``,
    which the app's orjson JSON provider copies through), a dict is what the schema dumped;
    any other object is dumped by the schema as usual. Documented as the nested schema.
    """

    def _serialize(self, nested_obj, attr, obj, **kwargs):
        if isinstance(nested_obj, Stored):
            return orjson.Fragment(nested_obj.json)
        if isinstance(nested_obj, dict):
            return nested_obj
        return super()._serialize(nested_obj, attr, obj, **kwargs)


class ProblemSchema(Schema):
    """An RFC 9457 problem detail (``application/problem+json``)."""

    type = fields.String(
        required=True, metadata={"description": "A URI naming the kind of problem"}
    )
    title = fields.String(
        required=True, metadata={"description": "Short summary of the kind of problem"}
    )
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code"})
    detail = fields.String(
        required=True, metadata={"description": "What went wrong in this request"}
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "For 400/422: each bad field or parameter and its messages; a list's "
            "item by its place (`tags.1`), the whole body by `$`"
        },
    )


def sort_field(orders, description=None):
    """A list's ``sort`` parameter: one of ``orders``, the first when absent."""
    metadata = {"description": description} if description else {}
    return fields.String(load_default=orders[0], validate=validate.OneOf(orders), metadata=metadata)


class PageArgs(Schema):
    """Cursor paging of a list."""

    cursor = fields.String(
        metadata={
            "description": (
                "Opaque cursor from the previous page's `next_cursor`, sent with that page's"
                " sort and filters (and a search's `q` and `mode`): with others it is a 400"
            )
        }
    )
    limit = Count(
        load_default=20,
        validate=validate.Range(1, MAX_LIMIT),
        metadata={"description": f"Items per page, 1-{MAX_LIMIT}"},
    )


class PageSchema(Schema):
    """The envelope of every list; subclasses say what ``data`` holds."""

    has_more = fields.Boolean(required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page"},
    )
