"""Bulk loading: NDJSON lines, RSS 2.0 and Atom feeds, into articles.

Shared by ``POST /v1/import`` and ``newsdesk import``. Items are validated and prepared one by
one, then stored in batches, each in one transaction with a fixed number of statements
(``models.ingest.store``): a bad item is reported with its number and reason and never stops
the good ones.
"""

import codecs
import collections
import copy
import datetime
import hashlib
import html
import io
import itertools
import re
import xml.sax
from urllib.parse import urljoin, urlsplit, urlunsplit

import feedparser
import peewee
from marshmallow import ValidationError

from models import Source, imports, utcnow, webhooks
from models.base import lost_race, write_transaction
from models.ingest import Write, WriteError, changed, prepare, store, writing
from models.text import html_to_text, slugify, tag_slug
from schemas.articles import MAX_ARTICLE_TAGS, MAX_EXTERNAL_ID_LENGTH, ArticleInSchema
from schemas.common import ESCAPED_BY_BROWSERS, LANGUAGE_PATTERN, one_line
from schemas.sources import SourceInSchema
from schemas.webhooks import SOURCE_CREATED

from . import jsonbody
from .errors import flatten_messages, named

BATCH_SIZE = 200
#: Items waiting to be accounted, at most (rejected ones between stored ones included).
WINDOW = 5000
#: An answer lists this many rejections, the first; every rejection is counted by its code.
MAX_REJECTIONS = 100
_schema = ArticleInSchema()
#: A numeric character reference, decimal or hexadecimal.
_CHARACTER_REFERENCE = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")


class FeedEntry:
    """A feed entry's article payload, when the feed says the entry last changed (which a
    client's NDJSON line may not set: ``updated_at`` is the server's own there), and the URL
    its body's relative links are relative to (``base``)."""

    def __init__(self, payload, updated_at, base=None):
        self.payload = payload
        self.updated_at = updated_at
        self.base = base


class Rejected:
    """An item that could not even be read (too long, not UTF-8, not JSON, not an object):
    ``code`` names the kind of reason (what rejections are counted by), ``reason`` says it."""

    def __init__(self, code, reason, errors=None):
        self.code = code
        self.reason = reason
        self.errors = errors


def split_lines(blocks, max_line):
    """``(line number, bytes)`` for every line of a body read as ``blocks`` of bytes (blank
    lines too, so numbers match the body's). A line longer than ``max_line`` bytes is cut to
    ``max_line + 1`` bytes (enough to know it is too long); the rest of it is never held."""
    number, pending, overlong = 0, [], False
    held = 0
    for data in blocks:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                if not overlong and start < len(data):
                    pending.append(data[start:])
                    held += len(data) - start
                    if held > max_line:
                        pending, overlong = [b"".join(pending)[: max_line + 1]], True
                break
            number += 1
            if not overlong:
                pending.append(data[start:end])
            yield number, b"".join(pending)
            pending, overlong, held = [], False, 0
            start = end + 1
    if pending:
        yield number + 1, b"".join(pending)


def read_blocks(handle, size=64 * 1024):
    """The blocks of a binary stream (a request body, a file), ``size`` bytes at most each."""
    return iter(lambda: handle.read(size), b"")


def ndjson_items(lines, max_line):
    """``(line number, line or Rejected)`` for each non-blank line of ``lines``: its bytes,
    which :func:`read` parses (in a reader process where the import has them), or why it is
    refused unread. A UTF-8 byte order mark that starts the first line (editors on Windows
    write one) is not part of it."""
    for number, line in lines:
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        if not line.strip():
            continue
        if len(line) > max_line:
            yield number, Rejected("too_long", f"Line is longer than {max_line} bytes.")
            continue
        yield number, line


