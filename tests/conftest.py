"""Fixtures: an app on a fresh database per test, on SQLite and (when configured) PostgreSQL.

Every test that asks for ``app`` or ``client`` runs once per backend: ``[sqlite]`` always,
``[postgres]`` when ``NEWSDESK_TEST_POSTGRES_URL`` names a server the suite may create a database on.
"""

import collections
import dataclasses
import datetime
import logging
import os
import shutil
from urllib.parse import urlparse, urlunparse

import peewee
import psycopg2
import pytest

# Background tasks run where they are called (Huey's immediate mode), set before api is imported;
# the secret is a fixed one (PostgreSQL requires one, and no test writes the project's instance).
os.environ["NEWSDESK_TASKS_IMMEDIATE"] = "true"
os.environ.setdefault("NEWSDESK_SECRET_KEY", "test-secret-not-for-production")
# The deterministic hashed embedder; the tests that need the production model ask for it.
os.environ["NEWSDESK_EMBEDDER"] = "hashed"

from api import configure_process, create_app
from models import (
    MODELS,
    Article,
    ArticleBody,
    ArticleTag,
    Comment,
    DataVersion,
    Relation,
    Source,
    Tag,
    cards,
    close_all,
    db,
    embeddings,
    init_db,
)
from models.search import index_articles
from models.text import make_excerpt, reading_time_minutes, text_to_html, word_count

