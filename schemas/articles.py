"""Articles: what they look like, how lists of them are asked for, sparse fieldsets."""

import functools

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from webargs.fields import DelimitedList

from .common import (
    LANGUAGE_PATTERN,
    SLUG_MESSAGE,
    SLUG_PATTERN,
    InputSchema,
    PageArgs,
    PageSchema,
    QueryArgs,
    Text,
    Timestamp,
    not_blank,
    rfc3339,
)
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


class FieldsArgs(QueryArgs):
    field_names = DelimitedList(
        fields.String(), data_key="fields", metadata={"description": _FIELDS_HELP}
    )


class ArticleQueryArgs(PageArgs, FieldsArgs):
    source = DelimitedList(Text(), metadata={"description": "Source slugs (any of)"})
    tag = DelimitedList(Text(), metadata={"description": "Tag slugs (any of)"})
    language = DelimitedList(Text(), metadata={"description": "Languages (any of)"})
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


#: How each field is read off an article ``a``, as a Python expression: what ArticleSchema and
#: its subclasses dump, written out. tests/test_dump.py holds the two equal.
_EXPRESSIONS = {
    "id": "a.id",
    "slug": "a.slug",
    "external_id": "a.external_id",
    "title": "a.title",
    "excerpt": "a.excerpt",
    "body_html": "a.body.body_html",
    "body_text": "a.body.body_text",
    "url": "a.url",
    "image_url": "a.image_url",
    "byline": "a.byline",
    "language": "a.language",
    "source": "source(a.source)",
    "tags": "[{'slug': t.slug, 'name': t.name} for t in a.tag_list]",
    "status": "a.status",
    "published_at": "rfc3339(a.published_at)",
    "updated_at": "rfc3339(a.updated_at)",
    "word_count": "a.word_count",
    "reading_time_minutes": "a.reading_time_minutes",
    "comment_count": "a.comment_count",
    "relation": "relation(a.relation)",
    "score": "float(a.score)",
    "highlights": "{'title': a.highlights['title'], 'body': a.highlights['body']}",
}


def _source(source):
    return {"id": source.id, "slug": source.slug, "name": source.name, "logo_url": source.logo_url}


def dump_relation(relation):
    """A relation as :class:`RelationSchema` dumps it."""
    return {
        "kind": relation.kind,
        "origin": relation.origin,
        "score": float(relation.score),
        "reasons": relation.reason_list,
    }


class ArticleDumper:
    """Dumps articles as the article schemas would, several times faster.

    Articles are serialized on every hot path (lists, details, related, search, changes), where
    marshmallow's generality costs more than the query; the schemas stay the description of the
    answer (validation and the OpenAPI document). Each fieldset's dumper is one dict display,
    compiled once from :data:`_EXPRESSIONS` (as dataclasses compiles ``__init__``): a third of
    the time of calling a getter per field.
    """

    def __init__(self, names):
        items = ", ".join(f"{name!r}: {_EXPRESSIONS[name]}" for name in names)
        scope = {"rfc3339": rfc3339, "source": _source, "relation": dump_relation}
        self._dump_one = eval(f"lambda a: {{{items}}}", scope)  # noqa: S307 - our own names

    def dump(self, obj, many=False):
        if many:
            return [self._dump_one(article) for article in obj]
        return self._dump_one(obj)


def _ordered(only, extra):
    """The fields in the order the schemas dump them: declared order, or the order asked for."""
    return (*(ARTICLE_FIELDS if only is None else only), *extra)


@functools.lru_cache(maxsize=512)
def article_schema(only=None, related=False):
    """A (cached) dumper of the fields in ``only`` (a tuple), or all of them."""
    return ArticleDumper(_ordered(only, ("relation",) if related else ()))


