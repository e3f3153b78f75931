"""Writing articles: create, idempotent re-post, replace, partial update and delete.

A write has two stages. :func:`prepare` works on the input alone, outside any transaction:
it sanitizes the HTML and derives the plain text, excerpt and word count, the slow part, which
must never hold the write lock. :func:`store` then writes a batch of prepared inputs in one
transaction (see :func:`writing`) with a fixed number of statements however many articles,
tags and sources the batch holds, and keeps everything derived in step: the search index, the
cards (rendered by the article schema), the counts, the change log, the queue of articles
whose related lists need computing (which happens off the request, ``models.related``), and
the webhook events of what it changed (``models.webhooks``, sent by the worker).
"""

import collections
import contextlib
import dataclasses
import datetime
import logging
import string

from schemas.articles import ArticleInSchema

from . import cards, stories, webhooks
from .articles import PUBLISHED, Article, ArticleBody, ArticleTag, Source, Tag
from .base import (
    db,
    execute_many,
    insert_rows,
    is_postgres,
    locked,
    runs_again_on_conflict,
    utcnow,
    write_transaction,
)
from .changes import Change, DataVersion
from .embeddings import EmbeddingQueue
from .related import RelatedQueue
from .sanitize import clean_html, strip_control
from .search import index_rows, unindex_article
from .text import (
    make_excerpt,
    reading_time_minutes,
    sanitized_html_to_text,
    slugify,
    tag_name_key,
    tag_slug,
    text_to_html,
    word_count,
)

log = logging.getLogger(__name__)

#: The fields a client writes.
INPUT_FIELDS = tuple(ArticleInSchema().fields)
#: Input fields stored as they come, in the article column of the same name.
PLAIN_FIELDS = tuple(
    name
    for name in INPUT_FIELDS
    if name in Article._meta.fields
    and name not in ("source", "slug", "published_at", "excerpt", "language", "status")
)
#: The article columns a write sets from what the client sent, compared with what is stored to
#: tell an unchanged write (the source, body and tags are compared too).
COMPARED_FIELDS = (*PLAIN_FIELDS, "slug", "excerpt", "language", "status", "published_at")
#: What a full write (POST re-post, PUT) puts in place of the optional fields it leaves out
#: (not the identity fields: slug, published_at and external_id keep their stored value).
RESET_ON_REPLACE = {
    **{
        name: None
        for name in PLAIN_FIELDS
        if not ArticleInSchema().fields[name].required and name != "external_id"
    },
    "language": None,
    "excerpt": None,
    "tags": [],
    "status": PUBLISHED,
}
#: The fields of an article's body: either one, not empty, makes the other.
BODY_FIELDS = ("body_html", "body_text")
#: Past the last character of a slug ([a-z0-9-]): slugs starting with ``base`` sort below
#: ``base + SLUG_END``.
SLUG_END = "~"


class WriteError(Exception):
    """A write that cannot be done: ``status`` (404, 409 or 422) and ``errors`` per field."""

    def __init__(self, status, errors):
        super().__init__(errors)
        self.status = status
        self.errors = errors


@dataclasses.dataclass
class Prepared:
    """A validated input ready to store: ``data`` as the schema loaded it, with the body
    sanitized and what derives from it worked out (when the input has a body)."""

    data: dict
    body_html: str | None = None
    body_text: str | None = None
    excerpt: str | None = None
    words: int | None = None
    #: When the article last changed, where its source says so (an imported feed entry);
    #: otherwise the write's own time.
    updated_at: datetime.datetime | None = None
    #: An imported feed entry: it updates what the feed says of an article, never the status
    #: an editor gave it, nor an article changed since the entry last was (an older copy of
    #: the feed imported again, or an edit made here).
    from_feed: bool = False


