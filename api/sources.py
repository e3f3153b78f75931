"""Sources: the publishers articles come from."""

from flask.views import MethodView
from flask_smorest import abort
from werkzeug.http import http_date

from models import Article, Source, cards, stories, utcnow, webhooks
from models.base import locked, runs_again_on_conflict
from models.ingest import WriteError, writing
from schemas.sources import SourceInSchema, SourceListArgs, SourcePageSchema, SourceSchema
from schemas.webhooks import SOURCE_CREATED, SOURCE_UPDATED

from . import caching, paging
from .arguments import Blueprint
from .auth import requires
from .feeds import feed_links
from .responses import location

#: Each order of the list, as :func:`paging.ordered_page` takes it.
ORDERS = {
    "name": ("sources", (Source.name, Source.id), (paging.string, paging.integer), False),
    "id": ("sources-id", (Source.id,), (paging.integer,), False),
}

blp = Blueprint("sources", __name__, url_prefix="/v1/sources", description="Publishers")


@blp.route("")
class SourceList(MethodView):
    @blp.arguments(SourceListArgs(), location="query", as_kwargs=True)
    @blp.response(200, SourcePageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, sort, cursor=None):
        """List sources by name (or by id)."""
        return paging.ordered_page(Source.select(), ORDERS[sort], limit, cursor)

    @requires(blp, "write")
    @blp.arguments(SourceInSchema())
    @blp.response(201, SourceSchema)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @runs_again_on_conflict  # a slug taken meanwhile (said as a 409 then), a deadlock
    def post(self, data):
        """Add a source.

        `If-Match` names no source yet: 412."""
        caching.check_if_match("source", None)
        with writing() as touched:
            ensure_slug_free(data["slug"])
            source = Source.create(**data)
            touched.events.append(webhooks.source_event(SOURCE_CREATED, source))
        headers = {
            **location("sources.SourceDetail", slug=source.slug),
            **caching.tagged("source", source),
        }
        return source, headers


@blp.route("/<slug>")
class SourceDetail(MethodView):
    @blp.response(200, SourceSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, slug):
        """Get one source by slug."""
        source = get_source_or_404(slug)
        source.feeds = feed_links(source=source.slug)
        caching.tagged("source", source)
        return source, {"Last-Modified": http_date(source.last_modified)}

    @requires(blp, "write")
    @blp.arguments(SourceInSchema(partial=True))
    @blp.response(200, SourceSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    @runs_again_on_conflict  # a deadlock PostgreSQL broke: the write again
    def patch(self, data, slug):
        """Update some fields of a source (the cards of its articles show the change at once).

        With `If-Match`, only if the source still has that ETag.
        """
        with writing() as touched:
            source = get_source_or_404(slug, for_update=True)
            caching.check_if_match("source", source)
            if all(getattr(source, name) == value for name, value in data.items()):
                touched.changed = False  # no new version, no event
                return source, caching.tagged("source", source)
            renamed = data.get("slug", slug) != slug
            if renamed:
                ensure_slug_free(data["slug"])
            # Its articles are locked first, in id order, as writes lock them (their cards
            # change below). And a new slug (a unique key) locks the source against references
            # too: a comment's write holding one of them (whose key check waits for the
            # source) is not waited for in turn: a deadlock.
            of_source = Article.select(Article.id).where(Article.source == source.id)
            list(locked(of_source.order_by(Article.id), Article).tuples())
            now = utcnow()
            Source.update(Source.new_version(now), **data, updated_at=now).where(
                Source.id == source.id
            ).execute()
            # Row locks first (the stories, and other sources' articles in them), the change
            # log's lock last (cards.publish), as every other write takes them: the other way
            # round, a comment or an unpublish of an article in one of its stories deadlocked.
            in_stories = sorted(stories.refresh_source_stories(source.id)) if renamed else []
            updated = Source.get_by_id(source.id)
            cards.publish_source(source, updated)
            cards.publish(in_stories)
            touched.events.append(webhooks.source_event(SOURCE_UPDATED, updated))
        return updated, caching.tagged("source", updated)


def get_source_or_404(slug, for_update=False):
    """The source ``slug``; ``for_update``: locked until the write ends, so that no other
    write changes it between its ``If-Match`` check and the update."""
    query = Source.select().where(Source.slug == slug)
    source = (locked(query, Source) if for_update else query).first()
    if source is None:
        abort(404, message=f"No source with slug {slug!r}.")
    return source


def ensure_slug_free(slug):
    if Source.select().where(Source.slug == slug).exists():
        raise WriteError(409, {"slug": [f"A source with slug {slug!r} exists."]})
