"""``POST /v1/import``: many articles in one NDJSON body; ``GET /v1/imports/{id}``: a
background import's progress.

The body is read as it arrives, in blocks, never whole. A body of at most
``NEWSDESK_IMPORT_SYNC_BYTES`` is imported within the request (200); one of more than a batch
is first stored as a job the request runs, and handed to the worker if it outlives half the
request's deadline (202). A larger one, one whose size is not known before it ends (chunked)
and outgrows that, or a request with ``Prefer: respond-async`` is stored in the database first
(so a restart of the worker loses nothing) and imported by the worker: 202 with
``Location: /v1/imports/{id}``.
"""

import contextlib
import itertools
import time

import peewee
from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from werkzeug.exceptions import RequestEntityTooLarge

from models import imports
from schemas.articles import ImportJobSchema, ImportResultSchema

from . import bulkload, tasks  # bulkload.BATCH_SIZE read at each call (the tests change it)
from .arguments import Blueprint
from .auth import current_key, requires
from .bulkload import import_items, ndjson_items, read_blocks, split_lines
from .errors import DEADLINE
from .guards import body_over_limit, check_whole, too_large_message
from .responses import location, rendered

blp = Blueprint("import", __name__, url_prefix="/v1", description="Bulk import")
#: A stored job body is cut into chunks of whole lines of about this size.
CHUNK_BYTES = 1024 * 1024
#: Conditional request headers, which apply to one resource.
CONDITIONAL_HEADERS = ("If-Match", "If-None-Match", "If-Unmodified-Since")
#: An import within the request hands over to the worker, between two batches, once this share
#: of the request's deadline is spent: the batch after must end before the deadline does.
HAND_OVER_AT = 0.5
_job_schema = ImportJobSchema()


def prefers_async():
    """Whether the request says ``Prefer: respond-async`` (RFC 7240)."""
    for header in request.headers.getlist("Prefer"):
        for preference in header.split(","):
            if preference.split(";")[0].strip().lower() == "respond-async":
                return True
    return False


def _key_id():
    key = current_key()
    return key.id if key is not None else None


def chunks(lines):
    """The whole lines of ``lines`` in pieces of about :data:`CHUNK_BYTES`: ``(number of the
    first line, bytes)``."""
    pending, pending_bytes, first = [], 0, 1
    for number, line in lines:
        if not pending:
            first = number
        pending.append(line)
        pending_bytes += len(line) + 1
        if pending_bytes >= CHUNK_BYTES:
            yield first, b"\n".join(pending)
            pending, pending_bytes = [], 0
    if pending:
        yield first, b"\n".join(pending)


def receive(lines):
    """Store ``lines`` as a queued job's body, chunk by chunk; returns the job. A body that
    cannot be received whole (too large, the client gone, the deadline past) leaves no job."""
    job = imports.create_job(_key_id())
    try:
        size = 0
        for seq, (first, data) in enumerate(chunks(lines)):
            imports.add_chunk(job, seq, first, data)
            size += len(data) + 1
        imports.queue_job(job, size)
    except BaseException:
        imports.drop_job(job.id)
        raise
    return job


@blp.route("/import")
class Import(MethodView):
    @requires(blp, "write")
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/x-ndjson": {
                    "schema": {
                        "type": "string",
                        "description": "One article per line, as for POST /v1/articles",
                    }
                }
            },
        },
        parameters=[
            {
                "in": "header",
                "name": "Prefer",
                "required": False,
                "schema": {"type": "string"},
                "description": "`respond-async`: import in the background whatever the size (202)",
            }
        ],
    )
    @blp.response(200, ImportResultSchema)
    @blp.alt_response(
        202,
        schema=ImportJobSchema,
        description=(
            "A large body (or `Prefer: respond-async`), or one still importing at half the "
            "import deadline: imported in the background; `Location` is the job, "
            "`GET /v1/imports/{id}`"
        ),
        success=True,
    )
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
    def post(self):
        """Import articles from NDJSON, one article object per line.

        Lines are written in batches; the answer counts created, updated, unchanged and rejected
        lines, lists the first 100 rejections (line number, code, reason), counts every rejection
        by code, and gives the ranges of the lines stored. Bad lines never stop good ones. A body
        over `NEWSDESK_IMPORT_SYNC_BYTES` (4 MiB) is imported in the background: 202 and its job;
        so is the rest of one still importing when half of `NEWSDESK_IMPORT_TIMEOUT` is spent.
        """
        if conditions := [name for name in CONDITIONAL_HEADERS if name in request.headers]:
            # Ignored, they let an import overwrite what the same article's POST would not.
            message = (
                "An import takes no preconditions: each line creates an article, or updates"
                " the one of its source and external_id. Send an article that must or must not"
                " exist to POST /v1/articles, or PUT /v1/articles/{id}, with this header."
            )
            abort(400, message=message, errors={name: [message] for name in conditions})
        # Its type, and a Content-Length within config.max_import_bytes (the body's limit from
        # here on), were checked by guards.check_request, before the request was counted.
        config = current_app.config["NEWSDESK"]
        max_line = config.max_body_bytes
        lines = split_lines(_within_limit(read_blocks(request.stream)), max_line)
        length = request.content_length
        if not prefers_async() and (length is None or length <= config.import_sync_bytes):
            head, size = [], 0
            for number, line in lines:
                head.append((number, line))
                size += len(line) + 1
                if size > config.import_sync_bytes:
                    lines = itertools.chain(head, lines)
                    break
            else:
                return import_in_request(head, max_line)
        return accepted(receive(lines))


