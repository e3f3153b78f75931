"""Articles: what they look like, how they are written, how lists of them are asked for.

:class:`ArticleSchema` is the one description of an article in JSON. Every answer that carries
articles (lists, details, related lists, search hits, the change log, feeds, webhook payloads)
is made of what it dumps: each article's card (the fields a list shows) is rendered by it when
the article is written and stored (``models.cards``), and the body fields are rendered by it
when they are read.
"""

import datetime
import functools

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from models.text import tag_slug

from .common import (
    LANGUAGE_PATTERN,
    NOT_BLANK,
    SLUG_MESSAGE,
    SLUG_PATTERN,
    CommaList,
    Count,
    Identifier,
    InputSchema,
    LanguageTag,
    PageArgs,
    PageSchema,
    Rendered,
    Text,
    Timestamp,
    Url,
    not_blank,
    sort_field,
)
from .html import MAX_ATTRIBUTES, MAX_DEPTH, MAX_LENGTH, MAX_TAGS, TOO_LONG, check_html
from .sources import SourceRefSchema
from .tags import TagRefSchema

BODY_FIELDS = ("body_html", "body_text")
#: The most tags an article has, the longest a tag's name and an external id.
MAX_ARTICLE_TAGS, MAX_TAG_LENGTH, MAX_EXTERNAL_ID_LENGTH = 30, 100, 500
#: The span an article's ``published_at`` must fall in: far enough from the ends of what
#: datetimes hold that the weeks around it, which related articles and stories look at, exist.
EARLIEST = datetime.datetime(1000, 1, 1)
LATEST = datetime.datetime(9000, 1, 1)
#: Raise when the way a card field is rendered changes without a field being added, removed
#: or renamed: stored cards are rendered again by ``newsdesk db init`` when it differs.
CARD_FORMAT = 1


class ArticleSchema(Schema):
    id = fields.Integer(dump_only=True)
    slug = fields.String()
    external_id = fields.String(
        allow_none=True, metadata={"description": "The publisher's id; unique per source"}
    )
    title = fields.String()
    excerpt = fields.String()
    body_html = fields.String(metadata={"description": "Sanitized HTML body"})
    body_text = fields.String(metadata={"description": "Plain text"})
    url = fields.String(allow_none=True)
    image_url = fields.String(allow_none=True)
    byline = fields.String(allow_none=True)
    language = fields.String()
    source = fields.Nested(SourceRefSchema)
    tags = fields.List(fields.Nested(TagRefSchema), attribute="tag_list")
    status = fields.String(
        validate=validate.OneOf(["published", "draft"]),
        metadata={"description": "`published` or `draft`"},
    )
    published_at = Timestamp()
    updated_at = Timestamp(dump_only=True)
    word_count = fields.Integer(dump_only=True)
    reading_time_minutes = fields.Integer(dump_only=True)
    comment_count = fields.Integer(dump_only=True)
    story = fields.Integer(
        attribute="story_id",
        allow_none=True,
        dump_only=True,
        metadata={
            "description": "The story the article is part of (`/v1/stories/{id}`): articles "
            "about the same story across sources and languages; null when none yet"
        },
    )


ARTICLE_FIELDS = tuple(ArticleSchema().fields)
#: The fields of an article's card: what a list shows unless ``fields`` asks for more.
CARD_FIELDS = tuple(name for name in ARTICLE_FIELDS if name not in BODY_FIELDS)
#: Renders an article's card (an Article with ``source`` and ``tag_list``).
card_schema = ArticleSchema(only=CARD_FIELDS)
#: Renders the body fields of a mapping holding ``body_html`` and ``body_text``.
body_schema = ArticleSchema(only=BODY_FIELDS)


def card_fingerprint():
    """What stored cards were rendered with: when it changes, they are rendered again."""
    described = [(name, type(field).__name__) for name, field in card_schema.fields.items()]
    return f"{CARD_FORMAT}:{described}"


def unknown_fields(names):
    """The requested field names that articles do not have, sorted."""
    return sorted(set(names) - set(ARTICLE_FIELDS))


#: What an article is to another it relates to.
RELATION_KINDS = ("related", "follow_up", "background", "same_story")


