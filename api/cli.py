"""The ``newsdesk`` command."""

import contextlib
import os
import shutil
import sys
from pathlib import Path

import click

from models import db, init_db, is_empty
from models.demo import load_demo

from . import create_app, openapi_yaml
from .config import Config, ConfigError


@contextlib.contextmanager
def connected(config=None):
    """An app bound to the configured database, connected for the block."""
    try:
        app = create_app(config)
    except (ConfigError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    with app.app_context():
        db.connect(reuse_if_open=True)
        try:
            yield app
        finally:
            db.close()


@click.group()
def main():
    """Newsdesk: a news content API."""


@main.group("db")
def db_group():
    """The database schema."""


@db_group.command("init")
def db_init():
    """Create or upgrade the schema (safe to run again)."""
    with connected():
        before, after = init_db()
    if before is None:
        click.echo(f"created schema version {after}")
    elif before == after:
        click.echo(f"schema is current (version {after})")
    else:
        click.echo(f"upgraded schema from version {before} to {after}")


@main.command()
@click.option("--articles", default=1000, show_default=True, help="How many articles.")
@click.option("--seed", default=42, show_default=True, help="Same seed, same data.")
@click.option("--if-empty", is_flag=True, help="Only when the database has no articles.")
def demo(articles, seed, if_empty):
    """Load synthetic demo sources, tags, articles, relations and comments."""
    with connected():
        init_db()
        if if_empty and not is_empty():
            click.echo("database has articles; no demo data loaded")
            return
        created = load_demo(articles=articles, seed=seed)
    click.echo(f"loaded {created} demo articles")


@main.command()
def openapi():
    """Print the OpenAPI document as YAML (what openapi.yaml holds)."""
    click.echo(openapi_yaml(create_app()), nl=False)


@main.command()
@click.option("--bind", help="HOST:PORT (default NEWSDESK_BIND, else 127.0.0.1:8000).")
@click.option("--workers", type=int, help="Worker processes (default NEWSDESK_WORKERS, else 2).")
@click.option("--demo-articles", default=1000, show_default=True, help="Demo data for an empty db.")
def serve(bind, workers, demo_articles):
    """Serve the API with gunicorn (creates the schema and demo data when empty)."""
    config = Config.from_env()
    with connected(config):
        init_db()
        if demo_articles and is_empty():
            click.echo(f"empty database: loading {load_demo(articles=demo_articles)} demo articles")
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or "gunicorn"
    args = [gunicorn, "--config", str(_gunicorn_config())]
    args += ["--bind", bind or config.bind, "--workers", str(workers or config.workers)]
    os.execv(gunicorn, [*args, "api.wsgi:app"])


def _gunicorn_config():
    for folder in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (folder / "gunicorn.conf.py").is_file():
            return folder / "gunicorn.conf.py"
    raise click.ClickException("gunicorn.conf.py not found in this folder or the project's")
