"""Extractive summaries: TextRank over sentence similarity, with position and length priors.

Plain Python, nothing downloaded. Sentences come back verbatim and in their original order.
"""

import itertools
import math
import re

from .highlight import stem
from .text import STOPWORDS

METHOD = "textrank-v2"
MAX_SENTENCES = 300
DAMPING = 0.85
#: Weights of the centrality score (TextRank), the position prior and the length prior.
MIX = {"rank": 0.45, "position": 0.45, "length": 0.10}

ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "mt",
    "ft",
    "gen",
    "gov",
    "sen",
    "rep",
    "lt",
    "col",
    "capt",
    "sgt",
    "rev",
    "hon",
    "inc",
    "ltd",
    "co",
    "corp",
    "plc",
    "no",
    "nos",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "approx",
    "dept",
    "est",
    "fig",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "a.m",
    "p.m",
    "u.s",
    "u.k",
    "u.n",
    "e.u",
}
#: Marks that end a sentence: Latin ones, Arabic's question mark and Urdu's full stop, the
#: dandas of Devanagari, then CJK's (which need no space after them).
_TERMINATOR = re.compile(r'([.!?\u061f\u06d4\u0964\u0965]+["”’\')\]]*|[。！？]+[」』”’）)]*)')
#: Initials joined by full stops (``J.P``, ``e.g``), before a last one.
_INITIALS = re.compile(r"^(?:[^\W\d_]\.)+[^\W\d_]$")
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
#: Lines that are not part of the story: captions, credits, calls to action.
_BOILERPLATE = re.compile(
    r"^(photo|photograph|image|picture|video|caption|credit|file photo|graphic|illustration)"
    r"s?\b[:\s]|^\(?(reuters|ap|afp|dpa)\)?\s*$|^(read more|related|advertisement|subscribe|"
    r"sign up|follow us|click here|share this|all rights reserved|copyright|©)",
    re.IGNORECASE,
)
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "said",
        "says",
        "she",
        "that",
        "the",
        "their",
        "they",
        "this",
        "to",
        "was",
        "were",
        "which",
        "who",
        "will",
        "with",
        "would",
    ]
)


#: Quotation marks that open a quotation, and the mark that closes each.
_QUOTES = {"„": "“", "“": "”", "«": "»", "‹": "›", "「": "」", "『": "』"}


def _quoted(paragraph):
    """For each position of ``paragraph``, whether it lies inside a quotation opened by a
    paired mark (all False when the marks do not pair up)."""
    inside, expected = [], []
    for character in paragraph:
        if expected and character == expected[-1]:
            expected.pop()
        elif character in _QUOTES:
            expected.append(_QUOTES[character])
        inside.append(bool(expected))
    return [False] * len(paragraph) if expected else inside


def split_sentences(text):
    """Sentences of ``text`` as they stand in it (stripped), paragraph breaks ending sentences.

    A full stop after a known abbreviation (``Mr.``, ``U.S.``), an initial (``J.``) or inside a
    number does not end a sentence, nor does one inside a quotation in paired marks (``„…“``,
    ``「…」``); CJK sentence marks end one without a following space.
    """
    sentences = []
    for paragraph in re.split(r"\n\s*\n|\n", text):
        start = 0
        quoted = _quoted(paragraph)
        for match in _TERMINATOR.finditer(paragraph):
            end = match.end()
            if quoted[end - 1]:
                continue  # „Wolken verfälschen die Messungen. Mit …“, erklärt er.
            following = paragraph[end : end + 1]
            mark = match.group(1)
            cjk = mark[0] in "。！？"
            if not cjk and following and not following.isspace():
                continue  # "3.5", "U.S.A", "example.com"
            rest = paragraph[end:].lstrip()
            if mark[0] == "." and _is_abbreviation(paragraph[start : match.start()], rest):
                continue
            if not cjk and rest and rest[0].islower():
                continue  # "the U.S. economy": the next word goes on
            sentence = paragraph[start:end].strip()
            if sentence:
                sentences.append(sentence)
            start = end
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


