"""Ask an article: the sentences of its body that best answer a question, and its key points.

Extractive: every sentence returned is one of the body's own (``models.summarize``'s splitter),
verbatim, in the article's order. A question and the sentences are compared by their vectors
(``models.embeddings``), so a question may be asked in any language the model covers; words
the question shares with a sentence add a little, which settles names and figures. Key points
are the sentences nearest the article's own vector (what it is about), early ones preferred.
The sentences and their vectors are kept per article version (``sentence_embedding``).
"""

import itertools
import json
import math
import re

import numpy as np
import peewee

from . import embeddings
from .articles import Article, ArticleBody
from .base import BaseModel, keep_unless_gone
from .highlight import stem
from .summarize import _CJK, _WORD, content_sentences

METHOD = "embedding-v1"
#: How a body is split into the sentences kept with their vectors: kept ones made another way
#: are made again (a brief of short sentences once kept none).
SENTENCES = "sentences-v2"
#: Sentences of an article considered (the first ones).
MAX_SENTENCES = 200
#: Added to the similarity of vectors: the share of the question's words a sentence uses, and
#: a figure in a sentence when the question asks how many, how much or when (:func:`answers`).
ANSWER_WEIGHTS = {"words": 0.5, "figure": 0.15}
#: Added to a sentence's similarity to the article: being early, naming a figure (a fact).
KEY_POINT_WEIGHTS = {"position": 0.1, "figure": 0.15}
#: Questions answered by a figure or a date, in the languages of the model.
ASKS_FOR_FIGURE = re.compile(
    r"\b(how (many|much|long|old|effective|far|big|high|large)|what (percentage|share)|when"
    r"|wie (viele?|hoch|lange|alt|groß|weit)|wann|combien|quel âge|quand|jusqu'à quand"
    r"|cu[aá]nt[oa]s?|cu[aá]ndo|qu[eé] edad)\b"
    r"|いくら|何人|何%|何度|何位|いつ|何歳|どのくらい|何億|何万",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")


class SentenceEmbedding(BaseModel):
    """An article's sentences and their vectors at one version of the article, for one model."""

    article = peewee.ForeignKeyField(Article, primary_key=True, on_delete="CASCADE")
    article_version = peewee.IntegerField()
    model = peewee.CharField(max_length=100)
    #: The sentences as a JSON list of strings, in the article's order.
    sentences = peewee.TextField()
    #: Their vectors, float32, one after another.
    vectors = peewee.BlobField()

    class Meta:
        table_name = "sentence_embedding"


def sentences_of(body_text):
    """The sentences an answer or a key point may be: the body's, without captions, credits
    and repeats, verbatim and in order."""
    return content_sentences(body_text)[:MAX_SENTENCES]


def sentence_vectors(article):
    """``(sentences, vectors)`` of ``article`` (an Article with ``id`` and ``version``), made
    now when none are kept for this version and model."""
    model = embeddings.embedder()
    made_by = f"{model.name} {SENTENCES}"
    kept = SentenceEmbedding.get_or_none(SentenceEmbedding.article == article.id)
    if kept and kept.article_version == article.version and kept.model == made_by:
        sentences = json.loads(kept.sentences)
        vectors = np.frombuffer(bytes(kept.vectors), dtype="<f4")
        return sentences, vectors.reshape(len(sentences), model.dimensions)
    body = ArticleBody.get_or_none(ArticleBody.article == article.id)
    sentences = sentences_of(body.body_text if body else "")
    vectors = model.embed(sentences)
    row = {
        "article": article.id,
        "article_version": article.version,
        "model": made_by,
        "sentences": json.dumps(sentences, ensure_ascii=False),
        "vectors": vectors.astype("<f4").tobytes(),
    }
    keep_unless_gone(
        SentenceEmbedding.insert(**row).on_conflict(
            conflict_target=[SentenceEmbedding.article],
            update={k: v for k, v in row.items() if k != "article"},
        )
    )
    return sentences, vectors


def _terms(text):
    if _CJK.search(text):
        characters = [c for c in text if _CJK.match(c)]
        return {a + b for a, b in itertools.pairwise(characters)}
    return {stem(word) for word in _WORD.findall(text.lower()) if len(word) > 2}


def word_scores(question, sentences):
    """How much of the question's words each sentence uses, each word weighted by how rare it
    is among the article's sentences (0-1)."""
    asked = _terms(question)
    if not asked or not sentences:
        return np.zeros(len(sentences), dtype=np.float32)
    terms = [_terms(sentence) for sentence in sentences]
    weight = {
        term: math.log(1 + len(sentences) / (1 + sum(term in t for t in terms))) for term in asked
    }
    total = sum(weight.values())
    return np.array(
        [sum(w for term, w in weight.items() if term in t) / total for t in terms],
        dtype=np.float32,
    )


def _figures(sentences):
    return np.array([bool(_DIGIT.search(s)) for s in sentences], dtype=np.float32)


def answers(article, question, limit=3):
    """The ``limit`` sentences of ``article`` that best answer ``question``:
    ``[(position, sentence, score)]`` in the article's order.

    A sentence's score is the cosine similarity of its vector to the question's, raised by
    the share of the question's words it uses and, when the question asks for a figure or a
    date, by naming one (:data:`ANSWER_WEIGHTS`).
    """
    sentences, vectors = sentence_vectors(article)
    if not sentences:
        return []
    asked = embeddings.embed_query(question)
    figure = _figures(sentences) if ASKS_FOR_FIGURE.search(question) else 0.0
    scores = (
        vectors @ asked
        + ANSWER_WEIGHTS["words"] * word_scores(question, sentences)
        + ANSWER_WEIGHTS["figure"] * figure
    )
    best = sorted(np.argsort(-scores, kind="stable")[:limit].tolist())
    return [(i, sentences[i], round(float(scores[i]), 4)) for i in best]


def key_points(article, limit=3):
    """The article's ``limit`` main points, ``[(position, sentence, score)]`` in its order, and
    when what they were chosen by last changed (the article, or its vector).

    A sentence's score is how near its vector is to the article's (its title and lead, or the
    mean of its sentences before the article is embedded), raised for coming early and for
    naming a figure, which is where news states its facts (:data:`KEY_POINT_WEIGHTS`).
    """
    own = embeddings.vectors_of([article.id]).get(article.id)
    as_of = article.last_modified if own is None else max(article.last_modified, own[2])
    sentences, vectors = sentence_vectors(article)
    if not sentences:
        return [], as_of
    centre = own[0] if own is not None else embeddings.normalise(vectors.mean(axis=0)[None])[0]
    position = np.array([1 / (1 + i) ** 0.5 for i in range(len(sentences))], dtype=np.float32)
    scores = (
        vectors @ centre
        + KEY_POINT_WEIGHTS["position"] * position
        + KEY_POINT_WEIGHTS["figure"] * _figures(sentences)
    )
    best = sorted(np.argsort(-scores, kind="stable")[:limit].tolist())
    return [(i, sentences[i], round(float(scores[i]), 4)) for i in best], as_of
