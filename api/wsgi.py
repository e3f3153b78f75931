"""The WSGI application gunicorn serves: ``gunicorn api.wsgi:app``."""

import sys

from . import create_app
from .config import ConfigError

try:
    app = create_app()
except ConfigError as error:  # one line that says what to do, not a traceback
    sys.exit(f"newsdesk: {error}")
