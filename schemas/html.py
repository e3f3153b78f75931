"""Limits on the shape of HTML that clients send, checked before it is sanitized.

The sanitizer (nh3: html5ever's parser under ammonia) takes time that grows with the square
of the nesting depth of elements and of the number of attributes on one element, so bodies
past :data:`MAX_DEPTH` or :data:`MAX_ATTRIBUTES` are refused; what is left takes time linear in
the length and in the number of tags, which :data:`MAX_LENGTH` and :data:`MAX_TAGS` bound. The
depth is measured in one linear pass that may count more levels than an HTML parser builds (an
element left unclosed, an end tag it cannot be sure of), and never fewer than about half of
them.

A parser also reopens formatting elements (``b``, ``a``, ``em``...) that a block closed before
their own end tag, in each block after it: ``<b title=1>...<b title=98>`` left open before ten
thousand paragraphs made a 41 KB body 19 MB once sanitized (4 s). The same pass counts the
markup so reopened, and bodies past :data:`MAX_REOPENED` characters of it are refused.
"""

import collections
import itertools
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
#: Most characters of start tags that an HTML parser would reopen (formatting elements left
#: open when a block around them closed, reopened in each block after it).
MAX_REOPENED = MAX_LENGTH

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
#: Elements a parser keeps in its list of active formatting elements, and reopens.
FORMATTING = frozenset(
    [
        "a",
        "b",
        "big",
        "code",
        "em",
        "font",
        "i",
        "nobr",
        "s",
        "small",
        "strike",
        "strong",
        "tt",
        "u",
    ]
)
#: A parser keeps at most this many identical formatting elements (name and attributes) active.
IDENTICAL_FORMATTING = 3
#: Elements an end tag does not close past (its element must be open inside them).
SCOPE = frozenset(
    ["applet", "caption", "html", "marquee", "object", "table", "td", "template", "th"]
)
#: The same for the ``p`` a start tag closes, and for the ``li``, ``dd`` or ``dt`` before it.
SCOPE_OF = {"p": SCOPE | {"button"}, "li": SCOPE | {"ol", "ul"}, "dd": SCOPE | {"dl"}}
SCOPE_OF["dt"] = SCOPE_OF["dd"]


def shape(html):
    """``(depth, attributes, tags, reopened)``: the deepest nesting of elements in ``html``,
    the most attributes on one of its elements, how many tags it has, and how many characters
    of formatting start tags a parser would reopen. Reading stops once one of them passes its
    limit, so a body refused costs no more than one at the limits."""
    stack, depth, attributes, tags, reopened = [], 0, 0, 0, 0
    # The open elements as a parser closes them (an end tag closes the elements open inside
    # its element; ``stack`` above keeps them, to count depth on the safe side), each with a
    # number of its own: a formatting element is open while the element it was opened as, or
    # reopened in, is.
    elements, numbering = _Elements(), itertools.count()
    # The formatting elements not closed by their own end tag: [name, start tag, number].
    active = []
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
            if not unsure:
                reopened += _start(elements, active, name, match.group(), next(numbering))
                if reopened > MAX_REOPENED:
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
            end_name = end_name.lower()
            _close(stack, end_name)
            _end(elements, active, end_name)
    return depth, attributes, tags, reopened


#: The number of the document's body, which is always open.
BODY = -1


class _Elements(list):
    """The open elements, ``(name, number)``, innermost last, with the set of their numbers
    and how many of each name are open: a start tag asks which formatting elements are still
    open, and an end tag whether its element is, without walking the list."""

    def __init__(self):
        super().__init__()
        self.numbers = {BODY}
        self.names = collections.Counter()
        #: Whether any closed since the active formatting elements were last looked at.
        self.closed = False

    def push(self, name, number):
        self.append((name, number))
        self.numbers.add(number)
        self.names[name] += 1

    def close_from(self, index):
        for name, number in self[index:]:
            self.numbers.discard(number)
            self.names[name] -= 1
        del self[index:]
        self.closed = True


def _start(elements, active, name, tag, number):
    """A start tag, as a parser's open elements and active formatting elements take it: the
    characters of the formatting start tags it reopens (those a closed element closed before
    their own end tag), inside itself (or, void, inside the innermost open element)."""
    if name in VOID:
        inside = elements[-1][1] if elements else BODY
    else:
        if name in CLOSES_P:
            _pop_through(elements, "p", SCOPE_OF["p"])
        if name in ("li", "dd", "dt"):
            _pop_through(elements, name, SCOPE_OF[name])
        elif elements and elements[-1][0] in IMPLIED_END and elements[-1][0] in (name, "option"):
            # Another of the same (`<rt>x<rt>y`), or an option before an option or optgroup:
            # closed, as the depth's stack closes them (open, they grew the list without end).
            elements.close_from(len(elements) - 1)
        inside = number
    characters = 0
    if elements.closed:  # else none can have been closed since they were last reopened
        elements.closed = False
        for element in active:
            if element[2] not in elements.numbers:
                characters += len(element[1])
                element[2] = inside
    if name in FORMATTING:
        same = [index for index, element in enumerate(active) if element[:2] == [name, tag]]
        if len(same) >= IDENTICAL_FORMATTING:  # the parser's "Noah's Ark" clause
            del active[same[0]]
        active.append([name, tag, number])
    if name not in VOID:
        elements.push(name, number)
    return characters


def _end(elements, active, name):
    """An end tag: it closes its element and those open inside it; a formatting element's is
    no longer active (whether open or not)."""
    if name in FORMATTING:
        for index in range(len(active) - 1, -1, -1):
            if active[index][0] == name:
                del active[index]
                break
    _pop_through(elements, name)


def _pop_through(elements, name, scope=SCOPE):
    """Close the innermost open element ``name`` and every element open inside it, unless an
    element of ``scope`` is open inside it."""
    if not elements.names[name]:
        return
    for index in range(len(elements) - 1, -1, -1):
        if elements[index][0] == name:
            elements.close_from(index)
            return
        if elements[index][0] in scope:
            return


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
    depth, attributes, tags, reopened = shape(html)
    if depth > MAX_DEPTH:
        raise ValidationError(f"Elements nest deeper than {MAX_DEPTH} levels; at most {MAX_DEPTH}.")
    if attributes > MAX_ATTRIBUTES:
        raise ValidationError(
            f"An element has more than {MAX_ATTRIBUTES} attributes; at most {MAX_ATTRIBUTES}."
        )
    if tags > MAX_TAGS:
        raise ValidationError(f"More than {MAX_TAGS:,} tags; at most {MAX_TAGS:,}.")
    if reopened > MAX_REOPENED:
        raise ValidationError(
            f"Formatting elements (b, i, a...) left open where blocks close would be reopened"
            f" in each block after: more than {MAX_REOPENED:,} characters of tags; at most"
            f" {MAX_REOPENED:,}. Close them before the block that holds them ends."
        )
