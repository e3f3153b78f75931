"""Story clusters: articles about the same story, across sources and languages.

Articles are placed as they arrive, by the worker, right after they are embedded
(:func:`refresh_queued`): an article joins the story of the most similar published article
within a few days of it, when the two are similar enough. Similarity is the cosine of their
vectors, raised for each number both texts name (``models.embeddings.anchors``: a figure is
written alike in every language, and two stories rarely share one). When the most similar
article has no story yet, the two start one. A story covers at most a week (:data:`MAX_SPAN`):
a later article starts another. An article placed again (its text or status changed) may move;
a story left with fewer than two published articles is dissolved.

A near-identical copy (a wire story run by another source: the same language and nearly the
same vector) is marked ``duplicate_of`` the earliest article it copies, and stays in the story;
an original placed after its copies (older news imported late, an article published again)
takes them over, and the copies of an article deleted, unpublished, rewritten or moved after
them are compared with each other again, as placing compares (:func:`hand_over`). No article
copies a copy.
"""

import collections
import datetime

import numpy as np
import peewee

from . import cards, embeddings
from .articles import COMPUTED, PUBLISHED, Article, Relation, Source
from .base import (
    BaseModel,
    db,
    each_apart,
    epoch_seconds,
    is_postgres,
    locked,
    runs_again_on_conflict,
    shifted,
    utcnow,
    write_transaction,
)
from .changes import DataVersion
from .related import RelatedQueue

#: An article is compared with the published articles within this many days of it.
WINDOW_DAYS = 3
#: Cosine similarity (plus the anchor bonus) at which an article joins a story.
JOIN_SCORE = 0.48
#: How alike, on average, an article must also be to the articles of the story it would join
#: that lie within the window of it: joining by the nearest article alone, stories grew link by
#: link into one of hundreds of articles on other subjects (each like the one before it). Set
#: from the evaluation set (bench/semantic_eval.py): its stories stay whole up to 0.5; the
#: demo's largest story went from 215 articles to 47.
STORY_SCORE = 0.45
#: The longest time one story's articles (copies aside) cover, from the first to the last: the
#: check above keeps a story on its subject, but not one that comes back every day or two (a
#: daily market report), which grew into one story of months (bench/README.md). A later
#: article starts a story of its own.
MAX_SPAN = datetime.timedelta(days=7)
#: Added to the cosine similarity for each number two articles both name, up to MAX_ANCHORS.
ANCHOR_BONUS = 0.08
MAX_ANCHORS = 3
#: Cosine similarity above which an article in the same language is a copy of an earlier one.
DUPLICATE_COSINE = 0.93
#: Articles a story's detail lists (the first, in publication order).
MAX_MEMBERS = 100
#: Articles placed in one write transaction: the worker's batch of 64 placed in one held
#: SQLite's write lock for 55-130 ms while served, and web writes waited behind it
#: (bench/README.md, twenty-first session).
PLACE_CHUNK = 8
#: Advisory lock key serializing the placing of articles on PostgreSQL ("NDST").
STORY_LOCK = 0x4E445354


class Story(BaseModel):
    """Articles about the same story. Its counts and lists are kept by :func:`refresh_stories`."""

    id = peewee.AutoField()
    #: The first article of the story that is not a copy of another.
    headline = peewee.ForeignKeyField(Article, null=True, on_delete="SET NULL")
    article_count = peewee.IntegerField(default=0)
    #: Comma-separated source slugs and languages of its articles, sorted.
    sources = peewee.TextField(default="")
    languages = peewee.TextField(default="")
    first_published_at = peewee.DateTimeField()
    last_published_at = peewee.DateTimeField()
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("last_published_at", "id"), False),)

    @property
    def source_list(self):
        return [slug for slug in self.sources.split(",") if slug]

    @property
    def language_list(self):
        return [code for code in self.languages.split(",") if code]