class HandedOver(Exception):
    """An import within the request outlived its share of the deadline."""


def import_in_request(lines, max_line):
    """Import ``lines`` (a list) as a job this request runs: its result (200), or, once
    :data:`HAND_OVER_AT` of the deadline is spent, the job left to the worker from the next
    batch on (202). A deadline that struck between batches already stored answered a 503
    "try again", and the lines stored were stored twice; the client learns here which were.

    A request that ends otherwise (its deadline struck inside a batch, its server killed)
    leaves its job to no worker: its client, told nothing or to try again, sends the body
    again. Lines of one batch at most are imported without a job: nothing can be handed over
    between batches, and a deadline rolls their one transaction back."""
    if len(lines) <= bulkload.BATCH_SIZE:
        return import_items(ndjson_items(lines, max_line))
    job = imports.start_job(_key_id(), chunks(lines))
    deadline, seconds = request.environ[DEADLINE]
    hand_over = deadline - seconds * (1 - HAND_OVER_AT)
    final = max((number for number, line in lines if line.strip()), default=0)

    def after_batch(last):
        if last < final and time.monotonic() > hand_over:  # lines are left, time is not
            raise HandedOver

    try:
        result = import_items(ndjson_items(lines, max_line), job=job, after_batch=after_batch)
    except HandedOver:
        imports.release(job, None)
        return accepted(job)
    except BaseException:  # the request ends here: what was stored stays, the rest is its to send
        with contextlib.suppress(peewee.DatabaseError):  # else left to imports.clean_up
            imports.drop_job(job.id)
        raise
    result["stored_lines"] = imports.ranges(job)
    imports.drop_job(job.id)
    return result


def accepted(job):
    """The 202 of a job left to the worker, which is woken."""
    tasks.wake(lambda: tasks.run_import(job.id))
    job = imports.ImportJob.get_by_id(job.id)
    headers = location("import.ImportJobDetail", job_id=job.id)
    return rendered(_job_schema.dump(imports.describe(job)), 202, headers)


def _within_limit(blocks):
    """The body's blocks, then a 413 if it went on past the import limit (chunked bodies), or
    a 400 if it ended before its Content-Length (:func:`guards.check_whole`)."""
    read = 0
    try:
        for block in blocks:
            read += len(block)
            yield block
    except RequestEntityTooLarge:
        abort(413, message=too_large_message())
    if body_over_limit(read):
        abort(413, message=too_large_message())
    check_whole(read)


@blp.route("/imports/<int(max=2147483647):job_id>")  # an integer column
class ImportJobDetail(MethodView):
    @requires(blp, "write")
    @blp.response(200, ImportJobSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, job_id):
        """A background import: its status, counts, first rejections and the lines stored.

        Visible to the key that started it, and to admin keys. Kept 7 days after it ends.
        """
        job = imports.ImportJob.get_or_none(
            (imports.ImportJob.id == job_id)
            & imports.ImportJob.status.not_in([imports.RECEIVING, imports.IN_REQUEST])
        )
        key = current_key()
        if job is None or (job.key_id != key.id and not key.grants("admin")):
            abort(404, message=f"No import job {job_id}.")
        return imports.describe(job)
