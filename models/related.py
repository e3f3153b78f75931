"""Computed related articles: meaning and words, raised by the same story, shared tags, the
same source and recency.

Candidates are the articles of the texts nearest in meaning within a few weeks (their sentence
vectors, ``models.embeddings``; a text's copies count once, the article's own are never
related) and the other articles of the same story; each is scored on the
similarity of their vectors, the share of the article's distinctive words they use, whether
they tell the same story, their shared tags, source and closeness in time (:func:`score`).
An article not embedded yet falls back to the keyword method (:func:`compute_keywords`:
candidates from the search index, scored by words, tags, source and recency). The best are
stored as ``computed`` relations, so that reading them is one indexed query. Editorial
relations are never overwritten.
"""

import bisect
import collections
import contextlib
import datetime
import itertools
import math
import multiprocessing
import re

import numpy as np
import peewee

from . import embeddings
from .articles import (
    COMPUTED,
    EDITORIAL,
    PUBLISHED,
    Article,
    ArticleBody,
    ArticleQueue,
    ArticleTag,
    Relation,
)
from .base import (
    bind_database,
    db,
    each_apart,
    epoch_seconds,
    is_postgres,
    runs_again_on_conflict,
    shifted,
    utcnow_exact,
    write_transaction,
)
from .changes import DataVersion
from .highlight import stem
from .search import inverse_frequency, similar
from .text import STOPWORDS, search_form

#: Advisory lock key serializing writers of computed relations on PostgreSQL ("NDRL").
RELATED_LOCK = 0x4E44524C
KEEP = 10
#: Related lists stored per write transaction by the worker.
STORE_CHUNK = 10
#: Queued related lists the worker computes before it reads the queue again: about a second
#: of work, so that a single write's list waits for at most that much of an import's.
BATCH = 20
WINDOW_WEEKS = 3
CANDIDATE_TERMS = 6
CANDIDATES = 40
#: Texts nearest in meaning whose articles are scored per article (besides articles of its
#: story): the copies of one text, alike as they are, count once.
NEAREST = 20
#: Articles nearest in meaning looked at, at most, to find those texts.
NEAREST_AT_MOST = 16 * NEAREST
#: Articles of its story scored per article: those published nearest it, this many on each
#: side (a list keeps 10; those far off in time score low on recency).
STORY_NEIGHBOURS = 20
MIN_SCORE = 0.05
BOOSTS = {"tags": 0.3, "source": 0.1, "recency": 0.2}
MAX_BOOST = 1 + sum(BOOSTS.values())
#: Evidence that two articles are about the same thing, by signal (see :func:`score`).
EVIDENCE = {"meaning": 0.6, "text": 0.4, "story": 0.3}
#: Cosine similarity below which two vectors say nothing (unrelated news sits around 0.1-0.3).
MEANING_FLOOR = 0.2
#: Cosine similarity from which ``similar_meaning`` is given as a reason.
SIMILAR_MEANING = 0.4
_WORD = re.compile(r"\w+")


class RelatedQueue(ArticleQueue):
    """Articles written since their computed related lists were last computed."""

    @classmethod
    def ready(cls):
        """Articles not waiting to be embedded: embedding them queues their lists again (with
        their vectors, the lists differ), so a list computed before would be computed twice.
        After a large import that was half the worker's related work."""
        waiting = embeddings.EmbeddingQueue.select(peewee.SQL("1")).where(
            embeddings.EmbeddingQueue.article == cls.article
        )
        return ~peewee.fn.EXISTS(waiting)


def refresh_queued(limit=BATCH, bulk=True):
    """Compute and store the related lists of up to ``limit`` queued articles (single writes'
    before bulk writes', and without ``bulk`` only those: see
    :meth:`~models.articles.ArticleQueue.due`); returns how many. An article queued again while
    it was computed stays queued."""
    due = RelatedQueue.due(limit, bulk)
    if not due:
        return 0
    # One that cannot be computed is logged and leaves the queue with the others.
    each_apart(refresh_many, [article_id for article_id, *_ in due])
    with write_transaction():
        RelatedQueue.take_off(due)
    return len(due)


