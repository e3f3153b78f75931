"""The ``newsdesk`` command."""

import contextlib
import os
import shutil
import sys
from pathlib import Path

import click

from models import (
    PUBLISHED,
    SCOPES,
    ApiKey,
    Article,
    cards,
    db,
    embeddings,
    init_db,
    is_empty,
    related,
    stories,
    utcnow,
)

from . import create_app, openapi_yaml
from .bulkload import feed_items, import_items, is_feed, ndjson_items
from .config import Config, ConfigError
from .demo import load_demo


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


def upgrade():
    """Create or upgrade the schema and the task queue's, then render stored cards again if
    their schema changed."""
    from . import tasks

    versions = init_db()
    tasks.create_queue()
    if cards.refresh_if_stale():
        click.echo("rendered the stored article cards", err=True)
    if embeddings.ensure_vector_index():
        click.echo("vectors searched through pgvector's HNSW index", err=True)
    return versions


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
        before, after = upgrade()
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
@click.option(
    "--related/--no-related",
    "related_articles",
    default=True,
    show_default=True,
    help="Compute related articles afterwards (as `related rebuild`).",
)
def demo(articles, seed, if_empty, related_articles):
    """Load synthetic demo sources, tags, articles, relations and comments."""
    with connected() as app:
        upgrade()
        if if_empty and not is_empty():
            click.echo("database has articles; no demo data loaded")
            return
        created = load_demo(articles=articles, seed=seed)
        click.echo(f"loaded {created} demo articles")
        if created and related_articles:
            done = related.rebuild(
                database_url=app.config["NEWSDESK"].database_url, processes=os.cpu_count() or 1
            )
            click.echo(f"computed related articles of {done} articles")


@main.group()
def keys():
    """API keys (only their hashes are stored)."""


@keys.command("create")
@click.option("--name", required=True, help="Who or what the key is for.")
@click.option(
    "--scopes",
    default="read",
    show_default=True,
    help=f"Comma-separated, some of: {','.join(SCOPES)}.",
)
def keys_create(name, scopes):
    """Create a key and print it once, alone on the last line."""
    wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
    with connected() as app:
        try:
            key, token = ApiKey.issue(name, wanted, app.config["NEWSDESK"].key_for("api-keys"))
        except ValueError as error:
            raise click.ClickException(str(error)) from error
    click.echo(
        f"created key {key.id} ({key.name}) with scopes {key.scopes}; store it now, it is not shown again:"
    )
    click.echo(token)


@keys.command("list")
def keys_list():
    """List keys: id, name, scopes, prefix, created and last used."""
    with connected():
        rows = list(ApiKey.select().order_by(ApiKey.id))
    click.echo(
        f"{'id':>4}  {'name':<24} {'scopes':<28} {'prefix':<12} {'created':<20} {'last used':<20} status"
    )
    for key in rows:
        click.echo(
            f"{key.id:>4}  {key.name[:24]:<24} {key.scopes:<28} {key.prefix:<12} "
            f"{key.created_at:%Y-%m-%dT%H:%M:%SZ}  "
            f"{(key.last_used_at.strftime('%Y-%m-%dT%H:%M:%SZ') if key.last_used_at else '-'):<20} "
            f"{'revoked' if key.revoked_at else 'active'}"
        )


@keys.command("revoke")
@click.argument("key_id", type=int)
def keys_revoke(key_id):
    """Revoke a key; it is refused from the next request on."""
    with connected():
        revoked = (
            ApiKey.update(revoked_at=utcnow())
            .where((ApiKey.id == key_id) & ApiKey.revoked_at.is_null())
            .execute()
        )
    if not revoked:
        raise click.ClickException(f"no active key with id {key_id}")
    click.echo(f"revoked key {key_id}")


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def import_command(files):
    """Import NDJSON, RSS 2.0 or Atom files (told apart by content)."""
    total_rejected = 0
    with connected():
        upgrade()
        for path in files:
            with open(path, "rb") as handle:
                raw = handle.read()
            items = feed_items(raw) if is_feed(raw) else list(ndjson_items(raw))
            with click.progressbar(
                length=len(items), label=path, file=sys.stderr, show_pos=True
            ) as bar:
                result = import_items(items, on_item=lambda: bar.update(1))
            click.echo(
                f"{path}: {result['created']} created, {result['updated']} updated, "
                f"{result['unchanged']} unchanged, {result['rejected']} rejected"
            )
            for rejection in result["rejections"]:
                detail = "; ".join(
                    f"{field}: {' '.join(messages)}"
                    for field, messages in rejection.get("errors", {}).items()
                )
                click.echo(f"  {path}:{rejection['line']}: {rejection['reason']} {detail}".rstrip())
            total_rejected += result["rejected"]
    if total_rejected:
        sys.exit(1)


@main.group("related")
def related_group():
    """Computed related articles."""


@related_group.command("rebuild")
@click.option(
    "--processes",
    type=int,
    default=os.cpu_count() or 1,
    show_default=True,
    help="Processes computing in parallel.",
)
def related_rebuild(processes):
    """Recompute the computed relations of every published article."""
    with connected() as app:
        total = Article.select().where(Article.status == PUBLISHED).count()
        with click.progressbar(
            length=total, label="related", file=sys.stderr, show_pos=True
        ) as bar:
            done = related.rebuild(
                on_article=bar.update,
                database_url=app.config["NEWSDESK"].database_url,
                processes=processes,
            )
    click.echo(f"rebuilt computed relations of {done} articles")


@main.command()
@click.option("--all", "everything", is_flag=True, help="Every article, not only those due.")
def embed(everything):
    """Embed the articles due (queued, or without a vector of the model), place them in their
    stories and queue their related lists; with --all, every article."""
    with connected():
        upgrade()
        ids = embeddings.due_ids(everything=everything)
        with click.progressbar(
            length=len(ids), label="embed", file=sys.stderr, show_pos=True
        ) as bar:
            stories.embed_all(ids, on_batch=bar.update, force=everything)
    click.echo(f"embedded {len(ids)} articles with {embeddings.embedder().name}")


@main.command()
@click.option("--workers", type=int, default=2, show_default=True, help="Worker threads.")
def worker(workers):
    """Run the background task consumer (related articles; webhooks)."""
    from . import tasks

    with connected():
        upgrade()
    tasks.huey.create_consumer(workers=workers, worker_type="thread", flush_locks=True).run()


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
        upgrade()
        if demo_articles and is_empty():
            click.echo(f"empty database: loading {load_demo(articles=demo_articles)} demo articles")
            related.rebuild(database_url=config.database_url, processes=os.cpu_count() or 1)
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or "gunicorn"
    args = [gunicorn, "--config", str(_gunicorn_config())]
    args += ["--bind", bind or config.bind, "--workers", str(workers or config.workers)]
    os.execv(gunicorn, [*args, "api.wsgi:app"])


def _gunicorn_config():
    for folder in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (folder / "gunicorn.conf.py").is_file():
            return folder / "gunicorn.conf.py"
    raise click.ClickException("gunicorn.conf.py not found in this folder or the project's")
