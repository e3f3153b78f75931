"""``/docs``: Swagger UI served from the installed swagger-ui-bundle package (no CDN)."""

from flask import Blueprint, make_response, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint(
    "docs",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/docs/static",
)

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
    """Swagger UI's own files, from the Python package."""
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
