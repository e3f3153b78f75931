"""HTTP caching: ETags, conditional requests, Cache-Control and Vary, the answer cache, and
the revalidations answered before Flask builds a request.

An answer read from many rows (a list, a search, a related list, a feed, the change log) takes
its ETag from the data version, which every write raises inside its own transaction, with the
URL and the caller: revalidating it costs one tiny query, and a write anywhere (any worker, any
host) invalidates it at once. An article's own answer takes its ETag from that article's
version, so that ``If-Match`` on a write tests that article alone. Both are keyed with the
app's secret, so no one can make up a tag or read the version out of one.

A compressed answer's tag is its identity form's with ``:coding`` appended (see
:mod:`api.compression`); ``If-None-Match`` matches the identity tag, or a variant in a coding
the request accepts, and a 304 carries the tag it matched.
"""

import collections
import datetime
import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import re
import threading
import time
from pathlib import Path

import orjson
import peewee
import redis
from flask import current_app, g, request
from playhouse.pool import MaxConnectionsExceeded
from prometheus_client import Counter
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.exceptions import HTTPException
from werkzeug.http import is_resource_modified, parse_date

from models import DataVersion, db, end_request, reading
from models.base import COMMIT_LAG
from models.changes import etag_epoch, release_served
from models.ingest import WriteError

from . import compression, limits, observe
from .database import NO_DATABASE
from .errors import WorkerTimeout, problem
from .guards import bad_host, has_control_characters, headers_too_large, url_too_long

#: What answers under /v1/ and /feeds/ vary by: the key (a key can see more, and its answers
#: are private) and the compression.
VARY = "Authorization, X-API-Key, Accept-Encoding"
#: The paths whose answers vary by :data:`VARY`.
KEYED_PATHS = ("/v1/", "/feeds/")
#: The preconditions evaluated before If-None-Match (RFC 9110 13.2.2), as WSGI keys.
PRECONDITIONS = frozenset({"HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE"})
#: The endpoints whose answers the answer cache keeps.
KEPT_ENDPOINTS = frozenset({"search.Search", "feeds.AtomFeed", "feeds.RssFeed", "feeds.JsonFeed"})
#: The endpoints answering one resource that can be written, whose ETag is that resource's own
#: (the view sets it, from the resource's version).
RESOURCE_ENDPOINTS = frozenset(
    {"articles.ArticleDetail", "sources.SourceDetail", "comments.CommentDetail"}
)
#: The endpoints a client polls with the same URL for what is new (a delta sync caught up asks
#: with the token it was given): a cache asks every time, cheaply, by ETag; kept for a minute
#: (and served stale for five), they hid new changes that long.
POLLED_ENDPOINTS = frozenset({"changes.Changes"})
#: Of those, the one the early revalidation answers itself: the article, polled the most.
ARTICLE_ENDPOINT = "articles.ArticleDetail"
#: The headers of an answer that are not kept with it (see :meth:`Caching.finish`).
HOST_HEADERS = frozenset(("Content-Length", "Cache-Control", "Vary"))
ANSWER_LOOKUPS = Counter("newsdesk_answer_cache_total", "Answer cache lookups", ["result"])

log = logging.getLogger(__name__)


