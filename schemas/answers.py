"""Asking an article: the sentences that answer a question, and its key points."""

import re

from marshmallow import Schema, ValidationError, fields, validate

from .common import Count, Text

#: A letter or digit of any script.
WORD = re.compile(r"[^\W_]")


def has_a_word(text):
    """A question says something: a word in some script, not only punctuation or symbols
    (whose answers were every sentence, each scored 0)."""
    if not WORD.search(text):
        raise ValidationError("Has no word to ask with.")


class AnswerArgs(Schema):
    q = Text(
        required=True,
        validate=[validate.Length(max=500), has_a_word],  # has_a_word refuses an empty one
        metadata={"description": "The question, in any of the model's languages"},
    )
    limit = Count(
        load_default=3,
        validate=validate.Range(1, 10),
        metadata={"description": "How many sentences, 1-10"},
    )


class KeyPointArgs(Schema):
    limit = Count(
        load_default=3,
        validate=validate.Range(1, 10),
        metadata={"description": "How many sentences, 1-10"},
    )


class SentenceSchema(Schema):
    sentence = fields.String(metadata={"description": "Verbatim from the body"})
    position = fields.Integer(
        metadata={
            "description": (
                "Its place, from 0, among the body's sentences an answer or key point may be"
                " (short fragments, captions, credits and repeats are not counted): the order"
                " to read them in, not an index into every sentence of the body"
            )
        }
    )
    score = fields.Float(
        metadata={"description": "How well it answers (or sums up); higher is better"}
    )


class SentencesSchema(Schema):
    article_id = fields.Integer()
    article_version = fields.Integer(
        metadata={"description": "The version of the article the sentences were taken from"}
    )
    method = fields.String(metadata={"description": "How the sentences were chosen"})
    model = fields.String(metadata={"description": "The sentence embedding model"})
    sentences = fields.List(
        fields.Nested(SentenceSchema), metadata={"description": "In the article's order"}
    )


class AnswersSchema(SentencesSchema):
    question = fields.String()
