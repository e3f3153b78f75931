"""Fields and schemas shared by every resource."""

import datetime

from marshmallow import Schema, ValidationError, fields, validate

MAX_LIMIT = 100


class Timestamp(fields.DateTime):
    """RFC 3339 in UTC with a ``Z`` (``2026-11-28T09:55:56Z``); naive UTC inside.

    On input any RFC 3339 offset is accepted and converted to UTC; a date alone means midnight UTC.
    """

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")

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


class PageArgs(Schema):
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
