import datetime
import functools
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest

from api import tasks
from api.config import Config
from models import (
    Article,
    ArticleEmbedding,
    EmbeddingQueue,
    RelatedQueue,
    Relation,
    Source,
    WebhookEvent,
    connected,
    db,
    embeddings,
    imports,
    stories,
)
from models import related as related_lists
from models.base import as_peewee_error, checkpoint, is_postgres, write_transaction

REDIS_URL = os.environ.get("NEWSDESK_TEST_REDIS_URL")
#: The signals a Huey consumer handles in the process that starts it.
HUEY_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def test_one_run_at_a_time_does_the_work(app, dbconn):
    """Another run (a thread, with a connection of its own) is refused the work while one
    holds it, and gets it once that one is done."""

    def elsewhere():
        answers = []

        def run():
            with connected(), tasks.run_lock(tasks.RELATED_RUN) as held:
                answers.append(held)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        return answers[0]

    with tasks.run_lock(tasks.RELATED_RUN) as held:
        assert held
        assert not elsewhere()
        with tasks.run_lock(tasks.EMBEDDINGS_RUN) as other_work:
            assert other_work
    assert elsewhere()


@pytest.mark.xdist_group("processes")
def test_a_worker_killed_in_a_run_holds_no_work_up(app, dbconn, database_url):
    """Huey's lock stayed held in the queue's storage when a worker was killed in a run
    (SQLite's, PostgreSQL's, Redis's before 7.4 keep no expiry), and the other workers skipped
    the work until one started."""
    script = (
        "import os, signal, sys\n"
        "from api import tasks\n"
        "from models import bind_database, connected\n"
        "bind_database(sys.argv[1])\n"
        "with connected(), tasks.run_lock(tasks.RELATED_RUN) as held:\n"
        "    print(held, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, database_url], stdout=subprocess.PIPE, text=True
    ) as worker:
        assert worker.stdout.readline() == "True\n"
        assert worker.wait(timeout=30) == -signal.SIGKILL
    deadline = time.monotonic() + 10  # PostgreSQL ends the session once it sees it closed
    while True:
        with tasks.run_lock(tasks.RELATED_RUN) as held:
            if held or time.monotonic() > deadline:
                break
    assert held


def test_the_queue_file_syncs_as_the_database_does(tmp_path):
    """Huey keeps SQLite's default (FULL), which syncs the disk at every enqueue: about 1 ms
    of every write's answer, for a wake-up whose work is recorded in the database anyway."""
    config = Config.from_env(
        {
            "NEWSDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'newsdesk.db'}",
            "NEWSDESK_TASKS_IMMEDIATE": "0",
        }
    )
    queue = tasks.make_huey(config)
    with queue.storage.db() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert cursor.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


def test_worker_threads_starting_leave_other_threads_transactions_alone(app, dbconn, source):
    """Huey runs its startup hooks in each worker thread as the thread starts. One such hook
    bound the database again, under the transaction a thread started earlier was running: that
    thread's next statement found no connection, and on SQLite its open transaction kept the
    write lock until the process ended (every other write answered 503)."""
    handlers = {number: signal.getsignal(number) for number in HUEY_SIGNALS}
    tasks.huey.immediate = False  # a consumer runs only a queue that is not immediate
    try:
        with write_transaction():
            Source.update(name="Before").where(Source.id == source.id).execute()
            consumer = tasks.huey.create_consumer(workers=3, worker_type="thread", periodic=False)
            consumer.start()
            consumer.stop(graceful=True)  # every worker thread has started, and stopped
            Source.update(name="After").where(Source.id == source.id).execute()
    finally:
        tasks.huey.immediate = True
        for number, handler in handlers.items():  # the consumer's, for its main process
            signal.signal(number, handler)

    assert Source.get_by_id(source.id).name == "After"


class Refusing(embeddings.HashedNgrams):
    """The test embedder, failing on one text as a model may on an input it cannot take."""

    def embed(self, texts):
        texts = list(texts)
        if any("unembeddable" in text for text in texts):
            raise ValueError("the model cannot take this text")
        return super().embed(texts)


@pytest.fixture
def refusing(monkeypatch):
    monkeypatch.setitem(embeddings.EMBEDDERS, "refusing", Refusing)
    yield embeddings.configure("refusing")
    embeddings.configure("hashed")