def _words(text):
    """The words of ``text`` that can say what it is about, in the search index's form."""
    words = _WORD.findall(search_form(text).lower())
    return [w for w in words if len(w) > 2 and w not in STOPWORDS]


def _lead_terms(title, lead, limit=16):
    """``(mass, covered)`` of an article's title and lead in one pass: the weight of each of
    its keywords (as :func:`keywords` weighs them without a body) and the stems it uses."""
    title_stems = [stem(word) for word in _words(title)]
    lead_stems = [stem(word) for word in _words(lead)]
    counts = collections.Counter(title_stems)
    counts.update(lead_stems)
    places = {}
    for stems, weight in ((title_stems, 3.0), (lead_stems, 2.0)):
        for key in stems:
            places.setdefault(key, weight)
    weighted = {key: weight * (1 + math.log(counts[key])) for key, weight in places.items()}
    ranked = sorted(weighted.items(), key=lambda item: -item[1])[:limit]
    return dict(ranked), set(counts)


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


def compute_keywords(article_id):
    """The best related articles of ``article_id`` by keywords alone (the method before
    embeddings, and the one for an article without a vector): ``[(id, score, reasons)]``, of
    its best texts as :func:`_by_text` keeps them.

    Candidates are the articles of the search index that share any of its keywords within a few
    weeks of it. Text similarity is the share of the article's keyword weight (keyword weight
    times IDF) that a candidate's title and lead cover.
    """
    article = Article.get_or_none((Article.id == article_id) & (Article.status == PUBLISHED))
    if article is None:
        return []
    return _by_text(article, *_keyword_scored(article))


def _keyword_scored(article, unembedded=False):
    """The candidates of the keyword method (:func:`compute_keywords`) for the published
    ``article`` that score, unsorted, and their texts: ``(scored, {id: text})``; with
    ``unembedded``, of the articles that have no vector only."""
    body = ArticleBody.get_or_none(ArticleBody.article == article.id)
    terms = keywords(article.title, article.excerpt, body.body_text if body else "")
    if not terms:
        return [], {}
    # The heaviest words find the candidates (each more word costs a pass over the index);
    # all of them score the candidates.
    words = [word for word, _ in terms.values()][:CANDIDATE_TERMS]
    # With ``unembedded``, those with a vector are left out before the best are taken.
    where = ~embeddings.has_vector(Article.id) if unembedded else None
    matches = similar(words, article.published_at, WINDOW_WEEKS, CANDIDATES + 1, where)
    ids = [i for i, _ in matches if i != article.id][:CANDIDATES]
    if not ids:
        return [], {}
    mass = {key: weight * inverse_frequency(word) for key, (word, weight) in terms.items()}
    total = sum(mass.values()) or 1.0
    rows = Article.select(
        Article.id,
        Article.title,
        Article.excerpt,
        Article.source,
        Article.published_at,
        Article.duplicate_of,
    ).where(Article.id.in_(ids))
    tags = _tags_of([article.id, *ids])
    scored = []
    for row in rows:
        text = _text_share(mass, total, _stems(row.title, row.excerpt))
        tag_overlap = _overlap(tags[article.id], tags[row.id])
        same_source = row.source_id == article.source_id
        days = abs((row.published_at - article.published_at).total_seconds()) / 86400
        # Text is the evidence that two articles are about the same thing; shared tags, the
        # same source and closeness in time raise that evidence, but cannot stand in for it.
        by_words = text * _boost(tag_overlap, same_source, days) / MAX_BOOST
        if by_words < MIN_SCORE:
            continue
        # No meaning to go by; many shared words within days stand for the same story.
        same_story = text >= 0.4 and days <= 3
        why = reasons(0.0, text, same_story, tag_overlap, same_source, days)
        scored.append((row.id, round(by_words, 4), why))
    return scored, {row.id: row.text_id for row in rows}


def score(meaning, text, same_story, tag_overlap, same_source, days):
    """A candidate's score and reasons (:func:`value`, :func:`reasons`)."""
    signals = (meaning, text, same_story, tag_overlap, same_source, days)
    return value(*signals), reasons(*signals)


