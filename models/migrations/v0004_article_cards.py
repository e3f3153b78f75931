"""Version 4: ``article.card``, each article as lists show it, stored when the article changes.

This step only adds the column, NULL for every article already stored. Cards are rendered by
the article schema, outside migrations (``newsdesk db init`` renders every card whose schema
changed or that is missing, ``models.cards.refresh_if_stale``), so that a step never depends on
how cards look today.
"""

import peewee
from playhouse.migrate import migrate


def upgrade(migrator):
    """Add the nullable ``card`` text column to ``article``."""
    migrate(migrator.add_column("article", "card", peewee.TextField(null=True)))
