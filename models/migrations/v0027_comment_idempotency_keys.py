"""Version 27: ``comment.idempotency_key``, the ``Idempotency-Key`` a comment was posted with,
unique for its API key: a post sent again (a client that did not hear the answer) finds the
comment the first made, in the same transaction that would make another."""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    migrate(
        migrator.add_column(
            "comment", "idempotency_key", peewee.CharField(max_length=255, null=True)
        ),
        migrator.add_index("comment", ("api_key_id", "idempotency_key"), True),
    )
