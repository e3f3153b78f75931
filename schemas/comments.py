"""Readers' comments."""

from marshmallow import EXCLUDE, Schema, fields, validate

from .common import (
    NOT_BLANK,
    InputSchema,
    Line,
    PageArgs,
    PageSchema,
    Text,
    Timestamp,
    idempotency_key,
    not_blank,
)


class CommentSchema(Schema):
    id = fields.Integer(dump_only=True)
    article_id = fields.Integer(dump_only=True)
    parent_id = fields.Integer(allow_none=True, metadata={"description": "The comment replied to"})
    author_name = fields.String()
    body = fields.String(metadata={"description": "Plain text, never HTML"})
    status = fields.String(
        validate=validate.OneOf(["visible", "hidden"]),
        metadata={"description": "`visible` or `hidden`"},
    )
    created_at = Timestamp(dump_only=True)


class CommentListArgs(PageArgs):
    status = fields.String(
        load_default="visible",
        validate=validate.OneOf(["visible", "hidden", "all"]),
        metadata={
            "description": "Which comments: `visible` (the default); `hidden` or `all` with an "
            "admin key, for moderation"
        },
    )


class CommentPageSchema(PageSchema):
    data = fields.List(fields.Nested(CommentSchema), required=True)


class CommentInSchema(InputSchema):
    author_name = Line(
        required=True, validate=[not_blank, validate.Length(max=80)], metadata=NOT_BLANK
    )
    body = Text(
        required=True,
        validate=[not_blank, validate.Length(max=5000)],
        metadata={
            "description": "Plain text, 1-5000 characters; never rendered as HTML",
            **NOT_BLANK,
        },
    )
    parent_id = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(1, 2**63 - 1),
        metadata={"description": "A comment of the same article"},
    )


class CommentModerationSchema(InputSchema):
    status = fields.String(required=True, validate=validate.OneOf(["visible", "hidden"]))


class CommentPostHeaders(Schema):
    """The headers a comment's post reads (others are not its business)."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = idempotency_key(
        "Any unique value of the client's, sent again with a retry of the same post: a post"
        " this key (the API key's) already made is not made twice, and its answer is given"
        " again, the comment as it was posted, with `Idempotent-Replayed: true`; sent with"
        " another comment, it is a 422. It holds while that comment exists."
    )