def prepare(data, updated_at=None, from_feed=False, base=None):
    """Sanitize and derive what a write of ``data`` needs from its body, outside any
    transaction. Relative links of the body are made absolute against ``base`` (a feed
    entry's link), else the article's ``url``: its page at its publisher, which they were
    written relative to (shown anywhere else, in a feed or an app, they led nowhere)."""
    prepared = Prepared(data, updated_at=updated_at, from_feed=from_feed)
    if data.get("body_html"):
        prepared.body_html = clean_html(data["body_html"], base or data.get("url"))
        prepared.body_text = (
            strip_control(data["body_text"]).strip()
            if data.get("body_text")
            else sanitized_html_to_text(prepared.body_html)
        )
    elif data.get("body_text"):
        prepared.body_text = strip_control(data["body_text"]).strip()
        prepared.body_html = text_to_html(prepared.body_text)
    if prepared.body_text is not None:
        prepared.excerpt = make_excerpt(prepared.body_text)
        prepared.words = word_count(prepared.body_text)
    return prepared


@dataclasses.dataclass
class Write:
    """One article to store: ``prepared`` input, and the stored article it replaces (PUT,
    PATCH: ``article_id``) or None (POST: the article with the same (source, external_id), if
    any). ``check`` is called with the stored Article (None when there is none: a POST that
    creates) inside the transaction and may raise (an If-Match that no longer holds)."""

    prepared: Prepared
    article_id: int | None = None
    partial: bool = False
    check: object = None


@dataclasses.dataclass
class Saved:
    """What storing a write did: ``outcome`` is created, updated or unchanged; ``article`` is
    the stored Article with its card (and ``body_html``, ``body_text`` as stored)."""

    outcome: str
    article: Article
    body_html: str
    body_text: str


def changed(result):
    """Whether a result of :func:`store` changed what is stored (created or updated)."""
    return isinstance(result, Saved) and result.outcome != "unchanged"


class Touched:
    """What a transaction's writes changed, for the counts and queues kept in step at commit,
    and the webhook events they made (``events``, :class:`models.webhooks.Event`)."""

    def __init__(self, bulk=False):
        #: A bulk write (an import): the worker serves what it queues after single writes.
        self.bulk = bulk
        #: The differences article writes made to the counts of sources and tags: recounting
        #: every article of a tag at each batch of an import made the import slower the larger
        #: the database, and a recount (its own statement) could miss an article another
        #: write committed meanwhile, on PostgreSQL.
        self.articles = set()
        self.source_counts, self.tag_counts = collections.Counter(), collections.Counter()
        self.events = []
        #: Whether the transaction changed anything answers show: the data version behind
        #: ETags is raised at commit only then. A write that finds what it was asked to store
        #: stored already says not (every list's, feed's and search's ETag changed when an
        #: ingester re-posted unchanged items).
        self.changed = True

    def refresh(self):
        # In id order, so that concurrent writers lock rows in one order (PostgreSQL).
        now = utcnow()
        execute_many(
            'UPDATE "source" SET "article_count" = "article_count" + {0},'
            ' "version" = "version" + 1, "modified_at" = {0} WHERE "id" = {0}',
            [
                (change, now, source_id)
                for source_id, change in sorted(self.source_counts.items())
                if change
            ],
        )
        execute_many(
            'UPDATE "tag" SET "article_count" = "article_count" + {0} WHERE "id" = {0}',
            [(change, tag_id) for tag_id, change in sorted(self.tag_counts.items()) if change],
        )
        if self.articles:
            RelatedQueue.add(self.articles, bulk=self.bulk)


@contextlib.contextmanager
def writing(bulk=False):
    """One write transaction; before it commits, the counts of what it touched are brought up
    to date, the articles it wrote are queued for their related lists (after single writes'
    when ``bulk``), the data version behind ETags is raised, and the webhook events of its
    changes go to the outbox (after the version: see :func:`models.webhooks.record`)."""
    touched = Touched(bulk)
    with write_transaction():
        yield touched
        touched.refresh()
        if touched.changed or touched.events:
            webhooks.record(touched.events, DataVersion.bump(), bulk=touched.bulk)


def store(writes, touched):
    """Store ``writes`` (a batch); returns a :class:`Saved` or a :class:`WriteError` for each, in
    order. A write that fails leaves the others to be stored."""
    batch = _Batch(writes)
    return batch.run(touched)


