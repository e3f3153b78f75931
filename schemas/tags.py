"""Topics."""

from marshmallow import Schema, fields

from .common import PageArgs, PageSchema, sort_field


class TagListArgs(PageArgs):
    sort = sort_field(
        ["-article_count", "slug"],
        "`-article_count` (most used first; a tag whose count passes the cursor while you page"
        " is not seen again) or `slug` (every tag once, while articles arrive)",
    )


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
