"""What answers carry of articles, made of what ``ArticleSchema`` rendered: each article's
stored card (``models.cards``), with its body fields rendered when they are shown, and
narrowed to a sparse fieldset (``fields=``) when one is asked for."""

from models import cards, reading
from schemas.articles import BODY_FIELDS, unknown_fields
from schemas.common import Stored

from .errors import bad_request


def fieldset(names, always=()):
    """The article fields asked for with ``fields=`` as a tuple in the order asked, or None
    when none were; 400 naming ``fields`` when one is unknown. Names of ``always`` (what each
    item carries whatever is asked: a hit's score) are accepted and left out, so that
    ``fields=score`` is an empty fieldset: the hit's own fields alone."""
    if not names:
        return None
    names = [name for name in names if name not in always]
    unknown = unknown_fields(names)
    if unknown:
        bad_request("fields", "Unknown field(s): " + ", ".join(unknown) + ".")
    return tuple(dict.fromkeys(names))


#: The bytes of article bodies a list page holds at most: past them it ends early, with
#: ``has_more`` (the next page goes on from its last item; a page holds one item at least).
#: A body may be about a megabyte (``schemas.html.MAX_LENGTH`` characters, HTML and text), and
#: a page of a thousand was one request's gigabyte.
PAGE_BODY_BYTES = 8 * 1024 * 1024


def shows_body(fields):
    """Whether a sparse fieldset shows a body field (None, the default of lists, does not)."""
    return fields is not None and any(name in BODY_FIELDS for name in fields)


def page_limit(ids, limit, fields):
    """How many items a page of ``limit`` holds whose articles are ``ids`` (in page order):
    ``limit``, or fewer when ``fields`` shows a body field and their bodies pass
    :data:`PAGE_BODY_BYTES` (the rest go on the next page)."""
    if not shows_body(fields):
        return limit
    return reading.bodies_that_fit(ids[:limit], PAGE_BODY_BYTES)


def bodies(ids, fields):
    """``{id: (body_html, body_text)}`` of the articles ``ids`` when ``fields`` shows a body
    field; else nothing is read and the mapping is empty."""
    return reading.bodies(ids) if shows_body(fields) else {}


def document(card, body=None, fields=None):
    """An article as a dict: its card, with the body fields when ``body`` (``(html, text)``) is
    given, narrowed to ``fields`` when asked."""
    doc = cards.document(card, body)
    if fields is not None:
        doc = {name: doc[name] for name in fields}
    return doc


def list_item(card, fields, body=None):
    """An article as a list shows it: its stored card as it is, or a sparse fieldset of it."""
    if fields is None:
        return Stored(card)
    return document(card, body, fields)
