"""Rate limits (flask-limiter): per API key, or per client address when anonymous.

Every request counts against ``NEWSDESK_RATE_LIMIT``; writes and comments also against the
stricter ``NEWSDESK_WRITE_RATE_LIMIT``. Counters live in memory per worker, or in Redis when
``NEWSDESK_REDIS_URL`` is set, so that every worker and host shares them.
"""

import time

from flask import request
from flask_limiter import Limiter

from .auth import lookup_key
from .http import NO_DATABASE

WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
#: Endpoints that are never limited: health checks, metrics and the docs.
EXEMPT = NO_DATABASE | {"health.Ready"}


def rate_limit_key():
    _, key = lookup_key()
    return f"key:{key.id}" if key is not None else f"ip:{request.remote_addr}"


def init_app(app, config, write_blueprints):
    limiter = Limiter(
        key_func=rate_limit_key,
        app=app,
        default_limits=[config.rate_limit],
        storage_uri=config.redis_url or "memory://",
        strategy="fixed-window",
        headers_enabled=False,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        key_prefix="newsdesk",
    )
    limiter.request_filter(lambda: request.endpoint in EXEMPT)
    write_limit = limiter.shared_limit(
        config.write_rate_limit, scope="writes", methods=WRITE_METHODS, override_defaults=False
    )
    for blueprint in write_blueprints:
        write_limit(blueprint)

    @app.after_request
    def rate_limit_headers(response):
        current = limiter.current_limit
        if current is not None:
            reset = max(0, int(current.reset_at - time.time()))
            response.headers["RateLimit-Limit"] = str(current.limit.amount)
            response.headers["RateLimit-Remaining"] = str(current.remaining)
            response.headers["RateLimit-Reset"] = str(reset)
            if response.status_code == 429:
                response.headers["Retry-After"] = str(max(1, reset))
        return response

    app.extensions["newsdesk_limiter"] = limiter
    return limiter


def limit_state(app):
    """``{limit, remaining, reset}`` of the limit nearest exhaustion for this request, or None."""
    current = app.extensions["newsdesk_limiter"].current_limit
    if current is None:
        return None
    return {
        "limit": current.limit.amount,
        "remaining": current.remaining,
        "reset": max(0, int(current.reset_at - time.time())),
    }