#: Three articles related, not copies of one text (which no related list holds).
HARBOUR = [
    f"Harbour ferries resume {when}, a report."
    for when in ("after the storm", "their night crossings", "with fewer sailings")
]


def test_one_article_that_fails_does_not_hold_up_the_queues(app, make_article, refusing):
    """An article the worker cannot process is logged and left out; the articles queued with
    it are embedded, placed and related as usual."""
    with app.app_context():
        failing = make_article(body="An unembeddable report.")
        ordinary = [make_article(body=body) for body in HARBOUR]
        ids = [failing.id, *(a.id for a in ordinary)]
        with write_transaction():
            EmbeddingQueue.add(ids)
            RelatedQueue.add([failing.id])
        tasks.refresh_articles.call_local()
        assert EmbeddingQueue.select().count() == 0
        assert RelatedQueue.select().count() == 0
        embedded = {i for (i,) in ArticleEmbedding.select(ArticleEmbedding.article).tuples()}
        assert embedded == {a.id for a in ordinary}
        related = {i for (i,) in Relation.select(Relation.article).tuples()}
        assert {a.id for a in ordinary} <= related


def run_pending():
    """Run the tasks the queue holds, and those they queue, until none is left; how many."""
    runs = 0
    while (task := tasks.huey.dequeue()) is not None:
        tasks.huey.execute(task)
        runs += 1
    return runs


def test_a_run_of_queued_work_gives_its_thread_back_and_asks_for_another(
    app, make_article, monkeypatch
):
    # A large import's related lists held the worker's threads for hours: webhook deliveries,
    # the sweep and imports to resume, queued behind them, waited for the whole backlog.
    monkeypatch.setattr(tasks.huey, "immediate", False)
    monkeypatch.setattr(tasks, "RUN_SECONDS", 0)  # out of time after each batch
    one_at_a_time = functools.partial(related_lists.refresh_queued, 1)
    monkeypatch.setattr(related_lists, "refresh_queued", one_at_a_time)
    tasks.huey.flush()
    with app.app_context():
        ids = [make_article(body=f"Harbour ferries resume, report {n}.").id for n in range(3)]
        with write_transaction():
            RelatedQueue.add(ids)
        tasks.relate_queued.call_local()
        assert RelatedQueue.select().count() == 2
        assert [task.name for task in tasks.huey.pending()] == ["relate_queued"]
        assert run_pending() >= 2
        assert RelatedQueue.select().count() == 0
        assert {i for (i,) in Relation.select(Relation.article).tuples()} == set(ids)


def test_writes_waking_the_worker_queue_one_run_of_each_until_it_starts(app, monkeypatch):
    # Every write queued a run, and every run out of time one more: the queue grew while a
    # backlog lasted, and the sweep and the imports behind it waited minutes.
    monkeypatch.setattr(tasks.huey, "immediate", False)
    tasks.huey.flush()
    for _ in range(3):
        tasks.ask_refresh()
        tasks.ask_deliveries()
    pending = sorted(task.name for task in tasks.huey.pending())
    assert pending == ["deliver_webhooks", "embed_queued", "relate_queued"]
    with app.app_context():
        assert run_pending() == 3
        tasks.ask_refresh()  # the runs started: a write now queues another
    assert sorted(task.name for task in tasks.huey.pending()) == ["embed_queued", "relate_queued"]
    tasks.huey.flush()


def test_a_run_not_asked_for_leaves_the_ask_and_a_lost_run_is_asked_again(app, monkeypatch):
    # The sweep's runs forgot the ask of the run still waiting: each sweep added a run of each
    # kind to the queue, for as long as a backlog lasted.
    monkeypatch.setattr(tasks.huey, "immediate", False)
    tasks.huey.flush()
    tasks.ask_refresh()
    with app.app_context():
        tasks.sweep.call_local()
    tasks.ask_refresh()
    assert sorted(task.name for task in tasks.huey.pending()) == ["embed_queued", "relate_queued"]
    # Taken by a worker killed before they started: the sweep forgets their asks.
    while tasks.huey.dequeue() is not None:
        pass
    tasks.ask_refresh()
    assert tasks.huey.pending() == []
    with app.app_context():
        tasks.sweep.call_local()
    tasks.ask_refresh()
    assert sorted(task.name for task in tasks.huey.pending()) == ["embed_queued", "relate_queued"]
    tasks.huey.flush()


