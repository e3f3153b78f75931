# Newsdesk on gunicorn. SQLite by default (mount a volume on /app/instance);
# set NEWSDESK_DATABASE_URL=postgresql://... for production. gevent workers by default, so the
# container may face slow clients directly; behind a proxy that buffers requests (nginx),
# NEWSDESK_WORKER_CLASS=sync serves with sync workers.
#
# The background worker (webhook deliveries, related articles) is a second container from this
# same image, with the same environment (database, NEWSDESK_SECRET_KEY, webhook settings) and
# without the health check, which asks the server it does not run:
#   docker run -d --no-healthcheck -e NEWSDESK_DATABASE_URL=postgresql://... \
#       -e NEWSDESK_SECRET_KEY="$NEWSDESK_SECRET_KEY" newsdesk newsdesk worker
# (on SQLite, mount the same volume on /app/instance). See README.md, "Running the worker".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NEWSDESK_BIND=0.0.0.0:8000

WORKDIR /app
RUN useradd --system --create-home --uid 10001 newsdesk

# The dependencies first, read from pyproject.toml alone: a change to the code (or the README)
# leaves this layer as it is.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY README.md LICENSE gunicorn.conf.py openapi.yaml ./
COPY api ./api
COPY models ./models
COPY schemas ./schemas
RUN pip install --no-deps . && rm -rf build *.egg-info && mkdir -p instance && chown newsdesk instance
# The SQLite database, its task queue and the generated secret key: kept apart from the
# container, so that removing it loses none of them (a named volume unless one is mounted).
VOLUME /app/instance

USER newsdesk
EXPOSE 8000
# Asks /healthz where gunicorn listens: NEWSDESK_BIND (a wildcard host is asked on loopback).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, sys, urllib.request; host, _, port = os.environ['NEWSDESK_BIND'].rpartition(':'); host = {'': '127.0.0.1', '0.0.0.0': '127.0.0.1', '[::]': '[::1]'}.get(host, host); sys.exit(urllib.request.urlopen(f'http://{host}:{port}/healthz', timeout=2).status != 200)"

CMD ["sh", "-c", "newsdesk db init && exec gunicorn --config gunicorn.conf.py"]
