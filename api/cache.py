"""Answers worth keeping: search results and feeds, kept per worker and keyed by their ETag.

A search scores every article holding its words (a common word: thousands of BM25 scores, 6-9
ms on 100,000 articles) and a feed renders fifty entries; both are asked for again and again with
the same URL (popular queries, pages of them, feed readers polling without If-None-Match). The
ETag of an answer derived from stored data names the data version, the URL and the caller
(:func:`api.http.version_etag`), and every write raises the version in its transaction: once a
write commits, on any worker or host, the requests that follow carry a new key. An entry can
never be served stale; it is just no longer asked for, and ages out of the least recently used
end. Each worker keeps its own (``NEWSDESK_ANSWER_CACHE_BYTES``, 0 turns it off).
"""

import collections
import threading

from prometheus_client import Counter

#: The endpoints whose answers are kept.
CACHED_ENDPOINTS = frozenset({"search.Search", "feeds.AtomFeed", "feeds.RssFeed", "feeds.JsonFeed"})
#: What an entry costs besides its body (the key, the headers, the bookkeeping), roughly.
OVERHEAD = 512
LOOKUPS = Counter("newsdesk_answer_cache_total", "Answer cache lookups", ["result"])


class AnswerCache:
    """A least-recently-used map of key to ``(body, headers)``, bounded by ``max_bytes``."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.entries = collections.OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
        # Looked up here, in the worker: made before the fork, the child's count would be lost.
        LOOKUPS.labels("miss" if entry is None else "hit").inc()
        return entry

    def put(self, key, body, headers):
        cost = len(body) + OVERHEAD
        if cost > self.max_bytes // 8:  # no answer crowds out the rest
            return
        with self.lock:
            if key in self.entries:
                return
            self.entries[key] = (body, headers)
            self.size += cost
            while self.size > self.max_bytes:
                _, (old, _) = self.entries.popitem(last=False)
                self.size -= len(old) + OVERHEAD

