"""The ``newsdesk`` command."""

import contextlib
import functools
import itertools
import multiprocessing
import os
import re
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import click
import peewee
import redis
from psycopg2 import errorcodes

from models import (
    LATEST_VERSION,
    PUBLISHED,
    SCOPES,
    ApiKey,
    Article,
    DatabaseFileGone,
    cards,
    current_version,
    db,
    embeddings,
    init_db,
    is_empty,
    related,
    stories,
    utcnow,
)
from models.changes import name_for_etags
from models.migrations import schema_problem, upgrading

from . import create_app, openapi_yaml
from .bulkload import (
    WHOLE_FEED,
    feed_items,
    import_items,
    is_feed,
    ndjson_items,
    read_blocks,
    split_lines,
)
from .config import SECRET_FILE, WORKER_CLASSES, Config, ConfigError, bind_address
from .demo import load_demo
from .guards import RAW_CONTROL_CHARACTERS
from .jsonbody import has_surrogate


class Group(click.Group):
    """click's Group, turning what goes wrong with the configuration, the database or its
    folder into one line that says what to do, and exit status 1, instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ConfigError, DatabaseFileGone) as error:
            raise click.ClickException(str(error)) from error
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise click.ClickException(
                f"Redis did not answer ({error}). Is it running, and is NEWSDESK_REDIS_URL right?"
            ) from error
        except (peewee.OperationalError, peewee.InterfaceError) as error:
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise click.ClickException(
                f"the database did not answer ({reason}). Is it running, and is"
                " NEWSDESK_DATABASE_URL right?"
            ) from error
        except peewee.ProgrammingError as error:
            if getattr(getattr(error, "orig", None), "pgcode", None) != (
                errorcodes.INSUFFICIENT_PRIVILEGE
            ):
                raise
            # A database (or a restore) owned by another role than the one in the URL.
            raise click.ClickException(
                f"the database refused: {str(error).strip().splitlines()[0]}. The role of"
                " NEWSDESK_DATABASE_URL must own the database and its tables (CREATE DATABASE"
                " ... OWNER it; pg_restore --role=it)."
            ) from error
        except peewee.DatabaseError as error:
            if type(error) is not peewee.DatabaseError:  # a constraint, a value: not the file's
                raise
            # SQLite's "file is not a database" and the like.
            raise click.ClickException(
                f"the database could not be read ({error}). Is NEWSDESK_DATABASE_URL right?"
            ) from error
        except OSError as error:
            if error.filename is None:
                raise
            # The database's folder or the instance folder could not be made.
            raise click.ClickException(f"{error.strerror}: {error.filename}") from error


def shown(url):
    """A database URL without its password (in its user part, or its ``password`` parameter,
    which peewee reads too), as commands name it."""
    parts = urlparse(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


@contextlib.contextmanager
def connected(config=None, create=False, current=True):
    """An app bound to the configured database, connected for the block.

    Only with ``create`` may a SQLite file be made; with ``current``, the schema must be the
    latest (else the command says to run ``newsdesk db init``).
    """
    app = create_app(config)
    url = app.config["NEWSDESK"].database_url
    click.echo(f"database: {shown(url)}", err=True)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.is_dir():  # (a server answers 503: its database cannot be opened)
            raise click.ClickException(
                f"NEWSDESK_DATABASE_URL names the folder {path}: name a file in it, as"
                " sqlite:///path/to/file.db"
            )
        if not path.is_file() and not create:
            raise click.ClickException(f"no database at {path}: run `newsdesk db init` first")
    with app.app_context():
        db.connect(reuse_if_open=True)
        try:
            problem = schema_problem(current_version()) if current else None
            if problem:
                raise click.ClickException(problem)
            yield app
        finally:
            db.close()


def upgrade(new_etags=False):
    """Create or upgrade the schema and the task queue's, then render stored cards again if
    their schema changed; give the database its name in ETags (a new one with ``new_etags``)."""
    from . import tasks

    with upgrading():  # several processes may run `db init` at once
        version = current_version()
        if version is not None and version > LATEST_VERSION:  # no step can help: say so
            raise click.ClickException(schema_problem(version))
        versions = init_db()
        name_for_etags(renew=new_etags)
        if new_etags:
            click.echo("the database has a new name in ETags", err=True)
        tasks.create_queue()
        if cards.refresh_if_stale():
            click.echo("rendered the stored article cards", err=True)
        if embeddings.ensure_vector_index():
            click.echo("vectors searched through pgvector's HNSW index", err=True)
    return versions


@click.group(cls=Group)
def main():
    """Newsdesk: a news content API."""


@main.group("db")
def db_group():
    """The database schema."""


@db_group.command("init")
@click.option(
    "--new-etags",
    is_flag=True,
    help="Give the database a new name in ETags: after restoring a backup, so that no tag given"
    " since the backup matches (restart the servers after).",
)
def db_init(new_etags):
    """Create or upgrade the schema (safe to run again)."""
    with connected(create=True, current=False):
        before, after = upgrade(new_etags)
    if before is None:
        click.echo(f"created schema version {after}")
    elif before == after:
        click.echo(f"schema is current (version {after})")
    else:
        click.echo(f"upgraded schema from version {before} to {after}")


@main.command()
@click.option(
    "--articles",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="How many articles.",
)
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
    if has_surrogate(name):  # bytes that are not UTF-8, as Python reads them from argv
        raise click.BadParameter("Not valid UTF-8 text.", param_hint="--name")
    longest = ApiKey.name.max_length
    if not name.strip() or len(name) > longest:
        raise click.BadParameter(f"Give 1 to {longest} characters.", param_hint="--name")
    if RAW_CONTROL_CHARACTERS.search(name):  # a line of `keys list` each
        raise click.BadParameter("No control characters.", param_hint="--name")
    with connected() as app:
        config = app.config["NEWSDESK"]
        try:
            key, token = ApiKey.issue(name, wanted, config.key_for("api-keys"))
        except ValueError as error:
            raise click.ClickException(str(error)) from error
    # A key works only where the server has the same secret: one made without the variable the
    # server was started with is refused (401), with nothing to say why.
    where = (
        "NEWSDESK_SECRET_KEY"
        if config.secret_key
        else str(Path(config.instance_path) / SECRET_FILE)
    )
    click.echo(f"secret: {where} (the server must have the same to accept the key)", err=True)
    click.echo(
        f"created key {key.id} ({key.name}) with scopes {key.scopes}; store it now, it is not shown again:"
    )
    click.echo(token)


@keys.command("list")
def keys_list():
    """List keys: id, name, scopes, prefix, created and last used."""
    with connected():
        rows = list(ApiKey.select().order_by(ApiKey.id))
    wide = max([24, *(len(key.name) for key in rows)])  # names whole: two may differ at the end
    click.echo(
        f"{'id':>4}  {'name':<{wide}} {'scopes':<28} {'prefix':<12} {'created':<20}  "
        f"{'last used':<20} status"
    )
    for key in rows:
        click.echo(
            f"{key.id:>4}  {key.name:<{wide}} {key.scopes:<28} {key.prefix:<12} "
            f"{key.created_at:%Y-%m-%dT%H:%M:%SZ}  "
            f"{(key.last_used_at.strftime('%Y-%m-%dT%H:%M:%SZ') if key.last_used_at else '-'):<20} "
            f"{'revoked' if key.revoked_at else 'active'}"
        )


@keys.command("revoke")
@click.argument("key_id", type=click.IntRange(1, 2**63 - 1))
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


#: Files of this many bytes in all are read by other processes (``newsdesk import --readers``).
READERS_FROM_BYTES = 4 * 1024 * 1024


@main.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True)
)
@click.option(
    "--readers",
    type=click.IntRange(0, 64),
    help="Processes validating and preparing items while this one stores them (0: none;"
    " default: one fewer than the CPUs, at most 4, for files of 4 MiB or more in all).",
)
def import_command(files, readers):
    """Import NDJSON, RSS 2.0 or Atom files (told apart by content); - reads standard input."""
    from . import tasks

    total_rejected = 0
    max_line = Config.from_env().max_body_bytes
    if readers is None:  # starting one takes about a second: worth it from some 2,000 items
        sizes = [_size(path) for path in files]  # None: a pipe, of no size told (maybe large)
        large = None in sizes or sum(sizes) >= READERS_FROM_BYTES
        readers = min(4, (os.cpu_count() or 1) - 1) if large else 0
    with contextlib.ExitStack() as stack:
        pool = None
        if readers:  # spawned: a fork would copy the open database connection
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(readers))
        stack.enter_context(connected())
        # The WAL copied into the database file by a thread of its own, as the worker does:
        # SQLite's own checkpoints would run in the commits of the storing thread.
        stop = threading.Event()
        checkpoints = threading.Thread(target=tasks.checkpoint_every, args=(1.0, stop))
        checkpoints.start()
        stack.callback(checkpoints.join)
        stack.callback(stop.set)
        for path in files:
            show = functools.partial(_show_rejection, path)
            # Read on from its first block, not sought back to it: a pipe cannot be.
            with click.open_file(path, "rb") as handle:
                head = handle.read(4096)
                if is_feed(head):
                    show = functools.partial(_show_rejection, path, feed=True)
                    items = feed_items(head + handle.read())
                    result = import_items(items, on_rejection=show, readers=pool)
                else:
                    lines = split_lines(itertools.chain([head], read_blocks(handle)), max_line)
                    size = _size(path)
                    with contextlib.ExitStack() as shown:
                        if size is not None:  # a pipe has no end for a bar to show
                            bar = click.progressbar(
                                length=size, label=path, file=sys.stderr, show_pos=True
                            )
                            lines = _counted(lines, shown.enter_context(bar))
                        items = ndjson_items(lines, max_line)
                        result = import_items(items, on_rejection=show, readers=pool)
            click.echo(
                f"{path}: {result['created']} created, {result['updated']} updated, "
                f"{result['unchanged']} unchanged, {result['rejected']} rejected"
            )
            total_rejected += result["rejected"]
    tasks.wake(tasks.wake_webhooks)
    if total_rejected:
        sys.exit(1)


def _show_rejection(path, rejection, feed=False):
    """Print a rejected item of ``path`` (every one, as its batch is accounted): a line of
    NDJSON as ``path:line``, an entry of a feed as ``path entry N``, and what refused a
    whole feed under the file's name alone."""
    detail = "; ".join(
        f"{field}: {' '.join(messages)}" for field, messages in rejection.get("errors", {}).items()
    )
    if not feed:
        where = f"{path}:{rejection['line']}"
    elif rejection["code"] in WHOLE_FEED:
        where = path
    else:
        where = f"{path} entry {rejection['line']}"
    click.echo(f"  {where}: {rejection['reason']} {detail}".rstrip())


