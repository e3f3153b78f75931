"""Version 11: what the semantic features keep. ``article_embedding``, each article's vector
(float32 bytes) under a named model with the numbers its text names; ``embedding_queue``, the
articles to embed; ``story``, clusters of articles about the same story;
``sentence_embedding``, an article's sentences and their vectors (for answers and key points,
kept per article version); and on each article
``story_id`` and ``duplicate_of_id`` (the earlier article it is a near-identical copy of).

The pgvector table (``article_vector``) is not made here: its column's size is the model's, and
whether the server has the extension is known only where it runs (``newsdesk db init`` makes it,
``models.embeddings.ensure_vector_index``).
"""

import peewee
from playhouse.migrate import migrate


class BaseModel(peewee.Model):
    class Meta:
        legacy_table_names = False


class Article(BaseModel):
    id = peewee.AutoField()


class Story(BaseModel):
    id = peewee.AutoField()
    headline = peewee.ForeignKeyField(Article, null=True, on_delete="SET NULL")
    article_count = peewee.IntegerField(default=0)
    sources = peewee.TextField(default="")
    languages = peewee.TextField(default="")
    first_published_at = peewee.DateTimeField()
    last_published_at = peewee.DateTimeField()
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("last_published_at", "id"), False),)


class ArticleEmbedding(BaseModel):
    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    model = peewee.CharField(max_length=100)
    text_hash = peewee.CharField(max_length=64)
    vector = peewee.BlobField()
    anchors = peewee.TextField(default="")
    embedded_at = peewee.DateTimeField(index=True)


class EmbeddingQueue(BaseModel):
    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    queued_at = peewee.DateTimeField(index=True)


class SentenceEmbedding(BaseModel):
    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    article_version = peewee.IntegerField()
    model = peewee.CharField(max_length=100)
    sentences = peewee.TextField()
    vectors = peewee.BlobField()


def upgrade(migrator):
    """Create the four tables and add the two article columns with their indexes."""
    database = migrator.database
    tables = [Story, ArticleEmbedding, EmbeddingQueue, SentenceEmbedding]
    with database.bind_ctx([Article, *tables]):
        database.create_tables(tables)
        migrate(
            migrator.add_column(
                "article",
                "story_id",
                peewee.ForeignKeyField(
                    Story, null=True, on_delete="SET NULL", field=Story.id, index=False
                ),
            ),
            migrator.add_column(
                "article",
                "duplicate_of_id",
                peewee.ForeignKeyField(
                    Article, null=True, on_delete="SET NULL", field=Article.id, index=False
                ),
            ),
            migrator.add_index("article", ("story_id", "published_at", "id"), False),
            migrator.add_index("article", ("duplicate_of_id",), False),
        )
