"""Publishers."""

from marshmallow import Schema, fields, validate

from .common import (
    LANGUAGE_PATTERN,
    NOT_BLANK,
    SLUG_MESSAGE,
    SLUG_PATTERN,
    Identifier,
    InputSchema,
    LanguageTag,
    Line,
    PageArgs,
    PageSchema,
    Text,
    Timestamp,
    Url,
    not_blank,
    sort_field,
)


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
    feeds = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        dump_only=True,
        metadata={"description": "Atom, RSS and JSON Feed URLs of its articles (detail only)"},
    )


class SourceListArgs(PageArgs):
    sort = sort_field(
        ["name", "id"],
        "`name` (a source renamed while you page may move past your cursor) or `id` (every "
        "source once, oldest first, while sources are renamed or added)",
    )


class SourcePageSchema(PageSchema):
    data = fields.List(fields.Nested(SourceSchema), required=True)


class SourceRefSchema(Schema):
    """The source as an article shows it."""

    id = fields.Integer()
    slug = fields.String()
    name = fields.String()
    logo_url = fields.String(allow_none=True)


class SourceInSchema(InputSchema):
    """A source as clients write it (POST; PATCH takes any subset)."""

    slug = Identifier(
        required=True,
        validate=[validate.Length(max=100), validate.Regexp(SLUG_PATTERN, error=SLUG_MESSAGE)],
    )
    name = Line(required=True, validate=[not_blank, validate.Length(max=200)], metadata=NOT_BLANK)
    homepage_url = Url(schemes={"http", "https"}, allow_none=True)
    logo_url = Url(schemes={"http", "https"}, allow_none=True)
    language = LanguageTag(
        load_default="en",
        validate=[
            validate.Length(max=16),
            validate.Regexp(LANGUAGE_PATTERN, error="Not a language tag such as en or pt-BR."),
        ],
    )
    country = Text(
        allow_none=True,
        validate=validate.Regexp(r"^[A-Z]{2}$", error="Use an ISO 3166-1 alpha-2 code such as GB."),
    )
