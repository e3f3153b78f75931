"""Search by words, by meaning, or both, merged by reciprocal rank fusion.

A keyword search ranks the articles that have the query's words (``models.search``, BM25 or
``ts_rank``); a semantic search ranks the articles whose vectors are nearest the query's
(``models.embeddings.nearest``), in any language the model covers. A hybrid search merges the
two rankings: an article at rank *r* of a ranking gains ``1 / (FUSION_K + r)`` from it, and the
hits are ordered by the sum. Ranks, not scores, are merged, so BM25 and cosine similarity never
need a common scale.

A hybrid or semantic search has at most :data:`HITS` hits (a keyword search pages through every
match): a semantic search the nearest so many, a hybrid search the best half of that from each
of its rankings. Both rankings take the same article filters; the query's exclusions
(``-word``) also take out hits found by meaning.
"""

import dataclasses
import datetime

from . import embeddings
from . import search as keyword
from .articles import Article

#: The modes of ``GET /v1/search``.
MODES = ("hybrid", "keyword", "semantic")
#: Reciprocal rank fusion's constant (the value of Cormack, Clarke and Buettcher's paper): the
#: larger it is, the less the first few ranks dominate.
FUSION_K = 60
#: Hits a hybrid or semantic search has at most: a full page at the largest ``limit``. A
#: hybrid search's two rankings each contribute half (bench/README.md: at 32 connections on two
#: cores, a search's CPU is its latency, and the vector index's candidates cost as many as
#: the hits asked for).
HITS = 100
#: A hybrid search's keyword ranking ranks this many of the newest keyword matches (keyword
#: mode ranks every match): see :func:`models.search.best_of_newest`.
NEWEST = 300


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    """One search hit: the article, its score, when it was published (None where the search
    did not need it) and how it matched: ``keyword``, ``semantic`` or ``both``."""

    id: int
    score: float
    published_at: datetime.datetime | None
    match: str


def query_text(parsed):
    """What a query's vector embeds: its words and phrases, without operators or exclusions."""
    return " ".join(" ".join(term.words) for term in parsed.terms)


def keyword_ranking(parsed, limit=HITS // 2, newest=NEWEST, **filters):
    """The ids of the best ``limit`` keyword hits among the ``newest`` ones, best first."""
    return keyword.best_of_newest(parsed, limit, newest, **filters)


def semantic_ranking(parsed, limit=HITS, **filters):
    """The ids of the ``limit`` published articles nearest the query in meaning, nearest
    first, without those that have an excluded term."""
    vector = embeddings.embed_query(query_text(parsed))
    ids = [article_id for article_id, _ in embeddings.nearest(vector, limit, **filters)]
    excluded = keyword.matching_any(parsed.excluded, ids)
    return [article_id for article_id in ids if article_id not in excluded]


def fuse(rankings):
    """Reciprocal rank fusion of ``{name: [id, ...]}``: ``{id: (score, names)}``, where
    ``names`` are the rankings that hold the id."""
    fused = {}
    for name, ids in rankings.items():
        for rank, article_id in enumerate(ids, start=1):
            score, names = fused.get(article_id, (0.0, ()))
            fused[article_id] = (score + 1 / (FUSION_K + rank), (*names, name))
    return fused


def ranked(parsed, mode, sort="relevance", **filters):
    """Every hit of a hybrid or semantic search (``mode``), as :class:`Hit` s in ``sort``
    order: ``relevance`` (score, then id, descending) or ``-published_at`` (newest first)."""
    rankings = {}
    if mode == "hybrid":
        rankings["keyword"] = keyword_ranking(parsed, HITS // 2, **filters)
        rankings["semantic"] = semantic_ranking(parsed, HITS // 2, **filters)
    else:
        rankings["semantic"] = semantic_ranking(parsed, HITS, **filters)
    fused = fuse(rankings)
    published = {}
    if sort != "relevance" and fused:
        published = dict(
            Article.select(Article.id, Article.published_at)
            .where(Article.id.in_(list(fused)))
            .tuples()
        )
    hits = [
        Hit(
            article_id,
            score,
            published.get(article_id),
            "both" if len(names) > 1 else names[0],
        )
        for article_id, (score, names) in fused.items()
        if sort == "relevance" or article_id in published
    ]
    hits.sort(key=lambda hit: sort_key(hit, sort), reverse=True)
    return hits


def sort_key(hit, sort):
    """A hit's key in the order ``sort`` (descending), as a cursor carries it."""
    return (hit.score if sort == "relevance" else hit.published_at, hit.id)


def after(hits, sort, cursor_key):
    """The hits a page after ``cursor_key`` starts from, and, by relevance, the ids of those
    of them that the pages up to it held (None by time). ``cursor_key`` is what the previous
    page's cursor holds (None for a first page): its last hit's sort key, how many hits the
    pages up to it held, and by relevance their ids (where kept).

    By time, the hits older than the last one. By relevance, every hit no page has held. A
    write between two pages can move a hit up or down past the last hit of a page: an article
    written since, or one whose text changed and was embedded again. Its rank changes and the
    fused scores of the hits around it with it, so no rank or score says where the last page
    ended, and a page started from one would repeat a hit or skip one. Of the ids held, those
    no longer among the hits are let go: a cursor holds :data:`HITS` ids at most, and a hit
    that leaves the hits and comes back among them can be shown again.
    """
    if cursor_key is None:
        return hits, [] if sort == "relevance" else None
    key = tuple(cursor_key[:2])
    if sort != "relevance":
        return [hit for hit in hits if sort_key(hit, sort) < key], None
    served = cursor_key[3] if len(cursor_key) > 3 else None
    if served is None:  # a cursor made before they were kept
        served = [hit.id for hit in hits[: _resumed_at(hits, key, cursor_key[2])]]
    ranked = {hit.id for hit in hits}
    held = [article_id for article_id in served if article_id in ranked]
    shown = set(held)
    return [hit for hit in hits if hit.id not in shown], held


def _resumed_at(hits, key, seen):
    """Where a cursor that kept no ids resumes: past its last hit where that is still one;
    where it is gone, at the first hit below its key or at the rank it left (``seen``, how many
    hits the pages up to it held; None in cursors older still), whichever is first."""
    for position, hit in enumerate(hits):
        if hit.id == key[-1]:
            return position + 1
    below = next((i for i, hit in enumerate(hits) if sort_key(hit, "relevance") < key), len(hits))
    return below if seen is None else min(below, max(seen - 1, 0))
