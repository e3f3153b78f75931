"""Version 6: the queue of articles whose related lists are due (computed by the worker, off
the request), and ``setting``, values the database keeps about itself (what its stored cards
were rendered with)."""

import peewee


class Article(peewee.Model):
    class Meta:
        table_name = "article"


class RelatedQueue(peewee.Model):
    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    queued_at = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "related_queue"


class Setting(peewee.Model):
    name = peewee.CharField(max_length=100, primary_key=True)
    value = peewee.TextField()

    class Meta:
        table_name = "setting"


def upgrade(migrator):
    """Create both tables."""
    with migrator.database.bind_ctx([Article, RelatedQueue, Setting]):
        migrator.database.create_tables([RelatedQueue, Setting])