def test_forgetting_lost_asks_keeps_one_made_while_the_queue_is_read(app, monkeypatch):
    # A gunicorn worker starting beside another serving a write read the queue (empty), then
    # the ask the write had just made and queued: not in what it read, it forgot the ask.
    monkeypatch.setattr(tasks.huey, "immediate", False)
    tasks.huey.flush()
    read_queue = tasks.huey.pending

    def pending_then_a_write_asks():
        queued = read_queue()
        tasks.ask_deliveries()  # another process's write, between the two reads
        return queued

    monkeypatch.setattr(tasks.huey, "pending", pending_then_a_write_asks)
    tasks.forget_lost_asks()  # no ask noted yet: the queue is not even read
    tasks.ask_refresh()
    tasks.forget_lost_asks()
    monkeypatch.setattr(tasks.huey, "pending", read_queue)
    queued = {task.id: task.name for task in tasks.huey.pending()}
    assert sorted(queued.values()) == ["deliver_webhooks", "embed_queued", "relate_queued"]
    assert queued[tasks.huey.get(tasks.DELIVERIES_ASKED, peek=True)] == "deliver_webhooks"
    tasks.huey.flush()


@pytest.mark.parametrize("year", [1, 9999])
def test_articles_at_the_ends_of_the_calendar_are_processed(app, make_article, caplog, year):
    """Rows stored before times were bounded (to the years 1000-8999) may lie at the calendar's
    ends, where a window of days around them, or reading them as local time, overflowed: the
    worker left them out, and `related rebuild` failed on them."""
    with app.app_context():
        far = make_article(
            body="Harbour ferries resume, a report.",
            published_at=datetime.datetime(year, 1, 1, 12)
            if year == 1
            else datetime.datetime(year, 12, 31, 12),
        )
        ordinary = [make_article(body=body) for body in HARBOUR]
        ids = [far.id, *(a.id for a in ordinary)]
        with write_transaction():
            EmbeddingQueue.add(ids)
        tasks.refresh_articles.call_local()
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        embedded = {i for (i,) in ArticleEmbedding.select(ArticleEmbedding.article).tuples()}
        assert embedded == set(ids)
        assert Article.get_by_id(far.id).story_id is None  # nothing near it in time
        Relation.delete().execute()
        assert related_lists.rebuild() == len(ids)
        listed = {i for (i,) in Relation.select(Relation.article).tuples()}
        assert {a.id for a in ordinary} <= listed


def queued(queue):
    """``(article_id, bulk)`` of what ``queue`` holds, in the order the worker takes it."""
    with db.connection_context():
        query = queue.select(queue.article, queue.bulk).order_by(
            queue.bulk, queue.queued_at, queue.article
        )
        return list(query.tuples())


def test_single_writes_are_served_before_an_import(client, writer, source, monkeypatch):
    """The queues were first in, first out: an article written during a large import waited
    for all of the import's embeddings and related lists."""
    monkeypatch.setattr(tasks.huey, "immediate", False)  # the worker does not run meanwhile

    def run_import(numbers, body):
        lines = (
            {
                "source": source.slug,
                "external_id": f"ferry-{n}",
                "title": f"Harbour ferries resume, part {n}",
                "body_text": body,
            }
            for n in numbers
        )
        return client.post(
            "/v1/import",
            data="\n".join(json.dumps(line) for line in lines),
            content_type="application/x-ndjson",
            headers=writer,
        )

    answer = run_import(range(3), "Ferries.")
    assert answer.status_code == 200 and answer.json["created"] == 3, answer.json
    with db.connection_context():
        imported = [i for (i,) in Article.select(Article.id).order_by(Article.id).tuples()]
    single = client.post(
        "/v1/articles",
        json={"source": source.slug, "title": "Harbour ferries resume", "body_text": "Ferries."},
        headers=writer,
    ).json["id"]
    bulk = [(i, True) for i in imported]
    assert queued(EmbeddingQueue) == queued(RelatedQueue) == [(single, False), *bulk]

    # The worker's next batch of embeddings holds the single write alone, and its related
    # list is computed right after, before anything the import queued.
    with db.connection_context():
        assert tasks._embed_batch() == 1
        embedded = [i for (i,) in ArticleEmbedding.select(ArticleEmbedding.article).tuples()]
        assert embedded == [single]
        assert Relation.select().where(Relation.article == single).exists()
    assert queued(EmbeddingQueue) == queued(RelatedQueue) == bulk

    # An imported article written again on its own goes first.
    patched = client.patch(
        f"/v1/articles/{imported[1]}", json={"body_text": "Ferries, again."}, headers=writer
    )
    assert patched.status_code == 200, patched.json
    again = [(imported[1], False), bulk[0], bulk[2]]
    assert queued(EmbeddingQueue) == queued(RelatedQueue) == again
    # and stays first when an import writes it again before the worker took it.
    answer = run_import([1], "Ferries, imported again.")
    assert answer.status_code == 200 and answer.json["updated"] == 1, answer.json
    assert queued(EmbeddingQueue) == queued(RelatedQueue) == again

    with db.connection_context():
        tasks.refresh_articles.call_local()  # asks for a run of each: the worker's
        run_pending()
        assert EmbeddingQueue.select().count() == RelatedQueue.select().count() == 0
        assert ArticleEmbedding.select().count() == 4


