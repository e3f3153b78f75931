"""The Newsdesk HTTP API: ``create_app`` builds the Flask application."""

from flask import Flask, g, request

from models import bind_database, db

from . import articles, comments, docs, health, http, sources, tags
from .config import Config
from .errors import Api

#: Endpoints that answer without the database, so they work while it is down.
NO_DATABASE = {"health.Health", "docs.docs", "docs.assets", "docs.static", "api-docs.openapi_json"}

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
    app = Flask(__name__, static_folder=None)
    app.config.update(API_SPEC)
    app.config.update(
        NEWSDESK=config,
        TESTING=config.testing,
        MAX_CONTENT_LENGTH=config.max_body_bytes,
    )
    app.json = http.OrjsonProvider(app)
    _init_database(app, config)

    api = Api(app)
    for blueprint in (articles.blp, sources.blp, tags.blp, comments.blp, health.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.bp)
    http.init_app(app)
    return app


def openapi_yaml(app):
    """The app's OpenAPI document as YAML, as ``newsdesk openapi`` prints it."""
    return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_yaml()


def _init_database(app, config):
    """Bind the models to the configured database; one pooled connection per request."""
    bind_database(config.database_url)

    @app.before_request
    def connect():
        if request.endpoint not in NO_DATABASE:
            # True when this request opened the connection (and so must close it).
            g.opened_database = db.connect(reuse_if_open=True)

    @app.teardown_request
    def close(exc):
        if g.pop("opened_database", False) and not db.is_closed():
            db.close()