class RelationSchema(Schema):
    kind = fields.String(
        validate=validate.OneOf(RELATION_KINDS),
        metadata={"description": "related, follow_up, background or same_story"},
    )
    origin = fields.String(
        validate=validate.OneOf(["editorial", "computed"]),
        metadata={"description": "`editorial` (by hand) or `computed`"},
    )
    score = fields.Float()
    reasons = fields.List(
        fields.String(),
        attribute="reason_list",
        metadata={
            "description": "Why: `same_story`, `similar_meaning`, `similar_text`, `shared_tags`, "
            "`same_source`, `recent` (computed ones)"
        },
    )
    language = fields.String(metadata={"description": "The related article's language"})


class RelatedArticleSchema(ArticleSchema):
    relation = fields.Nested(RelationSchema)


class HighlightSchema(Schema):
    title = fields.String(metadata={"description": "The title, HTML-escaped, matches in <mark>"})
    body = fields.String(metadata={"description": "A snippet of the body, likewise"})


class SearchHitSchema(ArticleSchema):
    score = fields.Float(
        metadata={
            "description": (
                "Relevance; higher is better. In keyword mode BM25 (SQLite) or ts_rank"
                " (PostgreSQL); in hybrid and semantic modes the reciprocal rank fusion score,"
                " the sum of 1 / (60 + rank) over the rankings that found the article"
            )
        }
    )
    match = fields.String(
        validate=validate.OneOf(["keyword", "semantic", "both"]),
        metadata={
            "description": (
                "How the article was found: `keyword` (it has the query's words), `semantic`"
                " (it is among those nearest the query in meaning), or `both`"
            )
        },
    )
    highlights = fields.Nested(HighlightSchema)


#: Render what a related item and a search hit add to the article.
relation_part_schema = RelatedArticleSchema(only=("relation",))
hit_part_schema = SearchHitSchema(only=("score", "match", "highlights"))


class ArticlePageSchema(PageSchema):
    data = fields.List(Rendered(ArticleSchema), required=True)


class RelatedPageSchema(PageSchema):
    data = fields.List(Rendered(RelatedArticleSchema), required=True)


class FacetValueSchema(Schema):
    value = fields.String()
    count = fields.Integer()


class SearchPageSchema(PageSchema):
    data = fields.List(Rendered(SearchHitSchema), required=True)
    facets = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Nested(FacetValueSchema)),
        metadata={"description": "Only when `facets` is asked for"},
    )


class ChangeSchema(Schema):
    op = fields.String(
        validate=validate.OneOf(["upsert", "delete"]),
        metadata={"description": "`upsert` or `delete`"},
    )
    id = fields.Integer(attribute="article_id", metadata={"description": "The article's id"})
    at = Timestamp(attribute="created_at")
    reason = fields.String(
        allow_none=True,
        validate=validate.OneOf(["deleted", "unpublished", None]),
        metadata={"description": "For deletes: `deleted` or `unpublished`"},
    )
    article = Rendered(ArticleSchema, allow_none=True, metadata={"description": "For upserts"})


class ChangePageSchema(Schema):
    data = fields.List(fields.Nested(ChangeSchema), required=True)
    has_more = fields.Boolean(required=True)
    next_since = fields.String(
        required=True, metadata={"description": "Pass as `since` next time; always present"}
    )


_FIELDS_HELP = (
    "Comma-separated article fields to return (sparse fieldset); empty items are skipped, and "
    "an empty value asks for the default fields. Lists leave out body_html and body_text unless"
    " asked."
)


#: What each item of a search, a related list and a story adds to its article, whatever
#: ``fields`` asks: these may be named in it too.
HIT_FIELDS = ("score", "match", "highlights")
RELATION_FIELDS = ("relation",)
COPY_FIELDS = ("duplicate_of",)


def field_names(always=(), page_of_bodies=False):
    """The ``fields`` parameter: article fields, and the names of ``always`` (what each item
    carries whatever is asked), which may be named too; ``page_of_bodies`` where a page ends
    early past ``api.documents.PAGE_BODY_BYTES`` of bodies."""
    help_text = _FIELDS_HELP
    if page_of_bodies:
        help_text += " A page showing bodies ends early (has_more) once they pass 8 MiB."
    if always:
        help_text += (
            f" Each item has {', '.join(always)} whatever is asked; a value naming only"
            " such fields gives them alone."
        )
    return CommaList(
        fields.String(metadata={"enum": [*ARTICLE_FIELDS, *always]}),
        data_key="fields",
        metadata={"description": help_text},
    )


class FieldsArgs(Schema):
    field_names = field_names()


