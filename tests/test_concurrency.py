import datetime
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from api import caching, tasks
from models import Article, Change, Relation, Source, Tag, cards, db, ingest
from models.base import runs_again_on_conflict, utcnow

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


def after_the_call_of(monkeypatch, owner, name, other):
    """Run ``other`` in a thread once the next call of ``owner.name`` has returned, until
    ``other`` ends or waits for a lock the caller holds; the caller goes on from there."""
    threads = []
    original = getattr(owner, name)

    def waiting_for_a_lock():
        # For a lock this connection (the caller's) holds: other tests' sessions on the same
        # cluster wait for locks of their own.
        return db.execute_sql(
            "SELECT count(*) FROM pg_locks"
            " WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        ).fetchone()[0]

    def call_then_wait(*args, **kwargs):
        result = original(*args, **kwargs)
        if not threads:
            threads.append(threading.Thread(target=other))
            threads[0].start()
            while threads[0].is_alive() and not waiting_for_a_lock():
                threads[0].join(0.01)
        return result

    monkeypatch.setattr(owner, name, call_then_wait)
    return threads


def while_stored_is_read(monkeypatch, other):
    """Run ``other`` once the next write has read the articles it replaces (see
    :func:`after_the_call_of`)."""
    return after_the_call_of(monkeypatch, ingest._Batch, "_load_stored", other)


def stored_card(article_id):
    with db.connection_context():
        article = cards.attach_tags([Article.get_by_id(article_id)])[0]
        return article.card, cards.render(article)


@pytest.fixture
def postgres_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one write transaction at a time: nothing to interleave")


@pytest.mark.parametrize(
    "other",
    [
        ("post", "/v1/articles/{id}/comments", {"author_name": "R", "body": "Hi"}, "comment"),
        ("patch", "/v1/sources/daily", {"name": "The Evening"}, "write"),
    ],
    ids=["comment", "source-rename"],
)
def test_a_card_changed_during_a_write_is_not_lost(
    app, client, writer, make_key, source, postgres_only, monkeypatch, other
):
    method, path, body, scope = other
    # Each changes the card of the article the write below replaces, and commits meanwhile
    # (before the fix) or once the write has committed (waiting for its locks).
    expected = (1, "The Daily") if scope == "comment" else (0, "The Evening")
    created = {"source": "daily", "title": "Old", "body_text": "B."}
    article = client.post("/v1/articles", json=created, headers=writer).json
    path, headers = path.format(**article), make_key(scope)
    answers = []
    threads = while_stored_is_read(
        monkeypatch,
        lambda: answers.append(
            getattr(app.test_client(), method)(path, json=body, headers=headers)
        ),
    )
    patched = client.patch(f"/v1/articles/{article['id']}", json={"title": "New"}, headers=writer)
    threads[0].join()
    assert patched.status_code == 200 and answers[0].status_code in (200, 201)
    final = client.get(f"/v1/articles/{article['id']}").json
    assert final["title"] == "New"
    assert (final["comment_count"], final["source"]["name"]) == expected
    stored, rendered = stored_card(article["id"])
    assert stored == rendered


def test_two_writes_with_one_if_match_one_wins(
    app, client, writer, source, postgres_only, monkeypatch
):
    created = {"source": "daily", "title": "Old", "body_text": "B."}
    article = client.post("/v1/articles", json=created, headers=writer).json
    url = f"/v1/articles/{article['id']}"
    etag = client.get(url).headers["ETag"]
    answers = []
    threads = while_stored_is_read(
        monkeypatch,
        lambda: answers.append(
            app.test_client().patch(
                url, json={"byline": "Ann"}, headers={**writer, "If-Match": etag}
            )
        ),
    )
    first = client.patch(url, json={"title": "New"}, headers={**writer, "If-Match": etag})
    threads[0].join()
    assert (first.status_code, answers[0].status_code) == (200, 412)
    final = client.get(url)
    assert (final.json["title"], final.json["byline"]) == ("New", None)
    assert final.headers["ETag"] == first.headers["ETag"] != etag


@pytest.mark.parametrize("app_config", [{"webhook_allow_private": True}])
@pytest.mark.parametrize("resource", ["source", "comment", "webhook"])
def test_two_patches_of_a_resource_with_one_if_match_one_wins(
    app, client, make_key, make_article, source, postgres_only, monkeypatch, resource
):
    admin = make_key("admin,comment")
    first, second = "First", "Second"
    if resource == "source":
        path, field = f"/v1/sources/{source.slug}", "name"
    elif resource == "comment":
        comment = {"author_name": "A", "body": "Hi"}
        posted = client.post(
            f"/v1/articles/{make_article().id}/comments", json=comment, headers=admin
        )
        path, field = f"/v1/comments/{posted.json['id']}", "status"
        first = second = "hidden"
    else:
        hook = {"url": "http://127.0.0.1:9/in", "events": ["article.published"]}
        path = f"/v1/webhooks/{client.post('/v1/webhooks', json=hook, headers=admin).json['id']}"
        field = "description"
    etag = client.get(path, headers=admin).headers["ETag"]
    conditional = {**admin, "If-Match": etag}
    answers = []
    threads = after_the_call_of(
        monkeypatch,
        caching,
        "check_if_match",
        lambda: answers.append(
            app.test_client().patch(path, json={field: second}, headers=conditional)
        ),
    )
    answer = client.patch(path, json={field: first}, headers=conditional)
    threads[0].join()
    assert (answer.status_code, answers[0].status_code) == (200, 412)
    assert client.get(path, headers=admin).json[field] == first


def test_a_transaction_ended_by_a_deadlock_runs_again(app, make_source, postgres_only):
    """Two writers that each hold the row the other needs: PostgreSQL ends one, which runs
    again, and both commit once.

    The run again may deadlock a second time: once the ended writer lets its row go, its next
    run can lock that row before the waiting writer wakes to take it (a row lock freed is not
    handed to a waiter), and the two hold each other's rows once more. So either writer may run
    up to the decorator's three times; what holds is that each commits exactly once."""
    a, b = make_source(slug="a"), make_source(slug="b")
    db.close()
    both_hold_one = threading.Barrier(2)
    runs = []

    def write(first, second):
        @runs_again_on_conflict
        def transaction():
            runs.append(first.slug)
            with db.connection_context(), db.atomic():
                for number, source in enumerate((first, second)):
                    Source.update(article_count=Source.article_count + 1).where(
                        Source.id == source.id
                    ).execute()
                    if number == 0 and runs.count(first.slug) == 1:
                        both_hold_one.wait()

        transaction()

    threads = [threading.Thread(target=write, args=pair) for pair in ((a, b), (b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs) > 2  # a deadlock ended one, which ran again
    assert max(runs.count("a"), runs.count("b")) <= 3
    with db.connection_context():
        assert [s.article_count for s in Source.select().order_by(Source.slug)] == [2, 2]


@pytest.mark.parametrize(
    "app_config", [{"write_rate_limit": "100000/minute", "rate_limit": "100000/minute"}]
)
def test_comments_posted_while_their_source_is_renamed_all_succeed(
    app, postgres_only, make_key, make_article, monkeypatch
):
    """A source's write locked it against references too (FOR UPDATE): a comment's write, whose
    article row it had changed already, waited for the source to check the article's key, while
    the source's write waited for that article's card: PostgreSQL broke the deadlock by failing
    one of them (a 503)."""
    monkeypatch.setattr(tasks.huey, "immediate", False)
    articles = [make_article().id for _ in range(4)]
    admin = make_key("admin,comment")
    db.close()  # the threads open their own connections

    def rename(_):
        client = app.test_client()
        return [
            client.patch("/v1/sources/default-source", json={"name": f"Name {n}"}, headers=admin)
            for n in range(30)
        ]

    def comment(thread):
        client = app.test_client()
        body = {"author_name": f"Reader {thread}", "body": "Well put."}
        return [
            client.post(f"/v1/articles/{articles[n % 4]}/comments", json=body, headers=admin)
            for n in range(30)
        ]

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(rename, 0), pool.submit(comment, 1), pool.submit(comment, 2)]
        answers = [answer for future in futures for answer in future.result()]
    failed = [(a.status_code, a.json) for a in answers if a.status_code not in (200, 201)]
    assert failed == []


@pytest.mark.parametrize(
    "app_config", [{"write_rate_limit": "100000/minute", "rate_limit": "100000/minute"}]
)
def test_articles_and_comments_deleted_while_comments_arrive_all_answer(
    app, postgres_only, make_key, make_article, monkeypatch
):
    """A row about to be deleted is locked against rows referring to it too: locked against
    writers only, a comment arriving (its reference checked) and then recounting its article
    waited for the delete, which waited for that check: a deadlock, and a 503."""
    monkeypatch.setattr(tasks.huey, "immediate", False)
    articles = [make_article().id for _ in range(40)]
    admin = make_key("admin,comment")
    db.close()  # the threads open their own connections
    body = {"author_name": "Reader", "body": "Well put."}

    def comment(thread):
        client = app.test_client()
        answers = []
        for article_id in articles:
            posted = client.post(f"/v1/articles/{article_id}/comments", json=body, headers=admin)
            answers.append(posted)
            if posted.status_code == 201 and thread == 0:  # a reply, while the other deletes
                reply = {**body, "parent_id": posted.json["id"]}
                answers.append(
                    client.post(f"/v1/articles/{article_id}/comments", json=reply, headers=admin)
                )
        return answers

    def delete(_):
        client = app.test_client()
        answers = []
        for article_id in articles:
            listed = client.get(f"/v1/articles/{article_id}/comments", headers=admin).json
            for item in listed.get("data", [])[:1]:
                answers.append(client.delete(f"/v1/comments/{item['id']}", headers=admin))
            answers.append(client.delete(f"/v1/articles/{article_id}", headers=admin))
        return answers

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(comment, 0), pool.submit(comment, 1), pool.submit(delete, 2)]
        answers = [answer for future in futures for answer in future.result()]
    failed = [(a.status_code, a.json) for a in answers if a.status_code >= 500]
    assert failed == []


@pytest.mark.parametrize(
    "app_config", [{"write_rate_limit": "100000/minute", "rate_limit": "100000/minute"}]
)
def test_comments_posted_at_once_are_all_counted_and_a_slug_rename_waits(
    app, postgres_only, make_key, make_article, monkeypatch
):
    """Two comments posted at once on one article recounted it each in a statement whose count
    could miss the other (READ COMMITTED): comment_count lost comments. And a source's slug
    renamed (its unique key: the row locked against references too) while comments arrived
    deadlocked with them."""
    monkeypatch.setattr(tasks.huey, "immediate", False)
    articles = [make_article().id for _ in range(2)]
    admin = make_key("admin,comment")
    db.close()  # the threads open their own connections
    body = {"author_name": "Reader", "body": "Well put."}

    def comment(thread):
        client = app.test_client()
        path = f"/v1/articles/{articles[thread % 2]}/comments"
        return [client.post(path, json=body, headers=admin) for _ in range(25)]

    def rename(_):
        client = app.test_client()
        answers = []
        for n in range(10):
            slug = "default-source" if n % 2 else "renamed-source"
            old = "renamed-source" if n % 2 else "default-source"
            answers.append(client.patch(f"/v1/sources/{old}", json={"slug": slug}, headers=admin))
        return answers

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(comment, n) for n in range(4)] + [pool.submit(rename, 0)]
        answers = [answer for future in futures for answer in future.result()]
    assert [(a.status_code, a.json) for a in answers if a.status_code >= 300] == []
    with db.connection_context():
        counts = [Article.get_by_id(article_id).comment_count for article_id in articles]
    assert counts == [50, 50]


