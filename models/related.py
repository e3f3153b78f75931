"""Computed related articles: text similarity, raised by shared tags, same source and recency.

Candidates come from the search index (the article's distinctive words, within a few weeks of
it); each is scored on four signals, and the best are stored as ``computed`` relations, so that
reading them is one indexed query. Editorial relations are never overwritten.
"""

import collections
import contextlib
import datetime
import math
import multiprocessing
import re

import peewee

from .articles import COMPUTED, EDITORIAL, PUBLISHED, Article, ArticleBody, ArticleTag, Relation
from .base import BaseModel, bind_database, db, insert_rows, is_postgres, write_transaction
from .highlight import stem
from .search import inverse_frequency, similar

#: Advisory lock key serializing writers of computed relations on PostgreSQL ("NDRL").
RELATED_LOCK = 0x4E44524C
KEEP = 10
#: Related lists stored per write transaction by the worker.
STORE_CHUNK = 10
WINDOW_WEEKS = 3
CANDIDATE_TERMS = 6
CANDIDATES = 40
MIN_SCORE = 0.05
BOOSTS = {"tags": 0.3, "source": 0.1, "recency": 0.2}
MAX_BOOST = 1 + sum(BOOSTS.values())
_WORD = re.compile(r"\w+")
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


class RelatedQueue(BaseModel):
    """Articles written since their computed related lists were last computed."""

    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    #: To the microsecond: a write just after the computation read the article queues it again.
    queued_at = peewee.DateTimeField(index=True)

    @classmethod
    def add(cls, article_ids):
        """Queue articles, inside the write transaction that changed them."""
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        insert_rows(
            cls,
            [{"article": i, "queued_at": now} for i in article_ids],
            ' ON CONFLICT ("article_id") DO UPDATE SET "queued_at" = excluded."queued_at"',
        )


def refresh_queued(limit=200):
    """Compute and store the related lists of up to ``limit`` queued articles, oldest first;
    returns how many. An article queued again while it was computed stays queued."""
    due = list(RelatedQueue.select().order_by(RelatedQueue.queued_at).limit(limit))
    if not due:
        return 0
    refresh_many([row.article_id for row in due])
    with write_transaction():
        for row in due:
            RelatedQueue.delete().where(
                (RelatedQueue.article == row.article_id) & (RelatedQueue.queued_at <= row.queued_at)
            ).execute()
    return len(due)


def _words(text):
    return [w.lower() for w in _WORD.findall(text) if len(w) > 2 and w.lower() not in STOPWORDS]


def keywords(title, lead, body_text, limit=16):
    """The words that say what an article is about: ``{stem: (word, weight)}``.

    A word weighs most in the title, less in the lead, least only in the body, and more the more
    often the article uses it (1 + log of its count).
    """
    counts = collections.Counter(stem(w) for w in _words(f"{title} {lead} {body_text}"))
    places = {}
    for words, weight in ((_words(title), 3.0), (_words(lead), 2.0)):
        for word in words:
            places.setdefault(stem(word), (word, weight))
    for word in _words(body_text):
        if counts[stem(word)] >= 2:
            places.setdefault(stem(word), (word, 1.0))
    weighted = {
        key: (word, weight * (1 + math.log(counts[key]))) for key, (word, weight) in places.items()
    }
    ranked = sorted(weighted.items(), key=lambda item: -item[1][1])[:limit]
    return dict(ranked)


def _stems(*texts):
    return {stem(word) for text in texts for word in _words(text)}


def _tags_of(ids):
    tags = collections.defaultdict(set)
    rows = ArticleTag.select(ArticleTag.article, ArticleTag.tag).where(ArticleTag.article.in_(ids))
    for article_id, tag_id in rows.tuples():
        tags[article_id].add(tag_id)
    return tags


def compute(article_id):
    """The best related articles of ``article_id``: ``[(id, score, reasons)]``, best first.

    Candidates are the articles of the search index that share any of its keywords within a few
    weeks of it. Text similarity is the share of the article's keyword weight (keyword weight
    times IDF) that a candidate's title and lead cover.
    """
    article = Article.get_or_none((Article.id == article_id) & (Article.status == PUBLISHED))
    if article is None:
        return []
    body = ArticleBody.get_or_none(ArticleBody.article == article_id)
    terms = keywords(article.title, article.excerpt, body.body_text if body else "")
    if not terms:
        return []
    # The heaviest words find the candidates (each more word costs a pass over the index);
    # all of them score the candidates.
    words = [word for word, _ in terms.values()][:CANDIDATE_TERMS]
    matches = similar(words, article.published_at, WINDOW_WEEKS, limit=CANDIDATES + 1)
    ids = [i for i, _ in matches if i != article_id][:CANDIDATES]
    if not ids:
        return []
    mass = {key: weight * inverse_frequency(word) for key, (word, weight) in terms.items()}
    total = sum(mass.values()) or 1.0
    rows = Article.select(
        Article.id, Article.title, Article.excerpt, Article.source, Article.published_at
    ).where(Article.id.in_(ids))
    tags = _tags_of([article_id, *ids])
    own_tags = tags[article_id]
    scored = []
    for row in rows:
        covered = _stems(row.title, row.excerpt)
        text = sum(value for key, value in mass.items() if key in covered) / total
        shared = own_tags & tags[row.id]
        sizes = len(own_tags) * len(tags[row.id])
        tag_overlap = len(shared) / math.sqrt(sizes) if sizes else 0.0
        same_source = row.source_id == article.source_id
        days = abs((row.published_at - article.published_at).total_seconds()) / 86400
        recency = math.exp(-days / 7)
        # Text is the evidence that two articles are about the same thing; shared tags, the
        # same source and closeness in time raise that evidence, but cannot stand in for it.
        boost = (
            1
            + BOOSTS["tags"] * tag_overlap
            + BOOSTS["source"] * same_source
            + BOOSTS["recency"] * recency
        )
        score = text * boost / MAX_BOOST
        if score < MIN_SCORE:
            continue
        reasons = []
        if text >= 0.4 and days <= 3:
            reasons.append("same_story")
        if text >= 0.1:
            reasons.append("similar_text")
        if shared:
            reasons.append("shared_tags")
        if same_source:
            reasons.append("same_source")
        if days <= 2:
            reasons.append("recent")
        scored.append((row.id, round(score, 4), reasons))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:KEEP]


