"""The change log behind delta sync: one row per article upsert or delete, in commit order."""

import peewee

from .base import BaseModel, utcnow

UPSERT = "upsert"
DELETE = "delete"


class Change(BaseModel):
    """An article was created or updated (``upsert``) or removed (``delete``, with a reason)."""

    id = peewee.BigAutoField()
    #: Not a foreign key: a delete's tombstone outlives its article.
    article_id = peewee.BigIntegerField(index=True)
    op = peewee.CharField(
        max_length=10, constraints=[peewee.Check("op IN ('upsert', 'delete')")]
    )
    #: For deletes: ``deleted`` or ``unpublished``.
    reason = peewee.CharField(max_length=20, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
