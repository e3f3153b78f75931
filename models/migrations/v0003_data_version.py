"""Version 3: the write counter behind ETags (``data_version``, one row, id 1)."""

import peewee


class DataVersion(peewee.Model):
    id = peewee.IntegerField(primary_key=True, default=1)
    value = peewee.BigIntegerField(default=0)

    class Meta:
        legacy_table_names = False


def upgrade(migrator):
    """Create the counter's table and its one row, at 0."""
    database = migrator.database
    with database.bind_ctx([DataVersion]):
        DataVersion.create_table()
        DataVersion.insert(id=1, value=0).on_conflict_ignore().execute()
