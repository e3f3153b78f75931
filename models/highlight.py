"""Highlights of search hits: matched words in ``<mark>``, everything else HTML-escaped."""

import functools
import html
import re

_WORD = re.compile(r"\w+")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ies", "ers", "es", "ed", "er", "ly", "s")


@functools.lru_cache(maxsize=100_000)
def stem(word):
    """A light English stem, so a search for ``storm`` marks ``storms`` and ``stormed`` too, and
    ``collapse``, ``collapses`` and ``collapsed`` share one."""
    word = word.lower()
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= (3 if len(suffix) < 3 else 4):
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def highlight(text, terms, window=None):
    """``text`` escaped, with the words of ``terms`` marked.

    With ``window``, only about that many words around the first match (a snippet), with ``…``
    where text was cut; without a match, the start of the text.
    """
    stems = {stem(word) for term in terms for word in term.words}
    words = list(_WORD.finditer(text))
    start, end = 0, len(text)
    if window is not None and words:
        first = next((i for i, w in enumerate(words) if stem(w.group()) in stems), 0)
        lo = max(0, first - window // 3)
        hi = min(len(words), lo + window)
        start = words[lo].start() if lo > 0 else 0
        end = words[hi - 1].end() if hi < len(words) else len(text)
    parts = ["…" if start > 0 else ""]
    position = start
    for word in words:
        if word.start() < start or word.end() > end:
            continue
        if stem(word.group()) in stems:
            parts.append(html.escape(text[position : word.start()]))
            parts.append(f"<mark>{html.escape(word.group())}</mark>")
            position = word.end()
    parts.append(html.escape(text[position:end]))
    if end < len(text):
        parts.append("…")
    return "".join(parts)