class _Batch:
    """The statements of one :func:`store`: each step reads or writes for every write at once."""

    def __init__(self, writes):
        self.writes = list(writes)
        self.results = [None] * len(self.writes)
        self.sources = {}

    def run(self, touched):
        self._load_sources()
        self._load_stored()
        contents = self._merge()
        self._check_external_ids(contents)
        self._check_tags(contents)
        self._assign_slugs(contents)
        rows = self._rows(contents)
        if rows:
            self._write(rows, touched)
        return self.results

    def _fail(self, index, error):
        self.results[index] = error

    def _pending(self):
        return [i for i, result in enumerate(self.results) if result is None]

    def _load_sources(self):
        """The sources the writes name, and those of the articles they replace."""
        slugs = {w.prepared.data["source"] for w in self.writes if "source" in w.prepared.data}
        ids = {w.article_id for w in self.writes if w.article_id is not None}
        query = Source.select().where(Source.slug.in_(list(slugs)))
        if ids:
            query = query.orwhere(
                Source.id.in_(Article.select(Article.source).where(Article.id.in_(list(ids))))
            )
        self._add_sources(query)

    def _add_sources(self, query):
        # Locked: a source renamed meanwhile would leave its old name on the cards written here.
        sources = locked(query.order_by(Source.id), Source)
        self.sources.update((source.slug, source) for source in sources)
        self.sources_by_id = {source.id: source for source in self.sources.values()}

    def _load_stored(self):
        """The stored articles the writes replace, named by id or by (source, external_id),
        with their bodies and tags."""
        by_id = {w.article_id for w in self.writes if w.article_id is not None}
        keys = set()
        for index, write in enumerate(self.writes):
            data = write.prepared.data
            if write.article_id is None and "source" in data:
                source = self.sources.get(data["source"])
                if source is None:
                    self._fail(
                        index,
                        WriteError(422, {"source": [f"No source with slug {data['source']!r}."]}),
                    )
                elif data.get("external_id"):
                    keys.add((source.id, data["external_id"]))
        if keys:
            by_id |= set(_ids_by_key(keys).values())
        # Locked: the version and card written here are computed from what is read here.
        query = Article.select().where(Article.id.in_(list(by_id))).order_by(Article.id)
        stored = list(locked(query, Article)) if by_id else []
        moved = {article.source_id for article in stored} - set(self.sources_by_id)
        if moved:  # moved to another source since the sources were read (locked after the
            # article, out of order: a deadlock this may meet ends the write, run again)
            self._add_sources(Source.select().where(Source.id.in_(list(moved))))
        self.stored = {article.id: article for article in stored}
        self.stored_by_key = {(a.source_id, a.external_id): a for a in stored if a.external_id}
        ids = list(self.stored)
        self.stored_bodies = (
            {
                body.article_id: body
                for body in ArticleBody.select().where(ArticleBody.article.in_(ids))
            }
            if ids
            else {}
        )
        self.stored_tags = {article_id: [] for article_id in ids}
        if ids:
            query = (
                ArticleTag.select(ArticleTag.article, ArticleTag.tag, Tag.slug)
                .join(Tag)
                .where(ArticleTag.article.in_(ids))
                .order_by(Tag.slug)
                .tuples()
            )
            for article_id, tag_id, slug in query:
                self.stored_tags[article_id].append((tag_id, slug))

    def _check_tags(self, contents):
        """Fail a write that names a tag by a name its slug shares with another tag's ("C#"
        where "C++" is the tag ``c``; "中国 2031" where "Россия 2031" is ``2031``): the slug
        would tag it with the other. Names that differ only in case, accents, separators and
        such marks as a leading ``#`` name one tag (:func:`models.text.tag_name_key`); a name
        that is the slug always does, and so does a tag the article has already."""
        #: Each write's tags as ``(name, slug)`` (what :meth:`_rows` stores), and those
        #: checked here as ``(position, name, slug)``.
        self.tag_slugs, self.sent_tags = {}, {}
        for index, (article, content) in contents.items():
            tags = [(name, tag_slug(name)) for name in content.get("tags") or []]
            has = {slug for _, slug in self.stored_tags.get(article.id, [])} if article else set()
            self.tag_slugs[index] = tags
            self.sent_tags[index] = [
                (position, name, slug)
                for position, (name, slug) in enumerate(tags)
                if slug != name and slug not in has
            ]
        slugs = {slug for names in self.sent_tags.values() for *_, slug in names}
        names = (  # none to read when every name is its slug: a write's usual tags
            dict(Tag.select(Tag.slug, Tag.name).where(Tag.slug.in_(list(slugs))).tuples())
            if slugs
            else {}
        )
        for index, sent in self.sent_tags.items():
            first = {}  # a tag not stored yet is named by its first name
            for _, name, slug in sent:
                first.setdefault(slug, names.get(slug, name))
            errors = _clashes(sent, first.__getitem__)
            if errors:
                self._fail(index, WriteError(422, errors))
                del contents[index]
            else:  # the batch's later writes see the names of its earlier ones
                names.update((slug, name) for _, name, slug in sent if slug not in names)

    def _tags_taken_meanwhile(self, rows, stored_tags):
        """``rows`` less those that name a tag by a name another write gave its slug between
        :meth:`_check_tags` and the tags' insert (PostgreSQL: the insert waited for it)."""
        kept = []
        for row in rows:
            errors = _clashes(self.sent_tags.get(row[0], []), lambda s: stored_tags[s].name)
            if errors:
                self._fail(row[0], WriteError(422, errors))
            else:
                kept.append(row)
        return kept

    def _own_excerpt(self, article):
        """Whether the stored ``article``'s excerpt is one its client wrote, not the one derived
        from its body (a PATCH of the body alone keeps it)."""
        body = self.stored_bodies.get(article.id)
        derived = make_excerpt(body.body_text if body else "")
        return bool(article.excerpt) and article.excerpt != derived

    def _stored_slugs(self, article_id):
        """The slugs of a stored article's tags, in slug order."""
        return [slug for _, slug in self.stored_tags[article_id]]

    def _stored_content(self, article):
        """What a client sent for a stored ``article``, as stored (what a partial update keeps)."""
        body = self.stored_bodies.get(article.id)
        return {
            **{name: getattr(article, name) for name in PLAIN_FIELDS},
            "source": self.sources_by_id[article.source_id].slug,
            "body_html": body.body_html if body else "",
            "body_text": body.body_text if body else "",
            "published_at": article.published_at,
            "language": article.language,
            "tags": self._stored_slugs(article.id),
            "excerpt": article.excerpt,
            "slug": article.slug,
            "status": article.status,
        }

    def _target(self, index, write):
        """The stored article ``write`` replaces, or None for a new one."""
        if write.article_id is not None:
            article = self.stored.get(write.article_id)
            if article is None:
                self._fail(index, WriteError(404, {"id": ["The article no longer exists."]}))
            return article
        data = write.prepared.data
        source = self.sources.get(data.get("source"))
        if source is not None and data.get("external_id"):
            return self.stored_by_key.get((source.id, data["external_id"]))
        return None

    def _merge(self):
        """Each pending write's full content: what it sends over what is stored."""
        contents = {}
        for index in self._pending():
            write = self.writes[index]
            prepared, data = write.prepared, write.prepared.data
            article = self._target(index, write)
            if self.results[index] is not None:
                continue
            if write.check is not None:
                try:
                    write.check(article)
                except WriteError as error:
                    self._fail(index, error)
                    continue
            partial = write.partial and write.article_id is not None
            if article is None:
                content = {
                    "slug": None,
                    "published_at": None,
                    "external_id": None,
                    **RESET_ON_REPLACE,
                }
            else:
                content = self._stored_content(article)
                if not partial:
                    content.update(RESET_ON_REPLACE)
            content.update(data)
            if prepared.body_text is not None:
                content["body_html"], content["body_text"] = prepared.body_html, prepared.body_text
                if "excerpt" not in data and not (partial and self._own_excerpt(article)):
                    content["excerpt"] = None  # derived from the new body
            # A body field sent empty (a PATCH of "body_html": "") changes no body: refused,
            # as a write with no body at all is.
            empty = [name for name in BODY_FIELDS if name in data and not prepared.body_text]
            if not content.get("body_text") or empty:
                message = "The article needs a non-empty body_html or body_text."
                self._fail(
                    index, WriteError(422, {key: [message] for key in empty or ["body_text"]})
                )
                continue
            if content["source"] not in self.sources:
                self._fail(
                    index,
                    WriteError(422, {"source": [f"No source with slug {content['source']!r}."]}),
                )
                continue
            contents[index] = (article, content)
        return contents

    def _check_external_ids(self, contents):
        """A stored article given an external id (or a source) that makes its (source,
        external_id) another's: 409 naming ``external_id`` (a new article with that pair
        updates the other instead, and so never conflicts)."""
        moved = {
            index: key
            for index, (article, content) in contents.items()
            if article is not None
            and content.get("external_id")
            and (key := (self.sources[content["source"]].id, content["external_id"]))
            != (article.source_id, article.external_id)
        }
        if not moved:
            return
        holders = _ids_by_key(set(moved.values()))
        for index, key in moved.items():
            holder = holders.get(key)
            if holder is not None and holder != contents[index][0].id:
                message = f"External id {key[1]!r} is used by another article of this source."
                self._fail(index, WriteError(409, {"external_id": [message]}))
                del contents[index]

    def _assign_slugs(self, contents):
        """Check the slugs the writes ask for, and derive the others from titles (unique)."""
        asked = {
            c["slug"]: i
            for i, (a, c) in contents.items()
            if c.get("slug") and "slug" in self.writes[i].prepared.data
        }
        taken = {}
        if asked:
            for article_id, slug in (
                Article.select(Article.id, Article.slug)
                .where(Article.slug.in_(list(asked)))
                .tuples()
            ):
                taken[slug] = article_id
        bases = {}
        for index, (_, content) in contents.items():
            if not content.get("slug"):
                base = slugify(content["title"]) or "article"
                if base.isdigit():
                    base = "a-" + base  # an all-digit slug would read as an id
                bases[index] = base
        if bases:
            if is_postgres():
                # Writers deriving the same slug take turns: each sees the slugs the others
                # committed. Locks taken in one order (sorted) never deadlock.
                db.execute_sql(
                    "SELECT pg_advisory_xact_lock(hashtext(base)) FROM unnest(%s::text[]) AS base",
                    (sorted(set(bases.values())),),
                )
            # One flat condition written out: peewee spent longer building this statement,
            # a range per base, than the database took to run it.
            unique = sorted(set(bases.values()))
            mark = db.obj.param
            # In byte order (an index of it on PostgreSQL: migration 15): a collation that
            # ignores punctuation would sort "base-2" after "base~".
            slug = '"slug" COLLATE "C"' if is_postgres() else '"slug"'
            near = " OR ".join([f"({slug} >= {mark} AND {slug} < {mark})"] * len(unique))
            params = [value for base in unique for value in (base, base + SLUG_END)]
            for article_id, slug in db.execute_sql(
                f'SELECT "id", "slug" FROM "article" WHERE {near}', params
            ):
                taken[slug] = article_id
        for index, (article, content) in list(contents.items()):
            # A new article is told apart from the batch's other new ones by its index: two
            # of them deriving the same slug get different ones.
            own = ("new", index) if article is None else article.id
            if index not in bases:
                holder = taken.get(content["slug"])
                if holder is not None and holder != own:
                    self._fail(
                        index,
                        WriteError(
                            409, {"slug": [f"Slug {content['slug']!r} is used by another article."]}
                        ),
                    )
                    del contents[index]
                    continue
                taken[content["slug"]] = own
                continue
            base = bases[index]
            slug, number = base, 2
            while taken.get(slug, own) != own:
                slug, number = f"{base}-{number}", number + 1
            content["slug"] = slug
            taken[slug] = own

    def _rows(self, contents):
        """The article rows to insert or update; unchanged re-posts answered at once."""
        now = self.now = utcnow()
        rows = []
        for index, (article, content) in contents.items():
            content["published_at"] = content.get("published_at") or now
            body = (content["body_html"], content["body_text"])
            prepared = self.writes[index].prepared
            words = (
                prepared.words if prepared.words is not None else word_count(content["body_text"])
            )
            source = self.sources[content["source"]]
            row = {
                **{name: content.get(name) for name in PLAIN_FIELDS},
                "slug": content["slug"],
                "source": source.id,
                "excerpt": content.get("excerpt")
                or prepared.excerpt
                or make_excerpt(content["body_text"]),
                "language": content.get("language") or source.language,
                "status": content.get("status") or PUBLISHED,
                "published_at": content["published_at"],
                "word_count": words,
                "reading_time_minutes": reading_time_minutes(words),
                "updated_at": prepared.updated_at or now,
                "modified_at": now,
                "content_hash": "",  # see Article.content_hash
            }
            tags = {}
            for name, slug in self.tag_slugs[index]:
                # A slug's name: its words, each with a capital (not after a digit: "G7 summit",
                # not str.title's "G7Summit").
                tags.setdefault(
                    slug, name if slug != name else string.capwords(slug, "-").replace("-", " ")
                )
            if article is not None and prepared.from_feed:
                row["status"] = article.status
                if prepared.updated_at is not None and prepared.updated_at < article.updated_at:
                    stored = self._stored_content(article)
                    self.results[index] = Saved(
                        "unchanged", article, stored["body_html"], stored["body_text"]
                    )
                    continue
            if article is not None and self._unchanged(article, row, body, tags):
                self.results[index] = Saved("unchanged", article, *body)
                continue
            rows.append((index, article, row, body, tags))
        return rows

    def _unchanged(self, article, row, body, tags):
        """Whether storing ``row``, ``body`` and ``tags`` over the stored ``article`` would
        change nothing that is stored (a re-post, a PUT or PATCH of what is there)."""
        stored = self._stored_content(article)
        return (
            all(stored[name] == row[name] for name in COMPARED_FIELDS)
            and article.source_id == row["source"]
            and (stored["body_html"], stored["body_text"]) == body
            and sorted(stored["tags"]) == sorted(tags)
        )

    def _write(self, rows, touched):
        wanted = {}  # a tag new to the batch is named as the first write that names it names it
        for *_, tags in rows:
            for slug, name in tags.items():
                wanted.setdefault(slug, name)
        stored_tags = self._tags(wanted)
        rows = self._tags_taken_meanwhile(rows, stored_tags)
        if not rows:
            return
        tag_ids = {slug: tag.id for slug, tag in stored_tags.items()}
        new = [(index, row) for index, article, row, _, _ in rows if article is None]
        # Ids drawn first: each new article is inserted once, card and all, below (an UPDATE
        # of each card cost as much as the inserts on PostgreSQL).
        ids = dict(zip([index for index, _ in new], _next_ids(Article, len(new)), strict=True))
        saved, links, index_rows_ = [], [], []
        for index, article, row, body, tags in rows:
            if article is None:
                model = Article(
                    id=ids[index], version=1, comment_count=0, created_at=self.now, **row
                )
            else:
                model = Article(
                    id=article.id,
                    version=article.version + 1,
                    comment_count=article.comment_count,
                    created_at=article.created_at,
                    # An article not published is in no story.
                    story=article.story_id if row["status"] == PUBLISHED else None,
                    duplicate_of=article.duplicate_of_id,
                    **row,
                )
                if article.status == PUBLISHED:
                    touched.source_counts[article.source_id] -= 1
                    touched.tag_counts.update(
                        {tag_id: -1 for tag_id, _ in self.stored_tags[article.id]}
                    )
            model.source = self.sources_by_id[row["source"]]
            model.tag_list = [stored_tags[slug] for slug in sorted(tags)]
            model.card = cards.render(model)
            if article is not None:
                values = {**row, "version": model.version, "card": model.card}
                values["story"] = model.story_id
                Article.update(values).where(Article.id == article.id).execute()
            links += [
                {"article": model.id, "tag": tag_ids[slug], "published_at": row["published_at"]}
                for slug in tags
            ]
            index_rows_.append(
                (model.id, row["title"], row["excerpt"], body[1], row["published_at"])
            )
            if row["status"] == PUBLISHED:
                touched.source_counts[row["source"]] += 1
                touched.tag_counts.update({tag_ids[slug]: 1 for slug in tags})
            touched.articles.add(model.id)
            saved.append((index, model, body, article))
        created = [(index, model) for index, model, _, article in saved if article is None]
        row_of = dict(new)
        insert_rows(
            Article,
            [
                {**row_of[index], "id": model.id, "created_at": self.now, "card": model.card}
                for index, model in created
            ],
        )
        insert_rows(
            ArticleBody,
            [
                {"article": model.id, "body_html": body[0], "body_text": body[1]}
                for _, model, body, _ in saved
            ],
            ' ON CONFLICT ("article_id") DO UPDATE SET "body_html" = excluded."body_html",'
            ' "body_text" = excluded."body_text"',
        )
        replaced = [article.id for *_, article in saved if article is not None]
        if replaced:
            ArticleTag.delete().where(ArticleTag.article.in_(replaced)).execute()
        insert_rows(ArticleTag, links)
        index_rows(index_rows_, replaced)
        self._queue_embeddings(saved, touched.bulk)
        left = [
            article.story_id
            for _, model, _, article in saved
            if article is not None and article.story_id is not None and model.story_id is None
        ]
        if left:  # the stories an unpublished article left show it no more, from now on
            cards.publish(sorted(stories.refresh_stories(left)))
        changes, reported = [], []
        for index, model, body, article in saved:
            was_published = article is not None and article.status == PUBLISHED
            before = None
            if was_published:  # an endpoint filtered on what it leaves hears of it
                before = (article.source_id, self._stored_slugs(article.id))
            if model.status == PUBLISHED:
                changes.append((model.id, "upsert", None))
                reported.append((model, body, was_published, before))
            elif was_published:
                changes.append((model.id, "delete", "unpublished"))
                reported.append((model, None, True, before))
            self.results[index] = Saved("created" if article is None else "updated", model, *body)
        change_ids = Change.record_many(changes, new=[model.id for _, model in created])
        for model, body, was_published, before in reported:
            change_id = change_ids[model.id]
            if body is None:
                tags = [tag.slug for tag in model.tag_list]
                touched.events.append(
                    webhooks.article_gone(
                        model.id, "unpublished", model.source_id, tags, change_id, before
                    )
                )
            else:
                touched.events.append(
                    webhooks.article_written(model, body, change_id, was_published, before)
                )

    def _queue_embeddings(self, saved, bulk):
        """Queue for the worker's embedding (and story placing) the articles that are new or
        whose title, excerpt, body or status changed, or what their story shows of them and
        places them by (time, language, source): one statement, or none."""
        due = []
        for _, model, body, article in saved:
            before = self.stored_bodies.get(article.id) if article is not None else None
            if article is None or (
                (article.title, article.excerpt, article.status)
                != (model.title, model.excerpt, model.status)
                or (before.body_text if before else "") != body[1]
                or (article.published_at, article.language, article.source_id)
                != (model.published_at, model.language, model.source_id)
            ):
                due.append(model.id)
        if due:
            EmbeddingQueue.add(due, bulk=bulk)

    @staticmethod
    def _tags(wanted):
        """The tags ``wanted`` (slug -> name) as stored, by slug, creating those not seen
        before (a tag seen before keeps its name)."""
        if not wanted:
            return {}
        stored = _stored_tags(list(wanted))
        if new := sorted(set(wanted) - set(stored)):
            # In slug order: two writers adding the same new tags wait for each other in one
            # order (on PostgreSQL, in opposite orders each would wait for the other's: a
            # deadlock). A tag another writer added meanwhile is left as it is.
            Tag.insert_many(
                [{"slug": s, "name": wanted[s]} for s in new]
            ).on_conflict_ignore().execute()
            stored.update(_stored_tags(new))
        return stored


