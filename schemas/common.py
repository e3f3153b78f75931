"""Fields and schemas shared by every resource."""

import datetime
from collections.abc import Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, missing, pre_load, validate

from models.sanitize import CONTROL_CHARACTERS

MAX_LIMIT = 100
SLUG_PATTERN = r"^(?![0-9]+$)[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_MESSAGE = "Use lowercase letters, digits and single hyphens (not digits alone)."
LANGUAGE_PATTERN = r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$"
#: Fields the server sets; a client sending one is told so instead of being ignored.
SERVER_OWNED = {
    "id", "created_at", "updated_at", "word_count", "reading_time_minutes", "comment_count",
    "article_count", "version",
}


class Text(fields.String):
    """A string with control characters removed and surrounding white space trimmed."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        return CONTROL_CHARACTERS.sub("", text.replace("\r\n", "\n")).strip()


def not_blank(value):
    if not value:
        raise ValidationError("Must not be empty.")


class InputSchema(Schema):
    """Base of request bodies: unknown fields are errors, server-owned ones say so."""

    @pre_load
    def reject_server_owned(self, data, **kwargs):
        if isinstance(data, dict):
            owned = sorted(SERVER_OWNED & set(data) - set(self.load_fields))
            if owned:
                raise ValidationError(
                    {name: ["Set by the server; leave it out."] for name in owned}
                )
        return data


def rfc3339(value):
    """A naive UTC datetime as RFC 3339 to the second: ``2026-11-28T09:55:56Z`` (None as is)."""
    if value is None:
        return None
    # isoformat: a third of strftime's time, and four-digit years below 1000 too.
    return value.isoformat(timespec="seconds") + "Z"


class Timestamp(fields.DateTime):
    """RFC 3339 in UTC with a ``Z`` (``2026-11-28T09:55:56Z``); naive UTC inside.

    On input any RFC 3339 offset is accepted and converted to UTC; a date alone means midnight UTC.
    """

    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339(value)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value) == 10:
            try:
                return datetime.datetime.strptime(value, "%Y-%m-%d")
            except ValueError:
                raise ValidationError("Not a valid date or RFC 3339 timestamp.") from None
        moment = super()._deserialize(value, attr, data, **kwargs)
        if moment.tzinfo is not None:
            moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
        return moment


class ProblemSchema(Schema):
    """An RFC 9457 problem detail (``application/problem+json``)."""

    type = fields.String(metadata={"description": "A URI naming the kind of problem"})
    title = fields.String(metadata={"description": "Short summary of the kind of problem"})
    status = fields.Integer(metadata={"description": "The HTTP status code"})
    detail = fields.String(metadata={"description": "What went wrong in this request"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "For 400/422: each bad field or parameter and its messages"},
    )


class QueryArgs(Schema):
    """Base of the schemas of query-string arguments, loaded field by field.

    marshmallow's ``load`` runs each field through closures, an error store and hook lookups:
    50-60 us for the list's ten arguments, a tenth of a list request. For a plain mapping of
    arguments, with unknown ones excluded (as webargs loads a query string) and no hooks on the
    schema, loading is each field's own ``deserialize`` in turn, which is what marshmallow runs
    for each field, in half to two thirds of the time. Any error, and any other call, goes to
    marshmallow's ``load``, which says what is wrong. tests/test_query_args.py holds the two
    equal.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: ``(attribute, key, field)`` of each field to load.
        self._load_plan = [
            (field.attribute or name, name if field.data_key is None else field.data_key, field)
            for name, field in self.load_fields.items()
        ]

    def load(self, data, *, many=None, partial=None, unknown=None):
        plain = (
            unknown == EXCLUDE
            and not many
            and partial is None
            and isinstance(data, Mapping)
            and not any(self._hooks.values())
        )
        if plain:
            try:
                return self._load_fields(data)
            except ValidationError:
                pass  # marshmallow gathers every error, below
        return super().load(data, many=many, partial=partial, unknown=unknown)

    def _load_fields(self, data):
        result = {}
        for attribute, key, field in self._load_plan:
            value = data.get(key, missing)
            if value is missing:  # as Field.deserialize has it, without the calls
                if field.required:
                    raise ValidationError("required")  # marshmallow says it properly
                value = field.load_default
                if callable(value):
                    value = value()
            else:
                value = field.deserialize(value, key, data)
            if value is not missing:
                result[attribute] = value
        return result


class PageArgs(QueryArgs):
    """Cursor paging of a list."""

    cursor = fields.String(
        metadata={"description": "Opaque cursor from the previous page's `next_cursor`"}
    )
    limit = fields.Integer(
        load_default=20,
        validate=validate.Range(1, MAX_LIMIT),
        metadata={"description": f"Items per page, 1-{MAX_LIMIT}"},
    )


class PageSchema(Schema):
    """The envelope of every list; subclasses say what ``data`` holds."""

    has_more = fields.Boolean(required=True)
    next_cursor = fields.String(
        allow_none=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page"},
    )
