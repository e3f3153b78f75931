"""Plain text work on articles: slugs, plain text from HTML, excerpts, word counts."""

import functools
import html
import math
import re
import unicodedata
from html.parser import HTMLParser

WORDS_PER_MINUTE = 230
#: English function words: too common to say what a text is about (related articles' words),
#: and, capitalised after initials, the start of a sentence (summaries' sentences).
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "new",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "said",
        "same",
        "says",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "one",
        "two",
        "three",
        "first",
        "last",
        "year",
        "years",
        "week",
        "day",
        "days",
        "time",
        "people",
        "told",
        "according",
        "could",
        "since",
        "still",
        "while",
        "raise",
        "raises",
        "raised",
        "rise",
        "rises",
        "rising",
        "rose",
        "says",
        "warn",
        "warns",
        "warned",
        "plan",
        "plans",
        "call",
        "calls",
        "called",
        "make",
        "makes",
        "made",
        "take",
        "takes",
        "took",
        "get",
        "gets",
        "set",
        "sets",
        "show",
        "shows",
        "showed",
        "expect",
        "expects",
        "expected",
        "amid",
        "over",
        "under",
        "near",
        "across",
        "every",
        "after",
        "before",
        "again",
        "many",
        "much",
        "more",
        "most",
        "other",
        "another",
        "high",
        "higher",
        "highest",
        "low",
        "lower",
        "lowest",
        "big",
        "bigger",
        "small",
        "smaller",
        "still",
        "even",
        "back",
        "well",
        "good",
        "bad",
        "long",
        "large",
        "largest",
        "less",
        "least",
        "near",
        "already",
        "yet",
        "ago",
        "der",
        "die",
        "das",
        "und",
        "ein",
        "eine",
        "le",
        "la",
        "les",
        "des",
        "une",
        "un",
        "el",
        "los",
        "las",
        "del",
        "por",
        "para",
        "con",
    ]
)
#: Runs of CJK characters, read (and counted as "words") one character each.
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
_WORD = re.compile(r"\w+", re.UNICODE)
_BLOCK_TAGS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr"}
#: Tags as the sanitizer writes them (lowercase names, attribute values in double quotes, no
#: ``<`` in text): those of block elements, and any.
_ATTRIBUTES = r'(?>[^>"]+|"[^"]*")*'
_SANITIZED_BLOCK_TAG = re.compile(
    rf"</?(?:{'|'.join(sorted(_BLOCK_TAGS))})(?=[\s/>]){_ATTRIBUTES}>"
)
_SANITIZED_TAG = re.compile(rf"</?[a-z][a-z0-9]*{_ATTRIBUTES}>")


#: Latin letters that Unicode does not decompose into an ASCII letter and marks, as they are
#: written without them: German ß, Danish and Norwegian æ and ø, French œ, Polish ł, Croatian
#: đ, Icelandic ð and þ, Turkish ı, Maltese ħ, Sámi ŧ and ŋ.
LATIN_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "TH",
        "ı": "i",
        "ħ": "h",
        "Ħ": "H",
        "ŧ": "t",
        "Ŧ": "T",
        "ŋ": "ng",
        "Ŋ": "NG",
    }
)


def search_form(text):
    """``text`` as the search indexes hold it and queries are read: Unicode's compatibility
    form (NFKC). A ligature (``ﬂood``), full-width or half-width letters (``ＡＩ``, ``ﾃﾚﾋﾞ``),
    circled and superscript digits are the plain letters and digits (``flood``, ``AI``,
    ``テレビ``), so each spelling finds the other, on both databases: SQLite's tokenizer keeps
    them as they are, and PostgreSQL's ``unaccent`` maps only some."""
    return unicodedata.normalize("NFKC", text)


#: What a slug does not hold (a run of it becomes one ``-``), and a run of dashes.
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_DASHES = re.compile("-+")


def slugify(text, max_length=80):
    """A lowercase ASCII slug of ``text`` (``"Hello, World!"`` -> ``"hello-world"``,
    ``"Straße in Łódź"`` -> ``"strasse-in-lodz"``), maybe empty."""
    latin = unicodedata.normalize("NFKD", text.translate(LATIN_LETTERS))
    ascii_text = latin.encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


@functools.lru_cache(maxsize=4096)  # a batch of 200 articles names the same few tags
def tag_slug(name, max_length=80):
    """A tag's slug: the ASCII slug of its name (:func:`slugify`), or, for a name with no
    Latin letter or digit, its letters, marks and digits in their own script, lowercase,
    joined by ``-`` (``"Россия"`` -> ``"россия"``, ``"日本"`` -> ``"日本"``); empty when it has
    none of them (``"😀"``)."""
    slug = slugify(name, max_length)
    if slug:
        return slug
    kept = "".join(
        c if unicodedata.category(c)[0] in "LMN" else "-"
        for c in unicodedata.normalize("NFC", name).lower()
    )
    return _DASHES.sub("-", kept).strip("-")[:max_length].rstrip("-")


#: Names whose letters and digits are this short keep the ``+`` and ``#`` that follow them
#: ("C++", "C#", "F#"): there they make another name; after a word ("LGBTQ+") they do not.
SHORT_BASE = 2


def tag_name_key(name):
    """What two names of one tag share: their letters (in any script, without accents and
    modifier letters such as the ʻokina, case folded) and digits, in order, and the ``+`` or
    ``#`` that end a name of at most :data:`SHORT_BASE` of them. "Local News", "local-news",
    "#LocalNews" and "LOCAL NEWS" share one, as "Straße" and "Strasse" do; "C++" and "C#",
    "Łódź" and "Lodz" do not, though their slugs are the same."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    key = "".join(
        c for c in folded if unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lo") or c.isdigit()
    )
    suffix = re.search(r"[+#]+$", name.strip())
    if suffix and len(key) <= SHORT_BASE:
        key += suffix.group(0)
    return key


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(body_html):
    """Plain text of an HTML body, one paragraph per block element, blank lines between."""
    parser = _TextExtractor()
    parser.feed(body_html)
    parser.close()
    paragraphs = (" ".join(part.split()) for part in "".join(parser.parts).split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def sanitized_html_to_text(body_html):
    """What :func:`html_to_text` gives, for HTML the sanitizer wrote (``models.sanitize``),
    found by regular expressions instead of a parser: in time linear in the length and
    several times shorter, whatever the tags."""
    text = _SANITIZED_TAG.sub("", _SANITIZED_BLOCK_TAG.sub("\n\n", body_html))
    paragraphs = (" ".join(part.split()) for part in html.unescape(text).split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def text_to_html(body_text):
    """HTML paragraphs from plain text whose paragraphs are separated by blank lines."""
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", body_text))
    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs if p)


def word_count(text):
    """Words in ``text``; each CJK character counts as one word."""
    rest, runs = _CJK_RUN.subn(" ", text)
    cjk = len(text) - len(rest) + runs  # each run became one space
    return cjk + len(_WORD.findall(rest))


def reading_time_minutes(words):
    """Whole minutes to read ``words`` words, at least one for any text."""
    return max(1, math.ceil(words / WORDS_PER_MINUTE)) if words else 0


def make_excerpt(text, limit=280):
    """The first paragraph of ``text``, cut at a word boundary near ``limit`` characters."""
    first = text.strip().split("\n\n", 1)[0]
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0] if " " in first[:limit] else first[:limit]
    return cut.rstrip(",;:") + "…"
