"""The search query language, parsed here and compiled by each search backend.

Words are ANDed (``a AND b`` says the same); ``"an exact phrase"``; ``a OR b``; ``-word`` or
``-"a phrase"`` excludes.
Anything else is read as plain words: punctuation, ``*``, ``NEAR(``, quotes left open and SQL
fragments never reach the engine as syntax, because only the words inside them are kept.

A query's shape is bounded by the ``MAX_*`` limits below, so that any query answers in bounded
time: what a search costs grows with its words, OR alternatives, exclusions and phrases, most
of all when they are common words (bench/README.md, "Search in bounded time").
"""

import dataclasses
import re

from .text import search_form

#: Words in all, each word of a phrase counted, excluded ones too.
MAX_WORDS = 32
#: Terms (words or phrases) joined by OR, all the query's alternatives together (``a OR b``: 2).
MAX_ALTERNATIVES = 6
#: Excluded terms (``-word``, ``-"a phrase"``).
MAX_EXCLUDED = 16
#: Words in one phrase.
MAX_PHRASE_WORDS = 8
_TOKEN = re.compile(r'(-?)"([^"]*)(?:"|$)|(\S+)')
_WORD = re.compile(r"[^\W_]+")  # letters and digits: both engines part words at "_"
#: The full-width and small forms of the syntax's quote and minus, read as those before the
#: query is cut into terms; each term is then read in NFKC alone, so a word that NFKC parts
#: (``don´t`` is ``don ́t``) stays one term.
_SYNTAX = str.maketrans({"\uff02": '"', "\ufe63": "-", "\uff0d": "-"})


class QueryError(ValueError):
    """A query that cannot be searched, with a message for the client."""


@dataclasses.dataclass(frozen=True)
class Term:
    """One word, or a phrase of several words that must appear in order; ``text``: what the
    client wrote of it (in NFKC), which PostgreSQL's parser reads as it read the documents
    (``covid-19``, ``3.5``, ``node.js``: one lexeme there, several words here)."""

    words: tuple
    text: str | None = None

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


def words_of(text):
    """The words of ``text`` as queries and the search indexes part it: runs of letters and
    digits, in lower case."""
    return tuple(word.lower() for word in _WORD.findall(text))


def parse_query(text):
    """Parse ``text``; raise :class:`QueryError` when nothing in it can be searched for.

    Each term is read in the form the search index holds (:func:`models.text.search_form`):
    ``ｆｌｏｏｄ`` is the word ``flood``, ``ＯＲ`` is ``OR``, and ``＂a phrase＂`` a phrase."""
    clauses, excluded = [], []
    join_next = False
    for match in _TOKEN.finditer(text.translate(_SYNTAX)):
        minus, phrase, bare = (part and search_form(part) for part in match.groups())
        if bare == "OR":
            join_next = bool(clauses)
            continue
        if bare == "AND":  # what words are anyway (it was a word the hits had to have)
            continue
        negative = bool(minus) or (bare is not None and bare.startswith("-") and len(bare) > 1)
        written = phrase if phrase is not None else bare.lstrip("-")
        words = words_of(written)
        if not words:
            continue
        term = Term(words, written)
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
    _check_shape(clauses, excluded)
    return ParsedQuery(tuple(clauses), tuple(excluded))


def _check_shape(clauses, excluded):
    """Raise :class:`QueryError`, saying what to change, for a query past one of the limits."""
    terms = [term for clause in clauses for term in clause] + excluded
    alternatives = sum(len(clause) for clause in clauses if len(clause) > 1)
    if alternatives > MAX_ALTERNATIVES:
        raise QueryError(
            f"A query may have at most {MAX_ALTERNATIVES} alternatives joined by OR; this one"
            f" has {alternatives}. Leave some out, or search for them in several queries."
        )
    if len(excluded) > MAX_EXCLUDED:
        raise QueryError(
            f"A query may exclude at most {MAX_EXCLUDED} words or phrases; this one excludes"
            f" {len(excluded)}. Leave some exclusions out."
        )
    longest = max(terms, key=lambda term: len(term.words))
    if len(longest.words) > MAX_PHRASE_WORDS:
        shown = " ".join(longest.words[:MAX_PHRASE_WORDS])
        raise QueryError(
            f"A phrase may have at most {MAX_PHRASE_WORDS} words; one has {len(longest.words)}"
            f' ("{shown} ..."). Quote a shorter part of it.'
        )
    words = sum(len(term.words) for term in terms)
    if words > MAX_WORDS:
        raise QueryError(
            f"A query may have at most {MAX_WORDS} words, a phrase's words and excluded ones"
            f" included; this one has {words}. Leave some out."
        )