@functools.cache
def release():
    """A digest of the code that makes the answers (the packages ``api``, ``models`` and
    ``schemas``, and the versions of the distributions Newsdesk requires: a new marshmallow may
    render a field otherwise), part of every answer's ETag and so of every kept answer's key:
    after an upgrade, a tag an older release gave no longer matches (its answer may have had
    another shape), and an answer an older release kept in Redis (a host not yet upgraded, in a
    rolling change) is not served by a newer one, nor one of a newer release by an older."""
    digest = hashlib.blake2b(digest_size=8)
    for requirement in importlib.metadata.requires("newsdesk") or ():
        if "extra ==" not in requirement:  # the test extras' make no answer
            name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
            digest.update(f"{name}=={importlib.metadata.version(name)}\0".encode())
    for package in ("api", "models", "schemas"):
        root = Path(importlib.util.find_spec(package).origin).parent
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                name = f"{package}/{path.relative_to(root).as_posix()}"
                digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class Validators:
    """The ETags of answers."""

    def __init__(self, key, release):
        self.key = key
        self.release = release

    def _tag(self, material):
        material = f"{etag_epoch()}|{material}"  # the database's name: see models.changes
        return hashlib.blake2b(material.encode(), key=self.key, digest_size=16).hexdigest()

    def collection(self, version, environ, caller):
        """The tag of the answer to this URL for ``caller`` (``public`` or ``key:ID``) while the
        data version is ``version``."""
        return self._tag(
            f"{self.release}|{version}"
            f"|{environ['PATH_INFO']}?{environ.get('QUERY_STRING', '')}|{caller}"
        )

    def resource(self, kind, resource_id, version, query=""):
        """The tag of the answer about one resource (``kind``: article, source, comment) at
        ``version``: the version's tag, ``-`` and a mark of the release and the ``query`` (a
        sparse fieldset, say). The first part names the version for ``If-Match``
        (:func:`if_match_holds`), so that a write a client read before an upgrade still holds;
        the whole names the answer for ``If-None-Match``."""
        tag = self._tag(f"{kind}:{resource_id}:{version}")
        return f"{tag}-{self._tag(f'{self.release}|{query}')[:8]}"


def matching_tag(header, tag, accept_encoding):
    """The entity tag in an ``If-None-Match`` header that matches the current ``tag``, or None.

    Weak comparison (RFC 9110 13.1.2): a candidate matches when it is ``tag``, or
    ``tag:coding`` for a coding the request accepts. ``*`` is left to the caller.
    """
    for candidate in header.split(","):
        candidate = candidate.strip().removeprefix("W/").strip('"')
        if candidate == tag:
            return candidate
        base, _, coding = candidate.partition(":")
        if base == tag and coding and compression.accepted(accept_encoding)[coding] > 0:
            return candidate
    return None


def in_the_future(date):
    """Whether an HTTP date is later than now: such an If-Modified-Since is no date the client
    had (RFC 7232 3.3), and would call the answer unmodified, 304, until that date came."""
    parsed = parse_date(date)
    return parsed is not None and parsed.timestamp() > time.time()


def unmodified_since(header, modified):
    """Whether a resource last modified at ``modified`` (a datetime, UTC when naive; None: it
    has no such date) holds an ``If-Unmodified-Since`` header (RFC 9110 13.1.4): it has not
    changed after that date, in whole seconds as its Last-Modified shows it. A date that cannot
    be read is ignored, as the RFC says, and so is the header of a resource without a date."""
    since = parse_date(header)
    if since is None or modified is None:
        return True
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=datetime.UTC)
    return int(modified.timestamp()) <= since.timestamp()


def if_match_holds(header, tag, weak=False):
    """Whether an ``If-Match`` header allows a write to a resource whose tag is ``tag`` (with
    ``weak``: whether an ``If-None-Match`` header names it).

    ``*`` holds for any existing resource. The tag of any answer about the resource's state
    holds: a compressed variant's (``tag:coding``), one asked with a query, such as a sparse
    fieldset, or given by another release (``tag-mark``, :meth:`Validators.resource`).
    """
    version = None if tag is None else tag.partition("-")[0]  # None: only * holds
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            if not weak:
                continue  # strong comparison (RFC 9110 13.1.1)
            candidate = candidate[2:]
        # The version's tag, whatever the variant (a query, a coding) the client's answer was.
        if candidate.strip('"').partition(":")[0].partition("-")[0] == version:
            return True
    return False


def resource_tag(kind, resource, query=""):
    """The ETag of the answer about ``resource`` (with ``id`` and ``version``), in a request."""
    validators = current_app.extensions["newsdesk"]["caching"].validators
    return validators.resource(kind, resource.id, resource.version, query)