class ArticleInSchema(InputSchema):
    """An article as clients write it (POST, PUT; PATCH takes any subset)."""

    title = Text(required=True, validate=[not_blank, validate.Length(max=500)])
    source = Text(required=True, metadata={"description": "Slug of an existing source"})
    body_html = fields.String(
        validate=validate.Length(max=2_000_000),
        metadata={"description": "HTML; sanitized with an allow-list. body_text is derived from it"},
    )
    body_text = Text(
        validate=validate.Length(max=1_000_000),
        metadata={"description": "Plain text, paragraphs separated by blank lines"},
    )
    published_at = Timestamp(metadata={"description": "Default: now"})
    url = fields.URL(schemes={"http", "https"}, allow_none=True)
    image_url = fields.URL(schemes={"http", "https"}, allow_none=True)
    byline = Text(allow_none=True, validate=validate.Length(max=300))
    language = Text(
        validate=[
            validate.Length(max=16),
            validate.Regexp(LANGUAGE_PATTERN, error="Not a language tag such as en or pt-BR."),
        ],
        metadata={"description": "Default: the source's language"},
    )
    tags = fields.List(
        Text(validate=[not_blank, validate.Length(max=100)]),
        validate=validate.Length(max=30),
        metadata={"description": "Tag slugs or names; tags are created on first use"},
    )
    excerpt = Text(allow_none=True, validate=validate.Length(max=2000))
    external_id = Text(
        allow_none=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "The publisher's id; re-posting the same one updates"},
    )
    slug = Text(
        validate=[validate.Length(max=200), validate.Regexp(SLUG_PATTERN, error=SLUG_MESSAGE)],
        metadata={"description": "Default: derived from the title, made unique"},
    )
    status = fields.String(validate=validate.OneOf(["published", "draft"]))

    @validates_schema(skip_on_field_errors=False)
    def needs_a_body(self, data, partial=None, **kwargs):
        if partial:
            return
        if not data.get("body_html") and not data.get("body_text"):
            raise ValidationError("Give body_html or body_text.", "body_text")


class RelationInSchema(InputSchema):
    article_id = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(1, 2**63 - 1),
        metadata={"description": "The related article's id"},
    )
    kind = fields.String(
        load_default="related",
        validate=validate.OneOf(["related", "follow_up", "background", "same_story"]),
    )


class ImportRejectionSchema(Schema):
    line = fields.Integer(metadata={"description": "1-based line number (or item number)"})
    reason = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class ImportResultSchema(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    rejected = fields.Integer()
    rejections = fields.List(fields.Nested(ImportRejectionSchema))


class SearchArgs(ArticleQueryArgs):
    q = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": 'Words (ANDed), "exact phrases", a OR b, -excluded'},
    )
    sort = fields.String(
        load_default="relevance", validate=validate.OneOf(["relevance", "-published_at"])
    )
    facets = DelimitedList(
        fields.String(validate=validate.OneOf(["source", "tag", "language"])),
        metadata={"description": "Add counts per value over the whole result: source, tag, language"},
    )


class HighlightSchema(Schema):
    title = fields.String(metadata={"description": "The title, HTML-escaped, matches in <mark>"})
    body = fields.String(metadata={"description": "A snippet of the body, likewise"})


class SearchHitSchema(ArticleSchema):
    score = fields.Float(metadata={"description": "Relevance; higher is better"})
    highlights = fields.Nested(HighlightSchema)


class FacetValueSchema(Schema):
    value = fields.String()
    count = fields.Integer()


class SearchPageSchema(PageSchema):
    data = fields.List(fields.Nested(SearchHitSchema), required=True)
    facets = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Nested(FacetValueSchema)),
        metadata={"description": "Only when `facets` is asked for"},
    )


@functools.lru_cache(maxsize=256)
def search_hit_schema(only=None):
    """A (cached) dumper for search hits: the fieldset plus score and highlights."""
    return ArticleDumper(_ordered(only, ("score", "highlights")))


class ChangeArgs(FieldsArgs):
    since = fields.String(
        metadata={"description": "`next_since` of the previous call; leave out to start over"}
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class ChangeSchema(Schema):
    op = fields.String(metadata={"description": "`upsert` or `delete`"})
    id = fields.Integer(attribute="article_id", metadata={"description": "The article's id"})
    at = Timestamp(attribute="created_at")
    reason = fields.String(
        allow_none=True, metadata={"description": "For deletes: `deleted` or `unpublished`"}
    )
    article = fields.Nested(ArticleSchema, allow_none=True, metadata={"description": "For upserts"})


class ChangePageSchema(Schema):
    data = fields.List(fields.Nested(ChangeSchema), required=True)
    has_more = fields.Boolean(required=True)
    next_since = fields.String(
        required=True, metadata={"description": "Pass as `since` next time; always present"}
    )
