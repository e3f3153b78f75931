"""The Newsdesk HTTP API: ``create_app`` builds the Flask application."""

import yaml
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask
from marshmallow import fields

from models import bind_database, embeddings
from models import webhooks as outbox
from models.changes import etag_epoch

from . import (
    answers,
    articles,
    auth,
    caching,
    changes,
    comments,
    compression,
    converters,
    cors,
    database,
    deadline,
    docs,
    errors,
    feeds,
    guards,
    health,
    imports,
    limits,
    me,
    observe,
    paging,
    proxies,
    responses,
    search,
    sources,
    stories,
    summaries,
    tags,
    tasks,
    webhooks,
)
from .config import Config
from .responses import OrjsonProvider

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
#: The blueprints whose writes count against the write rate limit.
WRITE_BLUEPRINTS = (
    articles.blp,
    sources.blp,
    tags.blp,
    comments.blp,
    imports.blp,
    webhooks.blp,
)
READ_BLUEPRINTS = (
    search.blp,
    changes.blp,
    summaries.blp,
    answers.blp,
    stories.blp,
    feeds.blp,
    me.blp,
    health.blp,
)


def create_app(config=None):
    """Build the app. ``config`` is a :class:`Config`, or a dict of overrides of the environment.

    A request passes through, in this order:

    1. WSGI layers, outermost first: :func:`proxies.trust_proxies` (the client's address from
       the proxies trusted, werkzeug's ProxyFix), :class:`observe.RequestLog` (request id, security headers,
       metrics and the log line), :class:`deadline.Deadline` (the request's deadline; 503
       past it), :class:`caching.EarlyRevalidation` (anonymous 304s answered before Flask),
       then Flask itself.
    2. ``before_request`` hooks, in the order registered below, then the view.
    3. ``after_request`` hooks, in the order listed below (then flask-cors's and
       :func:`cors.allow_the_routes_methods`, when CORS is on: registered first, they run
       last), then ``teardown_request``.

    What the steps hand on, and who writes and reads it:

    - ``g.opened_database`` (:func:`database.connect`; :func:`database.close`);
    - ``g.api_key``, ``g.bad_key`` (:func:`auth.identify`; the limiter, :func:`auth.authenticate`,
      the views, the caching, the log line);
    - ``g.rate_limit`` (:meth:`limits.RateLimiter.check`; its headers, ``/v1/me``);
    - ``g.settled``, ``g.etag``, ``g.answer_key``, ``g.data_changed``
      (:meth:`caching.Caching.revalidate` and the views' :func:`caching.tagged`;
      :meth:`caching.Caching.finish`);
    - WSGI environ keys: ``errors.DEADLINE`` (:class:`deadline.Deadline`; the database's
      statement timeouts), ``observe.ROUTE`` and ``observe.KEY_ID`` (:func:`observe.describe`
      or the early 304; :class:`observe.RequestLog`).
    """
    if not isinstance(config, Config):
        config = Config.from_env(**(config or {}))
    config.secret()  # a deployment without the secret it needs stops here, saying so
    configure_process(config)
    app = Flask(__name__, static_folder=None)
    app.config.update(API_SPEC)
    app.config.update(
        NEWSDESK=config, TESTING=config.testing, MAX_CONTENT_LENGTH=config.max_body_bytes
    )
    app.json = OrjsonProvider(app)
    if not config.testing:
        observe.configure_logging(config.log_level, config.log_format)
    limiter = limits.RateLimiter(config, WRITE_BLUEPRINTS)
    cache = caching.Caching(config)

    if config.cors_origins:  # registers its after_request hooks first: they run last
        cors.init_app(app, config.cors_origins)
    app.before_request(guards.check_request)  # URL and header sizes, control characters, bodies
    app.before_request(cors.answer_options)  # OPTIONS: from the routes alone
    app.before_request(database.connect)  # a connection for the request
    app.before_request(auth.identify)  # g.api_key: the key presented, if known
    app.before_request(limiter.check)  # count the request against its key or address; 429
    app.before_request(auth.authenticate)  # 401 for an unknown key; private reads need one
    app.before_request(cache.revalidate)  # 304 or the kept answer, before the view
    after_view = (
        cache.finish,  # Cache-Control, Vary, ETag; 304 on a match; keep the answer
        compression.compress,  # brotli or gzip, and the variant's ETag
        limiter.add_headers,  # RateLimit-* and Retry-After
        responses.untyped_when_empty,  # no Content-Type without a body (204, OPTIONS)
        observe.describe,  # the route and key id, for the log line
        tasks.after_write,  # wake the worker for what a write queued
    )
    for hook in reversed(after_view):  # Flask calls after_request hooks last registered first
        app.after_request(hook)
    app.teardown_request(database.close)  # hand the connection back

    # Path segments hold no control characters; URLs are documented as URIs (RFC 3986).
    app.url_map.converters["default"] = converters.TextConverter
    app.url_map.converters["int"] = converters.DigitsConverter
    # `/v1//articles` is no resource: a 404, not werkzeug's redirect (an HTML page).
    app.url_map.merge_slashes = False
    api = errors.Api(
        app,
        spec_kwargs={
            "marshmallow_plugin": MarshmallowPlugin(schema_name),
            "extra_plugins": [errors.CommonAnswers(auth.SECURITY)],
        },
    )
    api.register_converter(converters.TextConverter, converters.TextConverter.to_openapi)
    api.register_field(fields.URL, "string", "uri")
    errors.document_problems(api.spec)
    webhooks.document_events(api.spec)
    errors.init_app(app)
    auth.register_security_schemes(api.spec)
    for blueprint in (*WRITE_BLUEPRINTS, *READ_BLUEPRINTS):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs.bp)
    app.extensions["newsdesk"] = {"api": api, "caching": cache, "limiter": limiter}

    early = caching.EarlyRevalidation(app, cache, limiter, app.wsgi_app)
    app.wsgi_app = proxies.trust_proxies(
        observe.RequestLog(deadline.Deadline(app, early, config)), config.trusted_proxies
    )
    return app


def configure_process(config):
    """Point what this process shares between apps at ``config``: the models' database, the
    embedder, and the /v1/changes token that webhook events of article changes carry.
    ``create_app`` calls it; the tests call it again when they reuse an app on a new database."""
    bind_database(config.database_url, greenlets=config.worker_class == "gevent")
    embeddings.configure(config.embedder)
    cursor_key = config.key_for("cursors")
    outbox.configure(
        lambda change_id: paging.encode_cursor("changes", [change_id, etag_epoch()], cursor_key)
    )


def schema_name(schema):
    """Component name of a schema in the spec: ``ArticleIn``, and ``ArticleInPatch`` for PATCH."""
    name = resolve_schema_cls(schema).__name__.removesuffix("Schema")
    if not isinstance(schema, type) and schema.partial:
        name += "Patch"
    return name


class _NoAliases(yaml.SafeDumper):
    """Writes a node the spec holds in several places out in full each time, not as a YAML
    anchor and aliases, which some OpenAPI tools do not follow."""

    def ignore_aliases(self, data):
        return True


def openapi_yaml(app):
    """The app's OpenAPI document as YAML, as ``newsdesk openapi`` prints it."""
    return app.extensions["newsdesk"]["api"].spec.to_yaml({"Dumper": _NoAliases})
