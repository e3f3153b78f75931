"""The calling API key, as /v1/me shows it."""

from marshmallow import Schema, fields

from .common import Timestamp


class RateLimitSchema(Schema):
    limit = fields.Integer(metadata={"description": "Requests allowed in the window"})
    remaining = fields.Integer(metadata={"description": "Requests left in the window"})
    reset = fields.Integer(metadata={"description": "Seconds until the window resets"})


class MeSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String(metadata={"description": "The key's first characters"})
    scopes = fields.List(fields.String(), attribute="scope_list")
    created_at = Timestamp()
    last_used_at = Timestamp(allow_none=True)
    rate_limit = fields.Nested(RateLimitSchema)
    write_rate_limit = fields.Nested(
        RateLimitSchema,
        metadata={
            "description": "The write limit (NEWSDESK_WRITE_RATE_LIMIT): writes count here too"
        },
    )
