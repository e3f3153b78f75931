"""Asking an article: ``GET /v1/articles/{id}/answers?q=...`` and ``.../key-points``."""

from flask.views import MethodView
from werkzeug.http import http_date

from models import Article, answers, embeddings
from schemas.answers import AnswerArgs, AnswersSchema, KeyPointArgs, SentencesSchema

from .arguments import Blueprint
from .articles import found
from .auth import drafts_shown

blp = Blueprint(
    "answers",
    __name__,
    url_prefix="/v1/articles",
    description="Ask an article: its own sentences that answer a question, its key points",
)


class Sentences:
    """What an answer is dumped from: the article, the chosen sentences, how they were chosen."""

    def __init__(self, article, chosen, question=None):
        self.article_id = article.id
        self.article_version = article.version
        self.method = answers.METHOD
        self.model = embeddings.embedder().name
        self.question = question
        self.sentences = [
            {"position": position, "sentence": sentence, "score": score}
            for position, sentence, score in chosen
        ]


@blp.route("/<key>/answers")
class ArticleAnswers(MethodView):
    @blp.arguments(AnswerArgs(), location="query", as_kwargs=True)
    @blp.response(200, AnswersSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, q, limit):
        """The article's sentences that best answer a question, verbatim, in article order.

        Extractive: nothing is generated. The question may be in another language than the
        article (any of the embedding model's sixteen). Sentences and their vectors are kept
        per article version.
        """
        article = found(Article.lookup(key, include_drafts=drafts_shown()), key)
        chosen = answers.answers(article, q, limit)
        return Sentences(article, chosen, q), {"Last-Modified": http_date(article.last_modified)}


@blp.route("/<key>/key-points")
class ArticleKeyPoints(MethodView):
    @blp.arguments(KeyPointArgs(), location="query", as_kwargs=True)
    @blp.response(200, SentencesSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, limit):
        """The article's main points: its sentences nearest what it is about, verbatim, in
        article order (early sentences and those stating figures preferred)."""
        article = found(Article.lookup(key, include_drafts=drafts_shown()), key)
        chosen, as_of = answers.key_points(article, limit)
        return Sentences(article, chosen), {"Last-Modified": http_date(as_of)}
