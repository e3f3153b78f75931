"""Publishers."""

from marshmallow import Schema, fields

from .common import PageSchema, Timestamp


class SourceSchema(Schema):
    id = fields.Integer(dump_only=True)
    slug = fields.String(metadata={"description": "URL name, unique"})
    name = fields.String()
    homepage_url = fields.String(allow_none=True)
    logo_url = fields.String(allow_none=True)
    language = fields.String(metadata={"description": "BCP 47 language tag, e.g. `en`"})
    country = fields.String(allow_none=True, metadata={"description": "ISO 3166-1 alpha-2"})
    article_count = fields.Integer(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class SourcePageSchema(PageSchema):
    data = fields.List(fields.Nested(SourceSchema), required=True)


class SourceRefSchema(Schema):
    """The source as an article shows it."""

    id = fields.Integer()
    slug = fields.String()
    name = fields.String()
    logo_url = fields.String(allow_none=True)
