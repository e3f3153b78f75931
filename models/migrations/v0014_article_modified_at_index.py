"""Version 14: an index on ``article.modified_at``, so that a process keeping the vector index
reads the articles changed since it last looked (their status, language, source and time) in
one indexed range, also those whose ``updated_at`` is an older time a feed gave."""

from playhouse.migrate import migrate


def upgrade(migrator):
    migrate(migrator.add_index("article", ("modified_at",), False))