@pytest.mark.parametrize(
    "app_config", [{"write_rate_limit": "100000/minute", "rate_limit": "100000/minute"}]
)
def test_counts_hold_while_articles_are_written_and_deleted_at_once(
    app, postgres_only, writer, make_source, monkeypatch
):
    """A delete recounted its source's and tags' articles in a statement of its own, which
    could miss an article another write committed meanwhile (READ COMMITTED): a tag's count
    one short, its articles being of several sources (a source's writes take turns on it).
    Deletes count by difference, as writes do."""
    sources = [make_source(slug=f"source-{n}").slug for n in range(4)]
    monkeypatch.setattr(tasks.huey, "immediate", False)
    db.close()  # the threads open their own connections

    def write(thread):
        client = app.test_client()
        answers = []
        for n in range(30):
            body = {"source": sources[thread], "title": f"T{thread}-{n}", "body_text": "B."}
            body["tags"] = ["x"]
            posted = client.post("/v1/articles", json=body, headers=writer)
            answers.append(posted)
            if thread == 0 and posted.status_code == 201:
                answers.append(client.delete(f"/v1/articles/{posted.json['id']}", headers=writer))
        return answers

    with ThreadPoolExecutor(4) as pool:
        answers = [answer for answers in pool.map(write, range(4)) for answer in answers]
    assert [a.status_code for a in answers if a.status_code >= 300] == []
    with db.connection_context():
        published = Article.select().where(Article.status == "published").count()
        assert published == 90
        counts = [Source.get(Source.slug == slug).article_count for slug in sources]
        assert counts == [0, 30, 30, 30]
        assert client_tag_count(app) == published


