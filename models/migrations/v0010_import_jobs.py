"""Version 10: background imports. ``import_job`` (a job and its progress), ``import_chunk``
(its NDJSON body, stored before the request is answered) and ``import_range`` (the ranges of
lines it stored)."""

import peewee


class BaseModel(peewee.Model):
    class Meta:
        legacy_table_names = False


class ImportJob(BaseModel):
    id = peewee.AutoField()
    status = peewee.CharField(max_length=12, default="receiving", index=True)
    key_id = peewee.IntegerField(null=True)
    bytes = peewee.BigIntegerField(default=0)
    lines = peewee.IntegerField(default=0)
    next_line = peewee.IntegerField(default=1)
    created = peewee.IntegerField(default=0)
    updated = peewee.IntegerField(default=0)
    unchanged = peewee.IntegerField(default=0)
    rejected = peewee.IntegerField(default=0)
    rejections = peewee.TextField(default="[]")
    rejected_by_code = peewee.TextField(default="{}")
    last_item_stored = peewee.BooleanField(default=False)
    attempts = peewee.IntegerField(default=0)
    error = peewee.TextField(null=True)
    lease_until = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField()
    started_at = peewee.DateTimeField(null=True)
    finished_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "import_job"


class ImportChunk(BaseModel):
    job = peewee.ForeignKeyField(ImportJob, on_delete="CASCADE")
    seq = peewee.IntegerField()
    first_line = peewee.IntegerField()
    data = peewee.BlobField()

    class Meta:
        table_name = "import_chunk"
        primary_key = peewee.CompositeKey("job", "seq")


class ImportRange(BaseModel):
    job = peewee.ForeignKeyField(ImportJob, on_delete="CASCADE")
    first_line = peewee.IntegerField()
    last_line = peewee.IntegerField()

    class Meta:
        table_name = "import_range"
        primary_key = peewee.CompositeKey("job", "first_line")


def upgrade(migrator):
    """Create the three tables."""
    models = [ImportJob, ImportChunk, ImportRange]
    with migrator.database.bind_ctx(models):
        migrator.database.create_tables(models)