class _Window:
    """The published articles with a vector around a group of articles being placed.

    Read before the write transaction (thousands of vectors in a busy window: reading them under
    the write lock held every web write up for seconds), then inside it brought up to date with
    their stories and copy marks as they are now (:meth:`refresh`), and kept so as each article
    of the group is placed (a later one sees where the earlier ones went)."""

    def __init__(self, start, end):
        self.start, self.end = start, end
        self.ids, self.matrix, self.rows = embeddings.window(start, end)
        self.position = {article_id: k for k, article_id in enumerate(self.ids)}
        self.times = np.array([epoch_seconds(row[0]) for row in self.rows], dtype=np.float64)
        self.alive = np.ones(len(self.ids), dtype=bool)
        self.present = np.ones(len(self.ids), dtype=bool)
        #: ``{article id: (cosine, score)}`` worked out by :meth:`score`.
        self.scored = {}
        #: The articles naming each number (anchors): the numbers shared with all of them at once.
        self.naming = collections.defaultdict(list)
        for k, row in enumerate(self.rows):
            for number in set(row[5].split()):
                self.naming[number].append(k)

    def covers(self, start, end):
        return self.start <= start and end <= self.end

    def refresh(self, unplaced=()):
        """Inside the write transaction: each article's story and copy mark as they are now;
        one no longer published in the window is no candidate, nor yet one of ``unplaced``
        (the articles still to be placed, in this transaction or a later one: one at a time,
        they had not come; seen, an article was placed with one, then moved to the next, and
        left its story)."""
        current = embeddings.window_stories(self.start, self.end)
        self.present = np.zeros(len(self.ids), dtype=bool)
        for k, article_id in enumerate(self.ids):
            state = current.get(article_id)
            self.present[k] = state is not None
            self.alive[k] = state is not None and article_id not in unplaced
            if state is not None:
                self.rows[k][1], self.rows[k][4] = state

    def score(self, vectors):
        """Work out, before the write transaction, how alike each of the articles ``vectors``
        (``{id: (vector, anchors, embedded_at)}``, those this window's group places) is to each
        of the window's: one product of matrices for them all."""
        if not vectors or not self.ids:
            return
        cosines = self.matrix @ np.stack([vector for vector, _, _ in vectors.values()]).T
        for j, (article_id, own) in enumerate(vectors.items()):
            self.scored[article_id] = self._with_anchors(cosines[:, j], own[1])

    def scores(self, article_id, own):
        """How alike the article ``article_id`` (its vector and anchors ``own``) is to each of
        the window's: cosine similarity, and that plus :data:`ANCHOR_BONUS` per number both
        name (up to :data:`MAX_ANCHORS`)."""
        scored = self.scored.pop(article_id, None)
        if scored is not None:
            return scored
        return self._with_anchors(self.matrix @ own[0], own[1])

    def _with_anchors(self, cosine, numbers):
        shared = np.zeros(len(self.ids), dtype=np.float32)
        for number in set(numbers.split()):
            shared[self.naming.get(number, [])] += 1
        return cosine, cosine + ANCHOR_BONUS * np.minimum(shared, MAX_ANCHORS)

    def placement(self, article, own, spans):
        """``(story id or None, duplicate_of id or None, id of an article to start a story
        with, positions of the later articles that copy it)`` for a published ``article``
        whose vector and anchors are ``own``; it joins no story that would then cover more
        than :data:`MAX_SPAN` (``spans``, a :class:`_Spans`)."""
        near = self.alive & (
            np.abs(self.times - epoch_seconds(article.published_at)) <= WINDOW_DAYS * 86400
        )
        itself = self.position.get(article.id)
        if itself is not None:
            near[itself] = False
        candidates = np.flatnonzero(near)
        if not len(candidates):
            return None, None, None, []
        cosine, score = (values[candidates] for values in self.scores(article.id, own))
        duplicate_of, copies = None, []
        alike = np.flatnonzero(cosine >= DUPLICATE_COSINE)
        for k in candidates[alike[np.argsort(-cosine[alike], kind="stable")]]:
            row, other = self.rows[k], self.ids[k]
            if row[2] != article.language:
                continue
            if (row[0], other) > (article.published_at, article.id):
                copies.append(k)
            elif duplicate_of is None:  # the most alike before it (what that one copies,
                # unless that is this one: it was moved after its copies)
                duplicate_of = row[4] if row[4] not in (None, article.id) else other
        # A copy goes with what it copies: into its story, or a story started with it (the
        # nearest by score, with a bonus for shared numbers, can be another story's article).
        original = self.position.get(duplicate_of)
        if original is not None and self.alive[original]:
            story_id = self.rows[original][1]
            return story_id, duplicate_of, None if story_id else duplicate_of, copies
        # The nearest article whose story (if it has one) is alike enough on average.
        stories = np.array([self.rows[k][1] or 0 for k in candidates])
        for nearest in np.argsort(-score, kind="stable"):
            if score[nearest] < JOIN_SCORE:
                break
            story_id = self.rows[candidates[nearest]][1]
            if story_id is None:  # a story starts with it
                return None, duplicate_of, self.ids[candidates[nearest]], copies
            if cosine[nearest] >= DUPLICATE_COSINE:
                return story_id, duplicate_of, None, copies
            alike = score[stories == story_id].mean() >= STORY_SCORE
            if alike and spans.fits(story_id, article.published_at):
                return story_id, duplicate_of, None, copies
        return None, duplicate_of, None, copies

    def copying(self, copies, article, story_id, original):
        """The ids of the articles at positions ``copies`` (later copies of ``article``) that
        copy ``original`` (``article``, or what it copies) now: those in its story ``story_id``
        marked a copy of nothing or of a later article (placed before ``article`` came, or
        came back: an import of older news, an article published again)."""
        marked = []
        for k in copies:
            row = self.rows[k]
            if story_id is None or row[1] != story_id or original in (row[4], self.ids[k]):
                continue
            current = self.position.get(row[4])
            if row[4] is None or (
                current is not None
                and (self.rows[current][0], row[4]) > (article.published_at, article.id)
            ):
                marked.append(self.ids[k])
        return marked

    def mark(self, article_ids, duplicate_of):
        """Remember that the articles ``article_ids`` copy ``duplicate_of`` now."""
        for article_id in article_ids:
            k = self.position.get(article_id)
            if k is not None:
                self.rows[k][4] = duplicate_of

    def note(self, article_id, story_id=None, duplicate_of=None, partner=False):
        """Remember where an article went; placed, it is a candidate for those after it."""
        k = self.position.get(article_id)
        if k is not None:
            self.alive[k] = self.present[k]
            self.rows[k][1] = story_id
            if not partner:
                self.rows[k][4] = duplicate_of


