"""URL converters: what a path segment may hold, as routing matches it and the spec says."""

from werkzeug.routing import BaseConverter, IntegerConverter


class TextConverter(BaseConverter):
    """A path segment of printable characters (an article's id or slug, a source's slug, ...);
    control characters are refused before routing (api/guards.py)."""

    regex = r"[^/\x00-\x1f\x7f]+"

    @staticmethod
    def to_openapi(converter):
        """How the OpenAPI document describes such a segment."""
        return {"type": "string", "minLength": 1, "pattern": r"^[^/\u0000-\u001f\u007f]+$"}


class DigitsConverter(IntegerConverter):
    """werkzeug's ``int`` of the digits 0-9 alone: its own takes any script's digits (``\\d``),
    so ``/v1/stories/١٤٥`` was story 145, where an article's id, or a query's number, is read
    in the digits 0-9 only. Documented as werkzeug's ``int`` is."""

    regex = r"[0-9]+"
