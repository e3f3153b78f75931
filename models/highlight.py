"""Highlights of search hits: matched words in ``<mark>``, everything else HTML-escaped."""

import collections
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
    word = "".join(
        c for c in unicodedata.normalize("NFKD", word).lower() if not unicodedata.combining(c)
    )
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= (3 if len(suffix) < 3 else 4):
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


@functools.lru_cache(maxsize=100_000)
def _stems_of(word):
    """The stems of ``word`` as the search index reads it: its own, and where NFKC makes it
    several words (``¼`` is ``1⁄4``, ``⑴`` is ``(1)``), each of theirs."""
    if word.isascii():
        return (stem(word),)
    return (stem(word), *(stem(part) for part in words_of(search_form(word))))


def _marked(word, stems):
    return not stems.isdisjoint(_stems_of(word))


def highlight(text, terms, window=None):
    """``text`` escaped, with the words of ``terms`` marked.

    With ``window``, only about that many words around the first match (a snippet), with ``…``
    where text was cut; without a match, the start of the text.
    """
    stems = {stem(word) for term in terms for word in term.words}
    start, end = (0, len(text)) if window is None else _snippet(text, stems, window)
    if window is not None and end - start > window * SNIPPET_CHARACTERS_PER_WORD:
        end = _cut(text, start, start + window * SNIPPET_CHARACTERS_PER_WORD)
    parts = ["…" if start > 0 else ""]
    position = start
    for word in _WORD.finditer(text, start):
        if word.end() > end:  # past the snippet, or a word it cuts: not marked
            break
        if _marked(word.group(), stems):
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


def _snippet(text, stems, window):
    """``(start, end)`` of ``window`` words of ``text``: a third of them before its first
    match, or from its start when nothing matches.

    Words are read one by one up to the first match, and up to the end of the snippet: a
    search hit's body runs to thousands of words. Where none of the first ``window`` words
    matches, the rest's distinct words are stemmed once instead, and a text without a match
    (as most hits found by meaning alone are) is not read word by word at all.
    """
    lead = window // 3
    words = _WORD.finditer(text)
    kept = collections.deque(maxlen=lead + 1)  # the first match and the words before it
    matched, rest = False, None
    for seen, word in enumerate(words, start=1):
        kept.append(word)
        if _marked(word.group(), stems) if rest is None else (word.group() in rest):
            matched = True
            break
        if seen == window:
            rest = {
                other for other in set(_WORD.findall(text, word.end())) if _marked(other, stems)
            }
            if not rest:
                break
    if not matched:
        words, kept, seen = _WORD.finditer(text), [], 0
    start = kept[0].start() if seen > len(kept) else 0
    last = kept[-1] if kept else None
    wanted = window - len(kept)
    for word in words:
        if wanted == 0:  # a word after the snippet: it ends with the last one
            return start, last.end()
        last = word
        wanted -= 1
    return start, len(text)