def tagged(kind, resource, query=""):
    """Give this answer the ETag of ``resource``; returns the ``ETag`` header of a write."""
    g.etag = tag = resource_tag(kind, resource, query)
    return {"ETag": f'"{tag}"'}


def if_match_check(kind, tag_of=None):
    """The check a write makes of the stored resource (None when there is none yet) inside its
    transaction when the request sends ``If-Match`` (412 unless it names the resource's current
    ETag, and when there is no resource), ``If-Unmodified-Since`` without ``If-Match`` (412 when
    the resource's ``last_modified`` is later: :func:`unmodified_since`) or ``If-None-Match``
    (412 when the resource exists and it is ``*`` or names the resource's current ETag, weak
    tags too), or None.

    ``tag_of(resource)`` gives the current ETag (default: :func:`resource_tag`, from the
    version); None for a resource that has no answer of its own, which only ``*`` matches."""
    if tag_of is None:
        tag_of = functools.partial(resource_tag, kind)
    header = request.headers.get("If-Match")
    none_match = request.headers.get("If-None-Match")
    since = request.headers.get("If-Unmodified-Since") if header is None else None
    if header is None and none_match is None and since is None:
        return None

    def check(resource):
        if header is not None:
            if resource is None:
                raise WriteError(412, {"If-Match": [f"No such {kind} exists."]})
            if not if_match_holds(header, tag_of(resource)):
                raise WriteError(412, {"If-Match": [f"The {kind} has changed since this ETag."]})
        modified = getattr(resource, "last_modified", None)  # None: no resource, or no date
        if since is not None and not unmodified_since(since, modified):
            raise WriteError(
                412, {"If-Unmodified-Since": [f"The {kind} has changed since that date."]}
            )
        if none_match is not None and resource is not None:
            if none_match.strip() == "*":
                raise WriteError(412, {"If-None-Match": [f"The {kind} exists."]})
            if if_match_holds(none_match, tag_of(resource), weak=True):
                raise WriteError(412, {"If-None-Match": [f"The {kind} has this ETag still."]})

    return check


def check_if_match(kind, resource, tag_of=None):
    """Inside a write, of the stored ``resource`` (None when there is none): 412 when the
    request's ``If-Match`` or ``If-None-Match`` does not hold (``tag_of``: see
    :func:`if_match_check`)."""
    check = if_match_check(kind, tag_of)
    if check is not None:
        check(resource)


def public_cache_control(config):
    return f"public, max-age={config.cache_max_age}, stale-while-revalidate={config.cache_stale}"


def versioned(path):
    """Answers derived from stored data: their ETag comes from a version. Not the webhooks'
    nor the import jobs': their delivery log and progress change as the worker works, which
    raises no data version (their ETag is hashed from the answer)."""
    return (
        path.startswith(("/v1/", "/feeds/"))
        and path != "/v1/me"
        and not path.startswith(("/v1/webhooks", "/v1/imports/"))
    )


def not_modified_headers(tag, cache_control, path, vary_origin=False):
    """The headers of a 304 (before the rate-limit, request-id and security headers);
    ``vary_origin``: see :attr:`Caching.vary_origin`."""
    headers = [("ETag", f'"{tag}"'), ("Cache-Control", cache_control)]
    # Under /feeds/ (the other versioned answers), by compression alone.
    vary = [VARY] if path.startswith(KEYED_PATHS) else ["Accept-Encoding"]
    if vary_origin:
        vary.append("Origin")
    headers.append(("Vary", ", ".join(vary)))
    return headers


