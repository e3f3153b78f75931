"""``/v1/me``: the calling API key."""

from flask.views import MethodView

from schemas.keys import MeSchema

from .auth import current_key, requires
from .http import Blueprint, json_response
from .limits import limit_state

blp = Blueprint("me", __name__, url_prefix="/v1", description="The calling API key")
me_schema = MeSchema()


@blp.route("/me")
class Me(MethodView):
    @requires(blp, "read")
    @blp.response(200, MeSchema)
    def get(self):
        """The calling key: name, scopes, and its rate limit with what is left of it."""
        key = current_key()
        key.rate_limit = limit_state()
        response = json_response(me_schema.dump(key))
        response.headers["Cache-Control"] = "private, no-store"
        return response
