"""Readers' comments on articles."""

import peewee
from peewee import fn

from . import cards
from .articles import Article, seek
from .base import BaseModel, utcnow
from .keys import ApiKey

VISIBLE = "visible"
HIDDEN = "hidden"
COMMENT_STATUSES = (VISIBLE, HIDDEN)


class Comment(BaseModel):
    """A plain-text comment, optionally a reply to another comment of the same article."""

    id = peewee.AutoField()
    article = peewee.ForeignKeyField(Article, backref="comments", on_delete="CASCADE")
    parent = peewee.ForeignKeyField("self", null=True, backref="replies", on_delete="SET NULL")
    author_name = peewee.CharField(max_length=80)
    body = peewee.TextField()
    status = peewee.CharField(
        max_length=10,
        default=VISIBLE,
        constraints=[peewee.Check("status IN ('visible', 'hidden')")],
    )
    #: The key that posted it, for object-level authorization.
    api_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="SET NULL")
    created_at = peewee.DateTimeField(default=utcnow)
    #: Raised by each moderation (the comment's ETag comes from it).
    version = peewee.IntegerField(default=1)
    #: The post's Idempotency-Key, if it had one: one comment per key and value.
    idempotency_key = peewee.CharField(max_length=255, null=True)

    class Meta:
        indexes = (
            (("article", "status", "created_at", "id"), False),
            (("api_key", "idempotency_key"), True),
        )

    def posted_as(self, article_id, data):
        """Whether this comment is what posting ``data`` (a CommentInSchema load) on the
        article ``article_id`` makes (a reply whose parent was deleted since, which set its
        ``parent_id`` to null, was posted with the parent's id)."""
        parent_id = data.get("parent_id")
        if self.parent_id is None and parent_id is not None:
            if Comment.select().where(Comment.id == parent_id).exists():
                return False
            parent_id = None  # gone
        return (self.article_id, self.parent_id, self.author_name, self.body) == (
            article_id,
            parent_id,
            data["author_name"],
            data["body"],
        )

    @classmethod
    def of_article(cls, article_id, after=None, status=VISIBLE):
        """An article's comments of ``status`` (None: all), oldest first, paged on
        ``(created_at, id)``."""
        query = cls.select().where(cls.article == article_id)
        if status is not None:
            query = query.where(cls.status == status)
        return seek(query, (cls.created_at, cls.id), after, descending=False)

    @classmethod
    def recount(cls, article_ids):
        """Recount ``comment_count`` (visible comments) of the given articles."""
        count = cls.select(fn.COUNT(cls.id)).where(
            (cls.article == Article.id) & (cls.status == VISIBLE)
        )
        Article.update(comment_count=count).where(Article.id.in_(list(article_ids))).execute()

    @classmethod
    def refresh_counts(cls, article_ids):
        """Recount the articles' comments, and publish the cards that show a new count."""
        cls.recount(article_ids)
        cards.publish(article_ids)
