"""All configuration, read from ``NEWSDESK_*`` environment variables in one place.

| variable                         | default                          | meaning                                      |
|----------------------------------|----------------------------------|----------------------------------------------|
| NEWSDESK_DATABASE_URL            | <instance>/newsdesk.db (SQLite)  | sqlite:////path/file.db or postgresql://...  |
| NEWSDESK_REDIS_URL               | (none)                           | shared rate-limit/cache state                |
| NEWSDESK_PUBLIC_READ             | true                             | false: reads need a key with the read scope  |
| NEWSDESK_CACHE_MAX_AGE           | 60                               | Cache-Control max-age of public reads (s)    |
| NEWSDESK_CACHE_STALE             | 300                              | stale-while-revalidate of public reads (s)   |
| NEWSDESK_ANSWER_CACHE_BYTES      | 33554432                         | searches and feeds kept per worker (0: off)  |
| NEWSDESK_SHARED_ANSWER_BYTES     | 67108864                         | searches and feeds kept in Redis (0: off)    |
| NEWSDESK_MAX_BODY_BYTES          | 1048576                          | largest JSON request body                    |
| NEWSDESK_MAX_IMPORT_BYTES        | 52428800                         | largest NDJSON import body                   |
| NEWSDESK_IMPORT_SYNC_BYTES       | 4194304                          | larger import bodies go to the background    |
| NEWSDESK_RATE_LIMIT              | 600/minute                       | default rate limit per key or address        |
| NEWSDESK_WRITE_RATE_LIMIT        | 120/minute                       | rate limit of writes and comments            |
| NEWSDESK_SECRET_KEY              | SQLite: <instance>/secret_key    | the secret of cursors, ETags and API keys;   |
|                                  | PostgreSQL: required             | made once on SQLite (random, mode 0600)      |
| NEWSDESK_PUBLIC_BASE_URL         | (from the request)               | absolute links in feeds, e.g. https://x.org  |
| NEWSDESK_BIND                    | 127.0.0.1:8000                   | where `newsdesk serve` listens               |
| NEWSDESK_WORKERS                 | 2                                | gunicorn worker processes                    |
| NEWSDESK_WORKER_CLASS            | gevent                           | gevent, or sync behind a buffering proxy     |
| NEWSDESK_REQUEST_TIMEOUT         | 30                               | seconds a request may take (503 past it)     |
| NEWSDESK_IMPORT_TIMEOUT          | 90                               | the same for POST /v1/import                 |
| NEWSDESK_LOG_LEVEL               | info                             | log level                                    |
| NEWSDESK_LOG_FORMAT              | json                             | json (log collectors) or text (terminals)    |
| NEWSDESK_CORS_ORIGINS            | (none: CORS off)                 | comma-separated origins allowed, or *        |
| NEWSDESK_TASKS_IMMEDIATE         | false                            | run background tasks inside the request      |
| NEWSDESK_INSTANCE_PATH           | instance/ of the project         | the folder of the SQLite database and secret |
| NEWSDESK_WEBHOOK_TIMEOUT         | 15                               | seconds a webhook endpoint has to answer     |
| NEWSDESK_WEBHOOK_RETRY_SCHEDULE  | 5,300,1800,7200,18000,36000,...  | seconds before each retry (about three days) |
| NEWSDESK_WEBHOOK_SECRET_GRACE    | 86400                            | seconds a rotated-out secret still signs     |
| NEWSDESK_WEBHOOK_ALLOW_PRIVATE   | false                            | true: endpoints on private addresses, http   |
| NEWSDESK_EMBEDDER                | use                              | sentence embedder: use (production), hashed  |
| NEWSDESK_STATEMENT_TIMEOUT_MS    | 2000                             | longest a search's SQL may run (0: no limit) |
| NEWSDESK_REDIS_TIMEOUT_MS        | 50                               | connect and answer timeout of each Redis call|
| NEWSDESK_RATE_LIMIT_FILE         | (set by gunicorn.conf.py)        | SQLite file a host's workers count in        |
| NEWSDESK_TRUSTED_PROXIES         | 0                                | proxies in front (a number, or their CIDRs)  |
| NEWSDESK_METRICS_ALLOW           | 127.0.0.0/8,::1                  | CIDRs served /metrics (* for all); or admin  |
| NEWSDESK_MIN_FREE_DISK_MB        | 100                              | /readyz is degraded below this free space    |
| PROMETHEUS_MULTIPROC_DIR         | (set by gunicorn.conf.py)        | where workers share metrics                  |
"""

