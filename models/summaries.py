"""Cached extractive summaries, keyed by article, length and the article version."""

import json

import peewee

from .articles import Article, ArticleBody
from .base import BaseModel, keep_unless_gone, utcnow
from .summarize import METHOD, summarize


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

    @classmethod
    def for_article(cls, article, count):
        """The summary of ``article`` at ``count`` sentences, made now if the cached one is
        missing or was made from an older version of the article."""
        cached = cls.get_or_none((cls.article == article.id) & (cls.sentences == count))
        if cached and cached.article_version == article.version and cached.method == METHOD:
            return cached
        body = ArticleBody.get_or_none(ArticleBody.article == article.id)
        sentences = summarize(body.body_text if body else article.excerpt, count)
        row = {
            "article": article.id,
            "sentences": count,
            "article_version": article.version,
            "method": METHOD,
            "content": json.dumps(sentences, ensure_ascii=False),
            "created_at": utcnow(),
        }
        keep_unless_gone(
            cls.insert(**row).on_conflict(
                conflict_target=[cls.article, cls.sentences],
                update={k: v for k, v in row.items() if k not in ("article", "sentences")},
            )
        )
        return cls(**row)

    @property
    def sentence_list(self):
        return json.loads(self.content)