def _stored_tags(slugs):
    """The stored tags of ``slugs``, by slug."""
    query = Tag.select(Tag.id, Tag.slug, Tag.name).where(Tag.slug.in_(slugs))
    return {tag.slug: tag for tag in query}


def _next_ids(model, count):
    """``count`` new ids for ``model``'s key, in ascending order, in a write transaction: from
    the key's sequence on PostgreSQL; on SQLite, those after the largest id the table ever had
    (as AUTOINCREMENT gives them: ``sqlite_sequence``, or the largest stored id), which no one
    else takes while the transaction holds the write lock."""
    if not count:
        return []
    table = model._meta.table_name
    if not is_postgres():
        (last,) = db.execute_sql(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0),"
            f' COALESCE((SELECT MAX("id") FROM "{table}"), 0))',
            (table,),
        ).fetchone()
        return list(range(last + 1, last + 1 + count))
    cursor = db.execute_sql(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        (f'"{table}"', count),
    )
    return sorted(value for (value,) in cursor)


def _clashes(sent, name_of):
    """The errors of ``sent`` tags (``(position, name, slug)``) whose name is not one of the
    tag's whose name ``name_of(slug)`` gives, by field."""
    errors = {}
    for position, name, slug in sent:
        other = name_of(slug)
        if other != slug and tag_name_key(name) != tag_name_key(other):
            errors[f"tags.{position}"] = [
                f"Its slug would be {slug!r}, the tag {other!r}: give {slug!r} to use that tag,"
                " or a name that makes another slug."
            ]
    return errors


