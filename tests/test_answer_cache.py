"""Searches and feeds are answered again from a per-worker cache keyed by their ETag, which a
write changes: never stale, and never one caller's answer to another."""

import gzip
import os
import uuid

import pytest
import redis

from api import caching, create_app
from api.caching import AnswerCache, SharedAnswers

OVERHEAD = AnswerCache.OVERHEAD
REDIS_URL = os.environ.get("NEWSDESK_TEST_REDIS_URL")


def search_queries(queries):
    return [sql for sql in queries if "article_search" in sql or "article_document" in sql]


def test_a_repeated_search_is_answered_from_the_cache(client, make_article, count_queries):
    make_article(title="Storm over the harbour", body="The storm moved east. " * 40)
    make_article(title="Calm seas", body="No storm today. " * 40)
    first = client.get("/v1/search?q=storm&limit=1")
    assert first.status_code == 200 and first.json["has_more"] is True
    assert search_queries(count_queries.queries)
    count_queries.queries.clear()
    again = client.get("/v1/search?q=storm&limit=1")
    assert search_queries(count_queries.queries) == []
    assert again.status_code == 200
    assert again.get_data() == first.get_data()
    for name in ("Content-Type", "ETag", "Link", "Cache-Control", "Vary", "RateLimit-Limit"):
        assert again.headers[name] == first.headers[name], name
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'newsdesk_answer_cache_total{result="hit"}' in metrics
    # Compressed as any answer is (over 1 KB).
    plain = client.get("/v1/search?q=storm").get_data()
    packed = client.get("/v1/search?q=storm", headers={"Accept-Encoding": "gzip"})
    assert len(plain) > 1024 and packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.get_data()) == plain


def test_a_write_is_seen_at_once(client, make_article, writer, source):
    make_article(title="Storm over the harbour")
    assert [hit["title"] for hit in client.get("/v1/search?q=storm").json["data"]] == [
        "Storm over the harbour"
    ]
    created = client.post(
        "/v1/articles",
        json={"source": "daily", "title": "Storm warning", "body_text": "Wind."},
        headers=writer,
    )
    assert created.status_code == 201
    titles = {hit["title"] for hit in client.get("/v1/search?q=storm").json["data"]}
    assert titles == {"Storm over the harbour", "Storm warning"}
    client.delete(f"/v1/articles/{created.json['id']}", headers=writer)
    assert [hit["title"] for hit in client.get("/v1/search?q=storm").json["data"]] == [
        "Storm over the harbour"
    ]


def test_callers_are_kept_apart(client, make_article, writer):
    """Kept per caller (a key may one day see more), with the caller's own cache headers."""
    make_article(title="Storm over the harbour")
    public = client.get("/v1/search?q=storm")
    keyed = client.get("/v1/search?q=storm", headers=writer)
    assert keyed.headers["ETag"] != public.headers["ETag"]
    for _ in range(2):
        again = client.get("/v1/search?q=storm")
        assert again.headers["Cache-Control"] == public.headers["Cache-Control"]
        assert again.headers["Cache-Control"].startswith("public")
        assert again.headers["ETag"] == public.headers["ETag"]
        again_keyed = client.get("/v1/search?q=storm", headers=writer)
        assert again_keyed.headers["Cache-Control"] == "private, no-cache"
        assert again_keyed.headers["ETag"] == keyed.headers["ETag"]
        assert again_keyed.get_data() == keyed.get_data()


def test_a_feed_is_kept_until_a_write(client, make_article, writer, source, count_queries):
    make_article(title="First story")
    first = client.get("/feeds/articles.atom")
    assert first.status_code == 200 and b"First story" in first.data
    count_queries.queries.clear()
    again = client.get("/feeds/articles.atom")
    assert again.get_data() == first.get_data()
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert not [sql for sql in count_queries.queries if "FROM article" in sql or '"article"' in sql]
    client.post(
        "/v1/articles",
        json={"source": "daily", "title": "Second story", "body_text": "B."},
        headers=writer,
    )
    assert b"Second story" in client.get("/feeds/articles.atom").data


def test_a_host_gets_its_own_links(client, make_article):
    make_article(title="Storm one")
    make_article(title="Storm two")
    one = client.get("/v1/search?q=storm&limit=1", base_url="http://one.example")
    two = client.get("/v1/search?q=storm&limit=1", base_url="http://two.example")
    assert one.headers["Link"].startswith("<http://one.example/")
    assert two.headers["Link"].startswith("<http://two.example/")


@pytest.mark.parametrize("app_config", [{"answer_cache_bytes": 0}])
def test_the_cache_can_be_turned_off(client, make_article, count_queries):
    make_article(title="Storm over the harbour")
    client.get("/v1/search?q=storm")
    count_queries.queries.clear()
    assert client.get("/v1/search?q=storm").status_code == 200
    assert search_queries(count_queries.queries)


def test_the_least_recently_used_answers_go_first_within_the_size():
    cache = AnswerCache(max_bytes=8 * (100 + OVERHEAD))
    for key in "abcdefgh":
        cache.put(key, b"x" * 100, [])
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("i", b"x" * 100, [])
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("i") is not None
    assert cache.size <= cache.max_bytes
    cache.put("huge", b"x" * cache.max_bytes, [])
    assert cache.get("huge") is None


