"""The numbered schema steps and ``init_db``: concurrent runs, upgrades, failures."""

import datetime
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import peewee
import psycopg2
import pytest
from click.testing import CliRunner
from playhouse.migrate import SchemaMigrator

from api import create_app
from api.cli import main
from models import (
    LATEST_VERSION,
    Article,
    ArticleBody,
    ArticleTag,
    Change,
    Comment,
    EmbeddingQueue,
    RelatedQueue,
    Setting,
    Source,
    Story,
    Tag,
    WebhookDelivery,
    WebhookEvent,
    bind_database,
    cards,
    close_all,
    current_version,
    db,
    init_db,
    migrations,
    webhooks,
)
from models.migrations import (
    SchemaVersion,
    v0001_initial,
    v0028_names_of_one_line,
    v0031_search_text_in_nfkc,
    v0033_language_tags_in_one_case,
)
from models.search import period_token

from .conftest import BACKENDS, POSTGRES_URL

ROOT = Path(__file__).resolve().parent.parent

#: Imports the command line (with its task queue on NEWSDESK_DATABASE_URL), says "ready",
#: waits for a line, runs `newsdesk db init`.
INIT_WHEN_TOLD = """
import sys
from api.cli import main
print("ready", flush=True)
sys.stdin.readline()
main(["db", "init"])
"""