POSTGRES_URL = os.environ.get("NEWSDESK_TEST_POSTGRES_URL")
#: A PostgreSQL server with the pgvector extension (CI starts one; see .ci/run).
PGVECTOR_URL = os.environ.get("NEWSDESK_TEST_PGVECTOR_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
#: The backends of the tests of search by meaning: PostgreSQL with pgvector too.
VECTOR_BACKENDS = [*BACKENDS, pytest.param("pgvector", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database of this test session's own, with the schema, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("NEWSDESK_TEST_POSTGRES_URL is not set")
    yield from _session_database(POSTGRES_URL)


@pytest.fixture(scope="session")
def pgvector_url():
    """Like ``postgres_url``, on the server with pgvector."""
    if not PGVECTOR_URL:
        pytest.skip("NEWSDESK_TEST_PGVECTOR_URL is not set")
    yield from _session_database(PGVECTOR_URL)


def _session_database(server_url):
    name = f"newsdesk_test_{os.getpid()}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    url = urlunparse(urlparse(server_url)._replace(path="/" + name))
    yield url
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A SQLite database file migrated to the current schema, made once per test session:
    each test starts from a copy of it rather than running every migration step again."""
    path = tmp_path_factory.mktemp("template") / "newsdesk.db"
    create_app({"database_url": f"sqlite:///{path}", "testing": True})
    with db.connection_context():
        init_db()
    close_all()
    return path


def backend_url(request, tmp_path):
    """The database of the backend ``request.param`` names (one of ``VECTOR_BACKENDS``): on
    SQLite, a copy of the migrated template."""
    if request.param == "sqlite":
        path = tmp_path / "newsdesk.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A URL to an empty database with the current schema."""
    return backend_url(request, tmp_path)


def with_vector_index(app):
    """``app`` with its database's pgvector table made as ``db init`` makes it (where pgvector is
    installed): the ``app`` of the tests of search by meaning."""
    with app.app_context(), db.connection_context():
        embeddings.ensure_vector_index()
    return app


@pytest.fixture
def app_config():
    """Configuration overrides for the test's app; override the fixture to change them."""
    return {}


#: Apps made by earlier tests of this process, by backend and configuration, each with the
#: configuration and extensions it was made with. Making an app costs about 150 ms
#: (flask-smorest documents every operation as it registers it), more than most tests take; a
#: test reuses an app of the same configuration, pointed at its own fresh database, with what
#: the earlier test left in it (answers kept, rate-limit counts, a full disk seen) dropped.
_APPS = {}


def make_app(database_url, app_config):
    """An app of ``app_config`` on ``database_url``, as :func:`api.create_app` makes it."""
    backend = urlparse(database_url).scheme
    key = (backend, repr(sorted(app_config.items())))
    if key not in _APPS:
        app = create_app({"database_url": database_url, "testing": True, **app_config})
        _APPS[key] = (app, app.config["NEWSDESK"], dict(app.extensions["newsdesk"]))
        return app
    app, config, made = _APPS[key]
    config = dataclasses.replace(config, database_url=database_url)
    # What the earlier test changed in the app's configuration and state goes too.
    app.config["NEWSDESK"] = config
    app.extensions["newsdesk"] = dict(made)  # (a full disk seen, say)
    made["caching"].forget()
    made["limiter"].forget()
    configure_process(config)
    return app


@pytest.fixture
def app(database_url, app_config):
    app = make_app(database_url, app_config)
    with app.app_context():
        db.connect()
        init_db()
        if database_url.startswith("postgresql"):
            empty_postgres_tables()
            DataVersion.ensure()
        db.close()
    yield app
    close_all()


#: The tables of the models, each before the tables it refers to.
TABLES_REFERRING_FIRST = [model._meta.table_name for model in reversed(peewee.sort_models(MODELS))]


def empty_postgres_tables():
    """Delete every row of the session's PostgreSQL database and restart its id sequences, as
    ``TRUNCATE ... RESTART IDENTITY`` would: a DELETE of the few rows a test leaves takes
    about 5 ms, a TRUNCATE of the 24 tables about 240 ms (it makes new files for each table
    and index). Tables referring to others go first (rows of ``article_vector``, made where
    pgvector is installed, go with their articles: ON DELETE CASCADE)."""
    with db.atomic():
        for table in TABLES_REFERRING_FIRST:
            db.execute_sql(f'DELETE FROM "{table}"')
        db.execute_sql(
            "SELECT setval(sequence.oid, 1, false) FROM pg_class sequence"
            " JOIN pg_depend link ON link.objid = sequence.oid AND link.deptype IN ('a', 'i')"
            " JOIN pg_class owner ON owner.oid = link.refobjid"
            " WHERE sequence.relkind = 'S' AND owner.relname = ANY(%s)",
            (TABLES_REFERRING_FIRST,),
        )


@pytest.fixture
def locale_ordered(database_url, dbconn):
    """``locale_ordered((table, column, varchar length), ...)``: on PostgreSQL, those columns
    compared as a locale compares them (punctuation and case weighed last: ICU's
    ``und-u-ka-shifted``), as the default collation of most clusters does, not the test
    cluster's; put back after the test. Skips where the server has no ICU collations. SQLite
    compares bytes: nothing changes there."""
    changed = []

    def collate(*columns):
        if not database_url.startswith("postgresql"):
            return
        try:
            with db.atomic():
                db.execute_sql(
                    "CREATE COLLATION IF NOT EXISTS newsdesk_locale"
                    " (provider = icu, locale = 'und-u-ka-shifted')"
                )
        except peewee.ProgrammingError as error:
            pytest.skip(f"this PostgreSQL has no ICU collations: {error}")
        for table, column, length in columns:
            db.execute_sql(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar({length})"
                " COLLATE newsdesk_locale"
            )
            changed.append((table, column, length))

    yield collate
    for table, column, length in changed:
        db.execute_sql(
            f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar({length}) COLLATE "default"'
        )


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def dbconn(app):
    """The test's database, connected, for setting up rows directly.

    No app context is held open: requests made by the test client must each get their own.
    """
    db.connect(reuse_if_open=True)
    yield db
    db.close()


class QueryCounter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.queries = []

    def emit(self, record):
        self.queries.append(record.getMessage())


@pytest.fixture
def count_queries():
    """Collects the SQL run while the test goes on: ``counter.queries``, each statement peewee
    runs and each that ``models.base.execute_many`` runs for a batch of rows."""
    counter = QueryCounter()
    loggers = [logging.getLogger("peewee"), logging.getLogger("models.sql")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(counter)
        logger.setLevel(logging.DEBUG)
    yield counter
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(counter)
        logger.setLevel(level)


BASE_TIME = datetime.datetime(2026, 11, 1, 12, 0, 0)


@pytest.fixture
def make_source(dbconn):
    counter = iter(range(1, 10_000))

    def make(**overrides):
        number = next(counter)
        values = {"slug": f"source-{number}", "name": f"Source {number}", "language": "en"}
        values.update(overrides)
        return Source.create(**values)

    return make


@pytest.fixture
def make_tag(dbconn):
    def make(slug, name=None):
        tag, _ = Tag.get_or_create(slug=slug, defaults={"name": name or slug.title()})
        return tag

    return make


@pytest.fixture
def make_article(dbconn, make_source, make_tag):
    """Create an article (with body and tags) directly in the database."""
    counter = iter(range(1, 100_000))
    default_source = []

    def make(tags=(), body="First paragraph.\n\nSecond paragraph.", **overrides):
        number = next(counter)
        if "source" not in overrides:
            if not default_source:
                default_source.append(make_source(slug="default-source", name="Default"))
            overrides["source"] = default_source[0]
        published_at = overrides.pop("published_at", BASE_TIME + datetime.timedelta(hours=number))
        words = word_count(body)
        values = {
            "slug": f"article-{number}",
            "title": f"Article {number}",
            "excerpt": make_excerpt(body),
            "published_at": published_at,
            "created_at": published_at,
            "updated_at": published_at,
            "word_count": words,
            "reading_time_minutes": reading_time_minutes(words),
        }
        values.update(overrides)
        with db.atomic():
            article = Article.create(**values)
            ArticleBody.create(article=article, body_text=body, body_html=text_to_html(body))
            for slug in tags:
                ArticleTag.create(
                    article=article, tag=make_tag(slug), published_at=article.published_at
                )
            Source.refresh_counts([article.source_id])
            Tag.refresh_counts()
            index_articles([article.id])
            (stored,) = cards.attach_tags(
                [Article.select(Article, Source).join(Source).where(Article.id == article.id).get()]
            )
            Article.update(card=cards.render(stored)).where(Article.id == article.id).execute()
        return Article.get_by_id(article.id)

    return make


@pytest.fixture
def make_relation(dbconn):
    def make(article, related, **overrides):
        return Relation.create(article=article, related=related, **overrides)

    return make


@pytest.fixture
def make_comment(dbconn):
    counter = iter(range(1, 100_000))

    def make(article, **overrides):
        number = next(counter)
        values = {
            "author_name": f"Reader {number}",
            "body": f"Comment {number}",
            "created_at": BASE_TIME + datetime.timedelta(minutes=number),
        }
        values.update(overrides)
        comment = Comment.create(article=article, **values)
        Comment.refresh_counts([article.id])
        return comment

    return make


# --- reporting which backend each test ran on -------------------------------------------

_passed = {"sqlite": 0, "postgres": 0, "pgvector": 0, "none": 0}
_skipped = {"sqlite": 0, "postgres": 0, "pgvector": 0, "none": 0}
#: How many tests each skip reason skipped.
_skip_reasons = collections.Counter()
#: Fixtures parametrized by backend, whose parameter names the backend a test ran on.
BACKEND_PARAMS = ("database_url", "fuzz_app", "empty_database")


def pytest_collection_modifyitems(items):
    """Each test carries its backend in its reports (``user_properties`` reach pytest-xdist's
    controller with them)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec else {}
        backend = next((params[name] for name in BACKEND_PARAMS if name in params), "none")
        item.user_properties.append(("backend", backend))


def pytest_runtest_logreport(report):
    backend = dict(report.user_properties).get("backend", "none")
    if report.when == "call" and report.passed:
        _passed[backend] += 1
    elif report.skipped and not hasattr(report, "wasxfail"):
        _skipped[backend] += 1
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skip_reasons[reason.removeprefix("Skipped: ")] += 1


def _is_xdist_worker(config):
    return hasattr(config, "workerinput")


def pytest_unconfigure(config):
    """The run's last lines, after pytest's own counts: what passed on each database, and why
    tests were skipped (one line per reason, not one per test)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    ran = sum(_passed.values()) + sum(_skipped.values())
    if reporter is None or not ran or _is_xdist_worker(config) or config.option.collectonly:
        return
    reporter.write_line(
        f"newsdesk backends: {_passed['sqlite']} passed on sqlite, "
        f"{_passed['postgres']} passed on postgres, {_passed['pgvector']} on postgres with "
        f"pgvector, {_passed['none']} without a database"
    )
    if _skip_reasons:
        reporter.write_line(
            f"newsdesk skipped: {_skipped['sqlite']} on sqlite, {_skipped['postgres']} on"
            f" postgres, {_skipped['pgvector']} on postgres with pgvector,"
            f" {_skipped['none']} without a database, because"
        )
    for reason, count in _skip_reasons.most_common():
        reporter.write_line(f"  {count:>4} {reason}")


def pytest_sessionfinish(session, exitstatus):
    # With PostgreSQL configured, a run in which no test passed on it proves nothing: fail it.
    if _is_xdist_worker(session.config):
        return
    ran_tests = session.testscollected and not session.config.option.collectonly
    if POSTGRES_URL and ran_tests and _passed["postgres"] == 0 and exitstatus == 0:
        session.exitstatus = 1


@pytest.fixture
def make_key(app, dbconn):
    """``make_key("write,comment")`` -> request headers carrying a new key with those scopes."""
    from models import ApiKey

    def make(scopes="read", name="test key", header="bearer"):
        _, token = ApiKey.issue(name, scopes.split(","), app.config["NEWSDESK"].key_for("api-keys"))
        if header == "bearer":
            return {"Authorization": f"Bearer {token}"}
        return {"X-API-Key": token}

    return make


@pytest.fixture
def writer(make_key):
    return make_key("write")


@pytest.fixture
def source(make_source):
    return make_source(slug="daily", name="The Daily", language="en")