def client_tag_count(app):
    return app.test_client().get("/v1/tags/x").json["article_count"]


def test_a_tag_another_write_names_meanwhile_is_checked_again(
    app, client, writer, make_source, postgres_only, monkeypatch
):
    """A write that found no tag ``c`` before another write made it ("C++", committed while
    the first went on) is refused for its "C#", not silently given that tag."""
    make_source(slug="first"), make_source(slug="other")
    answers = []
    threads = after_the_call_of(
        monkeypatch,
        ingest._Batch,
        "_check_tags",
        lambda: answers.append(
            app.test_client().post(
                "/v1/articles",
                json={"source": "other", "title": "Other", "body_text": "B.", "tags": ["C++"]},
                headers=writer,
            )
        ),
    )
    first = client.post(
        "/v1/articles",
        json={"source": "first", "title": "First", "body_text": "B.", "tags": ["C#"]},
        headers=writer,
    )
    threads[0].join()
    # Whichever made the tag, the other is refused: never both stored under one tag. (The
    # other write usually commits first, as arranged; under a busy cluster the wait for a
    # lock may be another test's, and the first goes on first.)
    outcomes = sorted([(first, "C#"), (answers[0], "C++")], key=lambda o: o[0].status_code)
    (stored, name), (refused, _) = outcomes
    assert (stored.status_code, refused.status_code) == (201, 422)
    assert list(refused.json["errors"]) == ["tags.0"]
    with db.connection_context():
        assert [(t.slug, t.name) for t in Tag.select()] == [("c", name)]


