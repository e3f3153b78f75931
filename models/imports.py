"""Import jobs: an NDJSON body stored in the database, imported by the worker, with its outcome.

A large ``POST /v1/import`` is stored as chunks of whole lines (``import_chunk``) before the
request is answered, so a worker restart loses nothing. The worker claims a job under a lease,
imports its lines in batches and records its progress (counts, the first rejections, the ranges
of stored lines, the next line to read) in the transaction of each batch: a worker that dies
mid-job leaves a job that the next one resumes at the line after the last committed batch.

A small ``POST /v1/import`` is a job too, run by the request itself (``in_request``): no worker
takes it unless the request hands it over (``queued``); one whose request ended otherwise (its
deadline, its server killed) is left alone, its client told to send it again, and removed.
"""

import datetime
import json

import peewee

from .base import BaseModel, utcnow, write_transaction

RECEIVING, IN_REQUEST, QUEUED, RUNNING, SUCCEEDED, FAILED = (
    "receiving",
    "in_request",
    "queued",
    "running",
    "succeeded",
    "failed",
)
#: A worker holding a job renews its lease at each batch; past it, another worker takes over.
LEASE = datetime.timedelta(seconds=60)
#: A job whose body stopped arriving (the client went away mid-upload) is removed after this.
ABANDONED = datetime.timedelta(hours=1)
#: A job its request never ended (its server killed) is removed after this: longer than the
#: longest request deadline (NEWSDESK_IMPORT_TIMEOUT, at most a day).
ABANDONED_IN_REQUEST = datetime.timedelta(days=1, hours=1)
#: Attempts before a job that keeps failing is marked failed.
MAX_ATTEMPTS = 3
#: Finished jobs (and their stored bodies' outcomes) are kept this long.
KEEP = datetime.timedelta(days=7)


class ImportJob(BaseModel):
    """One background import: where it is, and what it stored and rejected so far."""

    id = peewee.AutoField()
    status = peewee.CharField(max_length=12, default=RECEIVING, index=True)
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
    """A piece of a job's body: whole lines, the first of them numbered ``first_line``."""

    job = peewee.ForeignKeyField(ImportJob, on_delete="CASCADE")
    seq = peewee.IntegerField()
    first_line = peewee.IntegerField()
    data = peewee.BlobField()

    class Meta:
        table_name = "import_chunk"
        primary_key = peewee.CompositeKey("job", "seq")


class ImportRange(BaseModel):
    """Lines ``first_line`` to ``last_line`` of a job were stored (every non-blank one)."""

    job = peewee.ForeignKeyField(ImportJob, on_delete="CASCADE")
    first_line = peewee.IntegerField()
    last_line = peewee.IntegerField()

    class Meta:
        table_name = "import_range"
        primary_key = peewee.CompositeKey("job", "first_line")


def create_job(key_id):
    """A job in the ``receiving`` state, for a body about to be stored."""
    with write_transaction():
        return ImportJob.create(key_id=key_id, created_at=utcnow())


def add_chunk(job, seq, first_line, data):
    """Store one chunk of the body, in a transaction of its own (the client may be slow)."""
    with write_transaction():
        ImportChunk.insert(job=job.id, seq=seq, first_line=first_line, data=data).execute()


def queue_job(job, size):
    """The whole body is stored: the job may run."""
    with write_transaction():
        ImportJob.update(status=QUEUED, bytes=size).where(ImportJob.id == job.id).execute()


def drop_job(job_id):
    """Remove a job whose body could not be received whole (its chunks go with it)."""
    with write_transaction():
        ImportJob.delete().where(ImportJob.id == job_id).execute()


def start_job(key_id, chunks):
    """A job for a body held whole (``chunks``: ``(number of the first line, bytes)``), run by
    the caller's request (``in_request``: no worker takes it unless :func:`release` hands it
    over): one transaction."""
    now = utcnow()
    chunks = list(chunks)
    with write_transaction():
        job = ImportJob.create(
            key_id=key_id,
            created_at=now,
            status=IN_REQUEST,
            bytes=sum(len(data) + 1 for _, data in chunks),
            started_at=now,
        )
        for seq, (first, data) in enumerate(chunks):
            ImportChunk.insert(job=job.id, seq=seq, first_line=first, data=data).execute()
    return job


def claim(job_id):
    """Take the job ``job_id`` to run it, if it is queued or its runner's lease ran out;
    returns the job or None."""
    now = utcnow()
    with write_transaction():
        taken = (
            ImportJob.update(
                status=RUNNING,
                lease_until=now + LEASE,
                attempts=ImportJob.attempts + 1,
                started_at=peewee.fn.COALESCE(ImportJob.started_at, now),
            )
            .where(
                (ImportJob.id == job_id)
                & (
                    (ImportJob.status == QUEUED)
                    | ((ImportJob.status == RUNNING) & (ImportJob.lease_until < now))
                )
            )
            .execute()
        )
        return ImportJob.get_by_id(job_id) if taken else None


def runnable():
    """Ids of jobs waiting for a worker: queued, or running under a lease that ran out."""
    now = utcnow()
    query = ImportJob.select(ImportJob.id).where(
        (ImportJob.status == QUEUED)
        | ((ImportJob.status == RUNNING) & (ImportJob.lease_until < now))
    )
    return [job_id for (job_id,) in query.order_by(ImportJob.id).tuples()]


