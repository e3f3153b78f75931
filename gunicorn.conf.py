"""gunicorn settings for Newsdesk; ``newsdesk serve`` and the Docker image use this file.

--bind and --workers on the command line win over what is set here.
"""

from api.config import Config

_config = Config.from_env()

bind = _config.bind
workers = _config.workers
# Sync workers were steadier than gthread under load on this hardware (see ../shared/STYLE.md).
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
accesslog = None
errorlog = "-"
loglevel = _config.log_level
wsgi_app = "api.wsgi:app"