def test_a_slug_rename_and_an_unpublish_in_one_of_its_stories_both_succeed(
    app, client, postgres_only, make_key, make_source, make_article, monkeypatch
):
    """The rename took the change log's lock and then its stories' rows; an unpublish of
    another source's article in one of them takes the story's row and then the change log's
    lock: each waited for the other, and PostgreSQL failed one of them (a 503)."""
    from models import stories
    from models.stories import Story, refresh_stories

    renamed, other = make_source(slug="renamed"), make_source(slug="other")
    ids = [
        make_article(source=renamed).id,
        make_article(source=other).id,
        make_article(source=other).id,
    ]
    with db.atomic():
        at = datetime.datetime(2026, 11, 1)
        story = Story.create(first_published_at=at, last_published_at=at)
        Article.update(story=story.id).where(Article.id.in_(ids)).execute()
        refresh_stories([story.id])
    writer = make_key("write")
    monkeypatch.setattr(tasks.huey, "immediate", False)  # placing the draft would refresh too
    db.close()  # the thread opens its own connection
    refreshes = []
    original = stories.refresh_stories
    monkeypatch.setattr(
        stories, "refresh_stories", lambda ids: refreshes.append(1) or original(ids)
    )
    answers = []
    threads = after_the_call_of(
        monkeypatch,
        cards,
        "publish",
        lambda: answers.append(
            app.test_client().patch(
                f"/v1/articles/{ids[1]}", json={"status": "draft"}, headers=writer
            )
        ),
    )
    response = client.patch("/v1/sources/renamed", json={"slug": "renamed-2"}, headers=writer)
    threads[0].join()
    assert (response.status_code, answers[0].status_code) == (200, 200), response.json
    assert len(refreshes) == 2  # one each: neither ran again after a deadlock
    with db.connection_context():
        assert Story.get_by_id(story.id).sources == "other,renamed-2"
        assert Article.get_by_id(ids[1]).status == "draft"


