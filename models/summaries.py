"""Cached extractive summaries, keyed by article, length and the article version."""

import peewee

from .articles import Article
from .base import BaseModel, utcnow


class Summary(BaseModel):
    """The summary of one article at one length, made from ``article_version``."""

    article = peewee.ForeignKeyField(Article, on_delete="CASCADE")
    sentences = peewee.IntegerField()
    article_version = peewee.IntegerField()
    method = peewee.CharField(max_length=40)
    #: The chosen sentences as a JSON list of strings.
    content = peewee.TextField()
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        primary_key = peewee.CompositeKey("article", "sentences")