def lines_from(job):
    """``(line number, bytes)`` of each line of the job's body from ``job.next_line`` on, one
    chunk in memory at a time."""
    seq = (
        ImportChunk.select(peewee.fn.MAX(ImportChunk.seq))
        .where((ImportChunk.job == job.id) & (ImportChunk.first_line <= job.next_line))
        .scalar()
    )
    seq = seq or 0
    while True:
        chunk = ImportChunk.get_or_none((ImportChunk.job == job.id) & (ImportChunk.seq == seq))
        if chunk is None:
            return
        data = bytes(chunk.data)
        for number, line in enumerate(data.split(b"\n"), start=chunk.first_line):
            if number >= job.next_line:
                yield number, line
        seq += 1


def last_range(job):
    """The job's stored range with the highest lines, as ``[first, last]``, or None."""
    row = (
        ImportRange.select()
        .where(ImportRange.job == job.id)
        .order_by(ImportRange.first_line.desc())
        .first()
    )
    return None if row is None else [row.first_line, row.last_line]


def ranges(job):
    """Every stored range of the job, ``[[first, last], ...]`` in line order."""
    query = (
        ImportRange.select(ImportRange.first_line, ImportRange.last_line)
        .where(ImportRange.job == job.id)
        .order_by(ImportRange.first_line)
        .tuples()
    )
    return [list(row) for row in query]


class LeaseLost(Exception):
    """Another run took the job (this one outlived its lease): this one stops, and what it was
    storing is rolled back with the checkpoint that found out."""


def _held(job):
    """SQL: ``job`` (as a run claimed it, or a request started it) is still that run's: its
    claim is the latest."""
    return (
        (ImportJob.id == job.id)
        & (ImportJob.status == job.status)
        & (ImportJob.attempts == job.attempts)
    )


def checkpoint(job, state, next_line, changed_ranges):
    """Record a job's progress, inside the transaction of the batch that made it (the caller's):
    its counts, first rejections, and the ranges that changed since the last checkpoint.
    Raises :class:`LeaseLost` (so the batch is not stored) when another run took the job."""
    now = utcnow()
    held = (
        ImportJob.update(
            lines=state["lines"],
            next_line=next_line,
            created=state["created"],
            updated=state["updated"],
            unchanged=state["unchanged"],
            rejected=state["rejected"],
            rejections=json.dumps(state["rejections"]),
            rejected_by_code=json.dumps(state["rejected_by_code"]),
            last_item_stored=state["last_item_stored"],
            lease_until=now + LEASE,
        )
        .where(_held(job))
        .execute()
    )
    if not held:
        raise LeaseLost(f"import job {job.id}: another run took it")
    for first, last in changed_ranges:
        ImportRange.insert(job=job.id, first_line=first, last_line=last).on_conflict(
            conflict_target=[ImportRange.job, ImportRange.first_line],
            update={ImportRange.last_line: last},
        ).execute()


def finish(job, status, error=None):
    """The run that holds ``job`` ended it (its body is no longer needed: its chunks are
    removed); nothing when another run took it meanwhile."""
    with write_transaction():
        ended = (
            ImportJob.update(status=status, finished_at=utcnow(), lease_until=None, error=error)
            .where(_held(job))
            .execute()
        )
        if ended:
            ImportChunk.delete().where(ImportChunk.job == job.id).execute()


def release(job, error):
    """The run that holds ``job`` failed (``error``) or stopped (None): let another attempt take
    it, or fail it after the last attempt; nothing when another run took it meanwhile."""
    if job.attempts >= MAX_ATTEMPTS:
        finish(job, FAILED, error)
        return
    with write_transaction():
        ImportJob.update(status=QUEUED, lease_until=None, error=error).where(_held(job)).execute()


def clean_up():
    """Remove finished jobs past their keeping time, and bodies whose upload was abandoned."""
    now = utcnow()
    with write_transaction():
        ImportJob.delete().where(
            ((ImportJob.status == RECEIVING) & (ImportJob.created_at < now - ABANDONED))
            | (
                (ImportJob.status == IN_REQUEST)
                & (ImportJob.created_at < now - ABANDONED_IN_REQUEST)
            )
            | (ImportJob.status.in_([SUCCEEDED, FAILED]) & (ImportJob.finished_at < now - KEEP))
        ).execute()


def state_of(job):
    """The progress a run resumes from."""
    return {
        "lines": job.lines,
        "created": job.created,
        "updated": job.updated,
        "unchanged": job.unchanged,
        "rejected": job.rejected,
        "rejections": json.loads(job.rejections),
        "rejected_by_code": json.loads(job.rejected_by_code),
        "last_item_stored": job.last_item_stored,
    }


def describe(job):
    """The job as ``GET /v1/imports/{id}`` shows it."""
    state = state_of(job)
    return {
        "id": job.id,
        "status": job.status,
        "bytes": job.bytes,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "error": job.error,
        **{key: value for key, value in state.items() if key != "last_item_stored"},
        "rejections_omitted": job.rejected - len(state["rejections"]),
        "stored_lines": ranges(job),
    }
