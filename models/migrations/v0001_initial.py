"""Version 1: the tables as ``create_tables`` made them before version 2 existed.

The models below are frozen copies of those of that time (commit 231e139), not the live ones:
this step must create the same tables however the models change later.
"""

import datetime

import peewee


def utcnow():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


class BaseModel(peewee.Model):
    class Meta:
        legacy_table_names = False


class Source(BaseModel):
    id = peewee.AutoField()
    slug = peewee.CharField(max_length=100, unique=True)
    name = peewee.CharField(max_length=200)
    homepage_url = peewee.TextField(null=True)
    logo_url = peewee.TextField(null=True)
    language = peewee.CharField(max_length=16, default="en")
    country = peewee.CharField(max_length=2, null=True)
    article_count = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)


class Article(BaseModel):
    id = peewee.AutoField()
    slug = peewee.CharField(max_length=200, unique=True)
    source = peewee.ForeignKeyField(Source, backref="articles", on_delete="RESTRICT")
    external_id = peewee.CharField(max_length=500, null=True)
    title = peewee.TextField()
    excerpt = peewee.TextField(default="")
    url = peewee.TextField(null=True)
    image_url = peewee.TextField(null=True)
    byline = peewee.CharField(max_length=300, null=True)
    language = peewee.CharField(max_length=16, default="en")
    status = peewee.CharField(
        max_length=16,
        default="published",
        constraints=[peewee.Check("status IN ('published', 'draft')")],
    )
    published_at = peewee.DateTimeField()
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    word_count = peewee.IntegerField(default=0)
    reading_time_minutes = peewee.IntegerField(default=0)
    comment_count = peewee.IntegerField(default=0)
    version = peewee.IntegerField(default=1)
    content_hash = peewee.CharField(max_length=64, default="")

    class Meta:
        indexes = (
            (("source", "external_id"), True),
            (("status", "published_at", "id"), False),
            (("source", "status", "published_at", "id"), False),
            (("language", "status", "published_at", "id"), False),
            (("status", "updated_at", "id"), False),
        )


class ArticleBody(BaseModel):
    article = peewee.ForeignKeyField(
        Article, primary_key=True, backref="bodies", on_delete="CASCADE"
    )
    body_html = peewee.TextField(default="")
    body_text = peewee.TextField(default="")


class Tag(BaseModel):
    id = peewee.AutoField()
    slug = peewee.CharField(max_length=100, unique=True)
    name = peewee.CharField(max_length=200)
    article_count = peewee.IntegerField(default=0, index=True)
    created_at = peewee.DateTimeField(default=utcnow)


class ArticleTag(BaseModel):
    article = peewee.ForeignKeyField(Article, on_delete="CASCADE")
    tag = peewee.ForeignKeyField(Tag, on_delete="CASCADE")
    published_at = peewee.DateTimeField()

    class Meta:
        primary_key = peewee.CompositeKey("article", "tag")
        indexes = ((("tag", "published_at", "article"), False),)


class Relation(BaseModel):
    id = peewee.AutoField()
    article = peewee.ForeignKeyField(Article, on_delete="CASCADE")
    related = peewee.ForeignKeyField(Article, on_delete="CASCADE")
    kind = peewee.CharField(max_length=20, default="related")
    origin = peewee.CharField(max_length=10, default="editorial")
    score = peewee.FloatField(default=1.0)
    reasons = peewee.TextField(default="")
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("article", "related"), True),
            (("article", "origin", "score"), False),
        )
        constraints = [peewee.SQL("CHECK (article_id <> related_id)")]


class ApiKey(BaseModel):
    id = peewee.AutoField()
    name = peewee.CharField(max_length=100)
    prefix = peewee.CharField(max_length=16)
    key_hash = peewee.CharField(max_length=128, unique=True)
    scopes = peewee.CharField(max_length=100)
    created_at = peewee.DateTimeField(default=utcnow)
    last_used_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)


class Comment(BaseModel):
    id = peewee.AutoField()
    article = peewee.ForeignKeyField(Article, backref="comments", on_delete="CASCADE")
    parent = peewee.ForeignKeyField("self", null=True, backref="replies", on_delete="SET NULL")
    author_name = peewee.CharField(max_length=80)
    body = peewee.TextField()
    status = peewee.CharField(
        max_length=10,
        default="visible",
        constraints=[peewee.Check("status IN ('visible', 'hidden')")],
    )
    api_key = peewee.ForeignKeyField(ApiKey, null=True, on_delete="SET NULL")
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("article", "status", "created_at", "id"), False),)


class Change(BaseModel):
    id = peewee.BigAutoField()
    article_id = peewee.BigIntegerField(index=True)
    op = peewee.CharField(max_length=10, constraints=[peewee.Check("op IN ('upsert', 'delete')")])
    reason = peewee.CharField(max_length=20, null=True)
    created_at = peewee.DateTimeField(default=utcnow)


class Webhook(BaseModel):
    id = peewee.AutoField()
    url = peewee.TextField()
    events = peewee.CharField(max_length=200)
    source_slug = peewee.CharField(max_length=100, null=True)
    tag_slug = peewee.CharField(max_length=100, null=True)
    secret = peewee.CharField(max_length=128)
    created_at = peewee.DateTimeField(default=utcnow)


class WebhookDelivery(BaseModel):
    id = peewee.BigAutoField()
    webhook = peewee.ForeignKeyField(Webhook, backref="deliveries", on_delete="CASCADE")
    event = peewee.CharField(max_length=40)
    payload = peewee.TextField()
    status = peewee.CharField(max_length=10, default="pending")
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(default=utcnow, index=True)
    last_error = peewee.TextField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)


class Summary(BaseModel):
    article = peewee.ForeignKeyField(Article, on_delete="CASCADE")
    sentences = peewee.IntegerField()
    article_version = peewee.IntegerField()
    method = peewee.CharField(max_length=40)
    content = peewee.TextField()
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        primary_key = peewee.CompositeKey("article", "sentences")


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
    Webhook,
    WebhookDelivery,
    Summary,
]


def upgrade(migrator):
    """Create the tables of version 1."""
    database = migrator.database
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS)
