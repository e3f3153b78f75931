"""Bulk loading: NDJSON lines, RSS 2.0 and Atom feeds, into articles.

Shared by ``POST /v1/import`` and ``newsdesk import``. Items are validated and prepared one by
one, then stored in batches, each in one transaction with a fixed number of statements
(``models.ingest.store``): a bad item is reported with its number and reason and never stops
the good ones.
"""

import datetime
import hashlib
import html
import io
import json

import feedparser
import peewee
from marshmallow import ValidationError

from models import Source, utcnow, webhooks
from models.ingest import Write, WriteError, prepare, store, writing
from models.text import html_to_text, slugify
from schemas.articles import ArticleInSchema
from schemas.webhooks import SOURCE_CREATED

from .errors import flatten_messages

BATCH_SIZE = 200
_schema = ArticleInSchema()


class FeedEntry:
    """A feed entry's article payload, and when the feed says the entry last changed (which
    a client's NDJSON line may not set: ``updated_at`` is the server's own there)."""

    def __init__(self, payload, updated_at):
        self.payload = payload
        self.updated_at = updated_at


class Rejected:
    """An item that could not even be read (not UTF-8, not JSON, not an object)."""

    def __init__(self, reason):
        self.reason = reason


def ndjson_items(raw):
    """``(line number, object or Rejected)`` for each non-blank line of ``raw`` bytes."""
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            payload = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            yield number, Rejected("Line is not valid UTF-8.")
            continue
        except ValueError as error:
            yield number, Rejected(f"Line is not valid JSON: {error}.")
            continue
        if not isinstance(payload, dict):
            yield number, Rejected("Line is not a JSON object.")
            continue
        yield number, payload


def is_feed(raw):
    """Feeds are XML; NDJSON starts with ``{``. Told apart by content, not by file name."""
    return raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _feed_time(entry):
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime.datetime(*parsed[:6])


def feed_items(raw):
    """Map a feed to a source (created when missing) and its entries to article payloads.

    Entries are keyed by their id, else their link, else a hash of their content, so that
    importing the same feed again changes nothing. Each keeps its language (``xml:lang`` in
    Atom, ``dc:language`` in RSS, else the feed's) and the time it last changed.
    """
    # A stream, never a string: feedparser would fetch a string that looks like a URL.
    feed = feedparser.parse(io.BytesIO(raw))
    if feed.bozo and not feed.entries:
        return [(1, Rejected(f"Not a readable RSS or Atom feed: {feed.bozo_exception}."))]
    title = feed.feed.get("title") or feed.feed.get("link") or "Imported feed"
    slug = slugify(title)[:100] or "imported-feed"
    language = (feed.feed.get("language") or "en").split("-")[0].lower()[:3] or "en"
    with writing() as touched:
        created = (
            Source.insert(
                slug=slug,
                name=title[:200],
                homepage_url=feed.feed.get("link"),
                language=language,
            )
            .on_conflict_ignore()
            .returning(Source.id)
            .tuples()
            .execute()
        )
        for (source_id,) in created:
            source = Source.get_by_id(source_id)
            touched.events.append(webhooks.source_event(SOURCE_CREATED, source))
    # RSS gives no type to its text elements, and readers render them as HTML: feeds (this
    # one's among them) escape plain text there, which reads back as the text it was.
    text = html.unescape if feed.version.startswith("rss") else str
    items = []
    for number, entry in enumerate(feed.entries, start=1):
        content = entry.get("content") or []
        body_html = content[0].get("value") if content else entry.get("summary", "")
        title = text(entry.get("title") or "(untitled)")
        payload = {
            "source": slug,
            "external_id": entry.get("id") or entry.get("link") or _content_key(entry, body_html),
            "title": title,
            "body_html": body_html or title,
            "url": entry.get("link"),
            "byline": text(entry["author"]) if entry.get("author") else None,
            "language": _entry_language(entry),
            "tags": [text(tag["term"]) for tag in entry.get("tags", []) if tag.get("term")],
        }
        published = _feed_time(entry)
        if published is not None:
            payload["published_at"] = published.strftime("%Y-%m-%dT%H:%M:%SZ")
        if entry.get("summary") and content:
            payload["excerpt"] = html_to_text(entry["summary"])[:2000]
        payload = {key: value for key, value in payload.items() if value is not None}
        items.append((number, FeedEntry(payload, _updated(entry))))
    return items


def _entry_language(entry):
    """An entry's own language: ``dc:language`` (RSS) or ``xml:lang`` (Atom), or None."""
    language = entry.get("language") or (entry.get("title_detail") or {}).get("language")
    return language.split("-")[0].lower()[:3] if language else None


def _updated(entry):
    """When the entry last changed, by the feed (never later than now), or None."""
    # `in`, not get(): feedparser answers a missing updated time with the published one.
    parsed = entry["updated_parsed"] if "updated_parsed" in entry else None  # noqa: SIM401
    if not parsed:
        return None
    return min(datetime.datetime(*parsed[:6]), utcnow())


def _content_key(entry, body_html):
    """A key for an entry with neither id nor link: a hash of what it says."""
    material = "\x00".join([entry.get("title", ""), body_html, entry.get("published", "")])
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()[:40]


def import_items(items, on_item=None):
    """Write every item; returns the counts and each rejection with its number and reason."""
    result = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0, "rejections": []}

    def reject(number, reason, errors=None):
        result["rejected"] += 1
        rejection = {"line": number, "reason": reason}
        if errors:
            rejection["errors"] = errors
        result["rejections"].append(rejection)

    batch, keys = [], set()
    for number, payload in items:
        if on_item is not None:
            on_item()
        if isinstance(payload, Rejected):
            reject(number, payload.reason)
            continue
        updated_at = None
        if isinstance(payload, FeedEntry):
            payload, updated_at = payload.payload, payload.updated_at
        try:
            data = _schema.load(payload)
        except ValidationError as error:
            errors = flatten_messages(error.messages)
            reject(number, "Invalid: " + ", ".join(sorted(errors)) + ".", errors)
            continue
        key = (data["source"], data.get("external_id")) if data.get("external_id") else None
        if key in keys or len(batch) == BATCH_SIZE:  # one batch names an article once
            _store(batch, result, reject)
            batch, keys = [], set()
        batch.append((number, prepare(data, updated_at=updated_at)))
        if key is not None:
            keys.add(key)
    if batch:
        _store(batch, result, reject)
    return result


def _store(batch, result, reject):
    """Store one batch; should the database refuse it as a whole (a unique key taken by a
    concurrent writer), store its items one by one."""
    try:
        with writing() as touched:
            outcomes = store([Write(prepared) for _, prepared in batch], touched)
    except peewee.IntegrityError:
        outcomes = []
        for _, prepared in batch:
            try:
                with writing() as touched:
                    outcomes += store([Write(prepared)], touched)
            except peewee.IntegrityError:
                outcomes.append(
                    WriteError(
                        409, {"slug": ["Conflicts with a stored article (slug or external_id)."]}
                    )
                )
    for (number, _), outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, WriteError):
            errors = outcome.errors
            reject(number, "Rejected: " + ", ".join(sorted(errors)) + ".", errors)
        else:
            result[outcome.outcome] += 1
