"""Topics."""

from marshmallow import Schema, fields

from .common import PageSchema


class TagSchema(Schema):
    slug = fields.String()
    name = fields.String()
    article_count = fields.Integer(dump_only=True)


class TagPageSchema(PageSchema):
    data = fields.List(fields.Nested(TagSchema), required=True)


class TagRefSchema(Schema):
    """A tag as an article shows it."""

    slug = fields.String()
    name = fields.String()
