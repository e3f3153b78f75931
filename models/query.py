"""The search query language, parsed here and compiled by each search backend.

Words are ANDed; ``"an exact phrase"``; ``a OR b``; ``-word`` or ``-"a phrase"`` excludes.
Anything else is read as plain words: punctuation, ``*``, ``NEAR(``, quotes left open and SQL
fragments never reach the engine as syntax, because only the words inside them are kept.
"""

import dataclasses
import re

MAX_TERMS = 32
_TOKEN = re.compile(r'(-?)"([^"]*)(?:"|$)|(\S+)')
_WORD = re.compile(r"\w+")


class QueryError(ValueError):
    """A query that cannot be searched, with a message for the client."""


@dataclasses.dataclass(frozen=True)
class Term:
    """One word, or a phrase of several words that must appear in order."""

    words: tuple

    @property
    def is_phrase(self):
        return len(self.words) > 1


@dataclasses.dataclass(frozen=True)
class ParsedQuery:
    #: Each clause must match; a clause matches when any of its terms does (OR).
    required: tuple
    #: No term here may match.
    excluded: tuple

    @property
    def terms(self):
        """Every positive term, for highlighting."""
        return [term for clause in self.required for term in clause]


def _words(text):
    return tuple(word.lower() for word in _WORD.findall(text))


def parse_query(text):
    """Parse ``text``; raise :class:`QueryError` when nothing in it can be searched for."""
    clauses, excluded = [], []
    join_next = False
    for match in _TOKEN.finditer(text):
        minus, phrase, bare = match.groups()
        if bare == "OR":
            join_next = bool(clauses)
            continue
        negative = bool(minus) or (bare is not None and bare.startswith("-") and len(bare) > 1)
        words = _words(phrase if phrase is not None else bare)
        if not words:
            continue
        term = Term(words)
        if negative:
            excluded.append(term)
        elif join_next:
            clauses[-1] = (*clauses[-1], term)
        else:
            clauses.append((term,))
        join_next = False
    if not clauses:
        if excluded:
            raise QueryError("A query needs at least one word to look for, not only exclusions.")
        raise QueryError("The query has no words to search for.")
    if sum(len(c) for c in clauses) + len(excluded) > MAX_TERMS:
        raise QueryError(f"A query may have at most {MAX_TERMS} terms.")
    return ParsedQuery(tuple(clauses), tuple(excluded))