_SCALE = 1 / (sum(EVIDENCE.values()) * MAX_BOOST)


def value(meaning, text, same_story, tag_overlap, same_source, days):
    """A candidate's score.

    Meaning (cosine similarity of the vectors, above :data:`MEANING_FLOOR`), words (the share
    of the article's keyword weight the candidate's title and lead cover) and the same story
    are the evidence that two articles are about the same thing; shared tags, the same source
    and closeness in time raise that evidence, but cannot stand in for it.
    """
    evidence = _meaning_evidence(meaning) + EVIDENCE["text"] * text + EVIDENCE["story"] * same_story
    return evidence * _boost(tag_overlap, same_source, days) * _SCALE


def _meaning_evidence(meaning):
    """What a cosine similarity ``meaning`` adds to the evidence (nothing below the floor)."""
    return EVIDENCE["meaning"] * max(0.0, (meaning - MEANING_FLOOR) / (1 - MEANING_FLOOR))


def _boost(tag_overlap, same_source, days):
    """How much shared tags, the same source and closeness in time raise the evidence."""
    return (
        1
        + BOOSTS["tags"] * tag_overlap
        + BOOSTS["source"] * same_source
        + BOOSTS["recency"] * math.exp(-days / 7)
    )


def reasons(meaning, text, same_story, tag_overlap, same_source, days):
    """Why a candidate relates, in the words of ``relation.reasons``."""
    found = []
    if same_story:
        found.append("same_story")
    if meaning >= SIMILAR_MEANING:
        found.append("similar_meaning")
    if text >= 0.1:
        found.append("similar_text")
    if tag_overlap:
        found.append("shared_tags")
    if same_source:
        found.append("same_source")
    if days <= 2:
        found.append("recent")
    if not {"same_story", "similar_meaning", "similar_text"} & set(found):
        # Related by meaning or words below the thresholds that name them: the evidence that
        # counted most is named (an item was listed with no reasons, or with tags and time
        # alone, which raise evidence but are none).
        by_meaning = _meaning_evidence(meaning) > EVIDENCE["text"] * text
        found.insert(0, "similar_meaning" if by_meaning else "similar_text")
    return found


def _overlap(own, other):
    sizes = len(own) * len(other)
    return len(own & other) / math.sqrt(sizes) if sizes else 0.0


def _text_share(mass, total, covered):
    return sum(value for key, value in mass.items() if key in covered) / total if total else 0.0


def compute(article_id):
    """The best related articles of ``article_id``: ``[(id, score, reasons)]``, best first.

    Candidates are the articles of the texts nearest it in meaning within a few weeks (this
    process's vector index) and the other articles of its story. Without a vector, the keyword
    method's; with too few texts by meaning, its articles not embedded yet too.
    """
    article = Article.get_or_none((Article.id == article_id) & (Article.status == PUBLISHED))
    if article is None:
        return []
    own = embeddings.vectors_of([article_id]).get(article_id)
    if own is None:
        return _by_text(article, *_keyword_scored(article))
    index = embeddings.process_index()
    index.refresh()
    span = datetime.timedelta(weeks=WINDOW_WEEKS)
    text = article.text_id
    window = shifted(article.published_at, -span), shifted(article.published_at, span)
    ids = set(_nearest_texts(index, own[0], text, *window))
    if article.story_id is not None:
        ids |= _story_neighbours(article)
    if not ids:
        return _by_text(article, *_keyword_scored(article))
    vectors = embeddings.vectors_of(ids)
    rows = Article.select(
        Article.id,
        Article.title,
        Article.excerpt,
        Article.source,
        Article.published_at,
        Article.story,
        Article.duplicate_of,
    ).where(Article.id.in_(list(vectors)) & (Article.status == PUBLISHED))
    texts = {row.id: row.text_id for row in rows}
    terms = keywords(article.title, article.excerpt, "")
    mass = {key: weight * inverse_frequency(word) for key, (word, weight) in terms.items()}
    total = sum(mass.values())
    tags = _tags_of([article_id, *vectors])
    scored = []
    for row in rows:
        if texts[row.id] == text:
            continue  # a copy of its text (or what it copies): see reading.related
        value, reasons = score(
            meaning=float(vectors[row.id][0] @ own[0]),
            text=_text_share(mass, total, _stems(row.title, row.excerpt)),
            same_story=article.story_id is not None and row.story_id == article.story_id,
            tag_overlap=_overlap(tags[article_id], tags[row.id]),
            same_source=row.source_id == article.source_id,
            days=abs((row.published_at - article.published_at).total_seconds()) / 86400,
        )
        if value >= MIN_SCORE:
            scored.append((row.id, round(value, 4), reasons))
    if len({texts[item[0]] for item in scored}) < KEEP:
        # Too few by meaning: articles not embedded yet (say, right after an upgrade) may be
        # related by their words. Those embedded were too far in meaning to be candidates, as
        # in a rebuild: their words alone do not relate them.
        more, more_texts = _keyword_scored(article, unembedded=True)
        texts.update(more_texts)
        scored += _by_text(article, more, more_texts)
    return _by_text(article, scored, texts)


