"""Peewee models and the queries on them. No Flask here."""

from . import answers, cards, embeddings, hybrid, reading, related, stories
from .answers import SentenceEmbedding
from .articles import (
    ARTICLE_SORTS,
    ARTICLE_STATUSES,
    COMPUTED,
    DRAFT,
    EDITORIAL,
    PUBLISHED,
    RELATION_KINDS,
    Article,
    ArticleBody,
    ArticleTag,
    Relation,
    Source,
    Tag,
    is_empty,
    seek,
)
from .base import (
    Setting,
    bind_database,
    close_all,
    connected,
    db,
    drop_connection,
    end_request,
    is_postgres,
    make_database,
    utcnow,
)
from .changes import Change, DataVersion
from .comments import COMMENT_STATUSES, Comment
from .embeddings import ArticleEmbedding, EmbeddingQueue
from .keys import SCOPES, ApiKey
from .migrations import LATEST_VERSION, current_version, init_db
from .related import RelatedQueue
from .stories import Story
from .summaries import Summary

#: The live models (tests empty their tables between tests; the migrations make them).
MODELS = [
    Source,
    Tag,
    Article,
    ArticleBody,
    ArticleTag,
    Relation,
    ApiKey,
    Comment,
    Change,
    DataVersion,
    Summary,
    RelatedQueue,
    Setting,
    Story,
    ArticleEmbedding,
    EmbeddingQueue,
    SentenceEmbedding,
]

__all__ = [
    "ARTICLE_SORTS",
    "ARTICLE_STATUSES",
    "COMMENT_STATUSES",
    "COMPUTED",
    "DRAFT",
    "EDITORIAL",
    "LATEST_VERSION",
    "MODELS",
    "PUBLISHED",
    "RELATION_KINDS",
    "SCOPES",
    "ApiKey",
    "Article",
    "ArticleBody",
    "ArticleEmbedding",
    "ArticleTag",
    "Change",
    "Comment",
    "DataVersion",
    "EmbeddingQueue",
    "RelatedQueue",
    "Relation",
    "SentenceEmbedding",
    "Setting",
    "Source",
    "Story",
    "Summary",
    "Tag",
    "answers",
    "bind_database",
    "cards",
    "close_all",
    "connected",
    "current_version",
    "db",
    "drop_connection",
    "embeddings",
    "end_request",
    "hybrid",
    "init_db",
    "is_empty",
    "is_postgres",
    "make_database",
    "reading",
    "related",
    "seek",
    "stories",
    "utcnow",
]