@pytest.fixture
def own_keys(monkeypatch):
    """Keys in Redis of the test's own (the answers of another test's database, made the same
    way, would have the same names), deleted after it."""
    prefix = f"newsdesk-test-{uuid.uuid4().hex}:answer:"
    monkeypatch.setattr(SharedAnswers, "PREFIX", prefix)
    yield prefix
    kept = redis.Redis.from_url(REDIS_URL)
    names = list(kept.scan_iter(prefix + "*"))
    if names:
        kept.delete(*names)


@pytest.mark.skipif(not REDIS_URL, reason="NEWSDESK_TEST_REDIS_URL is not set")
def test_workers_share_answers_through_redis(
    app, database_url, make_article, make_key, count_queries, own_keys
):
    """Two apps stand for two workers (or hosts): a search one ran, the other answers from
    Redis without running it; after a write, it runs afresh."""
    article = make_article(title="Storm over the harbour", body="The storm moved east. " * 40)
    writer, source = make_key("write"), article.source.slug
    config = {"database_url": database_url, "redis_url": REDIS_URL, "testing": True}
    one = create_app(config).test_client()
    # The second host's settings changed meanwhile: its answers say so, kept ones too.
    two = create_app({**config, "cache_max_age": 5, "cors_origins": "https://app.example"})
    two = two.test_client()
    first = one.get("/v1/search?q=storm")
    assert first.status_code == 200 and search_queries(count_queries.queries)
    count_queries.queries.clear()
    shared = two.get("/v1/search?q=storm")
    assert search_queries(count_queries.queries) == []
    assert shared.status_code == 200 and shared.get_data() == first.get_data()
    for name in ("Content-Type", "ETag"):
        assert shared.headers[name] == first.headers[name], name
    assert first.headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=300"
    assert shared.headers["Cache-Control"] == "public, max-age=5, stale-while-revalidate=300"
    assert "Origin" in shared.vary and "Origin" not in first.vary
    assert 'newsdesk_answer_cache_total{result="shared"}' in two.get("/metrics").get_data(True)
    again = {"source": source, "title": "Storm again", "body_text": "Another storm. " * 40}
    assert one.post("/v1/articles", json=again, headers=writer).status_code == 201
    fresh = two.get("/v1/search?q=storm")
    assert search_queries(count_queries.queries)
    assert [hit["title"] for hit in fresh.json["data"]] == ["Storm again", "Storm over the harbour"]


@pytest.mark.skipif(not REDIS_URL, reason="NEWSDESK_TEST_REDIS_URL is not set")
def test_a_host_of_another_release_does_not_serve_what_this_one_kept(
    app, database_url, make_article, count_queries, own_keys, monkeypatch
):
    """In a rolling upgrade, hosts of two releases share Redis: an answer one kept may have a
    shape the other's does not, so each runs the search itself, and answers with its own tag."""
    make_article(title="Storm over the harbour", body="The storm moved east. " * 40)
    config = {"database_url": database_url, "redis_url": REDIS_URL, "testing": True}
    old = create_app(config).test_client()
    monkeypatch.setattr(caching, "release", lambda: "the next release")
    new = create_app(config).test_client()
    first = old.get("/v1/search?q=storm")
    assert first.status_code == 200 and search_queries(count_queries.queries)
    count_queries.queries.clear()
    upgraded = new.get("/v1/search?q=storm")
    assert upgraded.status_code == 200 and search_queries(count_queries.queries)
    assert upgraded.headers["ETag"] != first.headers["ETag"]
    count_queries.queries.clear()
    assert new.get("/v1/search?q=storm").get_data() == upgraded.get_data()
    assert search_queries(count_queries.queries) == []  # kept, under the new release's key


@pytest.mark.skipif(not REDIS_URL, reason="NEWSDESK_TEST_REDIS_URL is not set")
def test_answers_kept_in_redis_stay_within_their_bytes(app, database_url, make_article, own_keys):
    """However many different searches clients ask for, Redis (which holds the task queue and
    the rate limits too) keeps at most NEWSDESK_SHARED_ANSWER_BYTES of answers: a minute's
    share of it, here 10,000 bytes, the others kept by their worker alone."""
    for number in range(30):
        make_article(title=f"Storm {number} over the harbour", body="The storm moved east. " * 20)
    config = {"database_url": database_url, "redis_url": REDIS_URL, "testing": True}
    config["shared_answer_bytes"] = 11 * 10_000  # the entries of 11 minutes at most
    client = create_app(config).test_client()
    for limit in range(1, 41):
        assert client.get(f"/v1/search?q=storm&limit={limit}").status_code == 200

    kept = redis.Redis.from_url(REDIS_URL)
    entries = [name for name in kept.scan_iter(own_keys + "*") if b":spent:" not in name]
    used = sum(kept.memory_usage(name) for name in entries)
    assert 0 < len(entries) < 40
    assert used <= 2 * 10_000  # as Redis counts them; the test may span two minutes