def test_a_source_slug_taken_between_the_check_and_the_insert_is_a_409_naming_it(
    app, client, writer, postgres_only, monkeypatch
):
    from api import sources

    body = {"slug": "raced", "name": "Raced"}
    answers = []
    threads = after_the_call_of(
        monkeypatch,
        sources,
        "ensure_slug_free",
        lambda: answers.append(app.test_client().post("/v1/sources", json=body, headers=writer)),
    )
    response = client.post("/v1/sources", json=body, headers=writer)
    threads[0].join()
    assert answers[0].status_code == 201
    assert response.status_code == 409
    assert response.json["errors"] == {"slug": ["A source with slug 'raced' exists."]}


@pytest.mark.parametrize("app_config", [{"webhook_allow_private": True}])
def test_two_rotations_of_a_webhooks_secret_at_once_each_hand_out_one_that_signs(
    app, client, postgres_only, make_key, monkeypatch
):
    # Both read the secret before either wrote: each kept the first secret as the previous
    # one, and the secret the first handed out never signed anything.
    from api import webhooks as webhooks_api
    from models import Webhook

    admin = make_key("admin")
    body = {"url": "http://127.0.0.1:9/in", "events": ["article.published"]}
    hook = client.post("/v1/webhooks", json=body, headers=admin).json
    path = f"/v1/webhooks/{hook['id']}/rotate-secret"
    answers = []
    threads = after_the_call_of(
        monkeypatch,
        webhooks_api,
        "get_webhook_or_404",
        lambda: answers.append(app.test_client().post(path, headers=admin)),
    )
    first = client.post(path, headers=admin)
    threads[0].join()
    assert first.status_code == answers[0].status_code == 200
    handed_out = {first.json["secret"], answers[0].json["secret"]}
    with db.connection_context():
        stored = Webhook.get_by_id(hook["id"])
        key = app.config["NEWSDESK"].key_for("webhook-secrets")
        signing = set(stored.signing_secrets(key, utcnow()))
    assert signing == handed_out


def test_the_same_pair_related_twice_at_once_is_created_once_then_updated(
    app, client, writer, make_article, postgres_only, monkeypatch
):
    # Both read that the pair had no relation and both inserted one: the second was a 409.
    from api import articles as articles_api

    article, other = make_article(), make_article()
    path = f"/v1/articles/{article.id}/relations"
    answers = []
    threads = after_the_call_of(
        monkeypatch,
        articles_api,
        "stored_relation",
        lambda: answers.append(
            app.test_client().post(
                path, json={"article_id": other.id, "kind": "background"}, headers=writer
            )
        ),
    )
    response = client.post(path, json={"article_id": other.id, "kind": "follow_up"}, headers=writer)
    threads[0].join()
    assert (answers[0].status_code, response.status_code) == (201, 200), response.json
    with db.connection_context():
        stored = Relation.select().where(Relation.article == article.id)
        assert [(r.related_id, r.kind, r.origin) for r in stored] == [
            (other.id, "follow_up", "editorial")
        ]


@pytest.mark.parametrize("if_match", [{}, {"If-Match": "*"}])
def test_a_relation_removed_twice_at_once_is_removed_once(
    app, client, writer, make_article, postgres_only, monkeypatch, if_match
):
    # Both read the relation, both deleted it, and both answered 204.
    article, other = make_article(), make_article()
    body = {"article_id": other.id, "kind": "follow_up"}
    created = client.post(f"/v1/articles/{article.id}/relations", json=body, headers=writer)
    assert created.status_code == 201
    path = f"/v1/articles/{article.id}/relations/{other.id}"
    answers = []
    threads = after_the_call_of(
        monkeypatch,
        Relation,
        "delete",  # the query made, not yet run: the other request reads and removes it first
        lambda: answers.append(app.test_client().delete(path, headers={**writer, **if_match})),
    )
    response = client.delete(path, headers={**writer, **if_match})
    threads[0].join()
    assert (answers[0].status_code, response.status_code) == (204, 404)
    assert response.json["detail"] == (
        f"Article {article.id} has no editorial relation to {other.id}."
    )