class AnswerCache:
    """Answers of searches and feeds kept per worker, by the ETag they were given (plus the
    host: links in them are absolute).

    A search scores every article holding its words and a feed renders fifty entries, and both
    are asked for again and again with the same URL. Since the key names the data version, a
    write anywhere means the next request runs afresh: an entry is never served stale, it is
    just no longer asked for, and ages out of the least recently used end. A
    least-recently-used map of key to ``(body, headers)``, bounded by ``max_bytes``.
    """

    #: What an entry costs besides its body (the key, the headers, the bookkeeping), roughly.
    OVERHEAD = 512

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.entries = collections.OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def get(self, key):
        entry = self.lookup(key)
        ANSWER_LOOKUPS.labels("miss" if entry is None else "hit").inc()
        return entry

    def lookup(self, key):
        """The entry kept under ``key``, or None (not counted in the metrics)."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
        return entry

    def keeps(self, body):
        """Whether an answer of this ``body`` is kept: none crowds out the rest."""
        return len(body) + self.OVERHEAD <= self.max_bytes // 8

    def put(self, key, body, headers):
        cost = len(body) + self.OVERHEAD
        if not self.keeps(body):
            return
        with self.lock:
            if key in self.entries:
                return
            self.entries[key] = (body, headers)
            self.size += cost
            while self.size > self.max_bytes:
                _, (old, _) = self.entries.popitem(last=False)
                self.size -= len(old) + self.OVERHEAD


class SharedAnswers:
    """The answer cache with ``NEWSDESK_REDIS_URL``: each worker's own (:class:`AnswerCache`)
    in front of Redis, which every worker and host shares, so that a search or feed one of
    them ran the others answer from it. Keys name the data version as the worker's do: nothing
    is served stale; an entry lives :data:`TTL` seconds. A Redis that does not answer within
    ``NEWSDESK_REDIS_TIMEOUT_MS`` (or failed within the last :data:`RETRY_SECONDS`) is passed
    over: the answer is computed, as without it.

    The Redis holds the task queue and the rate limits too, and a client can ask for as many
    different searches as it likes: the entries stored in Redis take at most
    ``NEWSDESK_SHARED_ANSWER_BYTES``. Each minute may store a share of it (the entries of the
    last :data:`TTL` seconds were stored within ``TTL / 60 + 1`` minutes), counted in Redis
    for every worker and host; an answer past the minute's share is kept by its worker alone.
    """

    PREFIX = "newsdesk:answer:"
    TTL = 600
    RETRY_SECONDS = 1.0
    #: Bytes counted for each entry beyond its key and value (counted a quarter more: Redis
    #: rounds each allocation up to a size class, 5% over in total and up to 23% for one entry
    #: as MEMORY USAGE measured them here): what Redis keeps of a key.
    OVERHEAD = 100

    def __init__(self, config, local):
        self.minute_bytes = config.shared_answer_bytes // (self.TTL // 60 + 1)
        seconds = config.redis_timeout_ms / 1000
        self.redis = redis.Redis.from_url(
            config.redis_url,
            socket_timeout=seconds,
            socket_connect_timeout=seconds,
            retry=Retry(NoBackoff(), 0),  # a timeout is an answer: compute it instead
        )
        self.local = local
        self.failed_at = None

    def get(self, key):
        entry = self.local.lookup(key)
        if entry is not None:
            ANSWER_LOOKUPS.labels("hit").inc()
            return entry
        kept = self._call(self.redis.get, self._name(key))
        if kept is None:
            ANSWER_LOOKUPS.labels("miss").inc()
            return None
        headers, _, body = kept.partition(b"\n")
        entry = body, [tuple(header) for header in orjson.loads(headers)]
        self.local.put(key, *entry)
        ANSWER_LOOKUPS.labels("shared").inc()
        return entry

    def put(self, key, body, headers):
        self.local.put(key, body, headers)
        if self.local.keeps(body):
            name, kept = self._name(key), orjson.dumps(headers) + b"\n" + body
            if self._spend((len(name) + len(kept)) * 5 // 4 + self.OVERHEAD):
                self._call(self.redis.set, name, kept, ex=self.TTL, nx=True)

    def _spend(self, cost):
        """Count ``cost`` bytes against this minute's share; whether they fit in it."""
        minute = f"{self.PREFIX}spent:{int(time.time() // 60)}"
        counted = self.redis.pipeline()
        counted.incrby(minute, cost)
        counted.expire(minute, 120)
        spent = self._call(counted.execute)
        return spent is not None and spent[0] <= self.minute_bytes

    def _name(self, key):
        return self.PREFIX + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    def _call(self, method, *args, **kwargs):
        """``method``'s result, or None when Redis fails (and is then left alone a while)."""
        if self.failed_at is not None and time.monotonic() - self.failed_at < self.RETRY_SECONDS:
            return None
        try:
            result = method(*args, **kwargs)
        except redis.RedisError as error:
            if self.failed_at is None:
                log.warning("the shared answer cache does not answer: %s", error)
            self.failed_at = time.monotonic()
            return None
        self.failed_at = None
        return result


