"""Feeds of the newest articles: Atom 1.0, RSS 2.0 and JSON Feed 1.1, with the list's filters."""

import datetime
import email.utils
import html
import re
from urllib.parse import quote, unquote_plus, urlencode
from xml.etree import ElementTree

from flask import current_app, request
from flask.views import MethodView
from marshmallow import validate

from models import reading
from schemas.articles import ArticleFilterArgs
from schemas.common import Count, rfc3339

from .arguments import Blueprint
from .articles import article_filters
from .documents import PAGE_BODY_BYTES, document
from .paging import query_item

blp = Blueprint("feeds", __name__, url_prefix="/feeds", description="Atom, RSS and JSON feeds")
ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DC = "http://purl.org/dc/elements/1.1/"
#: Characters XML 1.0 cannot hold (ElementTree writes them as they are, and the feed is then
#: not well-formed): control characters but tab and line breaks, surrogates, U+FFFE, U+FFFF.
NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
ElementTree.register_namespace("atom", ATOM)
ElementTree.register_namespace("dc", DC)


class FeedArgs(ArticleFilterArgs):
    limit = Count(load_default=20, validate=validate.Range(1, 100))


def feed_response(mimetype):
    """The OpenAPI description of a feed answer (a document, not JSON of a schema)."""
    document = {"type": "object"} if mimetype.endswith("json") else {"type": "string"}
    return {
        "description": "The feed, newest articles first",
        "content": {mimetype: {"schema": document}},
    }


def base_url():
    """Where links point: NEWSDESK_PUBLIC_BASE_URL, or the host the request came to."""
    configured = current_app.config["NEWSDESK"].public_base_url
    return (configured or request.host_url).rstrip("/")


#: The query parameters a feed takes: the others (``utm_source``...) are no part of its URL.
FEED_PARAMETERS = frozenset(field.data_key or name for name, field in FeedArgs().fields.items())


def self_url():
    """This feed's own URL, at NEWSDESK_PUBLIC_BASE_URL when it is set (as every link in it),
    with its parameters in one order and none it does not take (the URL is the Atom feed's id:
    ``?a=1&b=2``, ``?b=2&a=1`` and ``?a=1&b=2&utm_source=x`` are one feed)."""
    pairs = sorted(request.query_string.decode("latin-1").split("&"), key=lambda p: p.split("=")[0])
    query = "&".join(
        # As a Link header's (paging.next_url): the id must be an IRI (RFC 4287 4.2.6).
        query_item(pair)
        for pair in pairs
        if unquote_plus(pair.partition("=")[0]) in FEED_PARAMETERS
    )
    return f"{base_url()}{quote(request.path)}" + (f"?{query}" if query else "")


def feed_links(**filters):
    """The three feed URLs of a filtered list (``source=`` or ``tag=``)."""
    query = f"?{urlencode(filters)}" if filters else ""
    return {kind: f"{base_url()}/feeds/articles.{kind}{query}" for kind in ("atom", "rss", "json")}


def _newest(limit=20, **filters):
    """The newest articles under the list filters, as documents with their bodies: as many
    as fit ``PAGE_BODY_BYTES`` (one at least)."""
    rows = reading.list_cards(limit=limit, **article_filters(filters))
    rows = rows[: reading.bodies_that_fit([key[1] for _, key in rows], PAGE_BODY_BYTES)]
    bodies = reading.bodies(key[1] for _, key in rows)
    return [document(card, bodies[key[1]]) for card, key in rows]


def _title(filters):
    parts = [
        f"{name} {_shown(value)}" for name, value in filters.items() if value and name != "limit"
    ]
    return "Newsdesk: newest articles" + (f" ({'; '.join(parts)})" if parts else "")