def parse_line(line):
    """The object a line of NDJSON holds, or the :class:`Rejected` saying why it holds none."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return Rejected("not_utf8", "Line is not valid UTF-8.")
    try:
        payload = jsonbody.loads(line)
    except jsonbody.BadJSON as error:
        if error.reason is None:  # JSON holding text no column can store
            errors = {error.field: [error.message]}
            return Rejected("invalid", f"Invalid: {named(errors)}.", errors)
        return Rejected("not_json", f"Line is not valid JSON: {error.reason}.")
    if not isinstance(payload, dict):
        return Rejected("not_object", "Line is not a JSON object.")
    return payload


def is_feed(raw):
    """Feeds are XML; NDJSON starts with ``{``. Told apart by content (its start), not by file
    name; XML may be in UTF-16, with its byte order mark."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raw = raw[:256].decode("utf-16", errors="ignore").encode()
    return raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _character_or_replacement(match):
    """A character reference to a code point that is no character (a surrogate, or past
    U+10FFFF) becomes U+FFFD, as HTML parsers read it (feedparser would raise on it); one to
    a control character XML cannot hold goes, as stored text never holds one (XML's parser
    would refuse the whole feed for it)."""
    hexadecimal, decimal = match.groups()
    if len((hexadecimal or decimal).lstrip(b"0")) > 8:  # past U+10FFFF in either base
        return b"&#xFFFD;"
    code = int(hexadecimal, 16) if hexadecimal else int(decimal)
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return b"&#xFFFD;"
    if (code < 0x20 and code not in (0x9, 0xA, 0xD)) or code in (0xFFFE, 0xFFFF):
        return b""
    return match.group()


#: What XML's parser says of a document that ends before its elements do.
_CUT_SHORT = ("no element found", "unclosed token")


#: The codes of what refuses a feed whole (told as its entry 1).
WHOLE_FEED = frozenset({"not_feed", "no_link"})


#: An element's name, as a start tag's ``<`` is followed by it.
_NAME = re.compile(rb"[A-Za-z_][^\s/>]*")


def _root_name(raw):
    """The name of the document ``raw``'s first element, past its prolog (the declaration,
    comments, processing instructions, the document type and its internal subset), or None.
    One pass, each part found by ``find``: no pattern that could backtrack."""
    at = 0
    while (at := raw.find(b"<", at)) >= 0:
        if raw.startswith(b"<!--", at):
            close = raw.find(b"-->", at + 4)
            at = -1 if close < 0 else close + 3
        elif raw.startswith(b"<?", at):
            close = raw.find(b"?>", at + 2)
            at = -1 if close < 0 else close + 2
        elif raw.startswith(b"<!", at):  # the document type, its internal subset in brackets
            close, bracket = raw.find(b">", at), raw.find(b"[", at)
            if 0 <= bracket < close:
                close = raw.find(b">", raw.find(b"]", bracket))
            at = -1 if close < 0 else close + 1
        else:
            name = _NAME.match(raw, at + 1)
            return name.group() if name else None
        if at < 0:
            return None
    return None


def _ends_its_root(raw):
    """Whether the document ``raw`` ends with its root element's end tag, after which only
    space, comments and processing instructions may come; None when its root cannot be told.
    Read back from the end by index, each step linear."""
    name = _root_name(raw)
    if name is None:
        return None
    stop = len(raw.rstrip())
    while True:
        if raw.endswith(b"-->", 0, stop):
            opening = raw.rfind(b"<!--", 0, stop)
        elif raw.endswith(b"?>", 0, stop):
            opening = raw.rfind(b"<?", 0, stop)
        else:
            break
        if opening < 0:
            break
        stop = opening
        while stop and raw[stop - 1 : stop].isspace():
            stop -= 1
    tail = raw[max(0, stop - len(name) - 256) : stop]
    return re.search(rb"</" + re.escape(name) + rb"\s*>\Z", tail) is not None


def _cut_short(feed, raw):
    """Why a feed is taken to be cut short (its XML ends inside an element: read leniently, the
    last entry is half of one), or None. Other faults of XML that real feeds have, an HTML
    entity, a bare ``&``, a prefix never declared, feedparser's lenient reading reads as
    meant; XML's parser stops at the first, so the end of such a feed is looked at too."""
    error = feed.get("bozo_exception") if feed.bozo else None
    if isinstance(error, xml.sax.SAXParseException) and error.getMessage() in _CUT_SHORT:
        where = f"line {error.getLineNumber()}, column {error.getColumnNumber()}"
        return f"The feed ends before its XML does ({where}: {error.getMessage()})."
    if error is not None and _ends_its_root(raw) is False:
        return "The feed ends before its XML does (its root element is never closed)."
    return None


def _feed_time(entry):
    """When ``entry`` was published, as an article's ``published_at`` (RFC 3339 in UTC), or
    None when the feed says no time."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    try:
        return datetime.datetime(*parsed[:6]).isoformat() + "Z"  # 0900-..., not 900-...
    except ValueError:
        # Past the years Python holds (9999-12-31T23:59:59-05:00 is in the year 10000 in UTC;
        # 0001-01-01T00:00:00+01:00 in the year 0): the nearest it holds, which the schema
        # refuses, as any year outside those an article may have, with the years' rule.
        return "9999-12-31T23:59:59Z" if parsed[0] > 9999 else "0001-01-01T00:00:00Z"


def feed_items(raw):
    """Map a feed to a source (created when missing) and its entries to article payloads.

    Entries are keyed by their id, else their link, else a hash of their content, so that
    importing the same feed again changes nothing. Each keeps its language (``xml:lang`` in
    Atom, ``dc:language`` in RSS, else the feed's) and the time it last changed.
    """
    raw = _CHARACTER_REFERENCE.sub(_character_or_replacement, raw)
    try:
        # A stream, never a string: feedparser would fetch a string that looks like a URL.
        feed = feedparser.parse(io.BytesIO(raw))
    except Exception as error:  # its lenient parser can fail on input its strict one refused
        return [(1, Rejected("not_feed", f"Not a readable RSS or Atom feed: {error}."))]
    if feed.bozo and not feed.entries:
        return [
            (1, Rejected("not_feed", f"Not a readable RSS or Atom feed: {feed.bozo_exception}."))
        ]
    if not feed.version:  # XML of another kind: a sitemap, OPML, a page
        return [(1, Rejected("not_feed", "Not an RSS or Atom feed."))]
    problem = _cut_short(feed, raw)
    if problem is not None:
        return [(1, Rejected("not_feed", problem + " Nothing of the feed was imported."))]
    if not feed.entries:
        return []  # nothing to store: no source made for it either
    link = _absolute(feed.feed.get("link")) or _absolute(_self_link(feed.feed))
    if link is None:
        reason = (
            "The feed has no link to its site (RSS 2.0 requires one in its channel; Atom, an"
            " alternate or a self link): its articles could not be told from those of another"
            " feed of its title. Nothing of the feed was imported."
        )
        return [(1, Rejected("no_link", reason))]
    slug = _feed_source(feed, link)
    rss = feed.version.startswith("rss")
    # RSS gives no type to its text elements, and readers render them as HTML: feeds (this
    # one's among them) escape plain text there, which reads back as the text it was.
    text = html.unescape if rss else str
    items, first_of = [], {}
    for number, entry in enumerate(feed.entries, start=1):
        content = entry.get("content") or []
        body_html = content[0].get("value") if content else entry.get("summary", "")
        title = _text(entry, "title", rss) or "(untitled)"
        key = entry.get("id") or entry.get("link") or _content_key(entry, body_html)
        if len(key) > MAX_EXTERNAL_ID_LENGTH:  # an id (or link) that long: kept as its hash
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:40]
        if key in first_of:  # stored, it would overwrite the first at every import of the feed
            reason = f"Repeats the id of entry {first_of[key]} ({key!r}), which is kept."
            items.append((number, Rejected("duplicate", reason)))
            continue
        first_of[key] = number
        # A relative link is the feed's; a guid that is no URL (feedparser gives it as the
        # link of an entry with none) is the entry's id alone.
        url = _absolute(entry.get("link"), base=None if entry.get("guidislink") else link)
        payload = {
            "source": slug,
            "external_id": key,
            "title": title,
            "body_html": body_html or title,
            "url": url,
            "byline": text(entry["author"]) if entry.get("author") else None,
            "language": _entry_language(entry),
            "tags": _tags(entry, text),
        }
        published = _feed_time(entry)
        if published is not None:
            payload["published_at"] = published
        if entry.get("summary") and content:
            payload["excerpt"] = html_to_text(entry["summary"])[:2000]
        payload = {key: value for key, value in payload.items() if value is not None}
        items.append((number, FeedEntry(payload, _updated(entry), base=url or link)))
    return items


#: What a tag of an article may be (``ArticleInSchema``'s rules for one).
_TAG = ArticleInSchema().fields["tags"].inner


def _tags(entry, text):
    """An entry's categories as its tags: the first as many as an article may have, of those a
    tag may be, one a slug (a WordPress feed gives dozens, some of them no tag: one such
    category refused the entry whole)."""
    tags = {}
    for term in (one_line(text(tag["term"])) for tag in entry.get("tags", []) if tag.get("term")):
        try:
            name = _TAG.deserialize(term)
        except ValidationError:
            continue
        tags.setdefault(tag_slug(name), name)
    return list(tags.values())[:MAX_ARTICLE_TAGS]


def _self_link(feed):
    """The URL an Atom feed gives as its own (``rel="self"``), or None."""
    return next(
        (link.get("href") for link in feed.get("links", []) if link.get("rel") == "self"), None
    )


def _text(entry, name, rss):
    """An entry's (or a feed's) text element ``name`` as plain text. Atom says whether it
    holds HTML (``type="html"``, as WordPress's titles do); RSS does not, and its text is read
    as readers read it (see :func:`feed_items`)."""
    value = entry.get(name)
    if not value:
        return value
    if rss:
        return html.unescape(value)
    kind = (entry.get(f"{name}_detail") or {}).get("type", "")
    return html_to_text(value) if kind in ("text/html", "application/xhtml+xml") else value


def _feed_source(feed, link):
    """The slug of a feed's source: the source whose homepage is the feed's ``link``, else one
    made from its title (or its link's host), with a number when another publisher's source has
    that slug: two feeds of one title, or of titles with no Latin letter, are two sources."""
    if link is not None:
        # The same URL written otherwise (`https://News.example` is `https://news.example/`)
        # made another source, and every entry was stored again there.
        same = same_url(link)
        found = (
            Source.select(Source.slug, Source.homepage_url)
            .where(peewee.fn.LOWER(Source.homepage_url).in_(url_spellings(link)))
            .order_by(Source.id)
        )
        for source in found:
            if same_url(source.homepage_url) == same:
                return source.slug
    title = one_line(_text(feed.feed, "title", feed.version.startswith("rss")) or "")
    title = title or link
    base = (
        slugify(title, 90)
        or slugify(urlsplit(link).hostname or "", 90)
        or "feed-" + hashlib.sha256(title.encode()).hexdigest()[:8]
    )
    if base.isdigit():
        base = f"feed-{base}"
    language = _language(feed.feed.get("language")) or "en"
    slug, number = base, 1
    while not _create_source(slug, title[:200], link, language):
        # Taken (maybe by a concurrent import): the feed's when it has the feed's link, or
        # none (a source made for it by hand, say); another publisher's otherwise.
        owner = Source.get_or_none(Source.slug == slug)
        if owner is not None and (
            owner.homepage_url is None or same_url(owner.homepage_url) == same_url(link)
        ):
            break
        number += 1
        slug = f"{base}-{number}"
    return slug


#: The port a URL of each scheme names when it names none.
DEFAULT_PORTS = {"http": 80, "https": 443}


def same_url(url):
    """``url`` as every spelling of it is (RFC 3986 6.2.2-6.2.3): scheme and host in lower
    case, no default port, ``/`` for an empty path."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port past 65535: as it is
        return url
    if port == DEFAULT_PORTS.get(parts.scheme.lower()):
        port = None
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def url_spellings(url):
    """Lower-case spellings of ``url`` that :func:`same_url` may take as it (a homepage is
    stored as it was sent): with and without the ``/`` of an empty path."""
    lowered = url.lower()
    return sorted({lowered, lowered.rstrip("/"), lowered.rstrip("/") + "/", same_url(url).lower()})


def _create_source(slug, name, homepage_url, language):
    """Make the source ``slug`` unless one has that slug; whether it was made. A homepage the
    API would refuse (one over 2,048 characters, say) is left out: the source could not be
    written back as it is."""
    values = {"slug": slug, "name": name, "homepage_url": homepage_url, "language": language}
    if "homepage_url" in SourceInSchema().validate(values):
        homepage_url = None
    with writing() as touched:
        created = (
            Source.insert(slug=slug, name=name, homepage_url=homepage_url, language=language)
            .on_conflict_ignore()
            .returning(Source.id)
            .tuples()
            .execute()
        )
        for (source_id,) in created:
            touched.events.append(
                webhooks.source_event(SOURCE_CREATED, Source.get_by_id(source_id))
            )
    return bool(created)


#: A feed's links are stored with these escaped, as a browser escapes them.
ESCAPED_IN_LINKS = str.maketrans({c: f"%{ord(c):02X}" for c in ESCAPED_BY_BROWSERS})


def _absolute(url, base=None):
    """``url`` made absolute against ``base`` when relative, if it is then an http(s) URL."""
    if not url or "\\" in url:  # a slash to a browser, not to a URL parser: no link
        return None
    # Escaped as a browser escapes them when it follows the link (RFC 3986 holds none of them
    # as they are: a URL field refuses them, and the entry with it was refused).
    url = url.translate(ESCAPED_IN_LINKS)
    try:
        url = urljoin(base or "", url.strip())
        parts = urlsplit(url)
    except ValueError:  # an unbalanced "[" or "]" in the host: no URL
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _language(tag):
    """The primary language of a feed's tag (``en-US``, ``en_US``: ``en``), or None."""
    primary = re.split(r"[-_]", (tag or "").strip(), maxsplit=1)[0].lower()
    return primary if re.fullmatch(LANGUAGE_PATTERN, primary) else None


def _entry_language(entry):
    """An entry's own language: ``dc:language`` (RSS) or ``xml:lang`` (Atom), or None."""
    return _language(entry.get("language") or (entry.get("title_detail") or {}).get("language"))


def _updated(entry):
    """When the entry last changed, by the feed (never later than now), or None."""
    # `in`, not get(): feedparser answers a missing updated time with the published one.
    parsed = entry["updated_parsed"] if "updated_parsed" in entry else None  # noqa: SIM401
    if not parsed:
        return None
    try:
        return min(datetime.datetime(*parsed[:6]), utcnow())
    except ValueError:  # past the years Python holds in UTC: the feed tells nothing usable
        return None


def _content_key(entry, body_html):
    """A key for an entry with neither id nor link: a hash of what it says."""
    material = "\x00".join([entry.get("title", ""), body_html, entry.get("published", "")])
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()[:40]


def import_items(items, on_item=None, job=None, on_rejection=None, after_batch=None, readers=None):
    """Write every item; returns the counts, the first rejections with their numbers and
    reasons (:data:`MAX_REJECTIONS`), the rejections counted by code, and the ranges of the
    numbers of the items stored. With ``job`` (an :class:`models.imports.ImportJob`), its
    progress is recorded in the transaction of each batch, and resumed from. ``on_rejection``
    is called with every rejection, in line order, once its batch is accounted for good;
    ``after_batch(number)`` after each batch is stored and accounted, with the number of its
    last item (it may raise to stop there). With ``readers`` (a ``multiprocessing`` pool),
    items are read there (:func:`read`: validated and prepared, the largest share of an
    item's CPU time after its storing) while this process stores those read before."""
    importer = Importer(job, on_rejection, after_batch)
    read_items = ((number, read(payload)) for number, payload in items)
    if readers is not None:
        read_items = read_ahead(readers, items)
    for number, item in read_items:
        if on_item is not None:
            on_item()
        importer.add(number, item)
    return importer.finish()


#: Items a reader process is given at once, and items read ahead of the storing, at most.
READ_CHUNK = 50
READ_AHEAD = 2000


def read_ahead(readers, items):
    """``(number, read(payload))`` of every item, in order, read by the pool ``readers`` a slab
    of :data:`READ_AHEAD` items ahead of the caller (so at most two slabs are held)."""
    items, pending = iter(items), collections.deque()  # a feed's are a list
    while True:
        slab = list(itertools.islice(items, READ_AHEAD))
        if slab:
            payloads = [payload for _, payload in slab]
            running = readers.map_async(read, payloads, chunksize=READ_CHUNK)
            pending.append(([number for number, _ in slab], running))
        if len(pending) > 1 or (pending and not slab):
            numbers, running = pending.popleft()
            yield from zip(numbers, running.get(), strict=True)
        if not slab and not pending:
            return


def read(payload):
    """What an import makes of an item before storing it, in any process (it reads no
    database): a :class:`Rejected`, or the key naming the article it writes (None without an
    ``external_id``) and its :class:`models.ingest.Prepared` input. ``payload`` is an object,
    a feed's entry or a line of NDJSON (bytes) to parse."""
    if isinstance(payload, bytes):
        payload = parse_line(payload)
    if isinstance(payload, Rejected):
        return payload
    feed = isinstance(payload, FeedEntry)
    entry = payload if feed else FeedEntry(payload, None)
    try:
        data = _schema.load(entry.payload)
    except ValidationError as error:
        errors = flatten_messages(error.messages)
        return Rejected("invalid", f"Invalid: {named(errors)}.", errors)
    key = (data["source"], data["external_id"]) if data.get("external_id") else None
    return key, prepare(data, entry.updated_at, from_feed=feed, base=entry.base)


class Importer:
    """Items in, batches stored, outcomes accounted in item order.

    Items wait in a window (at most :data:`BATCH_SIZE` to store, :data:`WINDOW` in all) so that
    their outcomes, rejected on reading or on storing, are accounted in the order of their
    numbers: that is what makes the ranges of stored items exact.
    """

    def __init__(self, job=None, on_rejection=None, after_batch=None):
        self.job = job
        self.on_rejection = on_rejection
        self.after_batch = after_batch
        #: Rejections not handed to ``on_rejection`` yet (a batch refused is accounted again).
        self.unreported = []
        if job is None:
            self.state = {
                "lines": 0,
                "created": 0,
                "updated": 0,
                "unchanged": 0,
                "rejected": 0,
                "rejections": [],
                "rejected_by_code": {},
                "last_item_stored": False,
            }
            self.open = None
        else:
            self.state = imports.state_of(job)
            self.open = imports.last_range(job) if job.last_item_stored else None
        #: Every range, for an answer (not kept for a job: its ranges are in its table).
        self.ranges = [] if job is None else None
        #: Ranges changed since the last checkpoint (the open one, and those closed after).
        self.changed = [] if self.open is None else [self.open]
        self.window, self.batch, self.keys = [], [], set()

    def add(self, number, item):
        """Take the item numbered ``number`` as :func:`read` made it."""
        if isinstance(item, Rejected):
            self.window.append((number, item))
        else:
            key, prepared = item
            if key is not None and key in self.keys:  # one batch names an article once
                self.flush()
            self.window.append((number, prepared))
            self.batch.append(len(self.window) - 1)
            if key is not None:
                self.keys.add(key)
        if len(self.batch) >= BATCH_SIZE or len(self.window) >= WINDOW:
            self.flush()

    def finish(self):
        self.flush()
        result = {key: value for key, value in self.state.items() if key != "last_item_stored"}
        result["rejections_omitted"] = self.state["rejected"] - len(self.state["rejections"])
        if self.ranges is not None:
            result["stored_lines"] = self.ranges
        return result

    def flush(self):
        """Store the window's batch, account for every item of the window in order, and hand
        its rejections to ``on_rejection``."""
        last = self.window[-1][0] if self.window else None
        self._store_window()
        if self.on_rejection is not None:
            for rejection in self.unreported:
                self.on_rejection(rejection)
        self.unreported = []
        if last is not None and self.after_batch is not None:
            self.after_batch(last)

    def _store_window(self):
        window, batch = self.window, self.batch
        self.window, self.batch, self.keys = [], [], set()
        if not window:
            return
        if not batch:
            self._account(window, {})
            self._checkpoint_alone(window)
            return
        for attempt in range(3):
            saved = self._save()
            try:
                with writing(bulk=True) as touched:
                    outcomes = store([Write(window[i][1]) for i in batch], touched)
                    touched.changed = any(map(changed, outcomes))
                    self._account(window, dict(zip(batch, outcomes, strict=True)))
                    self._checkpoint(window[-1][0])
                return
            except peewee.IntegrityError:
                self._restore(saved)
                break  # a unique key one of its items names, taken by a concurrent writer
            except peewee.OperationalError as error:
                self._restore(saved)
                if not lost_race(error) or attempt == 2:
                    raise
                # PostgreSQL ended it to break a deadlock: the batch again.
        # Store the batch's items one by one: the one whose key was taken is told so.
        done = 0
        for i in batch:
            try:
                with writing(bulk=True) as touched:
                    (outcome,) = store([Write(window[i][1])], touched)
                    touched.changed = changed(outcome)
                    self._account(window[done : i + 1], {i - done: outcome})
                    self._checkpoint(window[i][0])
            except peewee.IntegrityError:
                conflict = WriteError(
                    409, {"slug": ["Conflicts with a stored article (slug or external_id)."]}
                )
                self._account(window[done : i + 1], {i - done: conflict})
                self._checkpoint_alone(window[done : i + 1])
            done = i + 1
        if done < len(window):
            self._account(window[done:], {})
            self._checkpoint_alone(window[done:])

    def _account(self, entries, outcomes):
        """Count each of ``entries`` (``(number, Rejected or Prepared)``, in order); ``outcomes``
        holds the store's answer by the entry's index."""
        state = self.state
        for index, (number, item) in enumerate(entries):
            state["lines"] += 1
            outcome = outcomes.get(index)
            if isinstance(item, Rejected):
                self._reject(number, item.code, item.reason, item.errors)
            elif isinstance(outcome, WriteError):
                errors = outcome.errors
                code = "conflict" if outcome.status == 409 else "invalid"
                self._reject(number, code, "Rejected: " + ", ".join(sorted(errors)) + ".", errors)
            else:
                state[outcome.outcome] += 1
                if self.open is not None and state["last_item_stored"]:
                    self.open[1] = number
                else:
                    self.open = [number, number]
                    if self.ranges is not None:
                        self.ranges.append(self.open)
                if not self.changed or self.changed[-1] is not self.open:
                    self.changed.append(self.open)
                state["last_item_stored"] = True

    def _reject(self, number, code, reason, errors=None):
        state = self.state
        state["rejected"] += 1
        state["rejected_by_code"][code] = state["rejected_by_code"].get(code, 0) + 1
        state["last_item_stored"] = False
        self.open = None
        rejection = {"line": number, "code": code, "reason": reason}
        if errors:
            rejection["errors"] = errors
        if len(state["rejections"]) < MAX_REJECTIONS:
            state["rejections"].append(rejection)
        if self.on_rejection is not None:
            self.unreported.append(rejection)

    def _save(self):
        return (
            copy.deepcopy(self.state),
            None if self.open is None else list(self.open),
            None if self.ranges is None else len(self.ranges),
            list(self.changed),
            len(self.unreported),
        )

    def _restore(self, saved):
        """Undo the accounting of a batch the database refused (the open range is the last of
        the ranges and of the changed ones, when there is one)."""
        self.state, self.open, count, self.changed, unreported = saved
        del self.unreported[unreported:]
        if self.ranges is not None:
            del self.ranges[count:]
        if self.open is not None:
            self.changed[-1] = self.open
            if self.ranges is not None:
                self.ranges[-1] = self.open

    def _checkpoint(self, last_number):
        """Inside a batch's transaction: record the job's progress up to ``last_number``."""
        if self.job is None:
            return
        imports.checkpoint(self.job, self.state, last_number + 1, self.changed)
        self.changed = [self.open] if self.open is not None else []

    def _checkpoint_alone(self, entries):
        """Record progress over ``entries`` that stored nothing, in a transaction of its own."""
        if self.job is None or not entries:
            return
        with write_transaction():
            self._checkpoint(entries[-1][0])
