"""Articles: what they look like, how lists of them are asked for, sparse fieldsets."""

import functools

from marshmallow import Schema, fields, validate
from webargs.fields import DelimitedList

from .common import PageArgs, PageSchema, Timestamp
from .sources import SourceRefSchema
from .tags import TagRefSchema

BODY_FIELDS = ("body_html", "body_text")


class ArticleSchema(Schema):
    id = fields.Integer(dump_only=True)
    slug = fields.String()
    external_id = fields.String(
        allow_none=True, metadata={"description": "The publisher's id; unique per source"}
    )
    title = fields.String()
    excerpt = fields.String()
    body_html = fields.String(
        attribute="body.body_html", metadata={"description": "Sanitized HTML body"}
    )
    body_text = fields.String(attribute="body.body_text", metadata={"description": "Plain text"})
    url = fields.String(allow_none=True)
    image_url = fields.String(allow_none=True)
    byline = fields.String(allow_none=True)
    language = fields.String()
    source = fields.Nested(SourceRefSchema)
    tags = fields.List(fields.Nested(TagRefSchema), attribute="tag_list")
    status = fields.String(metadata={"description": "`published` or `draft`"})
    published_at = Timestamp()
    updated_at = Timestamp(dump_only=True)
    word_count = fields.Integer(dump_only=True)
    reading_time_minutes = fields.Integer(dump_only=True)
    comment_count = fields.Integer(dump_only=True)


ARTICLE_FIELDS = tuple(ArticleSchema._declared_fields)
LIST_FIELDS = tuple(name for name in ARTICLE_FIELDS if name not in BODY_FIELDS)


class RelationSchema(Schema):
    kind = fields.String(metadata={"description": "related, follow_up, background or same_story"})
    origin = fields.String(metadata={"description": "`editorial` (by hand) or `computed`"})
    score = fields.Float()
    reasons = fields.List(fields.String(), attribute="reason_list")


class RelatedArticleSchema(ArticleSchema):
    relation = fields.Nested(RelationSchema)


class ArticlePageSchema(PageSchema):
    data = fields.List(fields.Nested(ArticleSchema), required=True)


class RelatedPageSchema(Schema):
    data = fields.List(fields.Nested(RelatedArticleSchema), required=True)


_FIELDS_HELP = (
    "Comma-separated article fields to return (sparse fieldset). "
    "Lists leave out body_html and body_text unless asked."
)


class FieldsArgs(Schema):
    field_names = DelimitedList(
        fields.String(), data_key="fields", metadata={"description": _FIELDS_HELP}
    )


class ArticleQueryArgs(PageArgs, FieldsArgs):
    source = DelimitedList(fields.String(), metadata={"description": "Source slugs (any of)"})
    tag = DelimitedList(fields.String(), metadata={"description": "Tag slugs (any of)"})
    language = DelimitedList(fields.String(), metadata={"description": "Languages (any of)"})
    published_after = Timestamp(metadata={"description": "Published at or after (RFC 3339)"})
    published_before = Timestamp(metadata={"description": "Published before (RFC 3339)"})
    updated_since = Timestamp(metadata={"description": "Updated at or after (RFC 3339)"})
    sort = fields.String(
        load_default="-published_at",
        validate=validate.OneOf(["-published_at", "published_at", "-updated_at"]),
    )


class RelatedArgs(FieldsArgs):
    limit = fields.Integer(load_default=5, validate=validate.Range(1, 50))


def unknown_fields(names):
    """The requested field names that articles do not have, sorted."""
    return sorted(set(names) - set(ARTICLE_FIELDS))


@functools.lru_cache(maxsize=512)
def article_schema(only=None, related=False):
    """A (cached) schema dumping only the fields in ``only`` (a tuple), or all of them."""
    schema_class = RelatedArticleSchema if related else ArticleSchema
    if only is not None and related:
        only = (*only, "relation")
    return schema_class(only=only)
