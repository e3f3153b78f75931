"""Story clusters: articles about the same story, across sources and languages."""

from marshmallow import Schema, fields

from .articles import COPY_FIELDS, ArticleSchema, FieldsArgs, field_names
from .common import PageArgs, PageSchema, Rendered, Timestamp, sort_field


class StoryArticleSchema(ArticleSchema):
    duplicate_of = fields.Integer(
        allow_none=True,
        metadata={
            "description": "The id of the earlier article of the story this one is a "
            "near-identical copy of (a wire story run by another source), or null"
        },
    )


class StorySchema(Schema):
    id = fields.Integer()
    headline = Rendered(
        ArticleSchema,
        attribute="headline_item",
        allow_none=True,
        metadata={"description": "The story's first article that is not a copy of another"},
    )
    article_count = fields.Integer(metadata={"description": "Published articles in the story"})
    sources = fields.List(
        fields.String(), attribute="source_list", metadata={"description": "Source slugs"}
    )
    languages = fields.List(fields.String(), attribute="language_list")
    first_published_at = Timestamp()
    last_published_at = Timestamp(metadata={"description": "Its newest article's time"})


class StoryDetailSchema(StorySchema):
    articles = fields.List(
        Rendered(StoryArticleSchema),
        attribute="article_items",
        metadata={"description": "Its articles in publication order (the first 100)"},
    )


class StoryPageSchema(PageSchema):
    data = fields.List(fields.Nested(StorySchema), required=True)


class StoryFieldsArgs(FieldsArgs):
    field_names = field_names(COPY_FIELDS)


class StoryQueryArgs(PageArgs, FieldsArgs):
    """Paging, the order, and the article fields shown of each headline (``fields``)."""

    sort = sort_field(
        ["-last_published_at", "-id"],
        "`-last_published_at` (newest activity first; a story an article joins while you page"
        " moves ahead of your cursor and is not seen again, and one whose latest article is"
        " unpublished or deleted moves back and may be seen twice) or `-id` (newest story first:"
        " every story once, while articles arrive)",
    )