def _is_abbreviation(before, after):
    """Whether the word ending ``before`` (a full stop follows it, then ``after``) is an
    abbreviation: a known one, an initial, initials joined by stops (``J.P.``); ``No.`` only
    before a number (``No. 5``), else it is the word "no" ending a sentence."""
    word = re.search(r"([\w.]+)$", before)
    if not word:
        return False
    token = word.group(1).lower().rstrip(".")
    if token == "no":
        return after[:1].isdigit()
    if _INITIALS.match(token) and token not in ABBREVIATIONS:
        following = re.match(r"\w+", after)
        # A function word after them opens the next sentence (``D.C. The``; ``J.P. Morgan``).
        return not (following and following.group(0).lower() in STOPWORDS)
    return token in ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def is_boilerplate(sentence):
    """Captions, credits and calls to action, which never belong in a summary; and sentences
    of fewer than four words, which belong in one only when nothing longer does
    (:func:`content_sentences`)."""
    return _is_marked(sentence) or (not _CJK.search(sentence) and len(_WORD.findall(sentence)) < 4)


def _is_marked(sentence):
    """A caption, credit or call to action by its words, or a shouted line."""
    if _BOILERPLATE.search(sentence.strip()):
        return True
    letters = [c for c in sentence if c.isalpha()]
    return len(letters) > 8 and all(c.isupper() for c in letters)


def content_sentences(text):
    """The sentences of ``text`` that a summary, an answer or a key point may be, verbatim, in
    order, each once: not boilerplate (:func:`is_boilerplate`); a brief whose sentences are
    all short keeps them, less what is marked as a caption, credit or call to action."""
    sentences = split_sentences(text)
    kept = [s for s in sentences if not is_boilerplate(s)] or [
        s for s in sentences if not _is_marked(s) and _WORD.search(s)
    ]
    return list(dict.fromkeys(kept))


def _tokens(sentence):
    if _CJK.search(sentence):
        characters = [c for c in sentence if _CJK.match(c)]
        return {a + b for a, b in itertools.pairwise(characters)}
    return {stem(w) for w in _WORD.findall(sentence.lower()) if w not in _STOP and len(w) > 1}


def _similarity(a, b):
    """TextRank's overlap similarity: shared words over the log of the sentence lengths."""
    shared = len(a & b)
    if not shared or len(a) < 2 or len(b) < 2:
        return 0.0
    return shared / (math.log(len(a)) + math.log(len(b)))


def _pagerank(weights):
    count = len(weights)
    totals = [sum(row) for row in weights]
    scores = [1.0 / count] * count
    for _ in range(50):
        updated = [
            (1 - DAMPING) / count
            + DAMPING
            * sum(weights[j][i] / totals[j] * scores[j] for j in range(count) if totals[j])
            for i in range(count)
        ]
        done = max(abs(x - y) for x, y in zip(updated, scores, strict=True)) < 1e-6
        scores = updated
        if done:
            break
    return scores


def summarize(text, count=3):
    """The ``count`` most central sentences of ``text``, in their original order."""
    sentences = content_sentences(text)[:MAX_SENTENCES]
    if len(sentences) <= count:
        return sentences
    tokens = [_tokens(s) for s in sentences]
    weights = [
        [_similarity(tokens[i], tokens[j]) if i != j else 0.0 for j in range(len(sentences))]
        for i in range(len(sentences))
    ]
    rank = _pagerank(weights)
    top_rank = max(rank) or 1.0
    scores = []
    for index, sentence in enumerate(sentences):
        position = 1 / (1 + index) ** 0.8  # news puts the essentials first
        size = len(_WORD.findall(sentence)) if not _CJK.search(sentence) else len(sentence) / 2
        length = 1.0 if 8 <= size <= 40 else 0.5
        scores.append(
            MIX["rank"] * rank[index] / top_rank
            + MIX["position"] * position
            + MIX["length"] * length
        )
    chosen = sorted(sorted(range(len(sentences)), key=lambda i: (-scores[i], i))[:count])
    return [sentences[i] for i in chosen]