def _by_text(article, scored, texts):
    """``scored`` (``[(id, score, reasons)]``) best first, without copies of ``article``'s text,
    of its best :data:`KEEP` texts (:func:`_best_texts`); ``texts`` holds the text of each (an
    article's own id, or the one it copies)."""
    own = article.text_id
    scored = [item for item in scored if texts[item[0]] != own]
    scored.sort(key=lambda item: (-item[1], item[0]))
    return _best_texts(scored, lambda item: texts[item[0]])


def _texts_of(ids):
    """``{id: its text}`` for the articles ``ids``: the article each copies, or itself (also
    one deleted meanwhile)."""
    texts = {i: i for i in ids}
    if texts:
        texts.update(
            Article.select(Article.id, Article.duplicate_of)
            .where(Article.id.in_(list(texts)) & Article.duplicate_of.is_null(False))
            .tuples()
        )
    return texts


def _nearest_texts(index, vector, own, after, before):
    """The ids of the articles of the :data:`NEAREST` texts nearest ``vector`` in meaning,
    published between ``after`` and ``before`` (``index`` finds them), as :func:`_best_texts`
    keeps them; not those of the text ``own`` (the article's: itself, its copies, what it
    copies), which are never related to it. More are looked at while copies fill the places
    (as a rebuild does: :func:`_nearest_texts_of`)."""
    wanted, texts = NEAREST + 1, {}
    while True:
        slots, _ = index.candidates(vector, wanted, after, before)
        found = [int(i) for i in index.ids[slots]]
        texts.update(_texts_of(i for i in found if i not in texts))  # those of a round before kept
        nearest = [i for i in found if texts[i] != own]
        kept = _best_texts(nearest, texts.__getitem__, NEAREST)
        if (
            len({texts[i] for i in kept}) == NEAREST
            or len(slots) < wanted
            or wanted >= NEAREST_AT_MOST
        ):
            return kept
        wanted = min(2 * wanted, NEAREST_AT_MOST)


def _best_texts(scored, text_of, count=None):
    """The items of ``scored`` (best first) of its best ``count`` texts (:data:`KEEP` unless
    given; ``text_of(item)``: the article an article copies, or itself), with every copy of
    them among it. A list shows one article a text (reading.related): copies, alike as they
    are, would fill its places. Each copy is kept all the same, so that :func:`store` offers
    the article to every one."""
    count = KEEP if count is None else count
    kept, texts = [], set()
    for item in scored:
        text = text_of(item)
        if text not in texts:
            if len(texts) == count:
                continue
            texts.add(text)
        kept.append(item)
    return kept


def _story_neighbours(article):
    """The ids of the published articles of ``article``'s story with a vector published
    nearest it (those a list can score, as a rebuild counts them), copies of its own text
    passed over: up to :data:`STORY_NEIGHBOURS` before it and after it (two walks of the
    story's index)."""
    story, at = Article.story == article.story_id, Article.published_at
    text = peewee.fn.COALESCE(Article.duplicate_of, Article.id)
    story &= (Article.status == PUBLISHED) & (text != article.text_id)
    story &= embeddings.has_vector(Article.id)
    earlier = (at < article.published_at) | (
        (at == article.published_at) & (Article.id < article.id)
    )
    later = (at > article.published_at) | ((at == article.published_at) & (Article.id > article.id))
    walks = (
        Article.select(Article.id).where(story & earlier).order_by(at.desc(), Article.id.desc()),
        Article.select(Article.id).where(story & later).order_by(at, Article.id),
    )
    return {i for walk in walks for (i,) in walk.limit(STORY_NEIGHBOURS).tuples()}