import contextlib
import dataclasses
import functools
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import limits

_TRUE = {"1", "true", "yes", "on"}
#: gunicorn worker classes: gevent serves many slow clients at once; sync, one request at a time
#: per process, only behind a proxy that buffers requests (nginx).
WORKER_CLASSES = ("gevent", "sync")
_FALSE = {"0", "false", "no", "off"}


#: The secret of versions that had a built-in one (public: only ever used to find old API keys).
LEGACY_SECRET = b"newsdesk-cursor-integrity"
#: The instance folder's file holding the secret made for a deployment without NEWSDESK_SECRET_KEY.
SECRET_FILE = "secret_key"


class ConfigError(ValueError):
    """A ``NEWSDESK_*`` variable holds a value that cannot be used."""


def default_instance_path():
    """Where a deployment's own files live (the SQLite database, the secret): ``instance/`` in
    the project's folder when running from a checkout, else in the working directory."""
    project = Path(__file__).resolve().parent.parent
    if (project / "pyproject.toml").is_file():
        return project / "instance"
    return Path.cwd() / "instance"


def instance_secret(path):
    """The secret kept in ``path``, made (random, mode 0600) when there is none yet.

    Made in a file of its own and linked into place, so that of several processes starting at
    once, each reads the one secret that won, whole.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        os.unlink(draft)
    return path.read_text().strip()


def _bool(name, value):
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _has_a_port_or_none(url):
    """Whether a parsed URL's port, if it has one, is a port (a number up to 65535)."""
    try:
        url.port  # noqa: B018 (raises on a port that is no number, or out of range)
    except ValueError:
        return False
    return True


def _redis_url(name, value):
    """A ``redis://`` or ``rediss://`` URL with a host (the rate limiter takes no other)."""
    url = urlparse(value)
    if url.scheme not in ("redis", "rediss") or not url.hostname or not _has_a_port_or_none(url):
        raise ConfigError(f"{name} must be a redis://host:6379/0 URL, not {value!r}")
    return value


def _base_url(name, value):
    """An http(s) URL with a host and nothing after its path (links are made by adding to it),
    without its last ``/``."""
    url = urlparse(value.strip())
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
        raise ConfigError(f"{name} must be an http(s) URL such as https://x.org, not {value!r}")
    return value.strip().rstrip("/")


def _origins(name, value):
    """A comma list of origins as browsers send them, ``scheme://host[:port]``, or ``*`` for
    every origin."""
    if value.strip() == "*":
        return ("*",)
    origins = []
    for part in value.split(","):
        origin = part.strip().rstrip("/")
        url = urlparse(origin)
        if not origin:
            continue
        if (
            url.scheme not in ("http", "https")
            or not url.hostname
            or not _has_a_port_or_none(url)
            or url.path
            or url.query
        ):
            raise ConfigError(
                f"{name} must be a comma list of origins such as https://app.example.org,"
                f" not {part.strip()!r}"
            )
        origins.append(origin)
    return tuple(origins)


def bind_address(name, value):
    """``HOST:PORT`` (a port 0-65535) or ``unix:PATH``, as gunicorn binds."""
    if value.startswith("unix:") and len(value) > 5:
        return value
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{name} must be HOST:PORT (a port 0-65535) or unix:PATH, not {value!r}")
    return value


def _choice(*allowed):
    def read(name, value):
        if value.strip().lower() not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        return value.strip().lower()

    return read


#: The longest time a setting may name, in seconds: longer ones are mistakes, and past
#: what dates and timers hold they failed requests and tasks, not the start.
YEAR = 365 * 24 * 3600


def _seconds(name, value, maximum=YEAR):
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from None
    if not 0 < number <= maximum:
        raise ConfigError(
            f"{name} must be more than 0 and at most {maximum} seconds, not {value!r}"
        )
    return number


def _schedule(name, value):
    """A comma list of delays in seconds, at least one."""
    return tuple(_seconds(name, part.strip()) for part in value.split(","))


def _rate(name, value):
    """One rate limit in the ``limits`` package's notation: ``600/minute``, ``10/second``."""
    try:
        parsed = limits.parse_many(value)
    except ValueError:
        parsed = []
    if len(parsed) != 1 or parsed[0].amount < 1:
        raise ConfigError(
            f"{name} must be one limit such as 600/minute or 10/second, not {value!r}"
        )
    return value.strip()


