"""Time schema step 25 (``change.superseded``) as an earlier commit wrote it and as it is now,
on a change log of N changes of 100,000 articles.

    .venv/bin/python bench/schema_step_25.py sqlite [N] [--before COMMIT]
    .venv/bin/python bench/schema_step_25.py postgresql://USER@HOST:PORT/postgres [N] [--before COMMIT]

A database at version 24 is built once (a SQLite file in a temporary directory, or a database on
the PostgreSQL server named, made and dropped here), copied, and each copy upgraded by one of the
two steps. Prints the seconds each took and how many changes each marked superseded.
"""

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg2
from playhouse.migrate import SchemaMigrator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import bind_database, close_all, db, migrations  # noqa: E402

STEP = "models/migrations/v0025_latest_changes.py"


def step_at(commit, directory):
    """The module of step 25 as ``commit`` wrote it."""
    path = Path(directory) / "before.py"
    path.write_bytes(subprocess.check_output(["git", "show", f"{commit}:{STEP}"], cwd=ROOT))
    spec = importlib.util.spec_from_file_location("step_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(url, count):
    """Steps 1 to 24, then ``count`` changes of random articles."""
    bind_database(url)
    db.connect()
    migrator = SchemaMigrator.from_database(db)
    with db.atomic():
        for step in migrations.STEPS[:24]:
            step.upgrade(migrator)
        if url.startswith("postgresql"):
            numbers = f"SELECT i FROM generate_series(1, {count}) AS i"
            article = "(random() * 99999)::int + 1"
        else:
            numbers = (
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s"
                f" WHERE i < {count}) SELECT i FROM s"
            )
            article = "abs(random()) % 100000 + 1"
        db.execute_sql(
            f"INSERT INTO change (article_id, op, created_at) SELECT {article}, 'upsert',"
            f" '2026-11-01' FROM ({numbers}) AS numbers"
        )
    close_all()


def upgrade(url, step):
    """``(seconds, changes marked superseded)`` of ``step`` on ``url``."""
    bind_database(url)
    db.connect()
    migrator = SchemaMigrator.from_database(db)
    started = time.perf_counter()
    with db.atomic():
        step.upgrade(migrator)
    seconds = time.perf_counter() - started
    marked = db.execute_sql("SELECT COUNT(*) FROM change WHERE superseded").fetchone()[0]
    close_all()
    return seconds, marked


def admin(url, *statements):
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="sqlite, or a PostgreSQL server's URL")
    parser.add_argument("count", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--before", default="d37c95e", help="the commit of the earlier step")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        steps = {"before": step_at(args.before, directory), "now": migrations.STEPS[24]}
        if args.database == "sqlite":
            base = Path(directory) / "base.db"
            build(f"sqlite:///{base}", args.count)
            urls = {}
            for name in steps:
                shutil.copy(base, Path(directory) / f"{name}.db")
                urls[name] = f"sqlite:///{directory}/{name}.db"
            names = []
        else:
            server = urlparse(args.database)
            names = ["step25_base", *(f"step25_{name}" for name in steps)]
            admin(args.database, *(f"DROP DATABASE IF EXISTS {n}" for n in names))
            admin(args.database, "CREATE DATABASE step25_base")
            build(urlunparse(server._replace(path="/step25_base")), args.count)
            admin(
                args.database, *(f"CREATE DATABASE step25_{n} TEMPLATE step25_base" for n in steps)
            )
            urls = {n: urlunparse(server._replace(path=f"/step25_{n}")) for n in steps}
        try:
            for name, step in steps.items():
                seconds, marked = upgrade(urls[name], step)
                print(
                    f"{name:>6}: {seconds:6.1f} s, {marked:,} of {args.count:,} marked superseded"
                )
        finally:
            if names:
                admin(args.database, *(f"DROP DATABASE IF EXISTS {n}" for n in names))


if __name__ == "__main__":
    main()