def store(article_id, related, neighbours=True):
    """Replace the computed relations of ``article_id`` with ``related``.

    With ``neighbours``, each related article also gets this one in its own list when it scores
    high enough there, so a new story shows up beside the older ones it relates to. Articles
    deleted since the computation are left out.
    """
    alive = set(Article.kept_ids(Article.id.in_([article_id, *(r[0] for r in related)])))
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
    if neighbours and rows:
        _offer(article_id, rows)


def _offer(article_id, rows):
    """Offer ``article_id`` to the computed list of each article ``rows`` relate it to, with
    the row's score and reasons: it goes in where its text makes the list's best ``KEEP`` texts
    (a copy of a text listed goes in beside it; a new text takes the place of the lowest, whose
    rows leave), and where it is already computed its score is brought up to date. The lists
    are read in one statement and changed in a few, not a few for each."""
    offers = {
        row["related"]: {**row, "article": row["related"], "related": article_id} for row in rows
    }
    lists = collections.defaultdict(list)
    already = {}
    for relation_id, owner, related_id, origin, score in (
        Relation.select(
            Relation.id, Relation.article, Relation.related, Relation.origin, Relation.score
        )
        .where(Relation.article.in_(list(offers)))
        .tuples()
    ):
        if related_id == article_id:
            already[owner] = origin
        elif origin == COMPUTED:
            lists[owner].append((score, relation_id, related_id))
    texts_of = _texts_of(
        {article_id, *offers, *(row[2] for rows in lists.values() for row in rows)}
    )
    offered = texts_of[article_id]
    added, dropped = [], []
    for owner, offer in offers.items():
        own = texts_of[owner]
        if own == offered:
            continue  # a copy of its text: no list holds one
        if owner in already:
            if already[owner] == COMPUTED:
                added.append(offer)  # its score and reasons updated, below
            continue
        # The rows of each other text listed, in the order a list is read (best first).
        texts = collections.defaultdict(list)
        for score, relation_id, related_id in lists[owner]:
            text = texts_of[related_id]
            if text != own:
                texts[text].append((-score, relation_id))
        if offered not in texts and len(texts) >= KEEP:
            lowest = max(texts, key=lambda text: min(texts[text]))
            if -min(texts[lowest])[0] >= offer["score"]:
                continue
            dropped += [relation_id for _, relation_id in texts[lowest]]
        added.append(offer)
    if dropped:
        Relation.delete().where(Relation.id.in_(dropped)).execute()
    if added:
        Relation.insert_many(added).on_conflict(
            conflict_target=[Relation.article, Relation.related],
            preserve=[Relation.kind, Relation.score, Relation.reasons],
            where=(Relation.origin == COMPUTED),  # an editor's relation made meanwhile stays
        ).execute()


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


@runs_again_on_conflict  # a deadlock with a delete
def _store_all(results):
    with write_transaction():
        if is_postgres():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (RELATED_LOCK,))
        for article_id, related in results:
            store(article_id, related)
        DataVersion.bump()  # related lists are answers: their ETags must change


def _compute_chunk(chunk):
    with db.connection_context():
        return [(article_id, compute_keywords(article_id)) for article_id in chunk]


def _start_worker(database_url):
    bind_database(database_url)


