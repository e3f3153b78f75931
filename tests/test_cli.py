import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest
import yaml
from click.testing import CliRunner

from api import tasks
from api.cli import main
from models import (
    LATEST_VERSION,
    Article,
    ArticleEmbedding,
    ArticleTag,
    Comment,
    EmbeddingQueue,
    Relation,
    Source,
    Tag,
    db,
)
from models.base import is_postgres


def run(database_url, *args):
    result = CliRunner().invoke(main, list(args), env={"NEWSDESK_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    return result.output


def test_db_init_is_safe_to_run_twice(app, database_url):
    # The app fixture already created the schema; running again changes nothing.
    assert f"schema is current (version {LATEST_VERSION})" in run(database_url, "db", "init")
    assert "schema is current" in run(database_url, "db", "init")


def test_db_init_creates_a_fresh_database(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh/new.db"
    assert f"created schema version {LATEST_VERSION}" in run(url, "db", "init")
    assert (tmp_path / "fresh" / "new.db").exists()


def query(fn):
    """Run ``fn`` on a connection of its own (the CLI rebinds and closes the database)."""
    with db.connection_context():
        return fn()


def counts():
    return query(
        lambda: [m.select().count() for m in (Source, Tag, Article, ArticleTag, Relation, Comment)]
    )


def last_ids():
    """The last id each table with ids handed out."""
    tables = ("source", "tag", "article", "relation", "comment")

    def read():
        if is_postgres():
            sql = " UNION ALL ".join(f"SELECT last_value FROM {table}_id_seq" for table in tables)
        else:
            names = ", ".join(f"'{table}'" for table in tables)
            sql = f"SELECT name, seq FROM sqlite_sequence WHERE name IN ({names}) ORDER BY name"
        return db.execute_sql(sql).fetchall()

    return query(read)


def test_demo_is_deterministic_and_realistic(app, database_url):
    assert "loaded 300 demo articles" in run(
        database_url, "demo", "--articles", "300", "--seed", "7"
    )
    first = counts()
    titles = query(lambda: list(Article.select(Article.title).order_by(Article.id).tuples()))
    ids_used = last_ids()
    assert "loaded 0 demo articles" in run(database_url, "demo", "--articles", "300", "--seed", "7")
    assert counts() == first
    assert last_ids() == ids_used  # no insert ignored, which would use an id up
    assert "database has articles" in run(database_url, "demo", "--if-empty")
    sources, _, articles, _, relations, comments = first
    assert sources == 8 and articles == 300 and relations > 20 and comments > 5
    languages = query(lambda: {a.language for a in Article.select(Article.language).distinct()})
    assert {"en", "de", "fr", "es", "ja"} <= languages
    # Skewed popularity: the top tag is far more common than the median one.
    popularity = sorted(query(lambda: [t.article_count for t in Tag.select()]), reverse=True)
    assert popularity[0] > 4 * popularity[len(popularity) // 2]
    # Bodies have several paragraphs.
    body = query(lambda: Article.select().first().bodies.get().body_text)
    assert body.count("\n\n") >= 2
    assert len(titles) == 300


def test_demo_articles_are_embedded_and_gathered_into_stories_by_the_worker(app, database_url):
    run(database_url, "demo", "--articles", "120", "--no-related")
    ids = query(lambda: {i for (i,) in Article.select(Article.id).tuples()})
    assert (
        query(lambda: {i for (i,) in EmbeddingQueue.select(EmbeddingQueue.article).tuples()}) == ids
    )
    with app.app_context():
        tasks.refresh_articles.call_local()
    assert (
        query(lambda: {i for (i,) in ArticleEmbedding.select(ArticleEmbedding.article).tuples()})
        == ids
    )
    assert query(lambda: EmbeddingQueue.select().count()) == 0
    assert query(lambda: Article.select().where(Article.story.is_null(False)).count()) > 20


def test_demo_same_seed_same_rows(tmp_path):
    rows = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path}/{name}.db"
        run(url, "db", "init")
        run(url, "demo", "--articles", "120", "--seed", "3")
        rows.append(
            query(
                lambda: list(
                    Article.select(Article.slug, Article.title, Article.published_at).tuples()
                )
            )
        )
    assert rows[0] == rows[1] and len(rows[0]) == 120


def test_demo_if_empty_loads_an_empty_database(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    run(url, "db", "init")
    assert "loaded 50 demo articles" in run(url, "demo", "--if-empty", "--articles", "50")
    assert "no demo data loaded" in run(url, "demo", "--if-empty", "--articles", "50")


def test_worker_needs_a_thread(tmp_path):
    result = CliRunner().invoke(main, ["worker", "--workers", "0"])
    assert result.exit_code == 2 and "0 is not in the range 1<=x<=64" in result.output


def test_openapi_prints_yaml(tmp_path):
    output = run(f"sqlite:///{tmp_path}/x.db", "openapi")
    spec = yaml.safe_load(output)
    assert spec["info"]["title"] == "Newsdesk"
    assert spec["openapi"].startswith("3.")


def test_bad_configuration_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(
        main,
        ["db", "init"],
        env={"NEWSDESK_DATABASE_URL": "mysql://x", "NEWSDESK_PUBLIC_READ": "yes"},
    )
    assert result.exit_code == 1
    assert "NEWSDESK_DATABASE_URL must be sqlite:///" in result.output
    assert "not a 'mysql' URL" in result.output and "Traceback" not in result.output


def test_a_bad_setting_is_one_line_even_as_the_package_is_imported(tmp_path):
    """The task queue reads the configuration when ``api`` is imported, before click runs."""
    env = {**os.environ, "NEWSDESK_PUBLIC_READ": "maybe", "NEWSDESK_DATABASE_URL": ""}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("newsdesk")), "keys", "list"],
        env={**env, "NEWSDESK_INSTANCE_PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: NEWSDESK_PUBLIC_READ must be true or false, not 'maybe'"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "env, message",
    [
        ({"NEWSDESK_REDIS_URL": "bogus"}, "NEWSDESK_REDIS_URL must be a redis://host:6379/0 URL"),
        ({"NEWSDESK_DATABASE_URL": "sqlite:///{tmp}/garbage.db"}, "could not be read"),
        ({"NEWSDESK_DATABASE_URL": "sqlite:///{tmp}/file/sub/x.db"}, "Not a directory"),
        # It said the database did not answer ("must be initialized before opening").
        (
            {"NEWSDESK_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432"},
            "NEWSDESK_DATABASE_URL names no database: end it with /database",
        ),
        ({"NEWSDESK_DATABASE_URL": "postgresql://127.0.0.1/"}, "names no database"),
    ],
)
def test_what_a_command_cannot_use_is_one_line(tmp_path, env, message):
    (tmp_path / "garbage.db").write_text("not a database")
    (tmp_path / "file").write_text("a file where a folder is wanted")
    env = {name: value.format(tmp=tmp_path) for name, value in env.items()}
    result = CliRunner().invoke(main, ["db", "init"], env=env)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_related_rebuild_in_parallel(app, database_url):
    assert "loaded 200 demo articles" in run(database_url, "demo", "--articles", "200")
    output = run(database_url, "related", "rebuild", "--processes", "2")
    assert "rebuilt computed relations of 200 articles" in output
    with db.connection_context():
        assert Relation.select().where(Relation.origin == "computed").count() > 100


@pytest.mark.parametrize(
    "args, message",
    [
        (["serve", "--bind", "127.0.0.1:99999"], "must be HOST:PORT (a port 0-65535) or unix:PATH"),
        (["demo", "--articles", "-5"], "-5 is not in the range x>=0"),
        (["related", "rebuild", "--processes", "0"], "0 is not in the range 1<=x<=64"),
    ],
)
def test_arguments_out_of_range_are_refused_by_name(tmp_path, args, message):
    env = {"NEWSDESK_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "api.cli", "keys", "list"],
        ["-m", "gunicorn", "--config", "gunicorn.conf.py", "--check-config", "api.wsgi:app"],
    ],
    ids=["python-m", "gunicorn"],
)
def test_a_bad_redis_url_is_one_line_wherever_the_app_starts(tmp_path, command):
    """The queue is made as ``api`` is imported: a port that is no number was a traceback."""
    env = {
        **os.environ,
        "NEWSDESK_REDIS_URL": "redis://127.0.0.1:abc/0",
        "NEWSDESK_DATABASE_URL": "",
        "NEWSDESK_INSTANCE_PATH": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 1, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "NEWSDESK_REDIS_URL must be a redis://host:6379/0 URL, not 'redis://127.0.0.1:abc/0'"
        )
    )
    assert "Traceback" not in done.stderr


def test_a_role_that_may_not_use_the_database_is_one_line(postgres_url):
    # A database (or a restore) owned by another role than the app's: 69 lines of traceback.
    role = f"newsdesk_cli_{os.getpid()}"
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN")
    try:
        parts = urlparse(postgres_url)
        url = urlunparse(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
        env = {"NEWSDESK_DATABASE_URL": url, "NEWSDESK_SECRET_KEY": "s" * 40}
        result = CliRunner().invoke(main, ["db", "init"], env=env)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert (
            result.output.strip()
            .splitlines()[-1]
            .startswith("Error: the database refused: permission denied for")
        )
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP ROLE {role}")
        admin.close()
