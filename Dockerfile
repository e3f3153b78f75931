# Newsdesk on gunicorn. SQLite by default (mount a volume on /app/instance);
# set NEWSDESK_DATABASE_URL=postgresql://... for production. gevent workers by default, so the
# container may face slow clients directly; behind a proxy that buffers requests (nginx),
# NEWSDESK_WORKER_CLASS=sync serves with sync workers.
#
# The background worker (webhook deliveries, related articles) is a second container from this
# same image, with the same environment (database, NEWSDESK_SECRET_KEY, webhook settings):
#   docker run -d -e NEWSDESK_DATABASE_URL=postgresql://... newsdesk newsdesk worker
# (on SQLite, mount the same volume on /app/instance). See README.md, "Running the worker".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NEWSDESK_BIND=0.0.0.0:8000

WORKDIR /app
RUN useradd --system --create-home --uid 10001 newsdesk

# Dependencies first, from pyproject.toml, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir api models schemas && touch api/__init__.py models/__init__.py schemas/__init__.py \
    && pip install . && pip uninstall -y newsdesk && rm -rf api models schemas

COPY api ./api
COPY models ./models
COPY schemas ./schemas
COPY gunicorn.conf.py openapi.yaml ./
RUN pip install --no-deps . && mkdir -p instance && chown newsdesk instance

USER newsdesk
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"

CMD ["sh", "-c", "newsdesk db init && exec gunicorn --config gunicorn.conf.py"]