class _ToCome:
    """The articles a placing has still to place: those of its transaction (``placing``, each
    let go once placed) and ``waiting`` (of the batches after it: a set its caller keeps, not
    copied for each transaction)."""

    def __init__(self, placing, waiting=frozenset()):
        self.placing, self.waiting = set(placing), waiting

    def __contains__(self, article_id):
        return article_id in self.placing or article_id in self.waiting

    def discard(self, article_id):
        self.placing.discard(article_id)

    def copy(self):
        return _ToCome(self.placing, self.waiting)


class _Spans(dict):
    """``{story id: [first, last]}``: the published times a story's articles other than copies
    cover as this placing leaves them. Read from the articles when first asked, leaving out
    ``to_come`` (a :class:`_ToCome`: the articles still to be placed, whose stored times may
    be the ones they leave), then stretched by each of them placed in the story."""

    def __init__(self, to_come):
        super().__init__()
        self.to_come = to_come.copy()

    def __missing__(self, story_id):
        # The articles being placed are left out here, not in the statement: a story holds a
        # week of articles at most, and peewee built a NOT IN of 64 ids in 0.5 ms, fourteen
        # times what SQLite took to run it.
        times = [
            published_at
            for article_id, published_at in Article.select(Article.id, Article.published_at)
            .where(
                (Article.story == story_id)
                & (Article.status == PUBLISHED)
                & Article.duplicate_of.is_null()
            )
            .tuples()
            if article_id not in self.to_come
        ]
        self[story_id] = span = [min(times), max(times)] if times else None
        return span

    def fits(self, story_id, moment):
        """Whether the story ``story_id`` would cover at most :data:`MAX_SPAN` with an article
        published at ``moment``."""
        span = self[story_id]
        return span is None or max(span[1], moment) - min(span[0], moment) <= MAX_SPAN

    def stretch(self, story_id, moment):
        """Count an article published at ``moment`` placed in the story ``story_id``."""
        span = self[story_id]
        if span is None:
            self[story_id] = [moment, moment]
        else:
            span[:] = min(span[0], moment), max(span[1], moment)


def _groups(articles):
    """The articles (in publication order) in runs that each span at most a day, so that each
    run's window is read once."""
    groups = []
    for article in articles:
        if groups and article.published_at - groups[-1][0].published_at <= datetime.timedelta(
            days=1
        ):
            groups[-1].append(article)
        else:
            groups.append([article])
    return groups


