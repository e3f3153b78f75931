"""All configuration, read from ``NEWSDESK_*`` environment variables in one place.

| variable                         | default                          | meaning                                      |
|----------------------------------|----------------------------------|----------------------------------------------|
| NEWSDESK_DATABASE_URL            | sqlite:///instance/newsdesk.db   | SQLite file or postgresql://user@host/db     |
| NEWSDESK_REDIS_URL               | (none)                           | shared rate-limit/cache state                |
| NEWSDESK_PUBLIC_READ             | true                             | false: reads need a key with the read scope  |
| NEWSDESK_CACHE_MAX_AGE           | 60                               | Cache-Control max-age of public reads (s)    |
| NEWSDESK_CACHE_STALE             | 300                              | stale-while-revalidate of public reads (s)   |
| NEWSDESK_ANSWER_CACHE_BYTES      | 33554432                         | searches and feeds kept per worker (0: off)  |
| NEWSDESK_MAX_BODY_BYTES          | 1048576                          | largest JSON request body                    |
| NEWSDESK_MAX_IMPORT_BYTES        | 52428800                         | largest NDJSON import body                   |
| NEWSDESK_RATE_LIMIT              | 600/minute                       | default rate limit per key or address        |
| NEWSDESK_WRITE_RATE_LIMIT        | 120/minute                       | rate limit of writes and comments            |
| NEWSDESK_SECRET_KEY              | (built-in constant)              | key for the integrity check of cursors       |
| NEWSDESK_PUBLIC_BASE_URL         | (from the request)               | absolute links in feeds, e.g. https://x.org  |
| NEWSDESK_BIND                    | 127.0.0.1:8000                   | where `newsdesk serve` listens               |
| NEWSDESK_WORKERS                 | 2                                | gunicorn worker processes                    |
| NEWSDESK_LOG_LEVEL               | info                             | log level                                    |
| NEWSDESK_CORS_ORIGINS            | (none: CORS off)                 | comma-separated origins allowed, or *        |
| NEWSDESK_TASKS_IMMEDIATE         | false                            | run background tasks inside the request      |
| NEWSDESK_EMBEDDER                | use                              | sentence embedder: use (production), hashed  |
| NEWSDESK_STATEMENT_TIMEOUT_MS    | 2000                             | longest a search's SQL may run (0: no limit) |
| PROMETHEUS_MULTIPROC_DIR         | (set by gunicorn.conf.py)        | where workers share metrics                  |
"""

import dataclasses
import functools
import hashlib
import hmac
import os
from collections.abc import Mapping

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A ``NEWSDESK_*`` variable holds a value that cannot be used."""


def _bool(name, value):
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _embedder(name, value):
    choices = ("use", "hashed")
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _int(name, value, minimum=0):
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


@dataclasses.dataclass(frozen=True)
class Config:
    """The settings of one Newsdesk process."""

    database_url: str = "sqlite:///instance/newsdesk.db"
    redis_url: str | None = None
    public_read: bool = True
    cache_max_age: int = 60
    cache_stale: int = 300
    answer_cache_bytes: int = 32 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    max_import_bytes: int = 50 * 1024 * 1024
    rate_limit: str = "600/minute"
    write_rate_limit: str = "120/minute"
    secret_key: str = "newsdesk-cursor-integrity"
    public_base_url: str | None = None
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    log_level: str = "info"
    cors_origins: tuple = ()
    metrics_dir: str | None = None
    tasks_immediate: bool = False
    #: The sentence embedder (``models.embeddings.EMBEDDERS``): ``use``, the production model,
    #: or ``hashed``, a deterministic stand-in for tests.
    embedder: str = "use"
    statement_timeout_ms: int = 2000
    testing: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides):
        """Build the configuration from the environment, then apply ``overrides``."""
        environ = os.environ if environ is None else environ
        readers = {
            "database_url": str,
            "redis_url": str,
            "public_read": _bool,
            "cache_max_age": _int,
            "cache_stale": _int,
            "answer_cache_bytes": _int,
            "max_body_bytes": lambda n, v: _int(n, v, minimum=1),
            "max_import_bytes": lambda n, v: _int(n, v, minimum=1),
            "rate_limit": str,
            "write_rate_limit": str,
            "secret_key": str,
            "public_base_url": str,
            "bind": str,
            "workers": lambda n, v: _int(n, v, minimum=1),
            "log_level": str,
            "tasks_immediate": _bool,
            "embedder": _embedder,
            "statement_timeout_ms": _int,
        }
        values = {}
        for field, read in readers.items():
            name = "NEWSDESK_" + field.upper()
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            values[field] = raw if read is str else read(name, raw)
        origins = environ.get("NEWSDESK_CORS_ORIGINS", "")
        values["cors_origins"] = tuple(o.strip() for o in origins.split(",") if o.strip())
        values["metrics_dir"] = environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        values.update(overrides)
        return cls(**values)

    @functools.lru_cache(maxsize=16)  # noqa: B019 - a few purposes, for the process's life
    def key_for(self, purpose):
        """A key of its own for each use of the secret (``cursors``, ``etag``, ``api-keys``):
        knowing one tells nothing of the others or of the secret."""
        return hmac.new(self.secret_key.encode(), purpose.encode(), hashlib.sha256).digest()

    @property
    def is_postgres(self):
        return self.database_url.startswith(("postgres://", "postgresql://"))
