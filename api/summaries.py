"""``GET /v1/articles/{id}/summary``: an extractive summary of an article."""

from flask.views import MethodView

from models import Summary
from schemas.summaries import SummaryArgs, SummarySchema

from .articles import get_article_or_404
from .http import Blueprint, json_response

blp = Blueprint("summaries", __name__, url_prefix="/v1/articles", description="AI summaries")
summary_schema = SummarySchema()


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
        article = get_article_or_404(key)
        summary = Summary.for_article(article, sentences)
        return json_response(summary_schema.dump(summary), last_modified=article.updated_at)