def _span(group):
    """The window of published times that the articles of ``group`` are compared within."""
    span = datetime.timedelta(days=WINDOW_DAYS)
    return shifted(group[0].published_at, -span), shifted(group[-1].published_at, span)


def _placed(article_ids):
    """The articles ``article_ids`` as placing reads them, in publication order."""
    return list(
        Article.select(
            Article.id,
            Article.published_at,
            Article.status,
            Article.language,
            Article.story,
            Article.duplicate_of,
        )
        .where(Article.id.in_(list(article_ids)))
        .order_by(Article.published_at, Article.id)
    )


def place(article_ids, waiting=frozenset()):
    """Place the articles ``article_ids`` in their stories, in publication order, at most
    :data:`PLACE_CHUNK` to a write transaction; the articles ``waiting`` (a set, to be placed
    after these) are no candidates yet. Returns the ids of the articles whose story or copy
    mark changed."""
    article_ids = list(article_ids)
    vectors = embeddings.vectors_of(article_ids)
    placing = _placed(article_ids)
    windows = []
    for group in _groups(placing):
        window = _Window(*_span(group))
        window.score({a.id: vectors[a.id] for a in group if a.id in vectors})
        windows.append(window)
    order = [article.id for article in placing]
    changed = set()
    for start in range(0, len(order), PLACE_CHUNK):
        chunk, later = order[start : start + PLACE_CHUNK], order[start + PLACE_CHUNK :]
        changed |= _place_chunk(chunk, later, windows, vectors, waiting)
    return changed


@runs_again_on_conflict
def _place_chunk(article_ids, later, windows, vectors, waiting):
    """Place the articles ``article_ids`` in one transaction, with the ``windows`` read for
    them (:class:`_Window`) and their ``vectors``; the articles ``later`` (embedded with them,
    placed in the transactions after) and ``waiting`` are no candidates yet. Returns the ids
    of the articles whose story or copy mark changed."""
    changed, touched = set(), set()
    with write_transaction():
        if is_postgres():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (STORY_LOCK,))
        # Again: one may have changed meanwhile. Their vectors are those read before: one
        # embedded again since is placed again by what embedded it.
        articles = _placed(article_ids)
        unplaced = _ToCome([*(article.id for article in articles), *later], waiting)
        spans = _Spans(unplaced)
        for group in _groups(articles):
            start, end = _span(group)
            around = next((w for w in windows if w.covers(start, end)), None)
            if around is None:  # published at another time since the windows were read
                around = _Window(start, end)
            around.refresh(unplaced)
            for article in group:
                own = vectors.get(article.id)
                story_id, duplicate_of, partner, copies = None, None, None, []
                if article.status == PUBLISHED and own is not None:
                    story_id, duplicate_of, partner, copies = around.placement(article, own, spans)
                if partner is not None:
                    row = around.rows[around.position[partner]]
                    started, copied = row[0], row[4]
                    story_id = _start_story(partner, started)
                    if copied is None:
                        spans.stretch(story_id, started)
                    around.note(partner, story_id, partner=True)
                    changed.add(partner)
                    touched.add(story_id)
                remarked, duplicate_of = _copies_placed_again(
                    around, article, own, duplicate_of, unplaced
                )
                changed.update(remarked)
                if story_id is not None and duplicate_of is None:
                    spans.stretch(story_id, article.published_at)
                around.note(article.id, story_id, duplicate_of)
                unplaced.discard(article.id)
                original = duplicate_of or article.id
                marked = around.copying(copies, article, story_id, original)
                if marked:
                    _mark(around, marked, original)
                    changed.update(marked)
                    changed.update(_follow(marked, original, around, article.id))
                # Its story shows its time, language and source: brought up to date even when
                # the article stays in it.
                touched.update(s for s in (story_id, article.story_id) if s is not None)
                if (story_id, duplicate_of) != (article.story_id, article.duplicate_of_id):
                    Article.update(story=story_id, duplicate_of=duplicate_of).where(
                        Article.id == article.id
                    ).execute()
                    changed.add(article.id)
        changed |= refresh_stories(touched)
        cards.publish(sorted(changed))
        if changed or touched:  # answers changed: of the stories, if not of their articles
            DataVersion.bump()
    return changed