def _int(name, value, minimum=0, maximum=2**31 - 1):
    """A whole number from ``minimum`` to ``maximum`` (by default what PostgreSQL's integer
    holds: its statement timeout, a count)."""
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if not minimum <= number <= maximum:
        raise ConfigError(f"{name} must be from {minimum} to {maximum}, not {number}")
    return number


def _bytes(name, value, minimum=0):
    return _int(name, value, minimum, maximum=2**40)


def _whole_seconds(name, value, minimum=0):
    return _int(name, value, minimum, maximum=YEAR)


def _networks(name, value):
    """A comma list of addresses or CIDR networks, or ``*`` for every address."""
    if value.strip() == "*":
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in value.split(",")
            if part.strip()
        )
    except ValueError as error:
        raise ConfigError(f"{name} must be a comma list of addresses or CIDRs: {error}") from None


#: The most proxies ``NEWSDESK_TRUSTED_PROXIES`` counts in front: more hops than any request
#: makes is a mistake, which start-up names.
MAX_PROXIES = 64


def _proxies(name, value):
    """How many proxies stand in front (a whole number), or the networks they are in."""
    if value.strip().isdigit():
        return _int(name, value, maximum=MAX_PROXIES)
    return _networks(name, value)


def _worker_class(name, value):
    lowered = value.strip().lower()
    if lowered not in WORKER_CLASSES:
        raise ConfigError(f"{name} must be one of {', '.join(WORKER_CLASSES)}, not {value!r}")
    return lowered


