"""Readers' comments."""

from marshmallow import Schema, fields

from .common import PageSchema, Timestamp


class CommentSchema(Schema):
    id = fields.Integer(dump_only=True)
    article_id = fields.Integer(dump_only=True)
    parent_id = fields.Integer(allow_none=True, metadata={"description": "The comment replied to"})
    author_name = fields.String()
    body = fields.String(metadata={"description": "Plain text, never HTML"})
    status = fields.String(metadata={"description": "`visible` or `hidden`"})
    created_at = Timestamp(dump_only=True)


class CommentPageSchema(PageSchema):
    data = fields.List(fields.Nested(CommentSchema), required=True)
