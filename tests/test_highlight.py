import html
import random

from models.highlight import _REGULAR, _WORD, _fold, _haystack, _stems_of, highlight, stem
from models.query import Term


def straightforward(text, terms, window=None):
    """The highlight as first written: every word of the text listed, then the snippet cut
    (to 10 characters a word of the window at most)."""
    stems = {stem(word) for term in terms for word in term.words}
    words = list(_WORD.finditer(text))
    start, end = 0, len(text)
    if window is not None and words:
        first = next((i for i, w in enumerate(words) if stem(w.group()) in stems), 0)
        lo = max(0, first - window // 3)
        hi = min(len(words), lo + window)
        start = words[lo].start() if lo > 0 else 0
        end = words[hi - 1].end() if hi < len(words) else len(text)
        limit = start + window * 10  # at most 10 characters a word: cut after a word, or in one
        if end > limit:
            ends = [w.end() for w in words if start < w.end() <= limit]
            end = ends[-1] if ends and ends[-1] > start + window * 5 else limit
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
        # English with punctuation outside ASCII, and words a stem begins but is not
        "STORMS",
        "brainstorm",
        "storm1",
        "’",
        " — ",
        "İstanbul",
        "a" * 200,  # a long word: the words before a match are read back over a growing span
        # stems that end in y, short stems, and words a stem less a letter begins
        "stories",
        "story",
        "cry",
        "cries",
        "art",
        "arts",
        "are",
        "army",
        "created",
        "creating",
        "create",
        # letters that fold to ASCII ones (French, German, Spanish), and some that do not
        "Café",
        "cafés",
        "CAFÉ",
        "naïve",
        "x²",
        "x2",
        "Straße",
        "ﬁre",
        "œuvre",
        "…",
        "🙂",
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
    # Outside ASCII, a word is read in the parts the index reads: "Café_storm" is "café" and
    # "storm" there.
    marked = highlight("Café_storm and storms", [Term(("storm",))])
    assert marked == "<mark>Café_storm</mark> and <mark>storms</mark>"


def test_letters_folded_in_place_fold_to_one_each():
    """Text whose words fold to ASCII is read folded, each character where it was: every letter
    or digit folded in place folds to one ASCII one, and a word of them has one stem."""
    assert {"é", "É", "ü", "ñ", "ç", "²", "İ"} <= set(_REGULAR)
    assert not {"ß", "ø", "œ", "ﬁ", "½", "’", "\u0301"} & set(_REGULAR)
    for character in _REGULAR:
        folded = _fold(character)
        assert len(folded) == 1 and folded.isascii() and folded.isalnum(), character
        word = f"ab{character}cd"
        assert set(_stems_of(word)) == {stem(word)}, character


def test_text_is_read_folded_in_place_where_every_letter_folds_to_one():
    assert _haystack("Café Müller, İstanbul") == "cafe muller, istanbul"
    # Other characters outside ASCII (an ellipsis, quotes, an emoji) are spaces there.
    assert _haystack("Déjà vu… « là » 🙂") == "deja vu    la    "
    assert _haystack("Storm’s «end»") == "storm’s «end»"  # words all ASCII: lowercase only
    for text in ("Straße", "cœur", "x ¼", "café_storm", "東京"):
        assert _haystack(text) is None, text  # read word by word


def test_a_snippet_of_text_without_spaces_is_cut_too():
    """Japanese and Chinese runs between punctuation are one word each: a window of 30 words
    showed a body of 600 characters whole."""
    text = "東京都は大雨のため避難指示を出した" * 40  # one run of 680 characters
    snippet = highlight(text, [Term(("flood",))], window=30)
    assert snippet == text[:300] + "…"
    words = " ".join(["Hochwasserschutzmaßnahmen"] * 30)  # 30 long words: cut after a word
    assert highlight(words, [Term(("flood",))], window=30) == words[: 11 * 26 - 1] + "…"


def test_words_are_marked_as_the_index_reads_them():
    # The index reads text in NFKC: "breaking" found "𝐁𝐫𝐞𝐚𝐤𝐢𝐧𝐠" (mathematical bold) and
    # "harbour" "ℌarbour", which were not marked (lowercased before NFKD, they kept their
    # capitals); "¼" is the words "1" and "4" there.
    terms = [Term(("breaking",)), Term(("harbour",)), Term(("1", "4"))]
    assert highlight("𝐁𝐫𝐞𝐚𝐤𝐢𝐧𝐠 news", terms) == "<mark>𝐁𝐫𝐞𝐚𝐤𝐢𝐧𝐠</mark> news"
    marked = highlight("Price ¼ off and ℌarbour.", terms)
    assert marked == "Price <mark>¼</mark> off and <mark>ℌarbour</mark>."
    snippet = highlight("Words before. " * 20 + "Then ¼ off.", terms, window=6)
    assert "<mark>¼</mark>" in snippet