def _copies_placed_again(around, article, own, duplicate_of, unplaced):
    """Bring up to date the marks of the articles that copied ``article``, placed again (its
    vector and anchors ``own``, None without one) as a copy of ``duplicate_of``: those that no
    longer copy it (its text rewritten, it moved after them, or it is no longer published)
    are handed over (:func:`hand_over`), and the article, if it copies one of them, copies that
    one's original now (or that one, an original now); the others copy what the article copies,
    if it is a copy now. Those still to be placed (``unplaced``, with it or later) are left to
    their own placing. Returns ``(ids of the articles marked again, what the article copies)``."""
    before = [i for i in copies_of(article.id) if i not in unplaced]
    if not before:
        return [], duplicate_of
    # Read once for both: which still copy it, and how those that do not compare.
    rows = list(
        Article.select(Article.id, Article.published_at, Article.language).where(
            Article.id.in_(before)
        )
    )
    vectors = embeddings.vectors_of(before)
    alike = _still_copying(article, own, rows, vectors)
    stale = [i for i in before if i not in alike]
    if stale:
        marks = hand_over(stale, vectors, {row.id: row.language for row in rows})
        for copy, original in marks.items():
            around.mark([copy], original)
        if duplicate_of in marks:
            duplicate_of = marks[duplicate_of] or duplicate_of
    original = duplicate_of or article.id
    still = [i for i in before if i in alike and original not in (article.id, i)]
    _mark(around, still, original)
    return stale + still, duplicate_of


def _still_copying(article, own, rows, vectors):
    """Which of the articles ``rows`` (published, marked copies of ``article``; their
    ``vectors``) still copy it, as placing would mark them: after it, in its language, and at
    least :data:`DUPLICATE_COSINE` alike to its vector ``own``. Compared one by one, not within
    the placing's window of days: a copy of a copy (a text run over more than a few days) is
    compared too."""
    if own is None or article.status != PUBLISHED:
        return set()
    return {
        row.id
        for row in rows
        if row.id in vectors
        and row.language == article.language
        and (row.published_at, row.id) > (article.published_at, article.id)
        and float(vectors[row.id][0] @ own[0]) >= DUPLICATE_COSINE
    }


def _follow(marked, original, around, placed):
    """The articles that copied ``marked`` (articles now marked copies of ``original``) copy
    ``original`` too: no copy of a copy. Not ``original`` itself, nor the article ``placed``,
    whose own mark its placing writes. Returns their ids."""
    query = Article.select(Article.id).where(
        Article.duplicate_of.in_(list(marked)) & Article.id.not_in([original, placed])
    )
    chained = [i for (i,) in query.tuples()]
    _mark(around, chained, original)
    return chained


def _mark(around, article_ids, duplicate_of):
    """Mark the articles ``article_ids`` copies of ``duplicate_of``, stored and in the window
    ``around``."""
    if article_ids:
        Article.update(duplicate_of=duplicate_of).where(Article.id.in_(article_ids)).execute()
        around.mark(article_ids, duplicate_of)


def _start_story(article_id, published_at):
    """A new story holding the article ``article_id`` (published at ``published_at``); its id."""
    story = Story.create(first_published_at=published_at, last_published_at=published_at)
    Article.update(story=story.id).where(Article.id == article_id).execute()
    return story.id


def copies_of(article_id):
    """The ids of the published articles marked copies of ``article_id``, in publication
    order."""
    query = (
        Article.select(Article.id)
        .where((Article.duplicate_of == article_id) & (Article.status == PUBLISHED))
        .order_by(Article.published_at, Article.id)
    )
    return [i for (i,) in query.tuples()]


