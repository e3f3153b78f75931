from concurrent.futures import ThreadPoolExecutor

import pytest

from api import tasks
from models import Article, Change, db

THREADS, PER_THREAD = 8, 50


def post_batch(app, headers, thread):
    client = app.test_client()
    statuses = []
    for number in range(PER_THREAD):
        response = client.post(
            "/v1/articles",
            json={
                "source": "daily",
                "external_id": f"t{thread}-{number}",
                # Every thread uses the same titles: slugs collide and must still come out unique.
                "title": f"Concurrent story {number}",
                "body_text": f"Body of story {number} from thread {thread}.",
                "tags": ["shared", f"thread-{thread}"],
            },
            headers=headers,
        )
        statuses.append(response.status_code)
    return statuses


def run_threads(app, headers):
    with ThreadPoolExecutor(THREADS) as pool:
        results = pool.map(lambda t: post_batch(app, headers, t), range(THREADS))
        return [status for statuses in results for status in statuses]


@pytest.mark.parametrize(
    "app_config", [{"write_rate_limit": "100000/minute", "rate_limit": "100000/minute"}]
)
def test_concurrent_posts_store_each_article_exactly_once(app, writer, source, monkeypatch):
    # Related lists are the worker's job, not these requests': tasks stay queued.
    monkeypatch.setattr(tasks.huey, "immediate", False)
    db.close()  # the threads open their own connections
    statuses = run_threads(app, writer)
    assert statuses.count(201) == THREADS * PER_THREAD, sorted(set(statuses))
    with db.connection_context():
        assert Article.select().count() == THREADS * PER_THREAD
        assert Article.select(Article.slug).distinct().count() == THREADS * PER_THREAD
        changes = Change.select().count()

    again = run_threads(app, writer)
    assert again.count(200) == THREADS * PER_THREAD, sorted(set(again))
    with db.connection_context():
        assert Article.select().count() == THREADS * PER_THREAD
        assert Change.select().count() == changes
        assert Article.select().where(Article.version != 1).count() == 0
