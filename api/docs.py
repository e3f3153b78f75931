"""``/docs``: Swagger UI served from the installed swagger-ui-bundle package (no CDN)."""

import functools
import hashlib
import mimetypes
import os

from flask import Blueprint, current_app, make_response, render_template
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

from . import compression

bp = Blueprint(
    "docs",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/docs/static",
)

#: The files of the package that /docs loads (templates/docs.html); the rest (its demo page,
#: which loads the Petstore's spec from the web, source maps) are not served.
ASSETS = frozenset(
    [
        "swagger-ui.css",
        "favicon-32x32.png",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    ]
)
#: Seconds browsers may keep Swagger UI's files without asking again.
ASSET_MAX_AGE = 86400
#: No inline script or style, nothing from another origin.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)


@bp.route("/docs")
def docs():
    """The browsable API document."""
    response = make_response(render_template("docs.html"))
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@bp.route("/docs/assets/<path:filename>")
def assets(filename):
    """Swagger UI's own files, from the Python package, compressed as answers are."""
    if filename not in ASSETS:
        raise NotFound()
    body, tag = _asset(filename, None)
    mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    response = current_app.response_class(body, mimetype=mimetype)
    coding = compression.coding_for(response)
    if coding is not None:
        body, tag = _asset(filename, coding)
        response.set_data(body)
        response.headers["Content-Encoding"] = coding
    response.set_etag(tag)
    response.cache_control.public = True
    response.cache_control.max_age = ASSET_MAX_AGE
    return response


@functools.lru_cache(maxsize=32)
def _asset(filename, coding):
    """A Swagger UI file's bytes in ``coding`` (None: as stored), and their ETag. Read and
    compressed once by each worker: compressing its megabyte of script is not a request's work."""
    path = safe_join(str(swagger_ui_path), filename)
    if path is None or not os.path.isfile(path):
        raise NotFound()
    with open(path, "rb") as handle:
        body = handle.read()
    tag = hashlib.sha256(body).hexdigest()[:32]
    if coding is None:
        return body, tag
    return compression.encode(body, coding), f"{tag}:{coding}"