class ArticleFilterArgs(Schema):
    """The filters of article lists, shared by the list, search and feeds."""

    source = CommaList(Text(), metadata={"description": "Source slugs (any of)"})
    tag = CommaList(Text(), metadata={"description": "Tag slugs (any of)"})
    language = CommaList(
        LanguageTag(), metadata={"description": "Languages (any of; in any case: en-gb is en-GB)"}
    )
    published_after = Timestamp(metadata={"description": "Published at or after (RFC 3339)"})
    published_before = Timestamp(metadata={"description": "Published before (RFC 3339)"})
    updated_since = Timestamp(metadata={"description": "Updated at or after (RFC 3339)"})


class ArticleQueryArgs(PageArgs, FieldsArgs, ArticleFilterArgs):
    field_names = field_names(page_of_bodies=True)
    sort = sort_field(["-published_at", "published_at", "-updated_at"])
    status = fields.String(
        load_default="published",
        validate=validate.OneOf(["published", "draft"]),
        metadata={"description": "`published` (default), or `draft`: needs a key with `write`"},
    )


class RelatedArgs(PageArgs, FieldsArgs):
    field_names = field_names(RELATION_FIELDS, page_of_bodies=True)
    limit = Count(
        load_default=5,
        validate=validate.Range(1, 50),
        metadata={"description": "Items per page, 1-50"},
    )


class SearchArgs(PageArgs, FieldsArgs, ArticleFilterArgs):
    field_names = field_names(HIT_FIELDS)
    q = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={
            "description": (
                'Words (ANDed), "exact phrases", a OR b, -excluded. At most 32 words (a'
                " phrase's words and excluded ones included), 6 alternatives joined by OR, 16"
                " exclusions and 8 words in a phrase: past these, a 400 naming q says what to"
                " change. Read in Unicode's NFKC form, as articles are indexed: ﬂood and ｆｌｏｏｄ"
                " are flood."
            )
        },
    )
    sort = sort_field(["relevance", "-published_at"])
    mode = fields.String(
        load_default="hybrid",
        validate=validate.OneOf(["hybrid", "keyword", "semantic"]),
        metadata={
            "description": (
                "`keyword`: articles with the query's words, ranked by BM25 (SQLite) or"
                " ts_rank (PostgreSQL), every match paged through. `semantic`: the 100"
                " published articles nearest the query in meaning, in any language. `hybrid`"
                " (default): the best 50 of each ranking merged by reciprocal rank fusion, so"
                " a query in one language also finds articles in others; its keyword ranking"
                " ranks the newest 300 matches. The query's exclusions and every filter apply"
                " in each mode."
            )
        },
    )
    facets = CommaList(
        fields.String(validate=validate.OneOf(["source", "tag", "language"])),
        metadata={
            "description": "Add counts per value over the whole result: source, tag, language"
        },
    )


class ChangeArgs(FieldsArgs):
    field_names = field_names(page_of_bodies=True)
    since = fields.String(
        metadata={"description": "`next_since` of the previous call; leave out to start over"}
    )
    limit = Count(load_default=100, validate=validate.Range(1, 1000))


def has_slug(name):
    """A tag must have a letter or a digit, of any script, to have a slug."""
    if name and not tag_slug(name):
        raise ValidationError("A tag needs a letter or a digit.")