def hand_over(copies, vectors=None, languages=None):
    """The articles ``copies`` (ids in publication order, at least one) copied one article,
    and copy it no more (it was deleted, unpublished, rewritten or moved after them). Each was
    at least :data:`DUPLICATE_COSINE` alike to that article, which most often makes them as
    alike to each other, though not always (two can be as far apart as 0.73): they are
    compared again, with each other only, by placing's rule. Each copies the one before it most
    alike to it (at least :data:`DUPLICATE_COSINE`, in its language), or what that one copies;
    the first, and each alike to none before it, is an original. One without a vector, or
    compared only with ones without, copies the first. Returns ``{id: what it copies now, None
    for an original}``. Their ``vectors`` (as :func:`embeddings.vectors_of` gives them) and
    ``languages`` (``{id: language}``) are read when not given.

    A delete or an unpublishing through the API reads the copies' vectors in its write
    transaction: one row a copy."""
    if vectors is None:
        vectors = embeddings.vectors_of(copies)
    if languages is None:
        query = Article.select(Article.id, Article.language).where(Article.id.in_(copies))
        languages = dict(query.tuples())
    with_vector = [i for i in copies if i in vectors]
    row = {article_id: k for k, article_id in enumerate(with_vector)}
    matrix = np.array([vectors[i][0] for i in with_vector], dtype=np.float32)
    cosines = matrix @ matrix.T if with_vector else None  # every pair at once
    marks = {}
    for k, article_id in enumerate(copies):
        nearest, best, compared = None, 0.0, False
        for earlier in copies[:k] if article_id in row else ():
            if earlier not in row:
                continue
            compared = True
            cosine = float(cosines[row[article_id], row[earlier]])
            alike = languages.get(earlier) == languages.get(article_id)
            if alike and cosine >= DUPLICATE_COSINE and (nearest is None or cosine > best):
                nearest, best = earlier, cosine
        if k and not compared:
            nearest = copies[0]
        marks[article_id] = None if nearest is None else (marks[nearest] or nearest)
    by_original = collections.defaultdict(list)
    for article_id, original in marks.items():
        by_original[original].append(article_id)
    for original, marked in by_original.items():
        Article.update(duplicate_of=original).where(Article.id.in_(marked)).execute()
    return marks


def refresh_stories(story_ids):
    """Bring the counts, lists and headline of the stories ``story_ids`` up to date, inside the
    caller's transaction; a story with fewer than two published articles is dissolved. Returns
    the ids of the articles that lost their story that way."""
    released = set()
    story_ids = sorted(set(story_ids))
    if not story_ids:
        return released
    # Locked before their articles are read: two writes refreshing one story take turns, the
    # second reading them once the first has committed (read before, its update could write
    # over the first's with what it read before the first committed: a slug renamed, undone).
    list(locked(Story.select(Story.id).where(Story.id.in_(story_ids)).order_by(Story.id), Story))
    members = (
        Article.select(
            Article.id,
            Article.story,
            Article.status,
            Article.language,
            Article.published_at,
            Article.duplicate_of,
            Source.slug,
        )
        .join(Source)
        .where(Article.story.in_(story_ids))
        .order_by(Article.story, Article.published_at, Article.id)
        .namedtuples()  # a story can hold thousands: model instances cost more than the reads
    )
    by_story = {story_id: [] for story_id in story_ids}
    for member in members:
        by_story[member.story].append(member)
    now = utcnow()
    for story_id, rows in by_story.items():
        published = [row for row in rows if row.status == PUBLISHED]
        if len(published) < 2:
            released.update(row.id for row in rows)
            Article.update(story=None).where(Article.story == story_id).execute()
            Story.delete().where(Story.id == story_id).execute()
            continue
        # The copies of an article no longer published in the story (unpublished, or
        # rewritten and placed elsewhere) are handed over (hand_over).
        kept = {row.id for row in published}
        languages = {row.id: row.language for row in published}
        orphans = collections.defaultdict(list)
        for row in published:
            if row.duplicate_of is not None and row.duplicate_of not in kept:
                orphans[row.duplicate_of].append(row.id)
        firsts = {
            article_id
            for copies in orphans.values()
            for article_id, original in hand_over(copies, languages=languages).items()
            if original is None
        }
        headline = next(
            (row for row in published if row.duplicate_of is None or row.id in firsts),
            published[0],
        )
        Story.update(
            headline=headline.id,
            article_count=len(published),
            sources=",".join(sorted({row.slug for row in published})),
            languages=",".join(sorted({row.language for row in published})),
            first_published_at=published[0].published_at,
            last_published_at=published[-1].published_at,
            updated_at=now,
        ).where(Story.id == story_id).execute()
        unpublished = [row.id for row in rows if row.status != PUBLISHED]
        if unpublished:
            released.update(unpublished)
            Article.update(story=None).where(
                (Article.story == story_id) & (Article.status != PUBLISHED)
            ).execute()
    return released


def refresh_source_stories(source_id):
    """Bring up to date the stories with articles of a source (their ``sources`` list its
    slug, which changed); returns the ids of the articles that lost their story."""
    query = Article.select(Article.story).where(
        (Article.source == source_id) & Article.story.is_null(False)
    )
    return refresh_stories(story_id for (story_id,) in query.distinct().tuples())