def rebuild(on_article=None, batch=200, database_url=None, processes=1):
    """Recompute the computed relations of every published article.

    The articles with a vector are scored all at once in memory (:func:`_rebuild_by_meaning`);
    the others by keywords, ``batch`` per transaction, with ``processes`` > 1 (and the
    ``database_url`` they open) in worker processes while this one stores.
    """
    started = utcnow_exact()
    published = Article.select(Article.id).where(Article.status == PUBLISHED).order_by(Article.id)
    ids = [article_id for (article_id,) in published.tuples()]
    done = _rebuild_by_meaning(on_article, processes)
    ids = [article_id for article_id in ids if article_id not in done]
    chunks = [ids[start : start + batch] for start in range(0, len(ids), batch)]
    with contextlib.ExitStack() as stack:
        if processes > 1 and database_url and len(chunks) > 1:
            pool = stack.enter_context(
                multiprocessing.get_context("spawn").Pool(
                    processes, initializer=_start_worker, initargs=(database_url,)
                )
            )
            results = pool.imap(_compute_chunk, chunks)
        else:
            results = ([(i, compute_keywords(i)) for i in chunk] for chunk in chunks)
        for computed in results:
            with write_transaction():
                for article_id, related in computed:
                    store(article_id, related, neighbours=False)
                DataVersion.bump()
            if on_article is not None:
                on_article(len(computed))
    # What was queued before the rebuild began is done; what was queued since stays queued.
    RelatedQueue.delete().where(RelatedQueue.queued_at <= started).execute()
    return len(ids) + len(done)


class _Corpus:
    """Every published article with a vector, in publication order, with what scoring needs
    (read in plain SQL: at 100k articles the query builder's rows cost more than the reads)."""

    def __init__(self):
        model = embeddings.embedder().name
        marker = "%s" if is_postgres() else "?"
        blobs = dict(
            db.execute_sql(
                f"SELECT article_id, vector FROM article_embedding WHERE model = {marker}", [model]
            ).fetchall()
        )
        rows = [
            row
            for row in db.execute_sql(
                "SELECT id, title, excerpt, source_id, published_at, story_id, duplicate_of_id"
                " FROM article"
                " WHERE status = 'published' ORDER BY published_at, id"
            ).fetchall()
            if row[0] in blobs
        ]
        self.ids = [row[0] for row in rows]
        self.sources = [row[3] for row in rows]
        self.stories = [row[5] for row in rows]
        #: The article whose text each one is: itself, or the one it copies.
        self.texts = [row[6] or row[0] for row in rows]
        self.times = np.array(
            [epoch_seconds(t) for t in (row[4] for row in rows)],
            dtype=np.float64,
        )
        self.seconds = self.times.tolist()
        self.matrix = np.zeros((len(rows), embeddings.embedder().dimensions), dtype=np.float32)
        for position, article_id in enumerate(self.ids):
            self.matrix[position] = embeddings.from_blob(blobs.pop(article_id))
        terms = [_lead_terms(row[1], row[2]) for row in rows]
        self.covered = [covered for _, covered in terms]
        frequency = collections.Counter(key for covered in self.covered for key in covered)
        size = max(1, len(rows))
        rarity = {key: math.log(1 + size / (1 + count)) for key, count in frequency.items()}
        self.mass = [
            {key: weight * rarity[key] for key, weight in mass.items()} for mass, _ in terms
        ]
        self.totals = [sum(mass.values()) for mass in self.mass]
        position = {article_id: k for k, article_id in enumerate(self.ids)}
        self.tags = [set() for _ in rows]
        for article_id, tag_id in db.execute_sql(
            "SELECT article_id, tag_id FROM article_tag"
        ).fetchall():
            k = position.get(article_id)
            if k is not None:
                self.tags[k].add(tag_id)
        self.members = collections.defaultdict(list)
        for k, story_id in enumerate(self.stories):
            if story_id is not None:
                self.members[story_id].append(k)
        #: The positions of each text's articles, for the texts copied.
        self.copies = collections.defaultdict(list)
        for k, text in enumerate(self.texts):
            self.copies[text].append(k)
        self.copies = {text: ks for text, ks in self.copies.items() if len(ks) > 1}
        #: Whether each position's text is copied.
        self.copied = np.zeros(len(rows), dtype=bool)
        for ks in self.copies.values():
            self.copied[ks] = True

    def related(self, k, candidates, meanings):
        """The best related articles of the article at position ``k`` among the positions
        ``candidates`` (whose cosine similarities to it are ``meanings``), as :func:`compute`
        gives them: every candidate is scored, and the reasons of the best are told."""
        story, text_of = self.stories[k], self.texts[k]
        if story is not None:
            # The story's articles published nearest it, as the worker's _story_neighbours
            # takes them (members are in publication order), not every member: stories run to
            # thousands of articles (bench/README.md).
            members = self.members[story]
            at = bisect.bisect_left(members, k)
            if text_of in self.copies:  # its own text's are passed over
                near = []
                for steps in (range(at - 1, -1, -1), range(at + 1, len(members))):
                    others = (members[i] for i in steps if self.texts[members[i]] != text_of)
                    near += itertools.islice(others, STORY_NEIGHBOURS)
            else:
                near = members[max(0, at - STORY_NEIGHBOURS) : at]
                near += members[at + 1 : at + 1 + STORY_NEIGHBOURS]
            offered = set(candidates)
            extra = [j for j in near if j not in offered]
            if extra:
                candidates = [*candidates, *extra]
                meanings = [*meanings, *(self.matrix[extra] @ self.matrix[k]).tolist()]
        mass, total, tags, source, when = (
            self.mass[k],
            self.totals[k],
            self.tags[k],
            self.sources[k],
            self.seconds[k],
        )
        keys = mass.keys()
        share = mass.__getitem__
        per_meaning = EVIDENCE["meaning"] / (1 - MEANING_FLOOR)
        per_text, per_story = EVIDENCE["text"], EVIDENCE["story"]
        per_tag, per_source, per_recency = BOOSTS["tags"], BOOSTS["source"], BOOSTS["recency"]
        scored = []
        for j, meaning in zip(candidates, meanings, strict=True):
            if self.texts[j] == text_of:
                continue  # a copy of its text (or what it copies): see reading.related
            # value(), written out: this loop runs some two million times in a rebuild.
            text = sum(map(share, keys & self.covered[j])) / total if total else 0.0
            same_story = story is not None and self.stories[j] == story
            other = self.tags[j]
            overlap = (
                len(tags & other) / math.sqrt(len(tags) * len(other)) if tags and other else 0.0
            )
            same_source = self.sources[j] == source
            days = abs(self.seconds[j] - when) / 86400
            evidence = (
                per_meaning * max(0.0, meaning - MEANING_FLOOR)
                + per_text * text
                + per_story * same_story
            )
            boost = (
                1 + per_tag * overlap + per_source * same_source + per_recency * math.exp(-days / 7)
            )
            score_value = evidence * boost * _SCALE
            if score_value >= MIN_SCORE:
                signals = (meaning, text, same_story, overlap, same_source, days)
                scored.append((score_value, self.ids[j], signals, j))
        scored.sort(key=lambda item: (-item[0], item[1]))
        best = _best_texts(scored, lambda item: self.texts[item[3]])
        return [(i, round(v, 4), reasons(*signals)) for v, i, signals, _ in best]