class Caching:
    """The caching of one app: its validators, Cache-Control values and answer cache, and the
    request hooks that use them."""

    def __init__(self, config):
        self.config = config
        self.validators = Validators(config.key_for("etag"), release())
        self.public = public_cache_control(config)
        #: Whether answers vary by the request's Origin: with CORS on, the answer to an allowed
        #: origin names it in Access-Control-Allow-Origin, the others' do not, and a shared
        #: cache must not give one's to another (flask-cors says so only when several origins
        #: are allowed, and never on the answers to the others).
        self.vary_origin = bool(config.cors_origins)
        self.answers = None
        self.forget()

    def forget(self):
        """Drop every answer kept (the tests, reusing an app on a new database)."""
        if self.config.answer_cache_bytes:
            self.answers = AnswerCache(self.config.answer_cache_bytes)
            if self.config.redis_url and self.config.shared_answer_bytes:
                self.answers = SharedAnswers(self.config, self.answers)

    def release_served(self):
        """When this release first served the bound database (:func:`release_served`); the
        time now when it cannot be read or stamped (the disk full, say): later than any date
        an earlier release gave."""
        try:
            stamp = release_served(self.validators.release)
        except (peewee.DatabaseError, peewee.InterfaceError, MaxConnectionsExceeded):
            log.warning("when this release first served the database is unknown", exc_info=True)
            return datetime.datetime.now(datetime.UTC)
        return datetime.datetime.fromtimestamp(stamp, datetime.UTC)

    def cache_control(self, api_key):
        """What a successful answer may be cached as: public, unless the caller has a key (a key
        can see more) or reads need one; revalidated every time where clients poll."""
        if api_key is None and self.config.public_read:
            return self.public_control(request.endpoint)
        return "private, no-cache"

    def public_control(self, endpoint):
        """What a public answer of ``endpoint`` may be cached as."""
        return "public, no-cache" if endpoint in POLLED_ENDPOINTS else self.public

    def revalidate(self):
        """before_request: answer a read of stored data whose If-None-Match still matches with a
        304, or with the answer kept for it, before the view runs."""
        if request.method not in ("GET", "HEAD"):
            return None
        # Before the view reads: the seconds before this one are final (see finish).
        g.settled = int(time.time() - COMMIT_LAG.total_seconds())
        if request.url_rule is None:
            return None
        environ = request.environ
        path = environ["PATH_INFO"]
        if not versioned(path) or request.endpoint in RESOURCE_ENDPOINTS:
            return None  # the view sets the tag, from the resource's version
        key = g.api_key
        caller = "public" if key is None else f"key:{key.id}"
        version, changed_at = DataVersion.state()
        tag = g.etag = self.validators.collection(version, environ, caller)
        if changed_at is not None:  # the answer's Last-Modified: the last write's time
            g.data_changed = datetime.datetime.fromtimestamp(changed_at, datetime.UTC)
        given = environ.get("HTTP_IF_NONE_MATCH")
        if given and not PRECONDITIONS.intersection(environ):  # those first: see finish
            matched = matching_tag(given, tag, environ.get("HTTP_ACCEPT_ENCODING"))
            if matched is not None:
                headers = not_modified_headers(
                    matched, self.cache_control(key), path, self.vary_origin
                )
                return current_app.response_class(status=304, headers=headers)
        if self.answers is not None and request.endpoint in KEPT_ENDPOINTS:
            g.answer_key = answer_key = f"{tag}|{request.host_url}"
            kept = self.answers.get(answer_key)
            if kept is not None:
                g.answer_key = None  # kept already
                body, headers = kept
                return current_app.response_class(body, headers=headers)
        return None

    def finish(self, response):
        """after_request: Cache-Control and Vary on every answer; on a successful read, its ETag
        (from ``g.etag``, else hashed from the body), a 304 when a validator still matches, and
        the answer kept when its endpoint's answers are."""
        path = request.environ["PATH_INFO"]
        headers = response.headers
        if path.startswith(KEYED_PATHS) and "Vary" not in headers:
            headers["Vary"] = VARY  # a key can see more (drafts, hidden comments)
        if self.vary_origin:
            response.vary.add("Origin")
        ok = response.status_code < 400
        if "Cache-Control" not in headers and (request.method != "OPTIONS" or not ok):
            headers["Cache-Control"] = self.cache_control(g.get("api_key")) if ok else "no-store"
        if request.method not in ("GET", "HEAD") or response.status_code != 200:
            return response
        if response.is_streamed or response.direct_passthrough:
            return response
        tag = g.get("etag")
        if "ETag" not in headers:
            if tag is None:
                response.add_etag()  # hashed from the body
            else:
                headers["ETag"] = f'"{tag}"'
        if tag is None:
            tag, _ = response.get_etag()
        if response.last_modified is None and g.get("data_changed") is not None:
            response.last_modified = g.data_changed  # (what a kept answer had not, settled now)
        if response.last_modified is not None:  # an upgrade may have changed what it shows
            response.last_modified = max(response.last_modified, self.release_served())
        modified = response.last_modified  # (If-Unmodified-Since: even when not shown)
        if response.last_modified and response.last_modified.timestamp() >= g.get("settled", 0):
            # A change may still commit with a time in this date's second (a write stamps its
            # time before it commits), and If-Modified-Since would call it unmodified: until
            # that cannot be, only the ETag tells.
            del headers["Last-Modified"]
        answer_key = g.get("answer_key")
        if answer_key is not None:
            # What the view made of the answer; Cache-Control and Vary are set again as a kept
            # answer is served, by the settings of the host serving it (one kept in Redis may
            # have been made by a host whose settings differ, through a rolling change).
            kept = [item for item in headers.items() if item[0] not in HOST_HEADERS]
            self.answers.put(answer_key, response.get_data(), kept)
        environ = request.environ
        if_match = environ.get("HTTP_IF_MATCH")
        # RFC 9110 13.2.2; any variant's tag names the version (Validators.resource)
        if if_match is not None and not if_match_holds(if_match, tag):
            refused = problem(412, errors={"If-Match": ["The answer has changed since this ETag."]})
            refused.headers["Cache-Control"] = "no-store"
            return refused
        since = environ.get("HTTP_IF_UNMODIFIED_SINCE")
        if if_match is None and since is not None and not unmodified_since(since, modified):
            refused = problem(
                412, errors={"If-Unmodified-Since": ["The answer has changed since that date."]}
            )
            refused.headers["Cache-Control"] = "no-store"
            return refused
        given = environ.get("HTTP_IF_NONE_MATCH")
        if given:
            matched = (
                "*"
                if given.strip() == "*"
                else matching_tag(given, tag, environ.get("HTTP_ACCEPT_ENCODING"))
            )
            if matched is not None:
                return self._not_modified(response, None if matched == "*" else matched)
        elif (
            response.last_modified is not None
            and "HTTP_IF_MODIFIED_SINCE" in environ
            and not in_the_future(environ["HTTP_IF_MODIFIED_SINCE"])
            and not is_resource_modified(environ, last_modified=response.last_modified)
        ):
            return self._not_modified(response)
        return response

    @staticmethod
    def _not_modified(response, tag=None):
        """Make ``response`` a 304 with the validators its 200 would carry: ``tag``, the one
        If-None-Match named, or else (``*``, If-Modified-Since) the 200's own in the coding
        it would be sent in; and its ``Vary``."""
        if tag is None:
            tag, _ = response.get_etag()
            coding = compression.coding_for(response)
            if coding is not None:
                tag = f"{tag}:{coding}"
        compression.vary(response)
        response.status_code = 304
        response.set_data(b"")
        response.headers["ETag"] = f'"{tag}"'
        for name in ("Content-Length", "Content-Type"):
            response.headers.pop(name, None)
        return response


