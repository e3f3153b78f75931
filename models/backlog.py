"""What the background worker has yet to do: for ``/metrics`` and ``/readyz``. Everything the
worker does is recorded in the database first (the queues of articles, the webhook outbox and
deliveries, import jobs), so the database says how far behind it is, whichever host it runs
on."""

from peewee import fn

from .base import utcnow_exact
from .embeddings import EmbeddingQueue
from .imports import QUEUED, RUNNING, ImportJob
from .related import RelatedQueue
from .webhooks import PENDING, WebhookDelivery, WebhookEvent


def measure():
    """``{queue: (items, oldest)}``: how many items wait in each queue and since when the
    oldest has (None when none waits). Deliveries count those due, not those waiting for a
    retry's time."""
    now = utcnow_exact()  # queue times are to the microsecond
    queries = {
        "embeddings": EmbeddingQueue.select(fn.COUNT(1), fn.MIN(EmbeddingQueue.queued_at)),
        "related_lists": RelatedQueue.select(fn.COUNT(1), fn.MIN(RelatedQueue.queued_at)),
        "webhook_events": WebhookEvent.select(fn.COUNT(1), fn.MIN(WebhookEvent.created_at)).where(
            WebhookEvent.dispatched == False  # noqa: E712 (SQL)
        ),
        "webhook_deliveries": WebhookDelivery.select(
            fn.COUNT(1), fn.MIN(WebhookDelivery.next_attempt_at)
        ).where((WebhookDelivery.status == PENDING) & (WebhookDelivery.next_attempt_at <= now)),
        "imports": ImportJob.select(fn.COUNT(1), fn.MIN(ImportJob.created_at)).where(
            ImportJob.status.in_([QUEUED, RUNNING])
        ),
    }
    return {name: query.tuples().get() for name, query in queries.items()}
