"""An allow-list HTML sanitizer for article bodies (nh3, the Rust ammonia library)."""

import re

import nh3

from schemas.common import CONTROL_CHARACTERS

TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "cite",
    "code",
    "em",
    "figcaption",
    "figure",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "small",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "blockquote": {"cite"},
    "q": {"cite"},
}


#: The schemes a link, an image or a quotation's source may have.
URL_SCHEMES = {"http", "https", "mailto"}
#: Attributes that hold a URL.
URL_ATTRIBUTES = {"href", "src", "cite"}
#: A URL's scheme, as a browser finds it (once it has dropped tabs and newlines, and leading
#: and trailing controls and spaces).
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_TABS_AND_NEWLINES = re.compile(r"[\t\n\r]")


def clean_html(html, base=None):
    """``html`` with only allow-listed tags and attributes, links, images and quotations'
    sources of the :data:`URL_SCHEMES` or relative (made absolute against ``base`` when it is
    given), and none of the :data:`~schemas.common.CONTROL_CHARACTERS` (nh3 writes the
    characters of references such as ``&#1;`` as they are: taken out of its output)."""
    return strip_control(
        nh3.clean(
            html,
            tags=TAGS,
            attributes=ATTRIBUTES,
            attribute_filter=_checked_attribute,
            url_schemes=URL_SCHEMES,
            url_relative=None if base is None else ("rewrite_with_base", base),
            link_rel="noopener noreferrer nofollow",
            strip_comments=True,
        )
    ).strip()


def _checked_attribute(tag, name, value):
    """An attribute's value without control characters; None (dropped) for an empty URL, or
    one whose scheme, once they are gone, is not one of :data:`URL_SCHEMES`. nh3 checks a URL
    as it finds it: ``java&#1;script:`` has no scheme it knows, so it was kept as a relative
    URL, and became ``javascript:`` when the character was taken out. And it checks no
    ``cite``."""
    value = strip_control(value)
    if name in URL_ATTRIBUTES:
        if not value.strip():  # no link (what feedparser leaves of an unsafe one), not this page
            return None
        scheme = _SCHEME.match(_TABS_AND_NEWLINES.sub("", value).strip(" \x00"))
        if scheme is not None and scheme.group(1).lower() not in URL_SCHEMES:
            return None
    return value


def strip_control(text):
    return CONTROL_CHARACTERS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
