"""Validate the evaluation set: python3 tests/eval/check.py (exits non-zero on the first problems found)."""

import collections
import re
import sys
from datetime import date

import dataset
from dataset import SOURCES

TAGS = set(
    [
        "politics",
        "economy",
        "trade",
        "technology",
        "climate",
        "health",
        "sport",
        "science",
        "business",
        "culture",
        "world",
        "energy",
        "transport",
        "space",
        "law",
        "cities",
        "food",
        "media",
        "crime",
    ]
)
FIELDS = [
    "key",
    "source",
    "language",
    "title",
    "excerpt",
    "body_text",
    "published_at",
    "tags",
    "story",
    "duplicate_of",
]
errors = []
arts = dataset.articles()
by_key = {a["key"]: a for a in arts}
if len(by_key) != len(arts):
    errors.append("duplicate keys")
for a in arts:
    k = a["key"]
    if list(a) != FIELDS:
        errors.append(f"{k}: fields {list(a)}")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", k):
        errors.append(f"{k}: key format")
    if SOURCES.get(a["source"]) != a["language"]:
        errors.append(f"{k}: source/language")
    if not re.fullmatch(r"2026-\d\d-\d\dT\d\d:\d\d:\d\dZ", a["published_at"]):
        errors.append(f"{k}: date")
    if not a["tags"] or set(a["tags"]) - TAGS:
        errors.append(f"{k}: tags {a['tags']}")
    paras = a["body_text"].split("\n\n")
    size = len(a["body_text"]) / 2.6 if a["language"] == "ja" else len(a["body_text"].split())
    if not 4 <= len(paras) <= 8 or not 150 <= size <= 350:
        errors.append(f"{k}: {len(paras)} paragraphs, size {size:.0f}")
    d = a["duplicate_of"]
    if d and (
        d not in by_key
        or by_key[d]["story"] != a["story"]
        or by_key[d]["language"] != a["language"]
        or by_key[d]["source"] == a["source"]
    ):
        errors.append(f"{k}: bad duplicate_of")
langs = collections.Counter(a["language"] for a in arts)
for lang, least in {"en": 12, "de": 12, "fr": 12, "es": 12, "ja": 8}.items():
    if langs[lang] < least:
        errors.append(f"only {langs[lang]} {lang} articles")
stories = collections.defaultdict(list)
for a in arts:
    if a["story"]:
        stories[a["story"]].append(a)
for s, members in stories.items():
    days = sorted(m["published_at"][:10] for m in members)
    span = (date.fromisoformat(days[-1]) - date.fromisoformat(days[0])).days
    if (
        len(members) < 3
        or len({m["language"] for m in members}) < 2
        or len({m["source"] for m in members}) < 3
        or span > 4
    ):
        errors.append(f"story {s}: too few articles, languages or sources, or {span} days apart")
queries = dataset.search_queries()
for q in queries:
    if (
        len(q["relevant"]) < 2
        or set(q["relevant"]) - set(by_key)
        or set(q["relevant"].values()) - {1, 2}
    ):
        errors.append(f"query {q['q']!r}: relevant {q['relevant']}")
    for k in q["relevant"]:
        if by_key.get(k, {}).get("story") is None:
            errors.append(f"query {q['q']!r}: decoy {k} labelled relevant")
    if set(q.get("not_relevant", ())) & set(q["relevant"]) or set(q.get("not_relevant", ())) - set(
        by_key
    ):
        errors.append(f"query {q['q']!r}: not_relevant {q['not_relevant']}")
    other = sum(by_key.get(k, {}).get("language") != q["language"] for k in q["relevant"])
    if q.get("kind") == "cross-language" and other * 2 <= len(q["relevant"]):
        errors.append(f"query {q['q']!r}: most relevant articles share its language")
questions = dataset.questions()
for q in questions:
    body = by_key.get(q["article"], {}).get("body_text", "")
    if not 1 <= len(q["answers"]) <= 3 or any(s not in body for s in q["answers"]):
        errors.append(f"question {q['q']!r}: answer not verbatim in {q['article']}")
print(
    f"{len(arts)} articles {dict(langs)}; {len(stories)} stories; "
    f"{sum(1 for a in arts if not a['story'])} decoys; {sum(1 for a in arts if a['duplicate_of'])} duplicates; "
    f"{len(queries)} queries; {len(questions)} questions in {sorted({q['language'] for q in questions})}"
)
print("\n".join(errors) or "all checks pass")
sys.exit(1 if errors else 0)