def refresh_queued(limit=embeddings.BATCH):
    """Embed up to ``limit`` queued articles (single writes' before bulk writes', see
    :meth:`~models.articles.ArticleQueue.due`), place them in their stories and queue their
    related lists; returns how many. One that cannot be is logged and taken off the queue
    (:func:`models.base.each_apart`)."""
    due = [article_id for article_id, *_ in embeddings.EmbeddingQueue.due(limit)]
    if due:
        each_apart(process, due, give_up=_dequeue)
    return len(due)


def _dequeue(article_id):
    with write_transaction():
        embeddings.EmbeddingQueue.delete().where(
            embeddings.EmbeddingQueue.article == article_id
        ).execute()


def process(article_ids, force=False, waiting=frozenset()):
    """Embed the articles ``article_ids`` (those whose text changed, or all with ``force``),
    place them in their stories (the articles ``waiting``, processed after them, are no
    candidates yet), queue their related lists and those these changes left stale, and take
    them off the embedding queue (an article queued again meanwhile stays queued)."""
    article_ids = list(article_ids)
    queue = embeddings.EmbeddingQueue
    queued = list(
        queue.select(queue.article, queue.queued_at, queue.bulk)
        .where(queue.article.in_(article_ids))
        .tuples()
    )
    embedded = embeddings.embed_articles(article_ids, force=force)
    moved = place(article_ids, waiting)
    with write_transaction():
        # Lists left stale: of the articles whose story changed with these (`same_story` ends
        # when a story breaks up), and the lists that name one embedded again, by what it said
        # before (with ``force``, a new model: every list is computed again anyway).
        stale = set(moved)
        if embedded and not force:
            naming = Relation.select(Relation.article).where(
                Relation.related.in_(embedded) & (Relation.origin == COMPUTED)
            )
            stale.update(i for (i,) in naming.tuples())
        # The articles first, kept from deletion until this commits (queued below, they are
        # referred to), as a write locks an article before its queue rows: with the queue's
        # rows taken first, a delete of one of them (its rows in the queues go with it)
        # deadlocked with this on PostgreSQL. Then off the embedding queue, then onto the
        # related one: the order a write queues them in (an import writing these articles
        # meanwhile deadlocked with the other order).
        ids = set(article_ids)
        kept = Article.kept_ids(Article.id.in_(sorted(stale | ids)) & (Article.status == PUBLISHED))
        queue.take_off(queued)
        alive = [i for i in kept if i in ids]
        # A related list is queued as the embedding was: after single writes' when a bulk
        # write queued it, or nothing did (``embed --all``).
        urgent = {article_id for article_id, _, bulk in queued if not bulk}
        RelatedQueue.add([i for i in alive if i in urgent])
        RelatedQueue.add([i for i in alive if i not in urgent], bulk=True)
        RelatedQueue.add([i for i in kept if i in stale and i not in alive], bulk=True)


def embed_all(ids, on_batch=None, force=False, batch=embeddings.BATCH):
    """:func:`process` the articles ``ids`` in batches (in the order given: publication order
    places each article among those before it); ``on_batch(count)`` after each. The articles
    of the batches still to come are no candidates until they are placed, whatever stories
    and vectors they had: where the batches end changes nothing."""
    ids = list(ids)
    waiting = set(ids)
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        waiting.difference_update(chunk)
        process(chunk, force=force, waiting=waiting)
        if on_batch is not None:
            on_batch(len(chunk))


def listed():
    """Stories, each with its headline's card as ``headline_card``, for ``seek`` to order and
    page (by the last article published, or by id: ``api.stories.ORDERS``)."""
    return (
        Story.select(Story, Article.card.alias("headline_card"))
        .join(Article, peewee.JOIN.LEFT_OUTER, on=(Article.id == Story.headline))
        .objects()
    )


def members(story_id, limit=MAX_MEMBERS):
    """The published articles of a story in publication order: ``(id, card, duplicate_of)``."""
    return list(
        Article.select(Article.id, Article.card, Article.duplicate_of)
        .where((Article.story == story_id) & (Article.status == PUBLISHED))
        .order_by(Article.published_at, Article.id)
        .limit(limit)
        .tuples()
    )