#: The corpus a rebuild's forked processes score (they inherit it; nothing is copied).
_shared = []


def _score_block(start, block=512):
    """The related lists of the articles at positions ``start`` to ``start + block`` of the
    shared corpus: their candidates come from one product of their vectors with those of the
    weeks around them."""
    corpus = _shared[0]
    span = WINDOW_WEEKS * 7 * 86400
    end = min(start + block, len(corpus.ids))
    lo = int(np.searchsorted(corpus.times, corpus.times[start] - span, side="left"))
    hi = int(np.searchsorted(corpus.times, corpus.times[end - 1] + span, side="right"))
    similarity = corpus.matrix[start:end] @ corpus.matrix[lo:hi].T
    far = np.abs(corpus.times[lo:hi][None, :] - corpus.times[start:end][:, None]) > span
    similarity[far] = -np.inf
    results = []
    for k in range(start, end):
        row = similarity[k - start]
        row[k - lo] = -np.inf
        for j in corpus.copies.get(corpus.texts[k], ()):  # its own text's, never related
            if lo <= j < hi:
                row[j - lo] = -np.inf
        top = _nearest_texts_of(corpus, row, lo)
        results.append((corpus.ids[k], corpus.related(k, (top + lo).tolist(), row[top].tolist())))
    return results