def _size(path):
    """The size of the file ``path``, or None for what has none: standard input, a pipe."""
    if path == "-" or not os.path.isfile(path):
        return None
    return os.path.getsize(path)


def _counted(lines, bar):
    """``lines`` as they are, moving ``bar`` by the bytes each took."""
    for number, line in lines:
        bar.update(len(line) + 1)
        yield number, line


@main.group("related")
def related_group():
    """Computed related articles."""


@related_group.command("rebuild")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
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
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Worker threads (1 to 64).",
)
def worker(workers):
    """Run the background worker: webhook deliveries, embeddings, stories, related lists,
    background imports, and the minute's sweep."""
    from . import tasks

    # The app binds the database (and the embedding model) for the whole process, once, before
    # the consumer's threads start: each thread connects on its own. (Binding again as a thread
    # starts, in a Huey startup hook, took the database from under a transaction another thread
    # was running, and on SQLite left its write lock held.)
    with connected() as app:
        pass  # the database answers and its schema is current
    if app.config["NEWSDESK"].tasks_immediate:
        raise click.ClickException(
            "NEWSDESK_TASKS_IMMEDIATE is true: tasks run within the requests that make them,"
            " and there is no queue for a worker to consume"
        )
    tasks.take_up()
    consumer = tasks.make_consumer(tasks.huey, workers)
    threading.Thread(
        target=tasks.checkpoint_every, args=(1.0, consumer.stop_flag), daemon=True
    ).start()
    click.echo(f"worker: {workers} threads; Ctrl-C stops it after the batch at hand", err=True)
    consumer.run()