class ArticleInSchema(InputSchema):
    """An article as clients write it (POST, PUT; PATCH takes any subset)."""

    title = Text(required=True, validate=[not_blank, validate.Length(max=500)], metadata=NOT_BLANK)
    source = Identifier(
        required=True,
        validate=not_blank,
        metadata={"description": "Slug of an existing source", **NOT_BLANK},
    )
    body_html = fields.String(
        validate=check_html,
        metadata={
            "description": (
                "HTML; sanitized with an allow-list. body_text is derived from it unless given"
                " too (then kept as given: the text is what search, the excerpt and the word"
                " count read). A create or PUT needs body_html or body_text. At most"
                f" {MAX_LENGTH:,} characters and {MAX_TAGS:,} tags (start and end tags,"
                f" comments); elements nest at most {MAX_DEPTH} levels deep and carry at most"
                f" {MAX_ATTRIBUTES} attributes each"
            ),
            "maxLength": MAX_LENGTH,
        },
    )
    body_text = Text(
        validate=validate.Length(max=MAX_LENGTH, error=TOO_LONG),
        metadata={
            "description": "Plain text, paragraphs separated by blank lines. A create or PUT"
            " needs body_html or body_text"
        },
    )
    published_at = Timestamp(
        stored=True,
        validate=validate.Range(
            EARLIEST,
            LATEST,
            max_inclusive=False,
            error="Must be in the years 1000 to 8999.",
        ),
        metadata={"description": "Default: now. In the years 1000 to 8999"},
    )
    url = Url(schemes={"http", "https"}, allow_none=True)
    image_url = Url(schemes={"http", "https"}, allow_none=True)
    byline = Text(allow_none=True, validate=validate.Length(max=300))
    language = LanguageTag(
        validate=[
            validate.Length(max=16),
            validate.Regexp(LANGUAGE_PATTERN, error="Not a language tag such as en or pt-BR."),
        ],
        metadata={"description": "Default: the source's language"},
    )
    tags = fields.List(
        Identifier(
            validate=[not_blank, validate.Length(max=MAX_TAG_LENGTH), has_slug],
            metadata=NOT_BLANK,
        ),
        validate=validate.Length(max=MAX_ARTICLE_TAGS),
        metadata={"description": "Tag slugs or names; tags are created on first use"},
    )
    excerpt = Text(allow_none=True, validate=validate.Length(max=2000))
    external_id = Identifier(
        allow_none=True,
        validate=validate.Length(min=1, max=MAX_EXTERNAL_ID_LENGTH),
        metadata={"description": "The publisher's id; re-posting the same one updates"},
    )
    slug = Identifier(
        validate=[validate.Length(max=200), validate.Regexp(SLUG_PATTERN, error=SLUG_MESSAGE)],
        metadata={"description": "Default: derived from the title, made unique"},
    )
    status = fields.String(validate=validate.OneOf(["published", "draft"]))

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def needs_a_body(self, data, original, partial=None, **kwargs):
        if partial or not isinstance(original, dict):
            return  # not an object: marshmallow says so
        if any(original.get(name) and name not in data for name in BODY_FIELDS):
            return  # a body field given but invalid has its own error
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
        validate=validate.OneOf(RELATION_KINDS),
    )


#: Kinds of rejection (``code``), what an import counts its rejections by.
IMPORT_REJECTION_CODES = (
    "too_long",
    "not_utf8",
    "not_json",
    "not_object",
    "not_feed",
    "duplicate",
    "invalid",
    "conflict",
)


class ImportRejectionSchema(Schema):
    line = fields.Integer(metadata={"description": "1-based line number (or item number)"})
    code = fields.String(
        metadata={
            "description": "The kind of reason: " + ", ".join(IMPORT_REJECTION_CODES),
            "enum": list(IMPORT_REJECTION_CODES),
        }
    )
    reason = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class ImportResultSchema(Schema):
    lines = fields.Integer(metadata={"description": "Non-blank lines read"})
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    rejected = fields.Integer()
    rejections = fields.List(
        fields.Nested(ImportRejectionSchema),
        metadata={"description": "The first 100 rejections, in line order"},
    )
    rejections_omitted = fields.Integer(
        metadata={"description": "Rejections past the first 100, not listed (all are counted)"}
    )
    rejected_by_code = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "Every rejection counted by its `code`"},
    )
    stored_lines = fields.List(
        fields.List(fields.Integer(), validate=validate.Length(equal=2)),
        metadata={
            "description": (
                "Which lines were stored (created, updated or unchanged): ranges "
                "`[first, last]` of line numbers, in order; every non-blank line of a range "
                "was stored, and no line outside the ranges"
            )
        },
    )


class ImportJobSchema(ImportResultSchema):
    id = fields.Integer()
    status = fields.String(
        metadata={
            "description": (
                "queued (waiting for the worker), running, succeeded (every line read and "
                "accounted) or failed (see `error`; `stored_lines` holds what was stored)"
            ),
            "enum": ["queued", "running", "succeeded", "failed"],
        }
    )
    bytes = fields.Integer(metadata={"description": "Size of the NDJSON body"})
    error = fields.String(allow_none=True)
    created_at = Timestamp()
    started_at = Timestamp(allow_none=True)
    finished_at = Timestamp(allow_none=True)


@functools.lru_cache(maxsize=256)
def fieldset_schema(names):
    """An ArticleSchema of only the fields ``names`` (a tuple), made once per fieldset."""
    return ArticleSchema(only=names)
