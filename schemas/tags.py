"""Topics."""

from marshmallow import Schema, fields

from .common import PageSchema


class TagSchema(Schema):
    slug = fields.String()
    name = fields.String()
    article_count = fields.Integer(dump_only=True)
    feeds = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        dump_only=True,
        metadata={"description": "Atom, RSS and JSON Feed URLs of its articles (detail only)"},
    )


class TagPageSchema(PageSchema):
    data = fields.List(fields.Nested(TagSchema), required=True)


class TagRefSchema(Schema):
    """A tag as an article shows it."""

    slug = fields.String()
    name = fields.String()
