"""The WSGI application gunicorn serves: ``gunicorn api.wsgi:app``."""

from . import create_app

app = create_app()