@main.command()
def openapi():
    """Print the OpenAPI document as YAML (what openapi.yaml holds)."""
    app = create_app({"secret_key": "openapi", "database_url": "sqlite:///:memory:"})
    click.echo(openapi_yaml(app), nl=False)


@main.command()
@click.option("--bind", help="HOST:PORT (default NEWSDESK_BIND, else 127.0.0.1:8000).")
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),  # as NEWSDESK_WORKERS
    help="Worker processes (default NEWSDESK_WORKERS, else 2).",
)
@click.option(
    "--worker-class",
    type=click.Choice(WORKER_CLASSES),
    help="gevent, or sync behind a buffering proxy (default NEWSDESK_WORKER_CLASS, else gevent).",
)
def serve(bind, workers, worker_class):
    """Serve the API with gunicorn (the schema must be current: `newsdesk db init`)."""
    if bind is not None:
        try:
            bind_address("--bind", bind)
        except ConfigError as error:
            message = str(error).removeprefix("--bind ")
            raise click.BadParameter(message, param_hint="--bind") from None
    config = Config.from_env()
    with connected(config):
        pass  # the database answers and its schema is current; nothing is written
    if worker_class:  # gunicorn.conf.py reads it, and prepares the process for it
        os.environ["NEWSDESK_WORKER_CLASS"] = worker_class
    # gunicorn of this interpreter, found whether or not its script is beside it.
    args = [sys.executable, "-m", "gunicorn", "--config", str(_gunicorn_config())]
    args += ["--bind", bind or config.bind, "--workers", str(workers or config.workers)]
    os.execv(sys.executable, [*args, "api.wsgi:app"])


def _gunicorn_config():
    for folder in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (folder / "gunicorn.conf.py").is_file():
            return folder / "gunicorn.conf.py"
    raise click.ClickException("gunicorn.conf.py not found in this folder or the project's")


if __name__ == "__main__":  # python -m api.cli, as the newsdesk script
    main()