def store(article_id, related, neighbours=True):
    """Replace the computed relations of ``article_id`` with ``related``.

    With ``neighbours``, each related article also gets this one in its own list when it scores
    high enough there, so a new story shows up beside the older ones it relates to. Articles
    deleted since the computation are left out.
    """
    alive = {
        i
        for (i,) in Article.select(Article.id)
        .where(Article.id.in_([article_id, *(r[0] for r in related)]))
        .tuples()
    }
    if article_id not in alive:
        return
    related = [item for item in related if item[0] in alive]
    editorial = {
        related_id
        for (related_id,) in Relation.select(Relation.related)
        .where((Relation.article == article_id) & (Relation.origin == EDITORIAL))
        .tuples()
    }
    Relation.delete().where(
        (Relation.article == article_id) & (Relation.origin == COMPUTED)
    ).execute()
    rows = [
        {
            "article": article_id,
            "related": related_id,
            "kind": "same_story" if "same_story" in reasons else "related",
            "origin": COMPUTED,
            "score": score,
            "reasons": ",".join(reasons),
        }
        for related_id, score, reasons in related
        if related_id not in editorial
    ]
    if rows:
        Relation.insert_many(rows).execute()
    if neighbours:
        for row in rows:
            _offer(row["related"], {**row, "article": row["related"], "related": article_id})


def _offer(article_id, row):
    """Put ``row`` into the computed list of ``article_id`` if it makes the top ``KEEP``."""
    existing = Relation.get_or_none(
        (Relation.article == article_id) & (Relation.related == row["related"])
    )
    if existing is not None:
        if existing.origin == COMPUTED:
            Relation.update(score=row["score"], reasons=row["reasons"], kind=row["kind"]).where(
                Relation.id == existing.id
            ).execute()
        return
    kept = (
        Relation.select(Relation.id, Relation.score)
        .where((Relation.article == article_id) & (Relation.origin == COMPUTED))
        .order_by(Relation.score.desc(), Relation.id)
    )
    kept = list(kept)
    if len(kept) >= KEEP and kept[-1].score >= row["score"]:
        return
    Relation.insert(**row).execute()
    if len(kept) >= KEEP:
        Relation.delete().where(Relation.id == kept[-1].id).execute()


def refresh_many(article_ids):
    """Recompute and store the computed relations of articles just written.

    The computation only reads, outside any transaction; storing takes a short write
    transaction, in which writers of relations take turns (on SQLite through the write lock, on
    PostgreSQL through an advisory lock): two of them updating each other's neighbours could
    otherwise deadlock.
    """
    results = [(article_id, compute(article_id)) for article_id in sorted(article_ids)]
    # A few lists a transaction: the write lock is held briefly, so writes of articles never
    # wait long behind the worker (200 lists in one transaction made them time out).
    for start in range(0, len(results), STORE_CHUNK):
        _store_all(results[start : start + STORE_CHUNK])


def _store_all(results):
    for attempt in range(3):
        try:
            with write_transaction():
                if is_postgres():
                    db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (RELATED_LOCK,))
                for article_id, related in results:
                    store(article_id, related)
            return
        except peewee.IntegrityError:
            # An article deleted between the check in store() and the insert: check again.
            if attempt == 2:
                raise


def _compute_chunk(chunk):
    with db.connection_context():
        return [(article_id, compute(article_id)) for article_id in chunk]


def _start_worker(database_url):
    bind_database(database_url)


def rebuild(on_article=None, batch=200, database_url=None, processes=1):
    """Recompute the computed relations of every published article, ``batch`` per transaction.

    With ``processes`` > 1 (and the ``database_url`` they open), worker processes compute while
    this one stores: the computation only reads, so it spreads over the machine's cores.
    """
    published = Article.select(Article.id).where(Article.status == PUBLISHED).order_by(Article.id)
    ids = [article_id for (article_id,) in published.tuples()]
    chunks = [ids[start : start + batch] for start in range(0, len(ids), batch)]
    with contextlib.ExitStack() as stack:
        if processes > 1 and database_url:
            pool = stack.enter_context(
                multiprocessing.get_context("spawn").Pool(
                    processes, initializer=_start_worker, initargs=(database_url,)
                )
            )
            results = pool.imap(_compute_chunk, chunks)
        else:
            results = ([(i, compute(i)) for i in chunk] for chunk in chunks)
        for computed in results:
            with write_transaction():
                for article_id, related in computed:
                    store(article_id, related, neighbours=False)
            if on_article is not None:
                on_article(len(computed))
    return len(ids)
