"""Compressed answers: brotli or gzip, as the request's ``Accept-Encoding`` allows.

A coding the client refuses (``br;q=0``) is never used. A compressed answer's strong ETag is its
identity form's with ``:coding`` appended, so each variant has a tag of its own (RFC 9110
8.8.3); :func:`api.caching.matching_tag` reads them back.
"""

import functools
import gzip

import brotli
from flask import request
from werkzeug.http import parse_accept_header

CODINGS = ("br", "gzip")
MIN_SIZE = 1024
COMPRESSIBLE = {
    "application/json",
    "application/problem+json",
    "application/feed+json",
    "application/atom+xml",
    "application/rss+xml",
    "application/javascript",
    "text/javascript",
    "text/css",
    "text/html",
    "text/plain",
}


@functools.lru_cache(maxsize=256)
def accepted(header):
    """The codings a request accepts (werkzeug's ``Accept``: ``accepted(h)["br"]`` is br's
    quality, 0 when refused), from its ``Accept-Encoding`` header (None when absent)."""
    return parse_accept_header(header)


def chosen_coding(header):
    """The coding to compress an answer to this ``Accept-Encoding`` with, or None: the one of
    highest quality, compressed on a tie, and none when ``identity`` is preferred to each
    (``identity, gzip;q=0.1``)."""
    coding = accepted(header).best_match((*CODINGS, "identity")) if header else None
    return None if coding == "identity" else coding


def coding_for(response):
    """The coding :func:`compress` gives ``response`` in this request, or None."""
    if (
        response.mimetype not in COMPRESSIBLE
        or response.status_code != 200
        or response.direct_passthrough
        or response.is_streamed
        or "Content-Encoding" in response.headers
        or (response.content_length or 0) < MIN_SIZE
    ):
        return None
    return chosen_coding(request.headers.get("Accept-Encoding"))


def vary(response):
    """Say in ``Vary`` that ``response`` depends on ``Accept-Encoding`` when it can be
    compressed (a 304 says it too, as its 200 would)."""
    if response.mimetype in COMPRESSIBLE:
        response.vary.add("Accept-Encoding")


def encode(body, coding):
    """``body`` compressed with ``coding`` (one of :data:`CODINGS`)."""
    if coding == "br":
        return brotli.compress(body, quality=4)
    return gzip.compress(body, compresslevel=6, mtime=0)


def compress(response):
    """after_request: compress a successful answer worth compressing, and say so in ``Vary``."""
    vary(response)
    coding = coding_for(response)
    if coding is None:
        return response
    response.set_data(encode(response.get_data(), coding))
    response.headers["Content-Encoding"] = coding
    etag, weak = response.get_etag()
    if etag and not weak:
        response.set_etag(f"{etag}:{coding}")
    return response