def test_articles_a_worker_read_as_alive_are_kept_until_it_stores(
    app, make_article, postgres_only, monkeypatch
):
    """The worker reads which articles are still there, then stores what it computed for them
    (a related list, a vector, a queue row), referring to them. An article deleted between
    the two made the insert fail its foreign key (seen under a burst of deletes): the rows it
    read are kept from deletion until it commits."""
    import peewee

    import models.articles
    from models import related
    from models.base import sqlstate

    first, second = make_article(), make_article()
    db.close()
    held, go = threading.Event(), threading.Event()
    keep = models.articles.kept

    def pausing(query, of):
        query = keep(query, of)
        list(query.tuples())  # the locks taken now, as store() will read them
        held.set()
        go.wait(timeout=30)
        return query

    monkeypatch.setattr(models.articles, "kept", pausing)  # as Article.kept_ids reads them

    def work():
        with db.connection_context():
            related._store_all([(first.id, [(second.id, 0.5, ["shared_tags"])])])

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert held.wait(timeout=30)
        with (
            db.connection_context(),
            pytest.raises(peewee.OperationalError) as error,
            db.atomic(),
        ):
            db.execute_sql("SET LOCAL lock_timeout = '200ms'")
            Article.delete().where(Article.id == second.id).execute()
        assert sqlstate(error.value) == "55P03"  # lock_not_available: kept
    finally:
        go.set()
        worker.join()
    with db.connection_context():
        stored = sorted((r.article_id, r.related_id) for r in Relation.select())
        assert stored == [(first.id, second.id), (second.id, first.id)]  # and the neighbour's


def test_the_worker_and_a_delete_of_an_article_it_embeds_do_not_deadlock(
    app, make_article, postgres_only, monkeypatch
):
    """The worker took the articles off the embedding queue, then locked them; a delete locks
    the article, then its queue rows go with it. With the delete holding the article while
    the worker held its queue row, PostgreSQL found a deadlock (seen under a burst of deletes).
    The worker locks the articles first now: it waits for the delete, and both go through."""
    import time

    from models import embeddings, stories
    from models.related import RelatedQueue

    gone, staying = make_article(), make_article()
    with db.connection_context(), db.atomic():
        embeddings.EmbeddingQueue.add([gone.id, staying.id])
    db.close()
    placed, holding, go = (threading.Event() for _ in range(3))
    errors = []
    place = stories.place

    def placing(article_ids, waiting):  # the worker's work outside its transaction done, the
        moved = place(article_ids, waiting)  # delete holds the article as the transaction starts
        placed.set()
        holding.wait(timeout=30)
        return moved

    monkeypatch.setattr(stories, "place", placing)

    def delete():
        try:
            with db.connection_context(), db.atomic():
                db.execute_sql("SET LOCAL lock_timeout = '10s'")
                query = Article.select(Article.id).where(Article.id == gone.id).for_update()
                list(query.tuples())  # the article held, as a write holds it
                holding.set()
                go.wait(timeout=30)
                Article.delete().where(Article.id == gone.id).execute()
        except Exception as error:
            errors.append(error)

    def work():
        try:
            with db.connection_context():
                stories.process([gone.id, staying.id])
        except Exception as error:
            errors.append(error)

    worker, deleter = threading.Thread(target=work), threading.Thread(target=delete)
    worker.start()
    assert placed.wait(timeout=30)
    deleter.start()
    with db.connection_context():  # until the worker waits for the article the delete holds
        waiting = (  # in this test's database: another test's waits are no sign
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN"
            " (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
        )
        deadline = time.monotonic() + 30
        while db.execute_sql(waiting).fetchone()[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    go.set()
    deleter.join()
    worker.join()
    assert errors == []
    with db.connection_context():
        assert not Article.select().where(Article.id == gone.id).exists()
        assert not embeddings.EmbeddingQueue.select().exists()
        assert [row.article_id for row in RelatedQueue.select()] == [staying.id]