@dataclasses.dataclass(frozen=True)
class Config:
    """The settings of one Newsdesk process."""

    database_url: str = ""
    redis_url: str | None = None
    public_read: bool = True
    cache_max_age: int = 60
    cache_stale: int = 300
    answer_cache_bytes: int = 32 * 1024 * 1024
    #: At most this many bytes of answers in Redis, for every worker and host (with redis_url).
    shared_answer_bytes: int = 64 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    max_import_bytes: int = 50 * 1024 * 1024
    import_sync_bytes: int = 4 * 1024 * 1024
    rate_limit: str = "600/minute"
    write_rate_limit: str = "120/minute"
    secret_key: str = ""
    public_base_url: str | None = None
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    worker_class: str = "gevent"
    request_timeout: int = 30
    import_timeout: int = 90
    log_level: str = "info"
    log_format: str = "json"
    cors_origins: tuple = ()
    metrics_dir: str | None = None
    tasks_immediate: bool = False
    instance_path: str = ""
    webhook_timeout: float = 15.0
    #: Seconds before each retry of a failed delivery (with jitter): 10 attempts over 3 days.
    webhook_retry_schedule: tuple = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 72000)
    webhook_secret_grace: int = 24 * 3600
    webhook_allow_private: bool = False
    #: The sentence embedder (``models.embeddings.EMBEDDERS``): ``use``, the production model,
    #: or ``hashed``, a deterministic stand-in for tests.
    embedder: str = "use"
    statement_timeout_ms: int = 2000
    redis_timeout_ms: int = 50
    #: The SQLite file where the workers of one host share rate-limit counters (None: each
    #: process counts on its own).
    rate_limit_file: str | None = None
    #: Proxies trusted to say the client's address: how many stand in front, or their networks.
    trusted_proxies: int | tuple = 0
    metrics_allow: tuple = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    min_free_disk_mb: int = 100
    testing: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides):
        """Build the configuration from the environment, then apply ``overrides``."""
        environ = os.environ if environ is None else environ
        readers = {
            "database_url": str,
            "redis_url": _redis_url,
            "public_read": _bool,
            "cache_max_age": _whole_seconds,
            "cache_stale": _whole_seconds,
            "answer_cache_bytes": _bytes,
            "shared_answer_bytes": _bytes,
            "max_body_bytes": lambda n, v: _bytes(n, v, minimum=1),
            "max_import_bytes": lambda n, v: _bytes(n, v, minimum=1),
            "import_sync_bytes": _bytes,
            "rate_limit": _rate,
            "write_rate_limit": _rate,
            "secret_key": str,
            "public_base_url": _base_url,
            "bind": bind_address,
            "workers": lambda n, v: _int(n, v, minimum=1, maximum=1024),
            "worker_class": _worker_class,
            "request_timeout": lambda n, v: _int(n, v, minimum=1, maximum=24 * 3600),
            "import_timeout": lambda n, v: _int(n, v, minimum=1, maximum=24 * 3600),
            "log_level": _choice("debug", "info", "warning", "error", "critical"),
            "log_format": _choice("json", "text"),
            "tasks_immediate": _bool,
            "instance_path": str,
            "webhook_timeout": _seconds,
            "webhook_retry_schedule": _schedule,
            "webhook_secret_grace": _whole_seconds,
            "webhook_allow_private": _bool,
            "embedder": _choice("use", "hashed"),
            "statement_timeout_ms": _int,
            "redis_timeout_ms": lambda n, v: _int(n, v, minimum=1, maximum=60_000),
            "rate_limit_file": str,
            "trusted_proxies": _proxies,
            "metrics_allow": _networks,
            "min_free_disk_mb": _int,
        }
        values = {}
        for field, read in readers.items():
            name = "NEWSDESK_" + field.upper()
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            values[field] = raw if read is str else read(name, raw)
        values["cors_origins"] = _origins(
            "NEWSDESK_CORS_ORIGINS", environ.get("NEWSDESK_CORS_ORIGINS", "")
        )
        values["metrics_dir"] = environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        values.update(overrides)
        instance = values.get("instance_path") or str(default_instance_path())
        values["instance_path"] = instance
        if not values.get("database_url"):
            values["database_url"] = f"sqlite:///{instance}/newsdesk.db"
        url = values["database_url"]
        scheme = url.partition("://")[0]
        if scheme not in ("sqlite", "postgres", "postgresql"):
            raise ConfigError(
                f"NEWSDESK_DATABASE_URL must be sqlite:///path/to/file.db or"
                f" postgresql://user:password@host:5432/database, not a {scheme!r} URL"
            )
        if scheme == "sqlite" and not re.fullmatch(r"sqlite:///(:memory:|.*[^/])", url):
            raise ConfigError(
                f"NEWSDESK_DATABASE_URL must name a file, as sqlite:///path/to/file.db, not {url!r}"
            )
        try:
            parsed = urlparse(url)
            parsed.port  # noqa: B018 - parsing the host and port is the check
        except ValueError as error:
            raise ConfigError(
                f"NEWSDESK_DATABASE_URL is not a URL that can be read: {error}"
            ) from None
        if scheme != "sqlite" and not parsed.path.strip("/"):
            raise ConfigError(
                "NEWSDESK_DATABASE_URL names no database: end it with /database, as"
                " postgresql://user:password@host:5432/database"
            )
        return cls(**values)

    def secret(self):
        """The secret every key is derived from: NEWSDESK_SECRET_KEY, or on SQLite a random one
        made once and kept in the instance folder (mode 0600). PostgreSQL deployments, which may
        run on several hosts, must set the variable."""
        if self.secret_key:
            return self.secret_key
        if self.is_postgres:
            raise ConfigError(
                "NEWSDESK_SECRET_KEY is not set. Every host of a PostgreSQL deployment needs the same"
                " secret: make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                " and set it in the environment."
            )
        return instance_secret(Path(self.instance_path) / SECRET_FILE)

    @functools.lru_cache(maxsize=16)  # noqa: B019 - a few purposes, for the process's life
    def key_for(self, purpose):
        """A key of its own for each use of the secret (``cursors``, ``etag``, ``api-keys``,
        ``webhook-secrets``): knowing one tells nothing of the others or of the secret."""
        return hmac.new(self.secret().encode(), purpose.encode(), hashlib.sha256).digest()

    def legacy_api_key_peppers(self):
        """What versions before per-purpose keys hashed API keys with: the secret itself, or,
        while NEWSDESK_SECRET_KEY is still not set, the constant they used then (setting one,
        after a leak say, ends the keys of that constant too)."""
        return (self.secret().encode(),) if self.secret_key else (LEGACY_SECRET,)

    @property
    def worker_timeout(self):
        """gunicorn's worker timeout: above every request's deadline, so a request that runs
        too long is answered 503 by the app before gunicorn kills its worker."""
        return max(self.request_timeout, self.import_timeout) + 30

    @property
    def webhook_lease(self):
        """Seconds a worker holds a delivery it is sending: past them (it died mid-attempt),
        another worker sends it again. An attempt never outlasts the timeout."""
        return 2 * self.webhook_timeout + 1

    @property
    def is_postgres(self):
        return self.database_url.startswith(("postgres://", "postgresql://"))
