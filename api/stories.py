"""Story clusters: ``GET /v1/stories`` (newest activity first) and ``GET /v1/stories/{id}``."""

from flask.views import MethodView
from flask_smorest import abort

from models import Story, seek, stories
from schemas.articles import COPY_FIELDS
from schemas.stories import (
    StoryArticleSchema,
    StoryDetailSchema,
    StoryFieldsArgs,
    StoryPageSchema,
    StoryQueryArgs,
)

from . import paging
from .arguments import Blueprint
from .documents import bodies, document, fieldset, list_item

#: What a story adds to each of its articles' documents, dumped by the story's article schema.
_copy_part = StoryArticleSchema(only=("duplicate_of",))

blp = Blueprint(
    "stories",
    __name__,
    url_prefix="/v1/stories",
    description="Story clusters: articles about the same story across sources and languages",
)


#: Each order of the list: its cursors' tag, its sort columns (descending, the last unique)
#: and how a cursor's values are read.
ORDERS = {
    "-last_published_at": (
        "stories",
        (Story.last_published_at, Story.id),
        (paging.timestamp, paging.integer),
    ),
    "-id": ("stories-id", (Story.id,), (paging.integer,)),
}


def _with_headlines(stories, fields):
    """The stories, ready for their schema: each with its headline's card (or fieldset of it)."""
    shown = bodies([story.headline_id for story in stories], fields)
    for story in stories:
        card = story.headline_card
        body = shown.get(story.headline_id)
        story.headline_item = None if card is None else list_item(card, fields, body)
    return stories


@blp.route("")
class StoryList(MethodView):
    @blp.arguments(StoryQueryArgs(), location="query", as_kwargs=True)
    @blp.response(200, StoryPageSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    def get(self, limit, sort, cursor=None, field_names=None):
        """List stories, newest activity first (the time of their latest article), or newest
        story first (`sort=-id`, which pages through every story once while articles arrive).

        A story gathers the articles about the same event from every source and language;
        `headline` is its first article that is not a copy of another. `fields` narrows the
        headline's article fields.
        """
        fields = fieldset(field_names)
        tag, keys, types = ORDERS[sort]
        after = paging.decode_cursor(cursor, tag, types) if cursor else None
        query = seek(stories.listed(), keys, after, descending=True).limit(limit + 1)
        rows, next_cursor = paging.paginate(
            query, limit, tag, lambda story: tuple(getattr(story, key.name) for key in keys)
        )
        return paging.page(_with_headlines(rows, fields), next_cursor)


@blp.route("/<int(max=9223372036854775807):story_id>")
class StoryDetail(MethodView):
    @blp.arguments(StoryFieldsArgs(), location="query", as_kwargs=True)
    @blp.response(200, StoryDetailSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, story_id, field_names=None):
        """One story with its articles in publication order.

        Each article carries `duplicate_of`: the earlier article of the story it is a
        near-identical copy of (a wire story run by another source), or null.
        """
        fields = fieldset(field_names, COPY_FIELDS)
        story = stories.listed().where(Story.id == story_id).first()
        if story is None:
            abort(404, message=f"No story with id {story_id}.")
        members = stories.members(story_id)
        shown = bodies([article_id for article_id, _, _ in members], fields)
        story.article_items = [
            {
                **document(card, shown.get(article_id), fields),
                **_copy_part.dump({"duplicate_of": duplicate_of}),
            }
            for article_id, card, duplicate_of in members
        ]
        return _with_headlines([story], fields)[0]
