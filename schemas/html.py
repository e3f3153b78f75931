"""Limits on the shape of HTML that clients send, checked before it is sanitized.

The sanitizer (nh3: html5ever's parser under ammonia) takes time that grows with the square
of the nesting depth of elements and of the number of attributes on one element, so bodies
past :data:`MAX_DEPTH` or :data:`MAX_ATTRIBUTES` are refused; what is left takes time linear in
the length and in the number of tags, which :data:`MAX_LENGTH` and :data:`MAX_TAGS` bound. The
depth is measured in one linear pass that may count more levels than an HTML parser builds (an
element left unclosed, an end tag it cannot be sure of), and never fewer than about half of
them.
"""

import re

from marshmallow import ValidationError

#: Longest body (HTML, or text), in characters: about forty thousand words of text.
MAX_LENGTH = 262_144
#: What a body past :data:`MAX_LENGTH` is told (HTML or text alike).
TOO_LONG = f"Longer than {MAX_LENGTH:,} characters; at most {MAX_LENGTH:,}."
#: Deepest nesting of elements in an HTML body.
MAX_DEPTH = 100
#: Most attributes on one element.
MAX_ATTRIBUTES = 64
#: Most tags in one body (start and end tags, comments, any other markup): each costs about as
#: much, and a long read carries a few thousand.
MAX_TAGS = 10_000

_SPACE = "\t\n\f\r "
_START_TAG = (
    rf"""<([A-Za-z][^{_SPACE}/>]*)((?>[^>"'=]+|=[{_SPACE}]*(?>"[^"]*"|'[^']*'|)|["'])*+)>?"""
)
#: One markup token, told apart as an HTML tokenizer does: a comment, a CDATA section, another
#: ``<!``/``<?`` construct, an end tag, a start tag with its attributes (quoted values may
#: hold ``>``). Atomic groups keep matching linear.
_TOKEN = re.compile(
    rf"""<!--(?:-?>|.*?--!?>|.*\Z)
    |(<!\[CDATA\[)
    |<[!?][^>]*>?
    |</([A-Za-z][^{_SPACE}/>]*)[^>]*>?
    |</[^>]*>?
    |{_START_TAG}""",
    re.VERBOSE | re.DOTALL,
)
#: The same inside text that a parser may read as text or as markup (the content of a
#: ``script``, which SVG reads as markup; a CDATA section, which HTML reads as markup): no
#: comments, since in text ``<!--`` hides nothing.
_UNSURE_TOKEN = re.compile(
    rf"""(<!\[CDATA\[)|<[!?][^>]*>?|</([A-Za-z][^{_SPACE}/>]*)[^>]*>?|</[^>]*>?|{_START_TAG}""",
    re.DOTALL,
)
#: An attribute's value, quoted or not (what is left of the tag names the attributes).
_VALUE = re.compile(rf"""=[{_SPACE}]*(?:"[^"]*"|'[^']*'|[^{_SPACE}"'=<>`]+)""")
_ATTRIBUTE = re.compile(rf"[^{_SPACE}/=]+")
VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
        "basefont",
        "bgsound",
        "frame",
        "keygen",
        "param",
    ]
)
#: Elements whose content an HTML parser reads as text (in SVG, some hold markup).
RAW_TEXT = frozenset(
    [
        "script",
        "style",
        "textarea",
        "title",
        "xmp",
        "iframe",
        "noembed",
        "noframes",
        "noscript",
        "plaintext",
    ]
)
#: Elements closed by an end tag of an element around them, or by a sibling's start tag.
IMPLIED_END = frozenset(["p", "li", "dd", "dt", "option", "optgroup", "rb", "rp", "rt", "rtc"])
#: Start tags that close an open ``p``.
CLOSES_P = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "header",
        "hgroup",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "search",
        "section",
        "summary",
        "ul",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "listing",
        "form",
        "table",
        "hr",
        "xmp",
        "li",
        "dd",
        "dt",
        "plaintext",
    ]
)
#: End tags that close the implied-end elements open inside them.
BLOCK_END = CLOSES_P | {"li", "dd", "dt", "button"}


def shape(html):
    """``(depth, attributes, tags)``: the deepest nesting of elements in ``html``, the most
    attributes on one of its elements, and how many tags it has. Reading stops once one of
    them passes its limit, so a body refused costs no more than one at the limits."""
    stack, depth, attributes, tags = [], 0, 0, 0
    position = 0
    # Up to here the text may be read as text or as markup: start tags count as elements,
    # end tags are not trusted to close any.
    unsure_until = 0
    while True:
        unsure = position < unsure_until
        match = (_UNSURE_TOKEN if unsure else _TOKEN).search(html, position)
        if match is None:
            break
        if unsure and match.start() >= unsure_until:
            position = unsure_until
            continue
        position = match.end()
        tags += 1
        if tags > MAX_TAGS:
            break
        cdata, end_name, name, attrs = match.groups()
        if cdata:
            end = html.find("]]>", position)
            unsure_until = max(unsure_until, len(html) if end < 0 else end)
        elif name is not None:
            name = name.lower()
            if attrs:
                count = len(_ATTRIBUTE.findall(_VALUE.sub("=", attrs)))
                attributes = max(attributes, count)
            if attributes > MAX_ATTRIBUTES:
                break
            if name in VOID:
                continue
            if not unsure:
                if stack and stack[-1] == "p" and name in CLOSES_P:
                    stack.pop()
                if stack and stack[-1] == name and name in IMPLIED_END:
                    stack.pop()
            stack.append(name)
            depth = max(depth, len(stack))
            if depth > MAX_DEPTH:
                break
            if name in RAW_TEXT:
                end = re.compile(rf"</{name}[{_SPACE}/>]", re.IGNORECASE).search(html, position)
                unsure_until = max(unsure_until, len(html) if end is None else end.start())
        elif end_name is not None and not unsure:
            _close(stack, end_name.lower())
    return depth, attributes, tags


def _close(stack, name):
    """Pop ``name`` when it is the innermost open element, or (for block elements) when only
    elements with implied end tags are open inside it."""
    top = len(stack)
    if name in BLOCK_END:
        while top and stack[top - 1] in IMPLIED_END and stack[top - 1] != name:
            top -= 1
    if top and stack[top - 1] == name:
        del stack[top - 1 :]


def check_html(html):
    """Validator of an HTML field: refuses what is longer than :data:`MAX_LENGTH` (before
    reading it), nests deeper than :data:`MAX_DEPTH`, puts more than :data:`MAX_ATTRIBUTES`
    attributes on one element or has more than :data:`MAX_TAGS` tags."""
    if len(html) > MAX_LENGTH:
        raise ValidationError(TOO_LONG)
    depth, attributes, tags = shape(html)
    if depth > MAX_DEPTH:
        raise ValidationError(f"Elements nest deeper than {MAX_DEPTH} levels; at most {MAX_DEPTH}.")
    if attributes > MAX_ATTRIBUTES:
        raise ValidationError(
            f"An element has more than {MAX_ATTRIBUTES} attributes; at most {MAX_ATTRIBUTES}."
        )
    if tags > MAX_TAGS:
        raise ValidationError(f"More than {MAX_TAGS:,} tags; at most {MAX_TAGS:,}.")
