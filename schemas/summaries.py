"""Article summaries."""

from marshmallow import Schema, fields, validate

from .common import Count, Timestamp


class SummaryArgs(Schema):
    sentences = Count(
        load_default=3,
        validate=validate.Range(1, 10),
        metadata={"description": "How many sentences, 1-10"},
    )


class SummarySchema(Schema):
    article_id = fields.Integer()
    sentences = fields.List(
        fields.String(),
        attribute="sentence_list",
        metadata={"description": "Verbatim from the body, in their original order"},
    )
    method = fields.String(metadata={"description": "How the sentences were chosen"})
    article_version = fields.Integer(
        metadata={"description": "The version of the article the summary was made from"}
    )
    created_at = Timestamp()
