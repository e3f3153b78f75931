"""Highlights of search hits: matched words in ``<mark>``, everything else HTML-escaped."""

import functools
import html
import re
import unicodedata

from .query import words_of
from .text import search_form

_WORD = re.compile(r"\w+")
#: A snippet's length at most, in characters, for each word of its window.
SNIPPET_CHARACTERS_PER_WORD = 10
_SUFFIXES = (
    "ations",
    "ation",
    "ings",
    "ing",
    "ions",
    "ion",
    "ies",
    "ers",
    "es",
    "ed",
    "er",
    "ly",
    "s",
)


@functools.lru_cache(maxsize=100_000)
def stem(word):
    """A light English stem, so a search for ``storm`` marks ``storms`` and ``stormed`` too, and
    ``collapse``, ``collapses`` and ``collapsed`` share one; accents folded, as the search
    indexes fold them (``cafe`` marks ``café``)."""
    word = _fold(word)
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= (3 if len(suffix) < 3 else 4):
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def _fold(text):
    """``text`` lowercase, in compatibility decomposition (NFKD) less its combining marks."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", text).lower() if not unicodedata.combining(c)
    )


@functools.lru_cache(maxsize=100_000)
def _stems_of(word):
    """The stems of ``word`` as the search index reads it: its own, and where NFKC makes it
    several words (``¼`` is ``1⁄4``, ``⑴`` is ``(1)``), each of theirs."""
    if word.isascii():
        return (stem(word),)
    return (stem(word), *(stem(part) for part in words_of(search_form(word))))


def _marked(word, stems):
    return not stems.isdisjoint(_stems_of(word))


#: Words of a text outside ASCII read one by one before the rest's distinct words are
#: stemmed (:func:`_marked_words`).
_READ_ONE_BY_ONE = 30
#: An ASCII word, or nothing.
_ASCII_WORD = re.compile(r"\w*", re.ASCII)
#: A letter or digit outside ASCII.
_NON_ASCII_WORD = re.compile(r"[^\W\x00-\x7f]")


def _regular_characters():
    """The letters and digits outside ASCII, in the blocks of European text, that fold
    (:func:`_fold`) to one ASCII letter or digit each (``é``, ``Ü``, ``²``) and are one word in
    the index's form (NFKC) too, so a word of them has one stem, that of its fold
    (:func:`_stems_of`); and the combining marks that folding drops from them."""
    regular, marks = [], set()
    for block in ((0x80, 0x250), (0x1E00, 0x1F00), (0x2000, 0x2070), (0x20A0, 0x20D0)):
        for code in range(*block):
            character = chr(code)
            folded = _fold(character)
            if not (character.isalnum() and len(folded) == 1 and folded.isascii()):
                continue
            if not folded.isalnum() or len(words_of(search_form(character))) != 1:
                continue
            regular.append(character)
            decomposed = unicodedata.normalize("NFKD", character)
            marks.update(c for c in decomposed if unicodedata.combining(c))
    return "".join(regular), "".join(sorted(marks))


#: Letters and digits outside ASCII read folded in place (:func:`_haystack`), and the marks
#: their decompositions hold.
_REGULAR, _MARKS = _regular_characters()
#: A letter or digit outside ASCII that is not read folded in place.
_IRREGULAR = re.compile(rf"[^\W\x00-\x7f{re.escape(_REGULAR)}]")
_FOLDED_MARK = re.compile(f"[{re.escape(_MARKS)}]")
#: A character outside ASCII that is no word's (punctuation, symbols, spaces, combining marks).
_NON_WORD = re.compile(r"[^\x00-\x7f\w]")


@functools.lru_cache(maxsize=1024)
def _candidates(stems):
    """A pattern finding, in lowercase text whose words are all ASCII, the words that may have
    one of ``stems`` (a frozenset): an ASCII word's stem is its lowercase cut after a suffix
    (a last ``e`` goes), so the stem begins it, or where ``ies`` became ``y``, the stem less
    its ``y``; a stem of other characters is no ASCII word's. A match may start inside a
    word, to be skipped (a pattern that begins with literal letters is found fastest). None
    when no word can have one of ``stems``.

    The whole stem, not one letter less: a short stem's (``art``) less a letter matched most
    words of a text (``are``, ``area``, ``army``), each then stemmed to be refused."""
    prefixes = sorted({s[:-1] if s.endswith("y") else s for s in stems if _ASCII_WORD.fullmatch(s)})
    if not prefixes:
        return None
    if "" in prefixes:
        return re.compile(r"\w+", re.ASCII)
    return re.compile(rf"(?:{'|'.join(map(re.escape, prefixes))})\w*", re.ASCII)


def _haystack(text):
    """``text`` as :func:`stem` reads a word, each character where it is in ``text``, where
    every word of it is then ASCII; else None. Its lowercase where every word is ASCII
    (English, whatever its punctuation); folded too (``Café`` is ``cafe``) where every letter
    outside ASCII folds to one (:data:`_REGULAR`: the Latin letters of French, Spanish or
    German, less ``œ``, ``æ``, ``ø`` and ``ß``), its other characters outside ASCII spaces, and
    no ``_`` joins words (outside ASCII, ``café_storm`` is read in the parts the index reads,
    and has ``storm``'s stem: read word by word)."""
    if text.isascii() or not _NON_ASCII_WORD.search(text):
        haystack = text.lower()
    elif "_" in text or _IRREGULAR.search(text):
        return None
    else:
        spaced = _NON_WORD.sub(" ", text)
        haystack = _FOLDED_MARK.sub("", unicodedata.normalize("NFKD", spaced)).lower()
    return haystack if len(haystack) == len(text) else None


def _marked_words(text, haystack, stems, start, end):
    """The words of ``text`` from ``start`` (a word's start) to ``end`` that ``stems`` mark, in
    order, as matches of ``_WORD``; lazily, as a snippet needs only the first and those near
    it. A word that ``end`` cuts is not one of them. ``haystack`` is :func:`_haystack`'s.

    A search hit's body runs to thousands of words, and a page highlights twenty. Where every
    word is ASCII, or folds to it letter by letter, a pattern finds the few words that may be
    marked in the haystack, and only those are stemmed. Elsewhere words are read one by one
    for the first :data:`_READ_ONE_BY_ONE`, then the rest's distinct words are stemmed once,
    and a text without another match (as most hits found by meaning alone are) is not read
    further.
    """
    if haystack is not None:
        pattern = _candidates(stems)
        if pattern is None:
            return
        for candidate in pattern.finditer(haystack, start):
            at = candidate.start()
            if at and (haystack[at - 1].isalnum() or haystack[at - 1] == "_"):
                continue  # inside a word
            word = _WORD.match(text, at)
            if word.end() > end:
                return
            if _marked(word.group(), stems):
                yield word
        return
    words = _WORD.finditer(text, start)
    for seen, word in enumerate(words, start=1):
        if word.end() > end:
            return
        if _marked(word.group(), stems):
            yield word
        if seen == _READ_ONE_BY_ONE:
            break
    else:
        return
    if word.end() >= end:  # the next word is past the end
        return
    rest = {other for other in set(_WORD.findall(text, word.end())) if _marked(other, stems)}
    if not rest:
        return
    for word in words:
        if word.end() > end:
            return
        if word.group() in rest:
            yield word


def highlight(text, terms, window=None):
    """``text`` escaped, with the words of ``terms`` marked.

    With ``window``, only about that many words around the first match (a snippet), with ``…``
    where text was cut; without a match, the start of the text.
    """
    stems = frozenset(stem(word) for term in terms for word in term.words)
    haystack = _haystack(text)
    start, end = (0, len(text)) if window is None else _snippet(text, haystack, stems, window)
    if window is not None and end - start > window * SNIPPET_CHARACTERS_PER_WORD:
        end = _cut(text, start, start + window * SNIPPET_CHARACTERS_PER_WORD)
    parts = ["…" if start > 0 else ""]
    position = start
    for word in _marked_words(text, haystack, stems, start, end):
        parts.append(html.escape(text[position : word.start()]))
        parts.append(f"<mark>{html.escape(word.group())}</mark>")
        position = word.end()
    parts.append(html.escape(text[position:end]))
    if end < len(text):
        parts.append("…")
    return "".join(parts)


def _cut(text, start, limit):
    """Where a snippet from ``start`` ends, at ``limit`` at most: after the last word that
    ends by then, or at ``limit`` itself in a run of text without spaces (Japanese, Chinese:
    a run is one word here, and a snippet of 30 of them was the whole body)."""
    ends = [word.end() for word in _WORD.finditer(text, start, limit + 1) if word.end() <= limit]
    return ends[-1] if ends and ends[-1] > start + (limit - start) // 2 else limit


def _snippet(text, haystack, stems, window):
    """``(start, end)`` of ``window`` words of ``text``: a third of them before its first
    match, or from its start when nothing matches."""
    lead = window // 3
    first = next(_marked_words(text, haystack, stems, 0, len(text)), None)
    if first is None:
        return 0, _end(text, 0, window)
    start, before = _lead(text, first.start(), lead)
    return start, _end(text, first.end(), window - before - 1)


def _lead(text, position, lead):
    """Where a snippet starts that shows ``lead`` words before ``position`` (a word's start),
    and how many words before it it shows: from the text's start when no more precede.

    The words are read back from ``position`` over a span that grows until it holds more than
    ``lead`` of them or reaches the start (one word can be a long run of Japanese)."""
    span = 16 * (lead + 1)
    while True:
        begin = max(0, position - span)
        before = list(_WORD.finditer(text, begin, position))
        if len(before) > lead:  # the first of them may be cut by the span: one more precedes
            return (before[-lead].start() if lead else position), lead
        if begin == 0:
            return 0, len(before)
        span *= 4


def _end(text, position, wanted):
    """Where a snippet ends that shows ``wanted`` more words from ``position`` (a word's end,
    or the text's start): after the last of them, or at the text's end when no word follows
    it."""
    words = _words_ahead(wanted).match(text, position)
    if words is None or not _WORD.search(text, words.end()):
        return len(text)
    return words.end()


@functools.lru_cache(maxsize=64)
def _words_ahead(count):
    """A pattern of ``count`` words and what precedes each (possessive: a word is never read
    as two)."""
    return re.compile(rf"(?:\W*+\w++){{{count}}}")
