"""Measures of the semantic features on the evaluation set, for keyword-only methods (those
before embeddings) and the new ones: related precision@3, cluster purity and clusters per
story, wire copies found, answers, key points, and search nDCG@10 by words, by meaning and
both. Used by ``bench/semantic_eval.py`` and by ``tests/test_semantic_quality.py``.

:func:`load` writes the 80 articles through the write path in publication order into the
bound, empty database and lets the worker's work run as it would (embedding, stories, related
lists); the measures then read what is stored, as the API shows it.
"""

import collections
import datetime
import math

from models import (
    Article,
    Source,
    answers,
    embeddings,
    hybrid,
    ingest,
    reading,
    related,
    search,
    stories,
)
from models.embeddings import EmbeddingQueue
from models.query import QueryError, parse_query
from models.related import RelatedQueue
from models.summarize import summarize

from .dataset import SOURCES, articles, questions, search_queries

FIELDS = ("source", "language", "title", "excerpt", "body_text", "tags")


def load(at_once=False):
    """Write the evaluation set into the bound database, as clients and the worker would (the
    worker taking each article as it comes, or, ``at_once``, all of them in one batch, as
    after an import); returns ``{key: article id}``."""
    for slug, language in SOURCES.items():
        Source.create(slug=slug, name=slug, language=language)
    ids = {}
    for item in sorted(articles(), key=lambda a: (a["published_at"], a["key"])):
        data = {name: item[name] for name in FIELDS}
        data["external_id"] = item["key"]
        data["published_at"] = datetime.datetime.fromisoformat(item["published_at"][:-1])
        ids[item["key"]] = ingest.save(data).article.id
        if not at_once:
            _work()
    _work(len(ids))
    assert not EmbeddingQueue.select().exists() and not RelatedQueue.select().exists()
    return ids


def _work(batch=embeddings.BATCH):
    while stories.refresh_queued(batch):
        pass
    while related.refresh_queued():
        pass


def stories_of(ids):
    """The stories the articles ``ids`` (``{key: id}``) are in, as sets of keys."""
    key_of = {article_id: key for key, article_id in ids.items()}
    found = collections.defaultdict(set)
    for article_id, story_id in Article.select(Article.id, Article.story).tuples():
        if story_id is not None:
            found[story_id].add(key_of[article_id])
    return {frozenset(keys) for keys in found.values()}


def _story_of(item):
    return item["story"] or item["key"]


def related_precision(ids, method):
    """Mean precision@3 of related lists over the articles of stories (relevant: the same
    story; the best possible is 1). ``method``: ``keyword`` (computed now, as before
    embeddings) or ``semantic`` (the stored lists, as ``/related`` shows them)."""
    items = articles()
    story = {ids[a["key"]]: _story_of(a) for a in items}
    sizes = collections.Counter(story.values())
    precisions = []
    for item in items:
        if not item["story"]:
            continue
        article_id = ids[item["key"]]
        if method == "keyword":
            top = [related_id for related_id, _, _ in related.compute_keywords(article_id)[:3]]
        else:
            top = [row.id for row in reading.related(article_id, 3)]
        hits = sum(story.get(other) == item["story"] for other in top)
        precisions.append(hits / min(3, sizes[item["story"]] - 1))
    return sum(precisions) / len(precisions)


def _keyword_clusters(ids):
    """Stories as the keyword method tells them: articles linked by its ``same_story`` reason,
    joined transitively."""
    parent = {article_id: article_id for article_id in ids.values()}

    def root(node):
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for article_id in ids.values():
        for other, _, reasons in related.compute_keywords(article_id):
            if "same_story" in reasons:
                parent[root(other)] = root(article_id)
    return {article_id: root(article_id) for article_id in ids.values()}


def clusters(ids, method):
    """``(purity, clusters per story)``: purity is the share of articles in the predicted
    cluster's majority story (unclustered articles are clusters of their own; 1 is best);
    clusters per story is how many predicted clusters a story is spread over (1 is best)."""
    items = articles()
    if method == "keyword":
        predicted = _keyword_clusters(ids)
    else:
        stored = dict(Article.select(Article.id, Article.story).tuples())
        predicted = {i: ("story", stored[i]) if stored[i] else ("alone", i) for i in ids.values()}
    groups = collections.defaultdict(list)
    for item in items:
        groups[predicted[ids[item["key"]]]].append(_story_of(item))
    purity = sum(collections.Counter(g).most_common(1)[0][1] for g in groups.values()) / len(items)
    spread = collections.defaultdict(set)
    for item in items:
        if item["story"]:
            spread[item["story"]].add(predicted[ids[item["key"]]])
    return purity, sum(len(s) for s in spread.values()) / len(spread)