@pytest.fixture(params=BACKENDS)
def empty_database(request, tmp_path):
    """Makes URLs of new, empty databases of the backend (PostgreSQL ones dropped after)."""
    made = []

    def make():
        number = len(made)
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path}/empty-{number}.db"
        else:
            if not POSTGRES_URL:
                pytest.skip("NEWSDESK_TEST_POSTGRES_URL is not set")
            name = f"newsdesk_migrations_{os.getpid()}_{number}"
            _admin(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
            url = urlunparse(urlparse(POSTGRES_URL)._replace(path="/" + name))
        made.append(url)
        return url

    yield make
    disconnect()
    for url in made:
        if url.startswith("postgresql"):
            _admin(f"DROP DATABASE IF EXISTS {urlparse(url).path[1:]} WITH (FORCE)")


def _admin(*statements):
    connection = psycopg2.connect(POSTGRES_URL)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def disconnect():
    """Close the connections of the database bound, if any."""
    if db.obj is not None:
        close_all()


def connect(url):
    """Bind the models to ``url`` and connect this thread."""
    disconnect()
    bind_database(url)
    db.connect()


def schema():
    """The connected database's schema, one fact per row, sorted."""
    if isinstance(db.obj, peewee.PostgresqlDatabase):
        statements = [
            "SELECT table_name, column_name, ordinal_position, data_type, "
            "character_maximum_length, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public'",
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
        ]
    else:
        statements = ["SELECT type, name, tbl_name, sql FROM sqlite_master"]
    return sorted(row for sql in statements for row in db.execute_sql(sql).fetchall())


def versions():
    return [row.version for row in SchemaVersion.select().order_by(SchemaVersion.version)]


def apply_steps(first, last):
    """Run steps ``first`` to ``last`` on the connected database, unstamped."""
    migrator = SchemaMigrator.from_database(db)
    with db.atomic():
        for step in migrations.STEPS[first - 1 : last]:
            step.upgrade(migrator)


def cards_as_that_release_rendered_them():
    """Render the cards with the code of now, and note that they were (their fingerprint), as
    a release of the stamped version left them: db init then renders only what an upgrade
    step changes."""
    cards.refresh()
    Setting.set_value(cards.FINGERPRINT, cards.card_fingerprint())


def upgraded_by_the_cli(url):
    """Run ``newsdesk db init`` on ``url`` as another process would (this thread's connection
    closed first), then connect again."""
    disconnect()
    result = CliRunner().invoke(main, ["db", "init"], env={"NEWSDESK_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    connect(url)


def stamped_at(version):
    """Carry the connected empty database to ``version`` by the steps, and stamp it with it, as
    a release of that version left it."""
    apply_steps(1, version)
    with db.atomic():
        SchemaVersion.create_table()
        SchemaVersion.create(version=version)


def failing_step(*statements):
    """A step that runs ``statements``, then fails."""

    def upgrade(migrator):
        for statement in statements:
            migrator.database.execute_sql(statement)
        raise RuntimeError("step failed")

    return types.SimpleNamespace(upgrade=upgrade)


@pytest.mark.xdist_group("processes")
def test_concurrent_init_of_an_empty_database(empty_database):
    """Every step of `db init` (the schema's, the task queue's tables, ...) runs one process at
    a time: each run succeeds, and one made the schema that the others found current."""
    url = empty_database()
    # The task queue in the database (or beside it), not run at once as the tests run it.
    env = {**os.environ, "NEWSDESK_DATABASE_URL": url, "NEWSDESK_TASKS_IMMEDIATE": "false"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", INIT_WHEN_TOLD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,  # python -c imports from its working directory first: this project's code
            env=env,
        )
        for _ in range(3)
    ]
    for run in runs:
        assert run.stdout.readline() == "ready\n", run.stderr.read()
    for run in runs:
        run.stdin.write("go\n")
        run.stdin.flush()
    outputs = []
    for run in runs:
        output, errors = run.communicate(timeout=120)
        assert run.returncode == 0, errors
        outputs.append(output.strip())
    # The whole of `db init` runs one process at a time (SQLite too: a step outlasting its
    # busy timeout made the others fail, on a large database).
    assert sorted(outputs) == [
        f"created schema version {LATEST_VERSION}",
        f"schema is current (version {LATEST_VERSION})",
        f"schema is current (version {LATEST_VERSION})",
    ]

    connect(url)
    assert versions() == list(range(1, LATEST_VERSION + 1))
    concurrent = schema()
    alone = empty_database()
    init = subprocess.run(
        [sys.executable, "-c", INIT_WHEN_TOLD],
        input="go\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "NEWSDESK_DATABASE_URL": alone},
        check=True,
    )
    assert init.stdout.endswith(f"created schema version {LATEST_VERSION}\n")
    connect(alone)
    assert schema() == concurrent


def test_init_twice_changes_nothing(empty_database):
    connect(empty_database())
    assert init_db() == (None, LATEST_VERSION)
    first = schema(), versions()
    assert init_db() == (LATEST_VERSION, LATEST_VERSION)
    assert (schema(), versions()) == first


def test_upgrade_from_version_4_keeps_rows(empty_database):
    # Rows written at version 1 and carried to version 4 by its steps, stamped with 4 alone as
    # the code of version 4 stamped fresh databases.
    url = empty_database()
    connect(url)
    apply_steps(1, 1)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    old = v0001_initial
    with db.bind_ctx(old.MODELS), db.atomic():
        source = old.Source.create(slug="harbour-news", name="Harbour News")
        article = old.Article.create(
            slug="ferry", source=source, title="Harbour ferry returns", published_at=when
        )
        old.ArticleBody.create(article=article, body_text="The ferry sails again.")
        tag = old.Tag.create(slug="transport", name="Transport", article_count=1)
        old.ArticleTag.create(article=article, tag=tag, published_at=when)
        old.Comment.create(article=article, author_name="Ann", body="At last.")
        old.Webhook.create(url="https://example.com/hook", events="article.published", secret="s")
    apply_steps(2, 4)
    db.execute_sql("UPDATE article SET card = 'stored card'")
    with db.atomic():
        SchemaVersion.create_table()
        SchemaVersion.create(version=4)

    assert init_db() == (4, LATEST_VERSION)
    assert versions() == [4, *range(5, LATEST_VERSION + 1)]
    assert not db.table_exists("webhook") and not db.table_exists("webhook_delivery")
    assert db.execute_sql("SELECT card FROM article").fetchall() == [("stored card",)]
    # Cards are no concern of the steps: db init renders them after migrating, from the article
    # schema, since that card was rendered with none that the database knows of.
    assert cards.refresh_if_stale()
    assert json.loads(db.execute_sql("SELECT card FROM article").fetchone()[0])["slug"] == "ferry"
    upgraded = schema()
    connect(empty_database())
    init_db()
    assert schema() == upgraded
    disconnect()

    client = create_app({"database_url": url, "testing": True}).test_client()
    listed = client.get("/v1/articles").json["data"]
    assert [(a["title"], a["source"]["slug"], a["tags"]) for a in listed] == [
        ("Harbour ferry returns", "harbour-news", [{"slug": "transport", "name": "Transport"}])
    ]
    assert [hit["slug"] for hit in client.get("/v1/search?q=sails").json["data"]] == ["ferry"]
    comments = client.get(f"/v1/articles/{article.id}/comments").json["data"]
    assert [comment["body"] for comment in comments] == ["At last."]


def test_upgrade_to_version_12_keeps_queued_articles_as_single_writes(empty_database):
    connect(empty_database())
    stamped_at(11)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    with db.atomic():
        # The article and source tables are as version 12 has them: today's models can write.
        source = Source.create(slug="harbour-news", name="Harbour News")
        article = Article.create(slug="ferry", source=source, title="Ferry", published_at=when)
        for table in ("related_queue", "embedding_queue"):
            db.execute_sql(
                f"INSERT INTO {table} (article_id, queued_at) VALUES ({db.param}, {db.param})",
                (article.id, when),
            )

    assert init_db() == (11, LATEST_VERSION)
    # The embedding queue first: a related list waits for its article's embedding.
    for queue in (EmbeddingQueue, RelatedQueue):
        assert queue.due(10) == [(article.id, when, False)]
        # The code of version 11, still running while a deployment upgrades, queues as before.
        table = queue._meta.table_name
        with db.atomic():
            db.execute_sql(f"DELETE FROM {table}")
            db.execute_sql(
                f"INSERT INTO {table} (article_id, queued_at) VALUES ({db.param}, {db.param})",
                (article.id, when),
            )
        assert queue.due(10) == [(article.id, when, False)]
        if queue is EmbeddingQueue:
            with db.atomic():
                db.execute_sql("DELETE FROM embedding_queue")
    disconnect()


def test_upgrade_to_version_22_finishes_what_older_upgrades_left(empty_database):
    """An audit upgraded copies of older releases holding data: articles from before
    embeddings were never embedded (no stories, no meaning search), an endpoint disabled
    before step 20 received its disabled time's events once enabled, and a link with a
    control character inside its scheme stayed in a body."""
    url = empty_database()
    connect(url)
    stamped_at(21)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    with db.atomic():
        source = Source.create(slug="harbour-news", name="Harbour News")
        old = Article.create(slug="ferry", source=source, title="Ferry", published_at=when)
        ArticleBody.create(
            article=old,
            body_text="Sails.",
            body_html='<p><a href="java\x01script:alert(1)">x</a> <a href="https://a.example/">y</a></p>',
        )
        wrapped = Article.create(slug="pier", source=source, title="Pier", published_at=when)
        # As today's sanitizer stores a feed's wrapped link: tabs and line breaks stay.
        kept = (
            '<p><a href="https://example.com/report?\n  page=2">the report</a>'
            ' <img src="https://example.com/a\tb.png" alt="chart"></p>'
        )
        ArticleBody.create(article=wrapped, body_text="Pier.", body_html=kept)
        queued = Article.create(slug="quay", source=source, title="Quay", published_at=when)
        db.execute_sql(
            f"INSERT INTO embedding_queue (article_id, queued_at, bulk) VALUES ({db.param}, {db.param}, {db.param})",
            (queued.id, when, False),
        )
        for enabled in (True, False):
            db.execute_sql(
                "INSERT INTO webhook_subscription (url, events, secret, enabled, since_version,"
                f" source_ids, tags, created_at, updated_at) VALUES ({db.param}, {db.param},"
                f" {db.param}, {db.param}, 7, '', '', {db.param}, {db.param})",
                ("https://hooks.example/", "article.published", "sealed", enabled, when, when),
            )

    assert init_db() == (21, LATEST_VERSION)
    queued_rows = db.execute_sql(
        "SELECT article_id, bulk FROM embedding_queue ORDER BY article_id"
    ).fetchall()
    assert [(i, bool(bulk)) for i, bulk in queued_rows] == [
        (old.id, True),
        (wrapped.id, True),
        (queued.id, False),
    ]
    paused = db.execute_sql(
        "SELECT enabled, paused_from FROM webhook_subscription ORDER BY id"
    ).fetchall()
    assert [(bool(enabled), start) for enabled, start in paused] == [(True, None), (False, 7)]
    body = db.execute_sql(
        f"SELECT body_html FROM article_body WHERE article_id = {db.param}", (old.id,)
    ).fetchone()[0]
    assert body == '<p><a>x</a> <a href="https://a.example/">y</a></p>'
    assert Article.get_by_id(old.id).version == old.version + 1
    kept_now = ArticleBody.get(ArticleBody.article == wrapped.id).body_html
    assert kept_now == kept and Article.get_by_id(wrapped.id).version == wrapped.version
    disconnect()


def test_upgrade_to_version_17_reads_stop_words_and_accents_on_postgresql(empty_database):
    url = empty_database()
    if not url.startswith("postgresql"):
        pytest.skip("SQLite's index read them so from the start")
    connect(url)
    stamped_at(16)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    week = period_token(when)
    with db.atomic():
        source = Source.create(slug="harbour-news", name="Harbour News")
        article = Article.create(
            slug="who", source=source, title="The Who at the Café", published_at=when
        )
        ArticleBody.create(article=article, body_text="They played.")
        db.execute_sql(  # as version 16 indexed it, with PostgreSQL's english configuration
            "INSERT INTO article_document (article_id, document) VALUES (%s,"
            " setweight(to_tsvector('english', %s), 'A')"
            " || setweight(to_tsvector('simple', %s), 'D'))",
            (article.id, article.title, week),
        )

    def found(tsquery, *args):
        sql = f"SELECT count(*) FROM article_document WHERE document @@ {tsquery}"
        return db.execute_sql(sql, args).fetchone()[0]

    assert found("phraseto_tsquery('english', 'the who')") == 0
    assert init_db() == (16, LATEST_VERSION)
    assert found("phraseto_tsquery('newsdesk', 'the who')") == 1
    assert found("phraseto_tsquery('newsdesk', 'cafe')") == 1
    assert found("phraseto_tsquery('newsdesk', 'played')") == 1
    assert found("to_tsquery('simple', %s)", week) == 1  # the week token is kept
    disconnect()


def test_commands_refuse_a_database_newer_than_the_code(empty_database):
    url = empty_database()
    connect(url)
    assert init_db() == (None, LATEST_VERSION)
    SchemaVersion.create(version=LATEST_VERSION + 1)  # as a newer release would leave it
    disconnect()
    env = {"NEWSDESK_DATABASE_URL": url}
    newer = (
        f"the database has schema version {LATEST_VERSION + 1}, newer than this code's"
        f" {LATEST_VERSION}: run the newer version of Newsdesk that upgraded it"
    )
    for command in (["db", "init"], ["keys", "list"]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 1 and newer in result.output, result.output


def test_db_init_command_upgrades_a_version_1_database(empty_database):
    # A database made by version 1's code, with an article in it, upgraded by the command.
    url = empty_database()
    connect(url)
    apply_steps(1, 1)
    old = v0001_initial
    with db.bind_ctx(old.MODELS), db.atomic():
        source = old.Source.create(slug="harbour-news", name="Harbour News")
        article = old.Article.create(
            slug="ferry",
            source=source,
            title="Harbour ferry returns",
            published_at=datetime.datetime(2026, 11, 1, 12, 0, 0),
        )
        old.ArticleBody.create(article=article, body_text="The ferry sails again.")
        SchemaVersion.create_table()
        SchemaVersion.create(version=1)
    disconnect()

    result = CliRunner().invoke(main, ["db", "init"], env={"NEWSDESK_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert f"upgraded schema from version 1 to {LATEST_VERSION}" in result.output
    client = create_app({"database_url": url, "testing": True}).test_client()
    hits = client.get("/v1/search?q=ferry").json["data"]
    assert [hit["title"] for hit in hits] == ["Harbour ferry returns"]
    # The card column, new since version 1, is filled by db init from the article schema.
    assert client.get("/v1/articles").json["data"][0]["source"]["slug"] == "harbour-news"
    disconnect()


def test_a_failed_step_leaves_the_version_before_it(empty_database, monkeypatch):
    connect(empty_database())
    step = failing_step(
        "CREATE TABLE half_done (id INTEGER PRIMARY KEY)", "UPDATE data_version SET value = 99"
    )
    monkeypatch.setattr(migrations, "STEPS", [*migrations.STEPS, step])
    monkeypatch.setattr(migrations, "LATEST_VERSION", LATEST_VERSION + 1)
    with pytest.raises(RuntimeError, match="step failed"):
        init_db()
    assert current_version() == LATEST_VERSION
    assert versions() == list(range(1, LATEST_VERSION + 1))
    assert not db.table_exists("half_done")
    assert db.execute_sql("SELECT value FROM data_version").fetchall() == [(0,)]


def test_a_failed_first_step_leaves_no_schema(empty_database, monkeypatch):
    connect(empty_database())
    step = failing_step("CREATE TABLE half_done (id INTEGER PRIMARY KEY)")
    monkeypatch.setattr(migrations, "STEPS", [step, *migrations.STEPS[1:]])
    with pytest.raises(RuntimeError, match="step failed"):
        init_db()
    assert current_version() is None
    assert not db.table_exists("schema_version") and not db.table_exists("half_done")
    monkeypatch.undo()
    assert init_db() == (None, LATEST_VERSION)


def test_upgrade_to_version_21_takes_unsafe_urls_out_of_stored_bodies(empty_database):
    """What the sanitizer of version 20 let through: ``javascript:`` made by a control
    character taken out after it checked, and any ``cite``."""
    connect(empty_database())
    stamped_at(20)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    unsafe = (
        '<p><a href="javascript:alert(1)" rel="noopener">a</a> <img src="vbscript:x">'
        '<blockquote cite="data:text/html,x">q</blockquote>'
        '<a href="https://example.org/" rel="noopener">b</a></p>'
    )
    with db.atomic():
        source = Source.create(slug="harbour-news", name="Harbour News")
        bad = Article.create(slug="bad", source=source, title="Bad", published_at=when)
        good = Article.create(slug="good", source=source, title="Good", published_at=when)
        ArticleBody.create(article=bad, body_html=unsafe, body_text="a q b")
        kept = (
            '<p>Set cite="urn:isbn:1" on quotes; he typed src="data: and left. '
            '<code>&lt;a href="tel:+1555"&gt;</code> <a href="Breaking news: live">c</a></p>'
        )
        ArticleBody.create(article=good, body_html=kept, body_text="c")
        versions = {a.id: a.version for a in Article.select()}
        data_version = db.execute_sql("SELECT value FROM data_version").fetchone()[0]
    assert init_db() == (20, LATEST_VERSION)
    assert ArticleBody.get(ArticleBody.article == bad.id).body_html == (
        '<p><a rel="noopener">a</a> <img><blockquote>q</blockquote>'
        '<a href="https://example.org/" rel="noopener">b</a></p>'
    )
    assert ArticleBody.get(ArticleBody.article == good.id).body_html == kept  # text is text
    assert Article.get_by_id(bad.id).version == versions[bad.id] + 1
    assert Article.get_by_id(good.id).version == versions[good.id]
    changed = db.execute_sql("SELECT article_id, op FROM change ORDER BY id").fetchall()
    assert changed[-1] == (bad.id, "upsert")
    assert db.execute_sql("SELECT value FROM data_version").fetchone()[0] == data_version + 1
    disconnect()


def test_upgrade_to_version_24_spells_out_every_latin_letter_in_tag_slugs(empty_database):
    """Slugs made before dropped the letters Unicode does not decompose ("Straße" was strae):
    the upgrade spells them out, merges a tag into one of the same name (by the name rule)
    that holds its new slug, keeps the slug a tag of another name holds, and the cards, webhook filters and the
    outbox follow."""
    url = empty_database()
    connect(url)
    stamped_at(23)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    with db.atomic():
        source = Source.create(slug="harbour-news", name="Harbour News")
        one, two, three = (
            Article.create(slug=slug, source=source, title=slug, published_at=when)
            for slug in ("one", "two", "three")
        )
        holding = {
            ("strae", "Straße"): (one, two),
            ("strasse", "STRASSE"): (two, three),
            ("odz", "Łódź"): (one,),
            ("r", "Ærø"): (three,),
            ("aero", "Aero"): (three,),
            ("fuball", "Fußball"): (two,),  # one tag's names: not only by case
            ("fussball", "#Fussball"): (one,),
        }
        for (slug, name), articles in holding.items():
            tag = Tag.create(slug=slug, name=name, article_count=len(articles))
            for article in articles:
                ArticleTag.create(article=article, tag=tag, published_at=when)
        cards_as_that_release_rendered_them()
        db.execute_sql(
            "INSERT INTO webhook_subscription (url, events, secret, enabled, since_version,"
            f" source_ids, tags, created_at, updated_at) VALUES ({db.param}, {db.param},"
            f" {db.param}, {db.param}, 0, '', {db.param}, {db.param}, {db.param})",
            (
                "https://hooks.example/",
                "article.published",
                "sealed",
                True,
                "strae,odz,r,strasse",
                when,
                when,
            ),
        )
        db.execute_sql(
            "INSERT INTO webhook_event (type, subject, tags, version, payload, dispatched,"
            f" created_at) VALUES ('article.updated', 'article:1', {db.param}, 1, '{{}}',"
            f" {db.param}, {db.param})",
            ("odz,strae", False, when),
        )
    versions_before = {a.id: a.version for a in Article.select()}
    changes_before = Change.select().count()

    upgraded_by_the_cli(url)
    assert {t.slug: (t.name, t.article_count) for t in Tag.select()} == {
        "strasse": ("STRASSE", 3),
        "lodz": ("Łódź", 1),
        "r": ("Ærø", 1),  # aero is another name's tag
        "aero": ("Aero", 1),
        "fussball": ("#Fussball", 2),
    }
    shown = {a.slug: [t["slug"] for t in json.loads(a.card)["tags"]] for a in Article.select()}
    assert shown == {
        "one": ["fussball", "lodz", "strasse"],
        "two": ["fussball", "strasse"],
        "three": ["aero", "r", "strasse"],
    }
    changed = [
        a.id for a in Article.select().order_by(Article.id) if a.version != versions_before[a.id]
    ]
    assert changed == [one.id, two.id]
    assert Change.select().count() == changes_before + 2
    filters = db.execute_sql("SELECT tags FROM webhook_subscription").fetchall()
    assert filters == [("strasse,lodz,r",)]
    assert db.execute_sql("SELECT tags FROM webhook_event").fetchall() == [("lodz,strasse",)]
    disconnect()


def test_upgrade_to_version_28_makes_one_line_of_names(empty_database, monkeypatch):
    """Names stored before the API refused tabs, line breaks and bidirectional controls in
    them (a feed's title made a source's) are made one line, each with a new version; the cards
    of a renamed source's articles show its new name, with a change for delta sync."""
    monkeypatch.setattr(v0028_names_of_one_line, "BATCH", 2)  # rows read in several batches
    url = empty_database()
    connect(url)
    stamped_at(27)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    with db.atomic():
        created = {"created_at": when, "updated_at": when}
        renamed = Source.create(slug="harbour-news", name="Harbour\tNews\u202e", **created)
        kept = Source.create(slug="bay-times", name="Bay  Times\u200f", **created)  # one line
        Source.create(slug="blank", name="\u202e\n", **created)
        one = Article.create(slug="one", source=renamed, title="One", published_at=when)
        Article.create(slug="two", source=kept, title="Two", published_at=when)
        Comment.create(article=one, author_name="Ann\r\nLee", body="A comment.")
        Comment.create(article=one, author_name="Bo", body="Another.")
        cards_as_that_release_rendered_them()
    versions_before = {a.slug: a.version for a in Article.select()}
    changes_before = Change.select().count()

    upgraded_by_the_cli(url)
    assert {s.slug: (s.name, s.version, s.updated_at > when) for s in Source.select()} == {
        "harbour-news": ("Harbour News", 2, True),
        "bay-times": ("Bay  Times\u200f", 1, False),
        "blank": ("blank", 2, True),
    }
    comments = Comment.select().order_by(Comment.id)
    assert [(c.author_name, c.version) for c in comments] == [("Ann Lee", 2), ("Bo", 1)]
    assert json.loads(Article.get(slug="one").card)["source"]["name"] == "Harbour News"
    changed = [a.slug for a in Article.select() if a.version != versions_before[a.slug]]
    assert changed == ["one"]
    assert Change.select().count() == changes_before + 1
    disconnect()


def test_upgrade_to_version_33_stores_language_tags_in_one_case(empty_database, monkeypatch):
    """Tags stored as sent (`en-gb`, `PT-br`) are given the case the API keeps now (`en-GB`,
    `pt-BR`), of articles, sources and stories; the cards show it, each changed with a new
    version and a change for delta sync."""
    monkeypatch.setattr(v0033_language_tags_in_one_case, "BATCH", 2)  # several batches
    url = empty_database()
    connect(url)
    stamped_at(32)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    with db.atomic():
        created = {"created_at": when, "updated_at": when}
        british = Source.create(
            slug="london-daily", name="London Daily", language="EN-gb", **created
        )
        french = Source.create(slug="le-jour", name="Le Jour", language="fr", **created)
        first = Article.create(
            slug="one", source=british, title="One", language="en-gb", published_at=when
        )
        Article.create(slug="two", source=french, title="Two", language="fr", published_at=when)
        Article.create(
            slug="three", source=french, title="Three", language="PT-br", published_at=when
        )
        story = Story.create(
            headline=first,
            article_count=3,
            languages="PT-br,en-gb,fr,pt-BR",
            first_published_at=when,
            last_published_at=when,
            **created,
        )
        cards_as_that_release_rendered_them()
    versions_before = {a.slug: a.version for a in Article.select()}
    changes_before = Change.select().count()

    upgraded_by_the_cli(url)
    assert {s.slug: (s.language, s.version, s.updated_at > when) for s in Source.select()} == {
        "london-daily": ("en-GB", 2, True),
        "le-jour": ("fr", 1, False),
    }
    languages = {a.slug: (a.language, json.loads(a.card)["language"]) for a in Article.select()}
    assert languages == {"one": ("en-GB",) * 2, "two": ("fr",) * 2, "three": ("pt-BR",) * 2}
    changed = sorted(a.slug for a in Article.select() if a.version != versions_before[a.slug])
    assert changed == ["one", "three"]
    assert Change.select().count() == changes_before + 2
    assert Story.get_by_id(story.id).languages == "en-GB,fr,pt-BR"
    disconnect()


def test_upgrade_to_version_31_indexes_text_again_in_nfkc(empty_database, monkeypatch):
    """Text indexed as it was stored, with a ligature, full-width letters or half-width
    katakana (SQLite's tokenizer kept them all, PostgreSQL's unaccent the katakana), is indexed
    again in NFKC, as queries are now read; on PostgreSQL a document keeps its week; the stored
    text and the versions a client reads do not change."""
    monkeypatch.setattr(v0031_search_text_in_nfkc, "BATCH", 2)  # rows read in several batches
    url = empty_database()
    postgres = url.startswith("postgresql")
    connect(url)
    stamped_at(30)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    week = period_token(when)
    texts = {
        "plain": ("Rivers fell overnight", "The water went down."),
        "ligature": ("Harbour ﬂood defences hold", "Water rose."),
        "katakana": ("Ratings fall", "ﾃﾚﾋﾞ viewers moved online."),
        "full-width": ("Ｔｏｋｙｏ markets open", "Shares rose."),
    }
    with db.atomic():
        source = Source.create(slug="harbour-news", name="Harbour News")
        for slug, (title, body) in texts.items():
            article = Article.create(
                slug=slug, source=source, title=title, excerpt=body, published_at=when
            )
            ArticleBody.create(article=article, body_text=body, body_html=f"<p>{body}</p>")
            if postgres:  # as version 30 indexed it: the text as stored
                db.execute_sql(
                    "INSERT INTO article_document (article_id, document) VALUES (%s,"
                    " setweight(to_tsvector('newsdesk', %s), 'A')"
                    " || setweight(to_tsvector('newsdesk', %s), 'B')"
                    " || setweight(to_tsvector('newsdesk', %s), 'C')"
                    " || setweight(to_tsvector('simple', %s), 'D'))",
                    (article.id, title, body, body, week),
                )
            else:
                db.execute_sql(
                    "INSERT INTO article_search (rowid, title, excerpt, body, period)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (article.id, title, body, body, week),
                )
    before = {a.slug: (a.title, a.excerpt, a.version) for a in Article.select()}
    slug_of = {a.id: a.slug for a in Article.select()}

    def found(word, column="title, excerpt, body"):
        if postgres:
            config = "simple" if column == "period" else "newsdesk"
            sql = "SELECT article_id FROM article_document WHERE document @@ plainto_tsquery("
            rows = db.execute_sql(f"{sql}'{config}', %s) ORDER BY 1", (word,))
        else:
            sql = "SELECT rowid FROM article_search WHERE article_search MATCH ? ORDER BY 1"
            rows = db.execute_sql(sql, (f'{{{column.replace(",", "")}}} : "{word}"',))
        return [slug_of[article_id] for (article_id,) in rows]

    assert found("テレビ") == []
    assert init_db() == (30, LATEST_VERSION)
    assert found("flood") == ["ligature"]
    assert found("テレビ") == ["katakana"]
    assert found("tokyo") == ["full-width"]
    assert found("rivers") == ["plain"]
    assert found(week, "period") == list(texts)
    assert {a.slug: (a.title, a.excerpt, a.version) for a in Article.select()} == before
    disconnect()


def test_upgrade_to_version_31_indexes_a_long_body_by_as_much_as_fits(empty_database):
    """On PostgreSQL, a body of more distinct words than a search document holds was indexed
    by its first half: in NFKC, it is indexed by as much of its start as fits, as a write
    indexes it, and the upgrade goes on."""
    url = empty_database()
    if not url.startswith("postgresql"):
        pytest.skip("an FTS5 index has no such limit")
    connect(url)
    stamped_at(30)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    words = [f"w{number:x}q" for number in range(140_000)]  # more than a document holds
    body = "ﾃﾚﾋﾞ " + " ".join(words)  # half-width katakana: unaccent left them
    with db.atomic():
        source = Source.create(slug="harbour-news", name="Harbour News")
        article = Article.create(slug="long", source=source, title="Long", published_at=when)
        ArticleBody.create(article=article, body_text=body, body_html=f"<p>{body}</p>")
        db.execute_sql(  # as version 30 indexed it: the first half of the body
            "INSERT INTO article_document (article_id, document) VALUES (%s,"
            " setweight(to_tsvector('newsdesk', 'Long'), 'A')"
            " || setweight(to_tsvector('newsdesk', %s), 'C'))",
            (article.id, body[: len(body) // 2]),
        )

    def found(word):
        sql = "SELECT count(*) FROM article_document WHERE document @@ plainto_tsquery(%s, %s)"
        return db.execute_sql(sql, ("newsdesk", word)).fetchone()[0]

    assert (found("テレビ"), found(words[1000])) == (0, 1)
    assert init_db() == (30, LATEST_VERSION)
    assert (found("テレビ"), found(words[1000]), found(words[-1])) == (1, 1, 0)
    disconnect()


def test_upgrade_to_version_32_keeps_queued_deliveries_as_single_writes(empty_database):
    """Deliveries queued before are claimed as single writes' (before any import's), and so
    are those the code of version 31, still running while a deployment upgrades, queues."""
    connect(empty_database())
    stamped_at(31)
    when = datetime.datetime(2026, 11, 1, 12, 0, 0)
    mark = db.param

    def queue_delivery(number):  # as version 31 wrote an event and its delivery
        db.execute_sql(
            "INSERT INTO webhook_event (type, subject, tags, version, payload, dispatched,"
            f" created_at) VALUES ('article.updated', {mark}, '', 1, '{{}}', {mark}, {mark})",
            (f"article:{number}", True, when),
        )
        db.execute_sql(
            "INSERT INTO webhook_message (webhook_id, event_id, message_id, subject, status,"
            " attempts, failures, next_attempt_at, created_at, updated_at) SELECT 1, MAX(id),"
            f" {mark}, {mark}, 'pending', 0, 0, {mark}, {mark}, {mark} FROM webhook_event",
            (f"msg_{number}", f"article:{number}", when, when, when),
        )

    with db.atomic():
        db.execute_sql(
            "INSERT INTO webhook_subscription (url, events, secret, enabled, since_version,"
            f" source_ids, tags, created_at, updated_at) VALUES ('https://hooks.example/',"
            f" 'article.updated', 'sealed', {mark}, 0, '', '', {mark}, {mark})",
            (True, when, when),
        )
        queue_delivery(1)
    assert init_db() == (31, LATEST_VERSION)
    with db.atomic():
        queue_delivery(2)
        WebhookDelivery.update(bulk=True).where(WebhookDelivery.message_id == "msg_1").execute()
    assert [e.bulk for e in WebhookEvent.select().order_by(WebhookEvent.id)] == [False, False]
    held = webhooks.claim(lease_seconds=30)
    assert held.message_id == "msg_2"  # a single write's, before the one marked bulk
    disconnect()


def test_upgrade_to_version_25_marks_superseded_every_change_but_each_articles_latest(
    empty_database,
):
    url = empty_database()
    connect(url)
    stamped_at(24)
    logged = [(7, "upsert"), (8, "upsert"), (7, "upsert"), (9, "upsert"), (7, "delete")]
    for article_id, op in logged:
        db.execute_sql(
            f"INSERT INTO change (article_id, op, created_at) VALUES ({db.param}, {db.param},"
            f" {db.param})",
            (article_id, op, datetime.datetime(2026, 11, 1)),
        )

    upgraded_by_the_cli(url)
    rows = Change.select().order_by(Change.id)
    assert [(c.article_id, c.op, c.superseded) for c in rows] == [
        (7, "upsert", True),
        (8, "upsert", False),
        (7, "upsert", True),
        (9, "upsert", False),
        (7, "delete", False),
    ]
    # A change logged by a server of the release before, without the column.
    db.execute_sql(
        f"INSERT INTO change (article_id, op, created_at) VALUES (10, 'upsert', {db.param})",
        (datetime.datetime(2026, 11, 2),),
    )
    assert Change.select().where(Change.article_id == 10).get().superseded is False
    disconnect()
