"""Version 4: ``article.card``, each article as lists show it, stored when the article changes.

This step only adds the column, NULL for every article already stored: a NULL card is read live
(models/pages.py), and cards are written by the code that renders them, outside migrations, so
that a step never depends on how cards look today.
"""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    """Add the nullable ``card`` text column to ``article``."""
    migrate(migrator.add_column("article", "card", peewee.TextField(null=True)))