def _shown(value):
    """A filter's value as a title shows it: lists joined, times in RFC 3339."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, datetime.datetime):
        return rfc3339(value)
    return str(value)


def _one_language(articles):
    """The language of a feed whose articles share one, or None."""
    languages = {article["language"] for article in articles}
    return languages.pop() if len(languages) == 1 else None


def _article_url(article):
    return f"{base_url()}/v1/articles/{article['id']}"


def _moment(stamp):
    """An RFC 3339 timestamp of a document as a datetime in UTC."""
    return datetime.datetime.fromisoformat(stamp)


def _response(body, mimetype):
    return current_app.response_class(body, mimetype=mimetype)


def _xml(root):
    """The document of ``root``, its text's carriage returns as references: XML parsers read
    a raw one as a line feed (XML 1.0 2.11), and ElementTree writes it raw in text (in
    attributes, escaped already: no raw one is left in the document but a text's)."""
    body = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return body.replace(b"\r", b"&#13;")


def _sub(parent, tag, text=None, **attributes):
    """A child element, without the characters XML cannot hold in its text or attributes (none
    should reach them: stored text and URLs refuse them, and a feed's own URL keeps its query
    percent-encoded; a feed must stay XML all the same)."""
    attributes = {name: NOT_XML.sub("", value) for name, value in attributes.items()}
    element = ElementTree.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = NOT_XML.sub("", text)
    return element


@blp.route("/articles.atom")
class AtomFeed(MethodView):
    @blp.arguments(FeedArgs(), location="query", as_kwargs=True)
    @blp.response(200)
    @blp.doc(responses={"200": feed_response("application/atom+xml")})
    def get(self, **filters):
        """Atom 1.0 feed of the newest articles."""
        articles = _newest(**filters)
        # Unqualified names under a default namespace declared on the root: plain Atom markup.
        feed = ElementTree.Element("feed", xmlns=ATOM)
        _sub(feed, "id", self_url())
        _sub(feed, "title", _title(filters))
        _sub(
            feed,
            "updated",
            max((a["updated_at"] for a in articles), default="2000-01-01T00:00:00Z"),
        )
        _sub(feed, "link", rel="self", href=self_url(), type="application/atom+xml")
        _sub(feed, "link", rel="alternate", href=f"{base_url()}/v1/articles")
        author = _sub(feed, "author")
        _sub(author, "name", "Newsdesk")
        for article in articles:
            entry = _sub(feed, "entry", **{XML_LANG: article["language"]})
            _sub(entry, "id", _article_url(article))
            _sub(entry, "title", article["title"], type="text")
            _sub(entry, "link", rel="alternate", href=article["url"] or _article_url(article))
            _sub(entry, "published", article["published_at"])
            _sub(entry, "updated", article["updated_at"])
            by = _sub(entry, "author")
            _sub(by, "name", article["byline"] or article["source"]["name"])
            _sub(entry, "summary", article["excerpt"], type="text")
            _sub(entry, "content", article["body_html"], type="html")
            for tag in article["tags"]:
                _sub(entry, "category", term=tag["slug"], label=tag["name"])
        return _response(_xml(feed), "application/atom+xml")


@blp.route("/articles.rss")
class RssFeed(MethodView):
    @blp.arguments(FeedArgs(), location="query", as_kwargs=True)
    @blp.response(200)
    @blp.doc(responses={"200": feed_response("application/rss+xml")})
    def get(self, **filters):
        """RSS 2.0 feed of the newest articles."""
        articles = _newest(**filters)
        rss = ElementTree.Element("rss", version="2.0")
        channel = _sub(rss, "channel")
        _sub(channel, "title", html.escape(_title(filters)))
        _sub(channel, "link", f"{base_url()}/v1/articles")
        _sub(channel, "description", "The newest articles on Newsdesk.")
        _sub(channel, f"{{{ATOM}}}link", rel="self", href=self_url(), type="application/rss+xml")
        if articles:
            newest = max(_moment(a["updated_at"]) for a in articles)
            _sub(channel, "lastBuildDate", email.utils.format_datetime(newest))
        for article in articles:
            # Readers render an RSS item's title and description as HTML: plain text goes in
            # escaped, so that what looks like markup shows as the text it is. A creator and a
            # category are plain text (escaped, feedparser showed "Q&amp;A" for "Q&A").
            item = _sub(channel, "item")
            _sub(item, "title", html.escape(article["title"]))
            _sub(item, "link", article["url"] or _article_url(article))
            _sub(item, "guid", _article_url(article), isPermaLink="false")
            _sub(item, "pubDate", email.utils.format_datetime(_moment(article["published_at"])))
            _sub(item, f"{{{ATOM}}}updated", article["updated_at"])
            _sub(item, "description", html.escape(article["excerpt"]))
            _sub(item, f"{{{DC}}}language", article["language"])
            if article["byline"]:
                _sub(item, f"{{{DC}}}creator", article["byline"])
            for tag in article["tags"]:
                _sub(item, "category", tag["name"])
        return _response(_xml(rss), "application/rss+xml")


@blp.route("/articles.json")
class JsonFeed(MethodView):
    @blp.arguments(FeedArgs(), location="query", as_kwargs=True)
    @blp.response(200)
    @blp.doc(responses={"200": feed_response("application/feed+json")})
    def get(self, **filters):
        """JSON Feed 1.1 of the newest articles."""
        articles = _newest(**filters)
        feed = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": _title(filters),
            "home_page_url": f"{base_url()}/v1/articles",
            "feed_url": self_url(),
            "language": _one_language(articles),
            "items": [
                {
                    "id": str(article["id"]),
                    "url": article["url"] or _article_url(article),
                    "external_url": _article_url(article),
                    "title": article["title"],
                    "summary": article["excerpt"],
                    "content_html": article["body_html"],
                    "image": article["image_url"],
                    "date_published": article["published_at"],
                    "date_modified": article["updated_at"],
                    "authors": [{"name": article["byline"] or article["source"]["name"]}],
                    "tags": [tag["name"] for tag in article["tags"]],
                    "language": article["language"],
                }
                for article in articles
            ],
        }
        feed = {key: value for key, value in feed.items() if value is not None}
        for item in feed["items"]:
            for key in [k for k, v in item.items() if v is None]:
                del item[key]
        return _response(current_app.json.dumps(feed), "application/feed+json")
