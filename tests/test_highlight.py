import html
import random

from models.highlight import _WORD, highlight, stem
from models.query import Term


def straightforward(text, terms, window=None):
    """The highlight as first written: every word of the text listed, then the snippet cut."""
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


def test_snippet_around_the_first_match():
    text = (
        " ".join(f"w{n}" for n in range(40))
        + " storms "
        + " ".join(f"v{n}" for n in range(40))
        + "."
    )
    snippet = highlight(text, [Term(("storm",))], window=9)
    assert snippet == "…w37 w38 w39 <mark>storms</mark> v0 v1 v2 v3 v4…"


def test_snippet_without_a_match_is_the_start():
    assert highlight("One two three four.", [Term(("storm",))], window=2) == "One two…"
    assert highlight("One two.", [Term(("storm",))], window=2) == "One two."
    assert highlight("", [Term(("storm",))], window=2) == ""


def test_same_as_reading_every_word():
    rng = random.Random(7)
    vocabulary = [
        "storm",
        "storms",
        "Stormed",
        "coast",
        "the",
        "studies",
        "study",
        "<b>",
        "&",
        "élan",
        "x",
    ]
    for _ in range(3000):
        text = "".join(
            rng.choice(vocabulary) + rng.choice([" ", ", ", ".\n", "-", ""])
            for _ in range(rng.randrange(60))
        )
        terms = [Term((rng.choice(vocabulary),)) for _ in range(rng.randrange(1, 3))]
        for window in (None, 1, 2, 3, 7, 30):
            assert highlight(text, terms, window) == straightforward(text, terms, window), (
                text,
                terms,
                window,
            )


def test_accents_are_folded_as_the_indexes_fold_them():
    terms = [Term(("cafe",)), Term(("muller",))]
    assert highlight("Café Müller opens", terms) == "<mark>Café</mark> <mark>Müller</mark> opens"
    assert highlight("Cafe opens", [Term(("café",))]) == "<mark>Cafe</mark> opens"