def _ids_by_key(keys):
    """``{(source_id, external_id): article id}`` of the stored articles with those ``keys``."""
    # A flat OR of pairs, each found through the unique (source, external_id) index: SQLite
    # planned the row-value IN as a scan of the source's every article.
    keys = sorted(keys)
    mark = db.obj.param
    pairs = " OR ".join([f'("source_id" = {mark} AND "external_id" = {mark})'] * len(keys))
    params = [value for key in keys for value in key]
    sql = f'SELECT "source_id", "external_id", "id" FROM "article" WHERE {pairs}'
    return {
        (source_id, external_id): i for source_id, external_id, i in db.execute_sql(sql, params)
    }


def save(data, article_id=None, partial=False, check=None):
    """Store one article from validated input in a transaction of its own (run again when it
    lost a race to a concurrent writer); returns :class:`Saved` or raises :class:`WriteError`."""
    base = None
    if partial and data.get("body_html") and "url" not in data:  # the stored article's
        base = Article.select(Article.url).where(Article.id == article_id).scalar()
    return _store_one(Write(prepare(data, base=base), article_id, partial, check))


@runs_again_on_conflict
def _store_one(write):
    with writing() as touched:
        (result,) = store([write], touched)
        if isinstance(result, WriteError):
            raise result  # and the transaction is rolled back
        touched.changed = changed(result)
        return result