@pytest.fixture
def queue_down(monkeypatch):
    """The task queue unreachable: a Redis queue on a port where nothing answers (a Redis
    that is down)."""
    from huey.storage import RedisStorage

    from .servers import free_port

    monkeypatch.setattr(tasks.huey, "immediate", False)
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(tasks.huey, "storage", RedisStorage("newsdesk", url=url))


def test_an_import_for_the_worker_is_accepted_while_the_queue_is_down(
    client, writer, source, queue_down
):
    """The job was stored, then enqueuing its task failed: a 500, and a client sending it
    again started a second import of the same body."""
    body = json.dumps({"source": source.slug, "title": "T", "body_text": "B."}) + "\n"
    response = client.post(
        "/v1/import",
        data=body,
        content_type="application/x-ndjson",
        headers={**writer, "Prefer": "respond-async"},
    )
    assert response.status_code == 202, response.json
    assert response.json["status"] == "queued"
    with connected():
        assert imports.runnable() == [response.json["id"]]  # the sweep takes it up


@pytest.mark.parametrize("app_config", [{"webhook_allow_private": True}])
def test_a_cli_import_succeeds_while_the_queue_is_down(
    app, client, database_url, make_key, source, tmp_path, queue_down
):
    from click.testing import CliRunner

    from api.cli import main

    hook = {"url": "http://127.0.0.1:9/", "events": ["article.published"]}
    assert client.post("/v1/webhooks", json=hook, headers=make_key("admin")).status_code == 201
    path = tmp_path / "one.ndjson"
    path.write_text(json.dumps({"source": source.slug, "title": "T", "body_text": "B."}) + "\n")
    env = {"NEWSDESK_DATABASE_URL": database_url}
    result = CliRunner().invoke(main, ["import", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert f"{path}: 1 created" in result.output
    with connected():
        assert WebhookEvent.select().count() == 1  # in the outbox: the sweep delivers it


def test_readiness_says_when_the_task_queue_does_not_answer(client, queue_down):
    answer = client.get("/readyz").json
    assert answer["status"] == "degraded"
    (problem,) = answer["problems"]
    assert problem.startswith("Task queue: Redis does not answer (")
    assert problem.endswith("wait until it does (they are recorded in the database: none is lost).")


def test_readiness_of_a_queue_that_answers_says_nothing_of_it(client):
    assert client.get("/readyz").json["problems"] == []


def test_a_worker_stopping_takes_no_next_batch(app, dbconn, monkeypatch):
    batches = []

    def batch():
        batches.append(1)
        return 0 if len(batches) == 3 else 5

    assert tasks._drain(tasks.RELATED_RUN, batch) == (10, False)  # until the queue is empty
    stopping = tasks.threading.Event()
    monkeypatch.setattr(tasks, "stopping", stopping)
    stopping.set()
    batches.clear()
    assert tasks._drain(tasks.RELATED_RUN, batch) == (0, False) and batches == []


def test_related_lists_wait_for_their_articles_to_be_embedded(client, writer, source, monkeypatch):
    """An imported article's related list was computed by its words while it waited to be
    embedded, then again once embedded (which queues it again): after a large import, half
    the worker's related work was thrown away."""
    monkeypatch.setattr(tasks.huey, "immediate", False)  # the worker does not run meanwhile
    lines = (
        {
            "source": source.slug,
            "external_id": f"dam-{n}",
            "title": f"Dam repairs, day {n}",
            "body_text": "Crews shored up the dam.",
        }
        for n in range(3)
    )
    answer = client.post(
        "/v1/import",
        data="\n".join(json.dumps(line) for line in lines),
        content_type="application/x-ndjson",
        headers=writer,
    )
    assert answer.status_code == 200 and answer.json["created"] == 3, answer.json
    single = client.post(
        "/v1/articles",
        json={"source": source.slug, "title": "Dam repairs begin", "body_text": "Crews at work."},
        headers=writer,
    ).json["id"]
    waiting = queued(RelatedQueue)
    assert len(waiting) == 4 and (single, False) in waiting

    with db.connection_context():
        assert related_lists.refresh_queued() == 0
        assert queued(RelatedQueue) == waiting
        assert not Relation.select().exists()

        assert stories.refresh_queued() == 1  # the single write's, first
        assert related_lists.refresh_queued() == 1
        assert Relation.select().where(Relation.article == single).exists()
        assert stories.refresh_queued() == 3
        # Theirs, and the single write's again: it names them, now embedded.
        assert related_lists.refresh_queued() == 4
        assert RelatedQueue.select().count() == 0


def test_an_article_queued_twice_in_one_call_is_queued_once(app, dbconn, make_article):
    """On PostgreSQL the queue's rows go in one INSERT ... ON CONFLICT, which cannot update a
    row twice: an id named twice is queued once, as each alone would queue it."""
    article = make_article()
    for queue in (RelatedQueue, EmbeddingQueue):
        with write_transaction():
            queue.add([article.id, article.id], bulk=True)
        assert [row.article_id for row in queue.select()] == [article.id]


def test_served_writes_leave_the_wal_checkpoint_to_the_worker(app, client, writer, source):
    """A served write's commit does not checkpoint SQLite's WAL (SQLite's default did, at
    every 1,000 pages: 20 ms more for one write in 64 at 100k articles); the worker's thread
    does, and the next write starts the WAL again from its beginning."""
    if is_postgres():
        pytest.skip("PostgreSQL checkpoints on its own")
    wal = Path(db.obj.database + "-wal")
    page = db.execute_sql("PRAGMA page_size").fetchone()[0]

    def frames():
        return (wal.stat().st_size - 32) // (page + 24)

    def post(number):
        article = {
            "source": "daily",
            "title": f"Harbour works, day {number}",
            "body_text": " ".join(f"The harbour works went on, day {n}." for n in range(300)),
        }
        assert client.post("/v1/articles", json=article, headers=writer).status_code == 201

    number = 0
    while frames() < 1_500 and number < 50:  # SQLite's own checkpoints keep it near 1,000
        post(number)
        number += 1
    assert frames() >= 1_500, number

    stop = threading.Event()
    stop.set()  # one round
    tasks.checkpoint_every(1.0, stop)
    post(number)
    in_wal, done = checkpoint()
    assert in_wal == done
    assert in_wal < 100


def test_a_sweep_part_that_waited_for_a_writer_is_a_warning_not_a_fault(
    app, database_url, monkeypatch, caplog, tmp_path
):
    # Under a heavy import on SQLite, a part that waited past the busy timeout logged a
    # traceback at error level, for a wait the next sweep gets past; so is PostgreSQL's lock
    # timeout (its message has DETAIL or CONTEXT lines: the warning is one line).
    if database_url.startswith("postgresql"):
        holder = psycopg2.connect(database_url)
        holder.cursor().execute("LOCK TABLE source IN ACCESS EXCLUSIVE MODE")

        def busy():
            with connected(), write_transaction():
                db.execute_sql("SET LOCAL lock_timeout = '10ms'")
                db.execute_sql("SELECT count(*) FROM source")

    else:
        holder = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")

        def busy():  # SQLite's own error, wrapped as the models raise it
            try:
                sqlite3.connect(tmp_path / "busy.db", timeout=0).execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise as_peewee_error(error) from error

    def broken():
        raise ValueError("a fault")

    monkeypatch.setattr(tasks, "deliver_some", busy)
    monkeypatch.setattr(tasks, "relate_some", broken)
    try:
        with app.app_context(), caplog.at_level(logging.WARNING, logger=tasks.log.name):
            tasks.sweep.call_local()
    finally:
        holder.close()
    parts = {
        record.args[0]: (record.levelname, record.exc_info is not None, "\n" in record.getMessage())
        for record in caplog.records
        if record.getMessage().startswith("the sweep's part")
    }
    assert parts == {
        "webhook deliveries": ("WARNING", False, False),
        "related lists": ("ERROR", True, False),
    }
    tasks.huey.flush()
