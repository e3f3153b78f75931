"""``GET /v1/articles/{id}/summary``: an extractive summary of an article."""

from flask.views import MethodView
from werkzeug.http import http_date

from models import Article, Summary
from schemas.summaries import SummaryArgs, SummarySchema

from .arguments import Blueprint
from .articles import found
from .auth import drafts_shown

blp = Blueprint("summaries", __name__, url_prefix="/v1/articles", description="AI summaries")


@blp.route("/<key>/summary")
class ArticleSummary(MethodView):
    @blp.arguments(SummaryArgs(), location="query", as_kwargs=True)
    @blp.response(200, SummarySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, key, sentences):
        """An extractive summary: the article's most central sentences, verbatim, in order.

        Made by TextRank over sentence similarity with position and length priors; cached per
        article version and length, and made again when the article changes.
        """
        article = found(Article.lookup(key, include_drafts=drafts_shown()), key)
        return Summary.for_article(article, sentences), {
            "Last-Modified": http_date(article.last_modified)
        }
