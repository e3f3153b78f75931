"""URL converters: what a path segment may hold, as routing matches it and the spec says."""

from werkzeug.routing import BaseConverter


class TextConverter(BaseConverter):
    """A path segment of printable characters (an article's id or slug, a source's slug, ...);
    control characters are refused before routing (api/guards.py)."""

    regex = r"[^/\x00-\x1f\x7f]+"

    @staticmethod
    def to_openapi(converter):
        """How the OpenAPI document describes such a segment."""
        return {"type": "string", "minLength": 1, "pattern": r"^[^/\u0000-\u001f\u007f]+$"}