def delete_article(article, touched):
    """Delete an article (its body, tags, relations and comments go with it); leave a tombstone
    and, when it was published, report it deleted."""
    tags = dict(
        ArticleTag.select(ArticleTag.tag, Tag.slug)
        .join(Tag)
        .where(ArticleTag.article == article.id)
        .tuples()
    )
    if article.status == PUBLISHED:  # counted no more
        touched.source_counts[article.source_id] -= 1
        touched.tag_counts.update({tag_id: -1 for tag_id in tags})
    copies = stories.copies_of(article.id)
    Article.delete().where(Article.id == article.id).execute()
    unindex_article(article.id)
    if copies:  # unmarked by the database (ON DELETE SET NULL)
        stories.hand_over(copies)
    if article.story_id is not None:
        cards.publish(sorted(stories.refresh_stories([article.story_id])))
    if article.status == PUBLISHED:
        change_ids = Change.record_many([(article.id, "delete", "deleted")])
        touched.events.append(
            webhooks.article_gone(
                article.id, "deleted", article.source_id, tags.values(), change_ids[article.id]
            )
        )


@runs_again_on_conflict
def delete(article_id, check=None):
    """Delete the article ``article_id`` in a transaction of its own (run again when it lost a
    race to a concurrent writer); ``check`` as for :class:`Write`. Raises WriteError(404) when
    it is gone already."""
    with writing() as touched:
        # Locked as a write locks them: its source first, then it.
        of_article = Article.select(Article.source).where(Article.id == article_id)
        list(locked(Source.select(Source.id).where(Source.id.in_(of_article)), Source))
        query = Article.select().where(Article.id == article_id)
        article = locked(query, Article, deleting=True).first()
        if article is None:
            raise WriteError(404, {"id": ["The article no longer exists."]})
        if check is not None:
            check(article)
        delete_article(article, touched)