class EarlyRevalidation:
    """WSGI middleware: anonymous revalidations that still match, answered before Flask.

    Mobile apps and integrations poll: most of what they send is a GET whose If-None-Match still
    matches. Through Flask (request context, routing, a dozen hooks) such a 304 costs several
    times what it needs: this layer answers it with the version (one query), the tag and the
    caller's rate limit, from the same functions as :meth:`Caching.revalidate` and the article
    view. Everything it is not sure of goes on to the app: callers with a key (the key must be
    checked), CORS requests, private reads, URLs the app would refuse or no route matches, tags
    that no longer match, callers over their limit, and any database error.
    """

    def __init__(self, app, caching, limiter, wsgi_app):
        self.enabled = caching.config.public_read
        self.caching = caching
        self.url_map = app.url_map
        self.limiter = limiter
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        headers = self.not_modified(environ)
        if headers is None:
            return self.wsgi_app(environ, start_response)
        start_response("304 NOT MODIFIED", headers)
        return []

    def not_modified(self, environ):
        """The headers of a 304 for this request, or None when the app must answer it."""
        given = environ.get("HTTP_IF_NONE_MATCH")
        if not given or not self.enabled or environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return None
        if (
            "HTTP_AUTHORIZATION" in environ
            or "HTTP_X_API_KEY" in environ
            or "HTTP_ORIGIN" in environ
            or PRECONDITIONS.intersection(environ)  # evaluated before If-None-Match: by the app
        ):
            return None
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if (
            not versioned(path)
            or url_too_long(path, query)
            or bad_host(environ)
            or has_control_characters(path, query)
            or headers_too_large(environ)
        ):
            return None
        try:
            rule, args = self.url_map.bind_to_environ(environ).match(return_rule=True)
        except HTTPException:
            return None
        if rule.endpoint in NO_DATABASE:
            return None
        try:
            tag = self._current_tag(rule.endpoint, args, environ)
        except (peewee.OperationalError, peewee.InterfaceError, MaxConnectionsExceeded):
            return None  # the app answers it (a 503 problem when the database is away or busy)
        except WorkerTimeout:
            raise  # the request's time is up (gunicorn's worker_abort): no app to go on to
        except Exception:
            # Anything else (a schema that is not what the code expects): the app answers, as
            # a problem, in its request's log; this layer answered a bare 500 before.
            log.exception("The early 304 failed; the app answers the request")
            return None
        if tag is None:
            return None
        matched = matching_tag(given, tag, environ.get("HTTP_ACCEPT_ENCODING"))
        if matched is None:
            return None
        state = self.limiter.count(limits.anonymous(environ))
        if state["exceeded"]:
            return None
        environ[observe.ROUTE] = rule.rule
        return not_modified_headers(
            matched, self.caching.public_control(rule.endpoint), path, self.caching.vary_origin
        ) + limits.header_items(state)

    def _current_tag(self, endpoint, args, environ):
        opened = db.connect(reuse_if_open=True)
        try:
            if endpoint == ARTICLE_ENDPOINT:
                found = reading.version(args["key"])
                if found is None:
                    return None
                query = environ.get("QUERY_STRING", "")
                return self.caching.validators.resource("article", *found, query)
            if endpoint in RESOURCE_ENDPOINTS:
                return None
            return self.caching.validators.collection(DataVersion.current(), environ, "public")
        finally:
            end_request(opened)
