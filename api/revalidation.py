"""Revalidations answered before Flask builds a request.

Mobile apps and integrations poll: most of what they send is a GET whose If-None-Match still
matches. Through Flask (request context, routing, a dozen hooks) such a 304 cost three times a
hello-world answer, nearly all of it framework. This WSGI layer answers it with what the answer
needs: the data version (one query), the ETag and the caller's rate limit (the request id,
metrics and log line are :class:`observe.Observer`'s, around it). The answer is the one the
app would give (``http.init_app``'s ``revalidate``); everything it is not sure of goes on to
the app: callers with a key (the key must be checked), CORS requests, private reads, URLs the
app would refuse or no route matches, ETags that no longer match, callers over their limit,
and any database error.
"""

import peewee
from werkzeug.exceptions import HTTPException

from models import DataVersion, db, end_request

from . import http, limits, observe


class Revalidation:
    def __init__(self, app, limiter, wsgi_app):
        config = app.config["NEWSDESK"]
        self.enabled = config.public_read
        self.cache_control = http.public_cache_control(config)
        self.secret = http.etag_key(config)
        self.url_map = app.url_map
        self.limiter = limiter
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        answer = self.not_modified(environ)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        start_response("304 NOT MODIFIED", answer)
        return []

    def not_modified(self, environ):
        """The headers of a 304 for this request, or None when the app must answer it."""
        given = environ.get("HTTP_IF_NONE_MATCH")
        if not given or not self.enabled or environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return None
        if "HTTP_AUTHORIZATION" in environ or "HTTP_X_API_KEY" in environ or "HTTP_ORIGIN" in environ:
            return None
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if not http.versioned(path) or http.url_too_long(path, query):
            return None
        if http.has_control_characters(path, query):  # the app answers these with a 400
            return None
        try:
            opened = db.connect(reuse_if_open=True)
            try:
                version = DataVersion.current()
            finally:
                end_request(opened)
        except (peewee.OperationalError, peewee.InterfaceError):
            return None
        environ[http.DATA_VERSION] = version  # should the app answer, it need not read it again
        etag = http.version_etag(version, environ, "public", self.secret)
        if not http.matches(given, etag):
            return None
        try:
            rule, _ = self.url_map.bind_to_environ(environ).match(return_rule=True)
        except HTTPException:
            return None
        state = self.limiter.count(limits.anonymous(environ))
        if state["exceeded"]:
            return None
        environ[observe.ROUTE] = rule.rule
        return http.not_modified_headers(etag, self.cache_control, path) + limits.header_items(state)
