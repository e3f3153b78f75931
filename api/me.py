"""``/v1/me``: the calling API key."""

from flask import current_app
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
        """The calling key: name, scopes, its rate limit with what is left of it, and its
        write limit (writes count against both) with what is left of that."""
        key = current_key()
        key.rate_limit = limit_state()
        key.write_rate_limit = current_app.extensions["newsdesk"]["limiter"].write_state(key)
        return key, {"Cache-Control": "private, no-store"}