def duplicates(ids):
    """``(wire copies marked as copies of their original, articles wrongly marked)``."""
    items = articles()
    marked = dict(Article.select(Article.id, Article.duplicate_of).tuples())
    found = sum(marked[ids[a["key"]]] == ids[a["duplicate_of"]] for a in items if a["duplicate_of"])
    wrong = sum(1 for a in items if not a["duplicate_of"] and marked[ids[a["key"]]] is not None)
    return found, wrong


def answer_accuracy(ids, method):
    """The share of questions whose best sentence is a labelled answer. ``keyword``: the
    sentence that uses most of the question's (rare) words; ``semantic``: ``answers``."""
    correct = 0
    for question in questions():
        article = Article.get_by_id(ids[question["article"]])
        if method == "keyword":
            sentences = answers.sentences_of(reading.bodies([article.id])[article.id][1])
            scores = answers.word_scores(question["q"], sentences)
            best = sentences[int(scores.argmax())]
        else:
            ((_, best, _),) = answers.answers(article, question["q"], limit=1)
        correct += best in question["answers"]
    return correct / len(questions())


def key_points(ids, method, count=5):
    """``(sane, facts)``: sane is the share of articles whose key points are distinct body
    sentences, verbatim, in the article's order (1 is required); facts is the share of the
    labelled answers (facts worth asking about) among the key points of their article.
    ``keyword``: TextRank summaries (``/summary``); ``semantic``: ``key_points``."""
    items = articles()
    chosen = {}
    sane = 0
    for item in items:
        article = Article.get_by_id(ids[item["key"]])
        body = reading.bodies([article.id])[article.id][1]
        if method == "keyword":
            points = summarize(body, count)
        else:
            points = [sentence for _, sentence, _ in answers.key_points(article, count)[0]]
        sentences = answers.sentences_of(body)
        positions = [sentences.index(p) if p in sentences else -1 for p in points]
        sane += (
            bool(points)
            and -1 not in positions
            and positions == sorted(set(positions))
            and len(points) == min(count, len(sentences))
        )
        chosen[item["key"]] = set(points)
    labelled = [(q["article"], a) for q in questions() for a in q["answers"]]
    facts = sum(answer in chosen[key] for key, answer in labelled) / len(labelled)
    return sane / len(items), facts


def search_ndcg(ids, mode, depth=10):
    """Mean nDCG@10 of the labelled queries, searched in ``mode`` (``keyword``, ``semantic``
    or ``hybrid``) as ``GET /v1/search`` searches them, by relevance."""
    keys = {article_id: key for key, article_id in ids.items()}
    total = 0.0
    queries = search_queries()
    for item in queries:
        try:
            parsed = parse_query(item["q"])
        except QueryError:
            continue  # nothing to search for: scores 0
        if mode == "keyword":
            found = [row[0] for row in search.search(parsed).limit(depth)]
        else:
            found = [hit.id for hit in hybrid.ranked(parsed, mode)[:depth]]
        gains = [item["relevant"].get(keys.get(article_id), 0) for article_id in found]
        ideal = sorted(item["relevant"].values(), reverse=True)[:depth]
        total += _dcg(gains) / _dcg(ideal)
    return total / len(queries)


def _dcg(gains):
    return sum((2**gain - 1) / math.log2(rank + 2) for rank, gain in enumerate(gains))


def measure(ids):
    """Every measure, for both methods: ``{measure: {"keyword": value, "semantic": value}}``."""
    result = {}
    for method in ("keyword", "semantic"):
        purity, spread = clusters(ids, method)
        sane, facts = key_points(ids, method)
        values = {
            "related_precision_at_3": related_precision(ids, method),
            "cluster_purity": purity,
            "clusters_per_story": spread,
            "answer_accuracy": answer_accuracy(ids, method),
            "key_points_sane": sane,
            "key_points_facts": facts,
        }
        for name, value in values.items():
            result.setdefault(name, {})[method] = round(value, 4)
    result["search_ndcg_at_10"] = {
        "keyword": round(search_ndcg(ids, "keyword"), 4),
        "semantic": round(search_ndcg(ids, "semantic"), 4),
        "hybrid": round(search_ndcg(ids, "hybrid"), 4),
    }
    found, wrong = duplicates(ids)
    result["wire_copies_found"] = {"semantic": found}
    result["wrongly_marked_copies"] = {"semantic": wrong}
    return result
