"""The Newsdesk HTTP API: ``create_app`` builds the Flask application."""

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import g, request
from flask_cors import CORS

from models import bind_database, db, end_request

from . import (
    articles,
    auth,
    changes,
    comments,
    docs,
    feeds,
    health,
    http,
    imports,
    limits,
    me,
    observe,
    search,
    sources,
    summaries,
    tags,
)
from .config import Config
from .errors import Api
from .revalidation import Revalidation

API_SPEC = {
    "API_TITLE": "Newsdesk",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": (
                "News content API: articles from many publishers with their sources, tags, "
                "comments and related articles. Every error is application/problem+json "
                "(RFC 9457); lists are cursor-paged."
            )
        }
    },
}


def create_app(config=None):
    """Build the app. ``config`` is a :class:`Config`, or a dict of overrides of the environment."""
    if not isinstance(config, Config):
        config = Config.from_env(**(config or {}))
    app = http.Flask(__name__, static_folder=None)
    app.config.update(API_SPEC)
    app.config.update(
        NEWSDESK=config,
        TESTING=config.testing,
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        COMPRESS_ALGORITHM=["br", "gzip"],
        COMPRESS_MIN_SIZE=1024,
        COMPRESS_MIMETYPES=[
            "application/json",
            "application/problem+json",
            "application/feed+json",
            "application/atom+xml",
            "application/rss+xml",
            "application/javascript",
            "text/css",
            "text/html",
        ],
    )
    app.json = http.OrjsonProvider(app)
    if not config.testing:
        observe.configure_logging(config.log_level)
    observe.init_app(app)
    if config.cors_origins:
        CORS(
            app,
            origins=list(config.cors_origins),
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "If-None-Match", "X-Request-ID"],
            expose_headers=[
                "ETag", "Link", "Location", "Retry-After", "X-Request-ID",
                "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
            ],
            max_age=600,
        )
    # before_request order matters: connect, refuse malformed requests, count the request
    # against its rate limit (wrong keys count too), then authenticate.
    _init_database(app, config)
    http.Compress(app)
    revalidate = http.init_app(app)
    blueprints = (
        articles.blp,
        sources.blp,
        tags.blp,
        comments.blp,
        imports.blp,
        search.blp,
        changes.blp,
        summaries.blp,
        feeds.blp,
        me.blp,
        health.blp,
    )
    limiter = limits.init_app(app, config, write_blueprints=blueprints[:5])
    app.before_request(auth.authenticate)
    app.before_request(revalidate)

    api = Api(app, spec_kwargs={"marshmallow_plugin": MarshmallowPlugin(schema_name)})
    auth.register_security_schemes(api.spec)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.bp)
    # Around Flask: anonymous revalidations that still match are answered before it; around
    # both, every request gets its id, headers, metrics and log line.
    app.wsgi_app = observe.Observer(Revalidation(app, limiter, app.wsgi_app))
    return app


def schema_name(schema):
    """Component name of a schema in the spec: ``ArticleIn``, and ``ArticleInPatch`` for PATCH."""
    name = resolve_schema_cls(schema).__name__.removesuffix("Schema")
    if not isinstance(schema, type) and schema.partial:
        name += "Patch"
    return name


def openapi_yaml(app):
    """The app's OpenAPI document as YAML, as ``newsdesk openapi`` prints it."""
    return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_yaml()


def _init_database(app, config):
    """Bind the models to the configured database; a connection for each request (pooled for
    PostgreSQL; SQLite's stays open in its thread)."""
    bind_database(config.database_url)

    @app.before_request
    def connect():
        if request.endpoint not in http.NO_DATABASE:
            # True when this request opened the connection (and so must close it).
            g.opened_database = db.connect(reuse_if_open=True)

    @app.teardown_request
    def close(exc):
        end_request(g.pop("opened_database", False))
