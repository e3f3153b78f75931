"""``/v1/me``: the calling API key."""

from flask.views import MethodView

from schemas.keys import MeSchema

from .arguments import Blueprint
from .auth import current_key, requires
from .limits import limit_state

blp = Blueprint("me", __name__, url_prefix="/v1", description="The calling API key")


@blp.route("/me")
class Me(MethodView):
    @requires(blp, "read")
    @blp.response(200, MeSchema)
    def get(self):
        """The calling key: name, scopes, and its rate limit with what is left of it."""
        key = current_key()
        key.rate_limit = limit_state()
        return key, {"Cache-Control": "private, no-store"}