def _nearest_texts_of(corpus, row, lo):
    """The columns of ``row`` (similarities to the corpus's positions from ``lo``, -inf where
    none may be related) of the :data:`NEAREST` texts nearest, as :func:`_nearest_texts` finds
    them: more are looked at while copies fill the places."""
    count = min(NEAREST, len(row) - 1)
    while True:
        top = np.argpartition(-row, count)[:count] if count > 0 else np.zeros(0, int)
        top = top[np.isfinite(row[top])]
        if not corpus.copied[top + lo].any():
            return top  # as many texts as articles
        top = top[np.argsort(-row[top], kind="stable")]
        kept = _best_texts(top.tolist(), lambda j: corpus.texts[lo + j], NEAREST)
        texts = {corpus.texts[lo + j] for j in kept}
        if len(texts) == NEAREST or len(top) < count or count >= min(len(row) - 1, NEAREST_AT_MOST):
            return np.array(kept, dtype=np.int64)
        count = min(2 * count, len(row) - 1, NEAREST_AT_MOST)


def _rebuild_by_meaning(on_article=None, processes=1, block=512, store_every=2000):
    """Recompute the related lists of every published article with a vector, in memory, in
    blocks (:func:`_score_block`); with ``processes`` > 1, forked processes score while this
    one stores. Returns the ids done."""
    _shared[:] = [_Corpus()]
    corpus = _shared[0]
    starts = range(0, len(corpus.ids), block)
    pending = []
    with contextlib.ExitStack() as stack:
        if processes > 1 and len(starts) > 1 and "fork" in multiprocessing.get_all_start_methods():
            pool = stack.enter_context(multiprocessing.get_context("fork").Pool(processes))
            blocks = pool.imap(_score_block, starts)
        else:
            blocks = map(_score_block, starts)
        for results in blocks:
            pending += results
            if len(pending) >= store_every:
                _store_many(pending)
                if on_article is not None:
                    on_article(len(pending))
                pending = []
    if pending:
        _store_many(pending)
        if on_article is not None:
            on_article(len(pending))
    _shared.clear()
    return set(corpus.ids)


def _store_many(results, rows_per_insert=500):
    """Replace the computed relations of many articles at once (no neighbours offered), in one
    transaction; editorial relations and articles deleted meanwhile are left out."""
    with write_transaction():
        ids = [article_id for article_id, _ in results]
        wanted = {article_id for _, related in results for article_id, _, _ in related}
        alive = set()
        everything = sorted(set(ids) | wanted)
        for start in range(0, len(everything), 5000):
            alive |= {
                i
                for (i,) in Article.select(Article.id)
                .where(Article.id.in_(everything[start : start + 5000]))
                .tuples()
            }
        editorial = set()
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            editorial |= set(
                Relation.select(Relation.article, Relation.related)
                .where(Relation.article.in_(chunk) & (Relation.origin == EDITORIAL))
                .tuples()
            )
            Relation.delete().where(
                Relation.article.in_(chunk) & (Relation.origin == COMPUTED)
            ).execute()
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
        rows = [
            (
                article_id,
                related_id,
                "same_story" if "same_story" in why else "related",
                COMPUTED,
                score_value,
                ",".join(why),
                now,
            )
            for article_id, related in results
            if article_id in alive
            for related_id, score_value, why in related
            if related_id in alive and (article_id, related_id) not in editorial
        ]
        marker = "%s" if is_postgres() else "?"
        values = f"({', '.join([marker] * 7)})"
        for start in range(0, len(rows), rows_per_insert):
            chunk = rows[start : start + rows_per_insert]
            # Plain SQL: a million rows through the query builder took longer than scoring.
            db.execute_sql(
                "INSERT INTO relation (article_id, related_id, kind, origin, score, reasons,"
                f" created_at) VALUES {', '.join([values] * len(chunk))}",
                [
                    str(item) if isinstance(item, datetime.datetime) and not is_postgres() else item
                    for row in chunk
                    for item in row
                ],
            )
        DataVersion.bump()
