"""Embeddings, vector search, story clusters, related articles by meaning, answers and key
points, with the deterministic hashed embedder, on SQLite, PostgreSQL and PostgreSQL with
pgvector (each where configured)."""

import collections
import datetime

import numpy as np
import pytest
from werkzeug.http import http_date, parse_date

from api import tasks
from api.demo import load_demo
from models import (
    Article,
    ArticleEmbedding,
    DataVersion,
    EmbeddingQueue,
    Relation,
    SentenceEmbedding,
    Story,
    connected,
    db,
    embeddings,
    related,
    stories,
)

from .conftest import BASE_TIME, VECTOR_BACKENDS, backend_url, with_vector_index

#: Every backend, and PostgreSQL with its pgvector table made as ``db init`` makes it.
database_url = pytest.fixture(params=VECTOR_BACKENDS, name="database_url")(backend_url)
app = pytest.fixture(name="app")(with_vector_index)


STORY = [
    (
        "Riverton harbour bridge collapses at rush hour",
        "The Riverton harbour bridge collapsed on Monday at rush hour; 4,200 commuters were "
        "stranded and divers searched the river under the harbour bridge.",
    ),
    (
        "Divers search river after Riverton harbour bridge collapses",
        "Divers searched the river after the Riverton harbour bridge collapsed at rush hour, "
        "leaving 4,200 commuters stranded on Monday.",
    ),
    (
        "Riverton harbour bridge collapse strands 4,200 commuters",
        "Commuters, 4,200 of them, were stranded when the Riverton harbour bridge collapsed at "
        "rush hour on Monday; divers searched the river.",
    ),
]
OTHER = (
    "Orchard growers expect a record apple harvest",
    "Apple growers in the valley expect a record harvest this autumn and hired extra pickers.",
)
#: Shares a few words with STORY (by words, below its tellings).
FERRY = (
    "Riverton harbour ferry timetable changes",
    "The Riverton harbour ferry runs to a new timetable from Monday.",
)


def post(client, writer, source, title, body, hours=0, **extra):
    response = client.post(
        "/v1/articles",
        json={
            "source": source.slug,
            "title": title,
            "body_text": body,
            "published_at": (BASE_TIME + datetime.timedelta(hours=hours)).isoformat() + "Z",
            **extra,
        },
        headers=writer,
    )
    assert response.status_code == 201, response.json
    return response.json


def in_db(function):
    with db.connection_context():
        return function()


@pytest.fixture
def story_articles(client, writer, source):
    """Three articles about one story and one about something else, written through the API
    (the worker runs at once in tests)."""
    posted = [post(client, writer, source, t, b, hours=n) for n, (t, b) in enumerate(STORY)]
    other = post(client, writer, source, *OTHER, hours=5)
    return posted, other


# --- the embedders ------------------------------------------------------------------------


def test_the_hashed_embedder_is_deterministic_and_normalised():
    model = embeddings.HashedNgrams()
    first = model.embed(["Harbour bridge collapses", "Apple harvest", ""])
    again = model.embed(["Harbour bridge collapses", "Apple harvest", ""])
    assert first.dtype == np.float32 and first.shape == (3, model.dimensions)
    assert np.array_equal(first, again)
    assert np.allclose(np.linalg.norm(first[:2], axis=1), 1.0) and not first[2].any()
    near = model.embed(["Harbour bridge collapsed"])[0]
    assert near @ first[0] > 0.6 > near @ first[1]


def test_anchors_read_figures_alike_in_every_language():
    assert embeddings.anchors("36,870 runners; 36.870 Läufer; 36 870 coureurs") == "36870"
    assert embeddings.anchors("In 2026, 7 of 12 and 25% (15 %)") == "12 15 25"


# --- embedding in the background ----------------------------------------------------------


def test_a_written_article_is_embedded_by_the_worker(client, writer, source):
    article = post(client, writer, source, *OTHER)
    row = in_db(lambda: ArticleEmbedding.get_by_id(article["id"]))
    assert row.model == embeddings.HashedNgrams.name
    text = embeddings.article_text(article["title"], article["excerpt"])
    assert np.array_equal(embeddings.from_blob(row.vector), embeddings.embedder().embed([text])[0])
    assert in_db(lambda: EmbeddingQueue.select().count()) == 0


def test_a_write_queues_embedding_in_its_transaction(client, writer, source, monkeypatch):
    monkeypatch.setattr(tasks.huey, "immediate", False)  # the worker does not run
    article = post(client, writer, source, *OTHER)
    assert in_db(lambda: [q.article_id for q in EmbeddingQueue.select()]) == [article["id"]]
    assert not in_db(lambda: ArticleEmbedding.select().exists())


@pytest.mark.parametrize(
    ("change", "embedded_again"),
    [
        ({"title": "Pickers arrive for the record apple harvest"}, True),
        ({"excerpt": "A new lead."}, True),
        ({"body_text": "Another body entirely, about pears."}, True),
        ({"status": "draft"}, False),
        ({"tags": ["farming"]}, False),
    ],
)
def test_only_a_change_of_text_embeds_again(client, writer, source, change, embedded_again):
    article = post(client, writer, source, *OTHER)
    calls = []
    model = embeddings.embedder()
    original = model.embed

    def counting(texts):
        calls.append(list(texts))
        return original(texts)

    model.embed = counting
    try:
        path = f"/v1/articles/{article['id']}"
        assert client.patch(path, json=change, headers=writer).status_code == 200
    finally:
        del model.embed
    assert bool(calls) is embedded_again
    assert in_db(lambda: EmbeddingQueue.select().count()) == 0


def test_newsdesk_embed_embeds_what_is_due(client, writer, source, database_url, monkeypatch):
    from click.testing import CliRunner

    from api.cli import main

    monkeypatch.setattr(tasks.huey, "immediate", False)
    ids = [post(client, writer, source, t, b, hours=n)["id"] for n, (t, b) in enumerate(STORY)]
    monkeypatch.undo()
    env = {"NEWSDESK_DATABASE_URL": database_url, "NEWSDESK_EMBEDDER": "hashed"}
    result = CliRunner().invoke(main, ["embed"], env=env)
    assert result.exit_code == 0, result.output
    assert "embedded 3 articles with hashed-trigrams-256" in result.output
    assert sorted(in_db(lambda: [r.article_id for r in ArticleEmbedding.select()])) == ids
    assert in_db(lambda: EmbeddingQueue.select().count()) == 0
    assert len({in_db(lambda i=i: Article.get_by_id(i).story_id) for i in ids}) == 1
    again = CliRunner().invoke(main, ["embed"], env=env)
    assert "embedded 0 articles" in again.output
    everything = CliRunner().invoke(main, ["embed", "--all"], env=env)
    assert "embedded 3 articles" in everything.output


# --- nearest neighbours -------------------------------------------------------------------


def test_nearest_finds_the_closest_articles_under_filters(client, writer, source, make_source):
    other_source = make_source(slug="gazette", language="de")
    posted = [post(client, writer, source, t, b, hours=n) for n, (t, b) in enumerate(STORY)]
    german = post(client, writer, other_source, *STORY[0], hours=4, language="de")
    apple = post(client, writer, source, *OTHER, hours=5)
    query = embeddings.embed_query("Riverton harbour bridge collapses")

    def nearest(limit=10, **filters):
        return in_db(lambda: embeddings.nearest(query, limit, **filters))

    found = nearest()
    assert [i for i, _ in found][:1] in ([posted[0]["id"]], [german["id"]])
    assert {i for i, _ in found} == {*(a["id"] for a in posted), german["id"], apple["id"]}
    scores = [s for _, s in found]
    assert scores == sorted(scores, reverse=True) and scores[-1] < 0.5 < scores[0] <= 1.0001
    assert nearest(languages=["de"]) == [(german["id"], pytest.approx(found[0][1], abs=1e-5))]
    assert [i for i, _ in nearest(sources=["gazette"], limit=3)] == [german["id"]]
    # The first two are the same text (one German copy): tied, in either order.
    assert {i for i, _ in nearest(limit=2)} == {i for i, _ in found[:2]}
    assert apple["id"] not in {
        i for i, _ in nearest(published_before=BASE_TIME + datetime.timedelta(hours=5))
    }
    excluded = in_db(lambda: embeddings.nearest(query, 10, exclude=[posted[0]["id"]]))
    assert posted[0]["id"] not in {i for i, _ in excluded}


def test_nearest_leaves_out_drafts_and_deleted_articles(client, writer, source):
    posted = [post(client, writer, source, t, b, hours=n) for n, (t, b) in enumerate(STORY)]
    query = embeddings.embed_query(STORY[0][0])
    assert len(in_db(lambda: embeddings.nearest(query, 10))) == 3
    client.patch(f"/v1/articles/{posted[0]['id']}", json={"status": "draft"}, headers=writer)
    assert client.delete(f"/v1/articles/{posted[1]['id']}", headers=writer).status_code == 204
    assert [i for i, _ in in_db(lambda: embeddings.nearest(query, 10))] == [posted[2]["id"]]


def test_the_numpy_index_reads_only_what_changed(client, writer, source):
    first = post(client, writer, source, *STORY[0])
    index = embeddings.VectorIndex()
    in_db(index.refresh)
    assert index.size == 1
    version = index.version
    in_db(index.refresh)
    assert index.version == version  # nothing written: nothing read
    second = post(client, writer, source, *STORY[1], hours=1)
    in_db(index.refresh)
    assert index.size == 2 and set(index.ids[:2].tolist()) == {first["id"], second["id"]}
    client.patch(f"/v1/articles/{first['id']}", json={"status": "draft"}, headers=writer)
    in_db(index.refresh)
    assert index.live[:2].tolist() == [False, True]


def test_the_numpy_index_reads_what_a_feed_changed_at_an_older_time(app, database_url, tmp_path):
    """A feed's entry keeps the time the feed gives as its ``updated_at``, often long past: the
    index still learns what the import changed (here its published time)."""
    from click.testing import CliRunner

    from api.cli import main

    feed = tmp_path / "valley.atom"

    def import_feed(published):
        feed.write_text(
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>Valley Times</title>'
            '<link href="https://valley.example/"/>'
            "<entry><title>Bridge opens</title><id>urn:valley:1</id>"
            '<link href="https://valley.example/1"/>'
            f"<published>{published}</published><updated>2026-11-05T10:00:00Z</updated>"
            "<content>The bridge over the valley opened to traffic.</content></entry></feed>"
        )
        env = {"NEWSDESK_DATABASE_URL": database_url}
        result = CliRunner().invoke(main, ["import", str(feed)], env=env)
        assert result.exit_code == 0, result.output

    import_feed("2026-11-05T09:00:00Z")
    [article_id] = in_db(lambda: [a.id for a in Article.select(Article.id)])
    in_db(lambda: embeddings.embed_articles([article_id]))
    embedded_long_ago = datetime.datetime(2026, 11, 5, 11)  # not read again at each refresh
    in_db(lambda: ArticleEmbedding.update(embedded_at=embedded_long_ago).execute())
    index = embeddings.VectorIndex()
    in_db(index.refresh)
    slot = index.slots[article_id]
    import_feed("2026-11-05T08:00:00Z")
    in_db(index.refresh)
    moment = datetime.datetime(2026, 11, 5, 8, tzinfo=datetime.UTC)
    assert index.published[slot] == moment.timestamp() * 1_000_000  # microseconds


def test_the_numpy_index_narrows_by_codes_without_losing_the_nearest():
    """With more vectors than it scores exactly, the index first keeps those whose codes are
    nearest the query's (ties included); the nearest vectors survive that, in score order,
    and drafts and articles outside the time window never come back."""
    rng = np.random.default_rng(11)
    # 250 topics of 20 articles each: an article's nearest are those of its topic.
    topics = rng.normal(size=(250, 64))
    stored = np.repeat(topics, 20, axis=0) + rng.normal(scale=0.3, size=(5000, 64))
    stored = (stored / np.linalg.norm(stored, axis=1, keepdims=True)).astype(np.float32)
    index = embeddings.VectorIndex()
    for n, vector in enumerate(stored):
        status = "draft" if n % 10 == 0 else "published"
        index._put(n + 1, vector, BASE_TIME + datetime.timedelta(hours=n), status, "en", 1)
    for n in range(1, 400, 7):
        query = stored[n] + rng.normal(scale=0.05, size=64).astype(np.float32)
        query /= np.linalg.norm(query)
        slots, scores = index.candidates(query, 10)
        exact = [s for s in np.argsort(-(stored @ query)) if s % 10][:10]
        assert list(slots) == exact
        assert list(scores) == sorted(scores, reverse=True)
    after = BASE_TIME + datetime.timedelta(hours=1000)
    slots, _ = index.candidates(stored[42], 10, after=after)
    assert len(slots) == 10 and all(s >= 1000 and s % 10 for s in slots)


def test_the_index_counts_the_distance_to_every_code_of_every_block(monkeypatch):
    """The Hamming distances numkong counts over the packed blocks of codes are those of
    every bit, in slot order: over several blocks and a last one part full, with dimensions
    that fill no whole byte, and after writes a block's packing does not hold yet (a search
    while the index refreshes) as after it is packed again."""
    monkeypatch.setattr(embeddings, "CODE_BLOCK", 100)
    rng = np.random.default_rng(3)
    stored = rng.normal(size=(1050, 100)).astype(np.float32)
    index = embeddings.VectorIndex()

    def put(slots):
        for slot in slots:
            index._put(slot + 1, stored[slot], BASE_TIME, "published", "en", 1)

    def by_every_bit(query):
        signs = (stored > 0) != (query > 0)
        return signs.sum(axis=1)

    put(range(1050))
    index._pack()
    query = rng.normal(size=100).astype(np.float32)
    code = embeddings._code(query)
    assert np.array_equal(index._distances(code, 1050), by_every_bit(query))
    stored[[5, 420, 1049]] = rng.normal(size=(3, 100))
    put([5, 420, 1049])
    assert np.array_equal(index._distances(code, 1050), by_every_bit(query))
    index._pack()
    assert np.array_equal(index._distances(code, 1050), by_every_bit(query))
    assert index._packed(0, 1050) is index.packed[0]  # kept, not packed again
    # A search that read the size before a refresh grew the last block (its packing wider)
    assert np.array_equal(index._distances(code, 1020), by_every_bit(query)[:1020])


def test_the_nearest_codes_are_those_counting_every_distance_finds():
    """The index counts a sample of the distances first and then only those below a guess:
    the codes it keeps are exactly those within the distance that reaches ``wanted`` (ties
    included), where the guess holds them (the nearest codes all between sampled slots), where
    it holds too few (the nearest all sampled, fewer than ``wanted``), and where it holds most
    codes (few live ones, the others at a distance past any code's)."""
    rng = np.random.default_rng(5)

    def by_counting_all(distance, wanted):
        within = np.searchsorted(np.cumsum(np.bincount(distance)), wanted)
        return np.flatnonzero(distance <= within)

    step = embeddings.SAMPLE_STEP
    spread = rng.binomial(512, 0.5, size=20000).astype(np.uint16)
    hidden = spread.copy()
    hidden[1::step] = rng.integers(0, 40, size=len(hidden[1::step]))
    sampled = spread.copy()
    sampled[:: 2 * step] = 0
    few = np.full(20000, 513, dtype=np.uint16)
    few[rng.choice(20000, 300, replace=False)] = rng.binomial(512, 0.5, size=300)
    for distance in (spread, hidden, sampled, few):
        for wanted in (1, 7, 100, 200, 1000, 1250, 15000):
            kept = embeddings._nearest_codes(distance, wanted)
            assert np.array_equal(kept, by_counting_all(distance, wanted))
            assert len(kept) >= min(wanted, len(distance))


# --- stories ------------------------------------------------------------------------------


def test_articles_about_one_story_form_a_story(client, story_articles):
    posted, other = story_articles
    ids = [a["id"] for a in posted]
    story_ids = {client.get(f"/v1/articles/{i}").json["story"] for i in ids}
    assert len(story_ids) == 1 and None not in story_ids
    assert client.get(f"/v1/articles/{other['id']}").json["story"] is None
    (story_id,) = story_ids
    listing = client.get("/v1/stories")
    assert listing.status_code == 200
    (item,) = listing.json["data"]
    assert item["id"] == story_id and item["article_count"] == 3
    assert item["sources"] == ["daily"] and item["languages"] == ["en"]
    assert item["headline"]["id"] == ids[0] and item["headline"]["story"] == story_id
    assert item["first_published_at"] == posted[0]["published_at"]
    assert item["last_published_at"] == posted[2]["published_at"]
    detail = client.get(f"/v1/stories/{story_id}")
    assert detail.status_code == 200 and detail.headers["ETag"]
    assert [a["id"] for a in detail.json["articles"]] == ids
    assert {a["duplicate_of"] for a in detail.json["articles"]} == {None}
    narrowed = client.get(f"/v1/stories/{story_id}?fields=duplicate_of").json
    assert narrowed["articles"] == [{"duplicate_of": None}] * 3
    assert narrowed["headline"] == {}  # no article field asked: the headline's neither
    # The cards stored for lists show the story too.
    cards = {a["id"]: a["story"] for a in client.get("/v1/articles").json["data"]}
    assert cards == {**dict.fromkeys(ids, story_id), other["id"]: None}


def test_a_story_does_not_grow_link_by_link_into_other_subjects(client, writer, source):
    # Each article was joined to the story of its nearest one alone: A, then B (like A), then
    # C (like B, nothing like A) made one story, and a chain of them one of hundreds.
    groups = [
        "alpine glacier meltwater",
        "hydropower turbine reservoir spillway",
        "electricity tariff households",
        "consumer protection ombudsman",
    ]
    texts = [f"{groups[n]} {groups[n + 1]}" for n in range(3)]
    model = embeddings.HashedNgrams()
    a, b, c = model.embed([embeddings.article_text(t, t) for t in texts])
    assert min(a @ b, b @ c) >= stories.JOIN_SCORE  # each like the one before it
    assert (a @ c + b @ c) / 2 < stories.STORY_SCORE  # C alike the story of A and B: not enough
    posted = [
        post(client, writer, source, text, text + ".", hours=n) for n, text in enumerate(texts)
    ]
    story_of = [client.get(f"/v1/articles/{p['id']}").json["story"] for p in posted]
    assert story_of[0] == story_of[1] is not None
    assert story_of[2] is None


def test_a_story_covers_at_most_a_week(client, writer, source):
    # Every 60 hours another telling of the story: each within three days of the one before
    # and like it, so without a limit all five made one story of ten days.
    tellings = [*STORY, STORY[0], STORY[1]]
    posted = [
        post(client, writer, source, title, body, hours=60 * n)
        for n, (title, body) in enumerate(tellings)
    ]
    story_of = [client.get(f"/v1/articles/{p['id']}").json["story"] for p in posted]
    # The fourth, 7.5 days after the first, would stretch their story past a week: it joins
    # none, and the fifth starts a story with it.
    assert story_of[0] == story_of[1] == story_of[2] is not None
    assert story_of[3] == story_of[4] is not None
    assert story_of[3] != story_of[0]
    first = client.get(f"/v1/stories/{story_of[0]}").json
    assert (first["article_count"], first["first_published_at"], first["last_published_at"]) == (
        3,
        posted[0]["published_at"],
        posted[2]["published_at"],
    )


def test_an_article_moved_in_time_is_measured_where_it_goes(client, writer, source):
    posted = [
        post(client, writer, source, *telling, hours=60 * n) for n, telling in enumerate(STORY)
    ]
    story_id = client.get(f"/v1/articles/{posted[0]['id']}").json["story"]
    # The first, moved to 180 h: the story then covers 60-180 h, five days. (Measured with its
    # old time, 0-180 h, it left the story.)
    moved = (BASE_TIME + datetime.timedelta(hours=180)).isoformat() + "Z"
    response = client.patch(
        f"/v1/articles/{posted[0]['id']}", json={"published_at": moved}, headers=writer
    )
    assert response.status_code == 200
    assert [client.get(f"/v1/articles/{p['id']}").json["story"] for p in posted] == [story_id] * 3
    story = client.get(f"/v1/stories/{story_id}").json
    assert (story["first_published_at"], story["last_published_at"]) == (
        posted[1]["published_at"],
        response.json["published_at"],
    )


def test_a_copy_stretches_no_story(client, writer, source, make_source):
    wire = make_source(slug="wire")
    first, _, third = (
        post(client, writer, source, *telling, hours=hours)
        for hours, telling in zip((0, 60, 130), STORY, strict=True)
    )
    story_id = client.get(f"/v1/articles/{first['id']}").json["story"]
    # A copy of the third, 60 hours after it, goes with what it copies, past the week.
    copy = post(client, writer, wire, *STORY[2], hours=190)
    members = client.get(f"/v1/stories/{story_id}").json["articles"]
    assert (copy["id"], third["id"]) in [(a["id"], a["duplicate_of"]) for a in members]
    # A new telling at 150 h is within a week of the first: it joins (the copy's 190 h is not
    # counted).
    title, body = STORY[0]
    later = post(client, writer, source, f"{title} (update)", f"{body} Officials said more.", 150)
    assert client.get(f"/v1/articles/{later['id']}").json["story"] == story_id


def test_a_near_identical_copy_is_marked_a_duplicate(client, writer, source, make_source):
    wire = make_source(slug="wire")
    original = post(client, writer, source, *STORY[0])
    copy = post(client, writer, wire, STORY[0][0], STORY[0][1] + " Reporting by the wire.", 1)
    story_id = client.get(f"/v1/articles/{copy['id']}").json["story"]
    assert story_id is not None
    members = client.get(f"/v1/stories/{story_id}").json["articles"]
    assert [(a["id"], a["duplicate_of"]) for a in members] == [
        (original["id"], None),
        (copy["id"], original["id"]),
    ]
    assert client.get(f"/v1/stories/{story_id}").json["sources"] == ["daily", "wire"]


def test_copies_of_one_text_are_not_related_by_computation(
    app, client, writer, source, make_source
):
    """The related list of an article leaves out its copies, the article it copies and that
    article's other copies, and holds one of another text's copies; an editor's relation to a
    copy is kept, and leaves out a computed relation to another copy of its text."""
    original = post(client, writer, source, *STORY[0])
    copies = [
        post(client, writer, make_source(slug=slug), STORY[0][0], f"{STORY[0][1]} By {slug}.", n)
        for n, slug in enumerate(("wire", "agency"), start=1)
    ]
    telling = post(client, writer, source, *STORY[1], hours=3)
    story_id = client.get(f"/v1/articles/{telling['id']}").json["story"]
    members = client.get(f"/v1/stories/{story_id}").json["articles"]
    assert [(a["id"], a["duplicate_of"]) for a in members] == [
        (original["id"], None),
        *[(copy["id"], original["id"]) for copy in copies],
        (telling["id"], None),
    ]

    def related(article):
        response = client.get(f"/v1/articles/{article['id']}/related?limit=20")
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["data"]]

    one_text = {original["id"], *(copy["id"] for copy in copies)}
    for article in (original, *copies):
        assert related(article) == [telling["id"]]
    assert len(one_text & set(related(telling))) == 1
    response = client.post(
        f"/v1/articles/{original['id']}/relations",
        json={"article_id": copies[0]["id"], "kind": "same_story"},
        headers=writer,
    )
    assert response.status_code == 201, response.json
    assert related(original) == [copies[0]["id"], telling["id"]]
    # An editor's relation to one copy of a text leaves out the computed one to another.
    (computed,) = one_text & set(related(telling))
    chosen = min(one_text - {computed})
    response = client.post(
        f"/v1/articles/{telling['id']}/relations",
        json={"article_id": chosen, "kind": "same_story"},
        headers=writer,
    )
    assert response.status_code == 201, response.json
    assert one_text & set(related(telling)) == {chosen}
    assert related(telling)[0] == chosen
    # Unpublished, it keeps its mark until the worker places it: meanwhile readers, who do not
    # see the editor's relation, see the computed one.
    with app.app_context(), db.connection_context():
        Article.update(status="draft").where(Article.id == chosen).execute()
        DataVersion.bump()
    assert one_text & set(related(telling)) == {computed}


def test_copies_take_no_place_in_a_related_list(
    app, client, writer, source, make_source, monkeypatch
):
    """A list keeps its best ``KEEP`` texts: copies, the most alike of all, would fill it and
    then be left out as it is read (the article's own text), or shown once (another's).
    Neither the worker nor a rebuild lets them."""
    monkeypatch.setattr(related, "KEEP", 2)
    original = post(client, writer, source, *STORY[0])
    copies = [
        post(client, writer, make_source(slug=slug), STORY[0][0], f"{STORY[0][1]} By {slug}.", n)
        for n, slug in enumerate(("wire", "agency"), start=1)
    ]
    one_text = {original["id"], *(copy["id"] for copy in copies)}
    # The other tellings each from a source of its own (the same source would raise them above
    # the copies). The first is nearer the copies' text in meaning than the second, and written
    # after it: its own list, not an offer from the second, must hold the second.
    later = post(client, writer, make_source(slug="courier"), *STORY[1], hours=3)
    tellings = [post(client, writer, make_source(slug="herald"), *STORY[2], hours=4), later]

    def listed(article):
        response = client.get(f"/v1/articles/{article['id']}/related")
        assert response.status_code == 200, response.json
        return {item["id"] for item in response.json["data"]}

    def check():
        assert listed(original) == {telling["id"] for telling in tellings}
        shown = listed(tellings[0])
        assert len(shown) == 2 and tellings[1]["id"] in shown and shown & one_text

    check()
    with app.app_context(), db.connection_context():
        related.rebuild()
    check()


@pytest.mark.parametrize("found_by", ["meaning", "story"])
def test_copies_of_its_own_text_take_no_candidate_place(
    app, client, writer, source, make_source, monkeypatch, found_by
):
    """An article's own copies are never related to it, so they take none of its candidates'
    places: neither among the nearest in meaning (more are looked at) nor among its
    story's neighbours (the walk passes them), in the worker as in a rebuild."""
    monkeypatch.setattr(related, "NEAREST", 1 if found_by == "meaning" else 0)
    monkeypatch.setattr(related, "STORY_NEIGHBOURS", 1 if found_by == "story" else 0)
    monkeypatch.setattr(related, "CANDIDATES", 0)  # no keyword candidates: they share words
    original = post(client, writer, source, *STORY[0])
    for n, slug in enumerate(("wire", "agency"), start=1):
        post(client, writer, make_source(slug=slug), STORY[0][0], f"{STORY[0][1]} By {slug}.", n)
    telling = post(client, writer, make_source(slug="courier"), *STORY[1], hours=3)
    with app.app_context(), db.connection_context():
        # Its list was computed before the copies came (and the telling offered to it since).
        assert [item[0] for item in related.compute(original["id"])] == [telling["id"]]
        related.rebuild()
    response = client.get(f"/v1/articles/{original['id']}/related")
    assert [item["id"] for item in response.json["data"]] == [telling["id"]]


def test_copies_of_another_text_count_once_among_the_nearest(
    app, client, writer, source, make_source, monkeypatch
):
    """Of the articles nearest in meaning, the copies of one text count as one: more are
    looked at until the texts fill the places (the worker, then a rebuild)."""
    monkeypatch.setattr(related, "NEAREST", 2)
    monkeypatch.setattr(related, "STORY_NEIGHBOURS", 0)
    monkeypatch.setattr(related, "CANDIDATES", 0)  # no keyword candidates: they share words
    # The telling is nearer every copy of the first text than the far one.
    telling = post(client, writer, make_source(slug="courier"), *STORY[2], hours=3)
    copied = [post(client, writer, source, *STORY[0])] + [
        post(client, writer, make_source(slug=slug), STORY[0][0], f"{STORY[0][1]} By {slug}.", n)
        for n, slug in enumerate(("wire", "agency"), start=1)
    ]
    far = post(client, writer, make_source(slug="herald"), *STORY[1], hours=4)
    one_text = {article["id"] for article in copied}

    with app.app_context(), db.connection_context():
        found = [item[0] for item in related.compute(telling["id"])]
        assert far["id"] in found and one_text & set(found), found
        related.rebuild()
    response = client.get(f"/v1/articles/{telling['id']}/related")
    shown = [item["id"] for item in response.json["data"]]
    assert len(shown) == 2 and far["id"] in shown and one_text & set(shown), shown


def test_words_relate_only_articles_not_embedded_yet(
    app, client, writer, source, make_source, monkeypatch
):
    """Too few candidates by meaning: the keyword method adds articles without a vector, not
    those embedded but too far in meaning to be candidates (a rebuild relates neither), and
    takes its ``CANDIDATES`` best among those without one, so the embedded ones ranked above by
    words take none of them."""
    monkeypatch.setattr(related, "NEAREST", 1)
    monkeypatch.setattr(related, "STORY_NEIGHBOURS", 0)
    monkeypatch.setattr(related, "KEEP", 2)
    monkeypatch.setattr(related, "CANDIDATES", 2)
    article, nearer, farther = (post(client, writer, source, *STORY[n], hours=n) for n in (0, 2, 1))
    ferry = post(client, writer, make_source(slug="port"), *FERRY, hours=5)
    with app.app_context(), db.connection_context():
        assert [item[0] for item in related.compute(article["id"])] == [nearer["id"]]
        ArticleEmbedding.delete().where(ArticleEmbedding.article == ferry["id"]).execute()
        found = [item[0] for item in related.compute(article["id"])]
        # By words the two tellings are the best two.
        with monkeypatch.context() as more:
            more.setattr(related, "CANDIDATES", 3)
            more.setattr(related, "KEEP", 3)
            ranked = [item[0] for item in related.compute_keywords(article["id"])]
    assert set(ranked[:2]) == {nearer["id"], farther["id"]} and ranked[2] == ferry["id"]
    assert found == [nearer["id"], ferry["id"]]


def test_too_few_by_meaning_counts_texts_not_articles(
    app, client, writer, source, make_source, monkeypatch
):
    """Two articles of one text are one text: too few by meaning (``KEEP`` is 2), so the
    keyword method adds an article not embedded yet."""
    monkeypatch.setattr(related, "NEAREST", 1)
    monkeypatch.setattr(related, "STORY_NEIGHBOURS", 0)
    monkeypatch.setattr(related, "KEEP", 2)
    article = post(client, writer, source, *STORY[0])
    post(client, writer, make_source(slug="wire"), STORY[0][0], f"{STORY[0][1]} By wire.", 1)
    telling = post(client, writer, make_source(slug="courier"), *STORY[2], hours=2)
    copy = post(
        client, writer, make_source(slug="agency"), STORY[2][0], f"{STORY[2][1]} By agency.", 3
    )
    ferry = post(client, writer, make_source(slug="port"), *FERRY, hours=5)
    with app.app_context(), db.connection_context():
        ArticleEmbedding.delete().where(ArticleEmbedding.article == ferry["id"]).execute()
        found = {item[0] for item in related.compute(article["id"])}
    assert found == {telling["id"], copy["id"], ferry["id"]}


def test_the_keyword_method_keeps_its_places_for_other_texts(
    app, client, writer, source, make_source, monkeypatch
):
    """Without vectors (a change of model under way), a rebuild relates by words, where an
    article's own copies, sharing every word, rank first: they take none of its places."""
    monkeypatch.setattr(related, "KEEP", 1)
    original = post(client, writer, source, *STORY[0])
    for n, slug in enumerate(("wire", "agency"), start=1):
        post(client, writer, make_source(slug=slug), STORY[0][0], f"{STORY[0][1]} By {slug}.", n)
    telling = post(client, writer, make_source(slug="courier"), *STORY[1], hours=3)
    with app.app_context(), db.connection_context():
        ArticleEmbedding.delete().execute()
        related.rebuild()
    response = client.get(f"/v1/articles/{original['id']}/related")
    assert [item["id"] for item in response.json["data"]] == [telling["id"]]


def test_an_article_offered_to_a_list_takes_the_place_of_the_text_shown_last(
    app, client, make_article, monkeypatch
):
    """Two texts at one score: the list shows the one of the lower relation first, and an
    article offered that beats them takes the place of the other. A copy of the list's own
    text is not offered a place."""
    monkeypatch.setattr(related, "KEEP", 2)
    with app.app_context():
        owner, first, second, new, copy = (make_article() for _ in range(5))
        Article.update(duplicate_of=owner.id).where(Article.id == copy.id).execute()
        for other in (first, second):
            Relation.create(
                article=owner, related=other, origin="computed", score=0.5, reasons="similar_text"
            )
        offer = {"kind": "related", "origin": "computed", "reasons": "similar_text"}
        with db.atomic():
            related._offer(
                new.id, [{**offer, "article": new.id, "related": owner.id, "score": 0.6}]
            )
            related._offer(
                copy.id, [{**offer, "article": copy.id, "related": owner.id, "score": 0.9}]
            )
    response = client.get(f"/v1/articles/{owner.id}/related")
    assert response.status_code == 200, response.json
    assert [item["id"] for item in response.json["data"]] == [new.id, first.id]


def test_a_copy_of_an_article_the_story_no_longer_shows_is_no_copy(
    client, writer, source, make_source
):
    wire = make_source(slug="wire")
    original = post(client, writer, source, *STORY[0])
    copy = post(client, writer, wire, STORY[0][0], STORY[0][1] + " Reporting by the wire.", 1)
    third = post(client, writer, source, *STORY[1], hours=2)
    story_id = client.get(f"/v1/articles/{copy['id']}").json["story"]
    draft = {"status": "draft"}
    path = f"/v1/articles/{original['id']}"
    assert client.patch(path, json=draft, headers=writer).status_code == 200
    detail = client.get(f"/v1/stories/{story_id}").json
    # No member names the draft, and the copy, a copy of nothing shown, is the headline.
    assert [(a["id"], a["duplicate_of"]) for a in detail["articles"]] == [
        (copy["id"], None),
        (third["id"], None),
    ]
    assert detail["headline"]["id"] == copy["id"]


def edit(client, writer, article_id, change):
    """Delete the article ``article_id``, or unpublish it, rewrite it as OTHER, retell it as
    STORY[2] or move it to five hours after BASE_TIME (``change``)."""
    path = f"/v1/articles/{article_id}"
    if change == "deleted":
        assert client.delete(path, headers=writer).status_code == 204
        return
    changes = {
        "unpublished": {"status": "draft"},
        "rewritten": {"title": OTHER[0], "body_text": OTHER[1]},
        "retold": {"title": STORY[2][0], "body_text": STORY[2][1]},
        "later": {"published_at": (BASE_TIME + datetime.timedelta(hours=5)).isoformat() + "Z"},
    }
    assert client.patch(path, json=changes[change], headers=writer).status_code == 200


@pytest.mark.parametrize("change", ["deleted", "unpublished", "rewritten", "retold", "later"])
def test_the_copies_of_an_article_they_copy_no_more_copy_the_first_of_them(
    client, writer, source, make_source, change
):
    """Copies of an article deleted, unpublished, rewritten as another story, retold in the
    same one in other words, or moved after them: the first copy is an original, the others
    copy it, and so does the article moved (each had been left a copy of nothing, and a
    related list named their one text twice; the article moved had copied itself)."""
    original = post(client, writer, source, *STORY[0])
    wire, agency = make_source(slug="wire"), make_source(slug="agency")
    first = post(client, writer, wire, STORY[0][0], f"{STORY[0][1]} By wire.", 1)["id"]
    # Word for word: the article moved after it is most alike to it, yet copies the first.
    second = post(client, writer, agency, *STORY[0], hours=2)["id"]
    telling = post(client, writer, make_source(slug="courier"), *STORY[1], hours=3)
    edit(client, writer, original["id"], change)
    story_id = client.get(f"/v1/articles/{telling['id']}").json["story"]
    detail = client.get(f"/v1/stories/{story_id}").json
    members = [(a["id"], a["duplicate_of"]) for a in detail["articles"]]
    assert members == [
        *([(original["id"], None)] if change == "retold" else []),
        (first, None),
        (second, first),
        (telling["id"], None),
        *([(original["id"], first)] if change == "later" else []),
    ]
    assert detail["headline"]["id"] == (original["id"] if change == "retold" else first)

    def related(article_id):
        response = client.get(f"/v1/articles/{article_id}/related")
        return {item["id"] for item in response.json["data"]}

    one_text = {first, second, *([original["id"]] if change == "later" else [])}
    assert len(related(telling["id"]) & one_text) == 1
    assert related(second) & {first} == set()
    if change == "retold":
        assert len(related(original["id"]) & {first, second}) == 1


def test_a_computed_relation_to_an_article_unpublished_since_is_left_out_for_writers(
    client, writer, source, make_source
):
    """Unpublished, an article leaves the related lists of others for those who see drafts
    too (relations are computed among published articles; its copy, an original now, was
    listed beside it); an editor's relation to a draft stays."""
    original = post(client, writer, source, *STORY[0])["id"]
    copy = post(client, writer, make_source(slug="wire"), STORY[0][0], f"{STORY[0][1]} By wire.", 1)
    telling = post(client, writer, make_source(slug="courier"), *STORY[1], hours=2)["id"]
    other = post(client, writer, make_source(slug="herald"), *OTHER, hours=3)["id"]
    path = f"/v1/articles/{telling}"
    relation = {"article_id": other, "kind": "background"}
    assert client.post(f"{path}/relations", json=relation, headers=writer).status_code == 201
    listed = {item["id"] for item in client.get(f"{path}/related").json["data"]}
    assert original in listed or copy["id"] in listed, listed

    for unpublished in (original, other):
        response = client.patch(
            f"/v1/articles/{unpublished}", json={"status": "draft"}, headers=writer
        )
        assert response.status_code == 200
    response = client.get(f"{path}/related", headers=writer)
    listed = [(item["id"], item["relation"]["origin"]) for item in response.json["data"]]
    assert (other, "editorial") in listed and copy["id"] in dict(listed), listed
    assert original not in dict(listed), listed


#: What sources added to STORY[0]'s body (the hashed embedder of the tests): each copy is at
#: least 0.93 alike to the story; PHOTOS and CORRECTION 0.89 to each other, SEEN 0.94 to
#: PHOTOS and 0.95 to CORRECTION, WIRE 0.97 to SEEN.
PHOTOS = "Photographs by Mia Chen; graphics by Olu Adeyemi."
CORRECTION = "Corrected: an earlier version misspelled the bridge engineer's surname."
SEEN = "Seen earlier by the engineer."
WIRE = "By wire."


@pytest.mark.parametrize("change", ["deleted", "unpublished", "rewritten", "retold", "later"])
def test_the_copies_of_an_article_they_copy_no_more_are_compared_again(
    client, writer, source, make_source, change
):
    """Copies each alike to the article they copy, two of them not alike to each other: when
    it is deleted, unpublished, rewritten, retold or moved after them, both are originals, and
    each other copies the one before it most alike to it, or what that one copies, as does the
    article moved (the second had copied the first, and related lists named one text where
    there were two)."""
    title, body = STORY[0]
    original = post(client, writer, source, title, body)["id"]
    first, second, seen, wire = (
        post(client, writer, make_source(slug=slug), title, f"{body} {added}", hours)["id"]
        for hours, (slug, added) in enumerate(
            [("wire", PHOTOS), ("agency", CORRECTION), ("herald", SEEN), ("post", WIRE)], 1
        )
    )
    telling = post(client, writer, make_source(slug="courier"), *STORY[1], hours=4.5)["id"]
    story_id = client.get(f"/v1/articles/{telling}").json["story"]
    before = client.get(f"/v1/stories/{story_id}").json["articles"]
    assert [a["duplicate_of"] for a in before] == [None, *[original] * 4, None]

    edit(client, writer, original, change)
    detail = client.get(f"/v1/stories/{story_id}").json
    assert [(a["id"], a["duplicate_of"]) for a in detail["articles"]] == [
        *([(original, None)] if change == "retold" else []),
        (first, None),
        (second, None),
        (seen, second),  # alike to both, more to the second
        (wire, second),  # most alike to seen, which copies the second
        (telling, None),
        *([(original, second)] if change == "later" else []),
    ]
    assert detail["headline"]["id"] == (original if change == "retold" else first)
    response = client.get(f"/v1/articles/{telling}/related")
    shown = {item["id"] for item in response.json["data"]}
    one_text = {second, seen, wire, *([original] if change == "later" else [])}
    assert first in shown and len(shown & one_text) == 1, shown


def test_embedding_everything_again_keeps_the_stories_whatever_the_batches(app):
    """``embed --all`` places every article again in publication order, each among those
    before it, as the first embedding of these placed them: the articles of the batches still
    to come are no candidates (with their stories and vectors, an earlier article joined a
    later one's story, and the stories made depended on where the batches ended)."""

    def placed():
        rows = Article.select(Article.id, Article.story, Article.duplicate_of).tuples()
        members = collections.defaultdict(set)
        for article_id, story_id, _ in rows:
            members[story_id].add(article_id)
        return (
            {frozenset(ids) for story_id, ids in members.items() if story_id is not None},
            {article_id: duplicate_of for article_id, _, duplicate_of in rows},
        )

    with app.app_context(), db.connection_context():
        load_demo(articles=150, seed=42)
        stories.embed_all(embeddings.due_ids(), batch=1000)
        first = placed()
        assert len(first[0]) > 20
        for batch in (64, 1):
            stories.embed_all(embeddings.due_ids(everything=True), force=True, batch=batch)
            assert placed() == first


def test_a_copy_joins_the_story_of_what_it_copies(client, writer, source, make_source):
    """A copy goes with what it copies, even where another story's article scores higher
    with it by the numbers they share (that story took it, and the copy, its original in
    another story, became an original)."""
    title, body = STORY[0]
    numbers = "4,200 commuters, 3,150 cars and 7,800 tonnes"
    original = post(client, writer, source, title, body)["id"]
    told = [  # three and a half days on: another story, out of the original's window
        post(client, writer, make_source(slug=slug), told_title, told_body, hours)["id"]
        for slug, told_title, told_body, hours in [
            (
                "courier",
                "Riverton harbour bridge: divers search the river",
                "Divers searched the river under the Riverton harbour bridge, which collapsed"
                f" at rush hour: {numbers}.",
                84,
            ),
            (
                "herald",
                "Riverton harbour bridge collapse: divers and commuters",
                "After the Riverton harbour bridge collapsed, divers searched the river and"
                f" {numbers} were counted.",
                86,
            ),
        ]
    ]
    copy = post(client, writer, make_source(slug="wire"), title, f"{body} Counts: {numbers}.", 48)
    other_story = client.get(f"/v1/articles/{told[0]}").json["story"]
    assert other_story is not None and client.get(f"/v1/articles/{told[1]}").json["story"] == (
        other_story
    )
    story_id = client.get(f"/v1/articles/{copy['id']}").json["story"]
    assert story_id not in (None, other_story)
    detail = client.get(f"/v1/stories/{story_id}").json
    members = [(a["id"], a["duplicate_of"]) for a in detail["articles"]]
    assert members == [(original, None), (copy["id"], original)]


def test_copies_handed_over_without_a_vector_or_in_another_language(
    app, client, writer, source, make_source
):
    """Handed over, a copy without a vector, or with one but after only copies without, copies
    the first (nothing to compare); one in another language than those before it copies none
    of them."""
    title, body = STORY[0]
    original = post(client, writer, source, title, body)["id"]
    first, unembedded, other_language = (
        post(client, writer, make_source(slug=slug), title, f"{body} {WIRE}", hours)["id"]
        for hours, slug in enumerate(["wire", "agency", "herald"], 1)
    )
    with app.app_context(), db.connection_context():
        ArticleEmbedding.delete().where(ArticleEmbedding.article == unembedded).execute()
        Article.update(language="de").where(Article.id == other_language).execute()
        marks = stories.hand_over([first, unembedded, other_language])
        stored = dict(
            Article.select(Article.id, Article.duplicate_of)
            .where(Article.id.in_([original, first, unembedded, other_language]))
            .tuples()
        )
    assert marks == {first: None, unembedded: first, other_language: None}
    assert stored == {original: None, first: None, unembedded: first, other_language: None}
    with app.app_context(), db.connection_context():
        assert stories.hand_over([unembedded, first]) == {unembedded: None, first: unembedded}


def test_an_original_placed_again_with_its_copies_keeps_them(
    app, client, writer, source, make_source
):
    """Its copies, placed after it in the same batch (``embed --all --force``), are no
    candidates when it is placed: they are left to their own placing, and copy it still; the
    story keeps them (another telling, not in the batch, holds the original there)."""
    original = post(client, writer, source, *STORY[0])
    copies = [
        post(client, writer, make_source(slug=slug), STORY[0][0], f"{STORY[0][1]} By {slug}.", n)
        for n, slug in enumerate(("wire", "agency"), start=1)
    ]
    post(client, writer, make_source(slug="courier"), *STORY[1], hours=3)
    ids = [original["id"], *(copy["id"] for copy in copies)]
    with app.app_context(), db.connection_context():
        assert stories.place(ids) == set()
        marks = dict(
            Article.select(Article.id, Article.duplicate_of).where(Article.id.in_(ids)).tuples()
        )
    assert marks == {ids[0]: None, ids[1]: ids[0], ids[2]: ids[0]}


@pytest.mark.parametrize(
    "how", ["older news last", "a copy moved first", "republished", "placed again"]
)
def test_a_text_run_over_days_has_one_original(client, writer, source, make_source, how):
    """One text from three sources two days apart (four from first to last, past the days
    placing compares): however the first comes to be the first, the other two copy it, not
    one another (a copy of a copy named the text twice in related lists; found by an outside
    audit), and the first placed again keeps the one four days on (it was handed the text)."""
    sources = [source, make_source(slug="wire"), make_source(slug="agency")]
    hours = [0, 48, 96]
    order = [2, 1, 0] if how == "older news last" else [0, 1, 2]
    posted = {}
    for n in order:
        posted[n] = post(client, writer, sources[n], *STORY[0], hours=hours[n])["id"]
    first, second, third = posted[0], posted[1], posted[2]
    if how == "a copy moved first":
        moved = (BASE_TIME - datetime.timedelta(hours=48)).isoformat() + "Z"
        fields = {"published_at": moved}
        assert (
            client.patch(f"/v1/articles/{second}", json=fields, headers=writer).status_code == 200
        )
        first, second = second, first
    elif how == "republished":
        path = f"/v1/articles/{first}"
        assert client.patch(path, json={"status": "draft"}, headers=writer).status_code == 200
        assert client.patch(path, json={"status": "published"}, headers=writer).status_code == 200
    elif how == "placed again":  # its copy four days on is compared too, not handed over
        fields = {"source": make_source(slug="courier").slug}
        assert client.patch(f"/v1/articles/{first}", json=fields, headers=writer).status_code == 200
    story_id = client.get(f"/v1/articles/{third}").json["story"]
    detail = client.get(f"/v1/stories/{story_id}").json
    members = [(a["id"], a["duplicate_of"]) for a in detail["articles"]]
    assert members == [(first, None), (second, first), (third, first)]
    assert detail["headline"]["id"] == first
    for article_id in (first, second, third):
        response = client.get(f"/v1/articles/{article_id}/related")
        assert {item["id"] for item in response.json["data"]} & {first, second, third} == set()


def test_an_article_rewritten_into_a_copy_hands_its_copies_to_what_it_copies(
    client, writer, source, make_source
):
    """An article rewritten near word for word like an earlier one copies it, and so do the
    articles that copied the article and still do (not a copy of a copy)."""
    more = (
        " Officials said repairs would take months and traffic was diverted to the northern"
        " crossing, police added."
    )
    earlier = post(client, writer, source, STORY[0][0], STORY[0][1] + more)
    article = post(client, writer, make_source(slug="herald"), *STORY[0], hours=1)
    copy = post(client, writer, make_source(slug="wire"), STORY[0][0], f"{STORY[0][1]} By wire.", 2)
    story_id = client.get(f"/v1/articles/{earlier['id']}").json["story"]

    def members():
        detail = client.get(f"/v1/stories/{story_id}").json
        return [(a["id"], a["duplicate_of"]) for a in detail["articles"]]

    assert members() == [(earlier["id"], None), (article["id"], None), (copy["id"], article["id"])]
    fields = {"body_text": STORY[0][1] + " Officials said repairs would take months"}
    assert (
        client.patch(f"/v1/articles/{article['id']}", json=fields, headers=writer).status_code
        == 200
    )
    assert members() == [
        (earlier["id"], None),
        (article["id"], earlier["id"]),
        (copy["id"], earlier["id"]),
    ]


def test_an_original_placed_after_its_copies_takes_them_over(client, writer, source, make_source):
    """An import of older news brings an original after the copies the wire ran later; an
    article published again comes back after its copies were freed."""
    wire = make_source(slug="wire")
    copy = post(client, writer, wire, STORY[0][0], STORY[0][1] + " Reporting by the wire.", 2)
    original = post(client, writer, source, *STORY[0], hours=1)
    story_id = client.get(f"/v1/articles/{copy['id']}").json["story"]
    detail = client.get(f"/v1/stories/{story_id}").json
    assert [(a["id"], a["duplicate_of"]) for a in detail["articles"]] == [
        (original["id"], None),
        (copy["id"], original["id"]),
    ]
    assert detail["headline"]["id"] == original["id"]
    path = f"/v1/articles/{original['id']}"
    assert client.patch(path, json={"status": "draft"}, headers=writer).status_code == 200
    assert client.patch(path, json={"status": "published"}, headers=writer).status_code == 200
    story_id = client.get(f"/v1/articles/{copy['id']}").json["story"]  # the first, dissolved
    detail = client.get(f"/v1/stories/{story_id}").json
    assert [(a["id"], a["duplicate_of"]) for a in detail["articles"]] == [
        (original["id"], None),
        (copy["id"], original["id"]),
    ]


def test_placing_reads_vectors_before_the_write_lock_and_stories_again_under_it(
    client, writer, story_articles, monkeypatch
):
    """The window of articles an article is compared with is read before the write transaction
    (its vectors: seconds under the lock in a busy window); under the lock its stories and copy
    marks are read again, and an article unpublished meanwhile is no candidate."""
    posted, _ = story_articles
    first, second = posted[0]["id"], posted[1]["id"]
    reads = []

    def spying(name):
        read = getattr(embeddings, name)

        def spy(*args):
            reads.append((name, db.in_transaction()))
            return read(*args)

        return spy

    for name in ("window", "window_stories"):
        monkeypatch.setattr(embeddings, name, spying(name))
    in_db(lambda: stories.place([second]))
    assert reads == [("window", False), ("window_stories", True)]
    window = in_db(lambda: stories._Window(*stories._span(stories._placed([second]))))
    k = window.position[first]
    assert window.alive[k] and window.rows[k][1] is not None
    assert client.patch(f"/v1/articles/{first}", json={"status": "draft"}, headers=writer).json
    in_db(window.refresh)
    assert not window.alive[k]
    story = client.get(f"/v1/articles/{second}").json["story"]
    assert window.rows[window.position[second]][1] == story


def test_a_batch_is_placed_a_few_articles_to_a_transaction(
    client, writer, source, make_source, monkeypatch
):
    """The worker's batch is placed at most PLACE_CHUNK articles to a write transaction (64 in
    one held SQLite's write lock for over 50 ms, and web writes waited), each after the ones
    published before it: copies of one wire story, placed in three transactions, are one
    story whose every copy names the first."""
    monkeypatch.setattr(tasks.huey, "immediate", False)  # queued, then placed in one batch
    wire = make_source(slug="wire")
    title, body = STORY[0]
    ids = [
        post(client, writer, wire, title, f"{body} Reporting by the wire, {n}.", hours=n)["id"]
        for n in range(2 * stories.PLACE_CHUNK + 4)
    ]
    placed = []
    read = stories._placed

    def spy(article_ids):
        if db.in_transaction():
            placed.append(len(list(article_ids)))
        return read(article_ids)

    monkeypatch.setattr(stories, "_placed", spy)
    assert in_db(stories.refresh_queued) == len(ids)
    assert placed == [stories.PLACE_CHUNK, stories.PLACE_CHUNK, 4]
    story_id = client.get(f"/v1/articles/{ids[0]}").json["story"]
    members = client.get(f"/v1/stories/{story_id}").json["articles"]
    assert [(a["id"], a["duplicate_of"]) for a in members] == [
        (ids[0], None),
        *((i, ids[0]) for i in ids[1:]),
    ]


def test_a_story_left_with_one_article_is_dissolved(client, writer, story_articles):
    posted, _ = story_articles
    story_id = client.get(f"/v1/articles/{posted[0]['id']}").json["story"]
    assert client.delete(f"/v1/articles/{posted[0]['id']}", headers=writer).status_code == 204
    detail = client.get(f"/v1/stories/{story_id}").json
    assert detail["article_count"] == 2 and detail["headline"]["id"] == posted[1]["id"]
    path = f"/v1/articles/{posted[1]['id']}"
    assert client.patch(path, json={"status": "draft"}, headers=writer).status_code == 200
    assert client.get(f"/v1/stories/{story_id}").status_code == 404
    assert client.get(f"/v1/articles/{posted[2]['id']}").json["story"] is None
    assert in_db(lambda: Story.select().count()) == 0


def test_related_lists_follow_an_article_rewritten_out_of_their_story(
    client, writer, story_articles
):
    # The lists of its story's other articles kept it first, as `same_story`, with the score
    # of what it said before: only its own list was computed again.
    posted, _ = story_articles
    first, second, rewritten = (a["id"] for a in posted)
    before = client.get(f"/v1/articles/{first}/related").json["data"]
    assert rewritten in [item["id"] for item in before]
    recipe = {
        "title": "Slow-cooked lamb stew with rosemary",
        "body_text": "Brown the lamb, add onions and rosemary, and simmer for three hours.",
    }
    assert client.patch(f"/v1/articles/{rewritten}", json=recipe, headers=writer).status_code == 200
    assert client.get(f"/v1/articles/{rewritten}").json["story"] is None
    for article_id in (first, second):
        shown = client.get(f"/v1/articles/{article_id}/related").json["data"]
        fresh = in_db(lambda article_id=article_id: related.compute(article_id))
        assert [(i["id"], i["relation"]["reasons"]) for i in shown] == [
            (related_id, reasons) for related_id, _, reasons in fresh
        ]


def test_a_story_drops_an_article_unpublished_at_once(client, writer, story_articles, monkeypatch):
    posted, _ = story_articles
    story_id = client.get(f"/v1/articles/{posted[0]['id']}").json["story"]
    monkeypatch.setattr(tasks.huey, "immediate", False)  # no worker: the write alone
    path = f"/v1/articles/{posted[0]['id']}"
    patched = client.patch(path, json={"status": "draft"}, headers=writer)
    assert patched.status_code == 200 and patched.json["story"] is None
    assert patched.headers["ETag"] == client.get(path, headers=writer).headers["ETag"]
    story = client.get(f"/v1/stories/{story_id}").json
    assert story["article_count"] == 2
    assert story["headline"]["id"] != posted[0]["id"]
    assert posted[0]["id"] not in [a["id"] for a in story["articles"]]


def test_a_story_the_worker_refreshes_has_a_new_etag(client, writer, story_articles, monkeypatch):
    posted, _ = story_articles
    path = f"/v1/articles/{posted[2]['id']}"
    story_path = f"/v1/stories/{client.get(path).json['story']}"
    monkeypatch.setattr(tasks.huey, "immediate", False)  # the worker runs after the read below
    later = {"published_at": "2026-11-01T20:00:00Z"}
    client.patch(path, json=later, headers=writer)
    before = client.get(story_path)
    in_db(stories.refresh_queued)  # places it again: same story, a new last_published_at
    after = client.get(story_path, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.json["last_published_at"] == "2026-11-01T20:00:00Z"


def test_a_story_shows_its_articles_as_they_are_now(client, writer, story_articles):
    """What a story lists of its articles (sources, languages, times) follows their writes."""
    posted, _ = story_articles
    story_id = client.get(f"/v1/articles/{posted[0]['id']}").json["story"]
    renamed = client.patch("/v1/sources/daily", json={"slug": "daily-news"}, headers=writer)
    assert renamed.status_code == 200
    later = {"published_at": "2026-11-01T20:00:00Z", "language": "de"}
    assert (
        client.patch(f"/v1/articles/{posted[2]['id']}", json=later, headers=writer).status_code
        == 200
    )
    story = client.get(f"/v1/stories/{story_id}").json
    assert story["sources"] == ["daily-news"]
    assert story["languages"] == ["de", "en"]
    assert story["last_published_at"] == "2026-11-01T20:00:00Z"


def test_stories_are_paged_newest_activity_first(client, writer, source):
    for day in range(3):
        for n, (title, body) in enumerate(STORY[:2]):
            post(client, writer, source, f"{title} {day}", body, hours=day * 200 + n)
    first = client.get("/v1/stories?limit=2")
    assert first.status_code == 200 and first.json["has_more"] is True
    assert first.headers["Link"].endswith('rel="next"')
    second = client.get(f"/v1/stories?limit=2&cursor={first.json['next_cursor']}").json
    assert second["has_more"] is False and second["next_cursor"] is None
    times = [s["last_published_at"] for s in first.json["data"] + second["data"]]
    assert len(times) == 3 and times == sorted(times, reverse=True)


def test_stories_newest_first_are_each_seen_once_while_articles_arrive(client, writer, source):
    """By newest activity, a story an article joins moves ahead of a cursor; by id, it does
    not."""
    older = [post(client, writer, source, t, b, hours=n) for n, (t, b) in enumerate(STORY[:2])]
    for n, extra in enumerate(["", " Pickers came early."]):
        post(client, writer, source, OTHER[0], OTHER[1] + extra, hours=10 + n)
    older_story = client.get(f"/v1/articles/{older[0]['id']}").json["story"]

    def walk(sort):
        page = client.get(f"/v1/stories?limit=1&sort={sort}").json
        seen = [story["id"] for story in page["data"]]
        post(client, writer, source, *STORY[2], hours=20)  # joins the older story
        while page["has_more"]:
            page = client.get(f"/v1/stories?limit=1&sort={sort}&cursor={page['next_cursor']}")
            page = page.json
            seen += [story["id"] for story in page["data"]]
        return seen

    by_id = walk("-id")
    assert sorted(by_id, reverse=True) == by_id and older_story in by_id and len(by_id) == 2
    mixed = client.get(
        f"/v1/stories?sort=-id&cursor={client.get('/v1/stories?limit=1').json['next_cursor']}"
    )
    assert mixed.status_code == 400 and list(mixed.json["errors"]) == ["cursor"]
    assert client.get("/v1/stories?sort=title").status_code == 422


def test_story_fields_narrow_the_articles(client, story_articles):
    story_id = client.get(f"/v1/articles/{story_articles[0][0]['id']}").json["story"]
    listing = client.get("/v1/stories?fields=id,title").json["data"][0]
    assert listing["headline"] == {"id": story_articles[0][0]["id"], "title": STORY[0][0]}
    detail = client.get(f"/v1/stories/{story_id}?fields=title").json
    assert detail["articles"][0] == {"title": STORY[0][0], "duplicate_of": None}
    # Body fields are read for the articles shown.
    listing = client.get("/v1/stories?fields=id,body_text").json["data"][0]
    assert listing["headline"] == {"id": story_articles[0][0]["id"], "body_text": STORY[0][1]}
    detail = client.get(f"/v1/stories/{story_id}?fields=body_text,body_html").json
    assert [a["body_text"] for a in detail["articles"]] == [body for _, body in STORY]
    assert detail["articles"][0]["body_html"] == f"<p>{STORY[0][1]}</p>"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/stories/999", 404),
        ("/v1/stories/abc", 404),
        ("/v1/stories/99999999999999999999", 404),
        ("/v1/stories?cursor=bogus", 400),
        ("/v1/stories?limit=0", 422),
        ("/v1/stories?fields=nope", 400),
        ("/v1/stories/1?fields=nope", 400),
    ],
)
def test_bad_story_requests_are_problems(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert response.content_type == "application/problem+json"


# --- related articles by meaning ----------------------------------------------------------


def test_related_articles_carry_meaning_story_and_language(client, story_articles):
    posted, other = story_articles
    items = client.get(f"/v1/articles/{posted[0]['id']}/related").json["data"]
    assert [i["id"] for i in items[:2]] in (
        [posted[1]["id"], posted[2]["id"]],
        [posted[2]["id"], posted[1]["id"]],
    )
    relation = items[0]["relation"]
    assert relation["origin"] == "computed" and relation["kind"] == "same_story"
    assert {"same_story", "similar_meaning"} <= set(relation["reasons"])
    assert relation["language"] == "en"
    assert other["id"] not in [i["id"] for i in items[:2]]


@pytest.mark.parametrize(
    "signals, expected",
    [
        # Related by meaning below the cosine that names it (0.4), nothing else shared: a
        # computed item was listed with no reasons, where API.md says `reasons` says which.
        ((0.35, 0.0, False, 0.0, False, 30), ["similar_meaning"]),
        ((0.1, 0.05, False, 0.0, False, 30), ["similar_text"]),
        ((0.35, 0.05, False, 0.5, False, 1), ["similar_meaning", "shared_tags", "recent"]),
        ((0.5, 0.2, True, 0.0, False, 30), ["same_story", "similar_meaning", "similar_text"]),
    ],
)
def test_every_computed_relation_names_the_evidence_it_has(signals, expected):
    from models import related

    assert related.value(*signals) > 0
    assert related.reasons(*signals) == expected


def test_related_rebuild_by_meaning_matches_the_worker(client, story_articles, app):
    from models import related

    posted, _ = story_articles
    before = {a["id"]: client.get(f"/v1/articles/{a['id']}/related").json for a in posted}
    with app.app_context(), db.connection_context():
        assert related.rebuild() == 4
    after = {a["id"]: client.get(f"/v1/articles/{a['id']}/related").json for a in posted}
    for article_id, answer in before.items():
        assert [i["id"] for i in after[article_id]["data"][:2]] == [
            i["id"] for i in answer["data"][:2]
        ]
        assert (
            after[article_id]["data"][0]["relation"]["reasons"]
            == (answer["data"][0]["relation"]["reasons"])
        )


def test_related_rebuild_scores_the_same_story_neighbours_as_the_worker(
    client, writer, source, app, monkeypatch
):
    # The story told twice, the second time as if in German (as the hashed embedder reads
    # words, the same vectors): a copy is of the same language, and no list holds a copy.
    written = [
        post(client, writer, source, f"{title} ({n})", body, hours=3 * n + k, language=language)
        for n, language in enumerate(("en", "de"))
        for k, (title, body) in enumerate(STORY)
    ]
    ids = [article["id"] for article in written]

    def lists(ids):
        """Each article's list as the worker computes it, and as a rebuild stores it."""
        worker = {i: [r for r, _, _ in related.compute(i)] for i in ids}
        assert related.rebuild() == len(written)
        rebuilt = {
            i: [
                r.related_id
                for r in Relation.select()
                .where(Relation.article == i)
                .order_by(Relation.score.desc(), Relation.related)
            ]
            for i in ids
        }
        return worker, rebuilt

    with app.app_context(), db.connection_context():
        assert len({Article.get_by_id(i).story_id for i in ids}) == 1
        # One candidate by meaning and one story neighbour on each side: a list has at most
        # three articles, where the whole story would give five. (The worker's lists made by
        # words, of articles not embedded, for too few by meaning, are not the rebuild's to
        # match.)
        monkeypatch.setattr(related, "NEAREST", 1)
        monkeypatch.setattr(related, "STORY_NEIGHBOURS", 1)
        monkeypatch.setattr(related, "_keyword_scored", lambda article, **_: ([], {}))
        worker, rebuilt = lists(ids)
    # The same articles in the same order (scores differ a little: the worker weighs words by
    # the articles of the search index that have them, a rebuild by the stems of the titles
    # and leads it scores).
    assert max(len(items) for items in worker.values()) == 3
    assert rebuilt == worker

    # An article of the story without a vector of the model (a change of model under way) is
    # no neighbour for either: the next one is.
    with app.app_context(), db.connection_context():
        ArticleEmbedding.delete().where(ArticleEmbedding.article == ids[2]).execute()
        embeddings._process_index.clear()  # as a process started since has it
        worker, rebuilt = lists([i for i in ids if i != ids[2]])
    assert rebuilt == worker


def test_the_related_etag_changes_when_the_worker_changes_the_list(
    client, writer, source, monkeypatch
):
    first = post(client, writer, source, *STORY[0])
    path = f"/v1/articles/{first['id']}/related"
    etag = client.get(path).headers["ETag"]
    post(client, writer, source, *STORY[1], hours=1)
    answer = client.get(path, headers={"If-None-Match": etag})
    assert answer.status_code == 200 and answer.json["data"]


# --- answers and key points ---------------------------------------------------------------

BODY = (
    "The council met on Tuesday to discuss the harbour.\n\n"
    "It approved a budget of 12 million euros for repairs. Work starts in March.\n\n"
    "Residents asked for a new ferry service. The mayor said the ferry would return."
)


def test_answers_are_the_articles_own_sentences_in_order(client, writer, source):
    article = post(client, writer, source, "Council approves harbour repairs", BODY)
    response = client.get(f"/v1/articles/{article['id']}/answers?q=how much is the budget?")
    assert response.status_code == 200
    body = response.json
    assert body["article_id"] == article["id"] and body["question"] == "how much is the budget?"
    assert body["model"] == "hashed-trigrams-256" and body["method"] == "embedding-v1"
    sentences = body["sentences"]
    assert len(sentences) == 3
    assert [s["position"] for s in sentences] == sorted(s["position"] for s in sentences)
    best = max(sentences, key=lambda s: s["score"])
    assert best["sentence"] == "It approved a budget of 12 million euros for repairs."
    assert all(s["sentence"] in BODY for s in sentences)
    one = client.get(f"/v1/articles/{article['id']}/answers?q=ferry&limit=1").json
    assert [s["sentence"] for s in one["sentences"]] == ["Residents asked for a new ferry service."]


def test_an_article_without_sentences_has_no_answers_every_time(client, writer, source):
    article = post(client, writer, source, "Harbour at dawn", "Photo: Reuters")
    for _ in range(2):  # the second reads the (empty) sentences kept by the first
        for path in ("key-points", "answers?q=where"):
            response = client.get(f"/v1/articles/{article['id']}/{path}")
            assert response.status_code == 200 and response.json["sentences"] == []


def test_sentence_vectors_are_kept_per_article_version(client, writer, source):
    article = post(client, writer, source, "Council approves harbour repairs", BODY)
    path = f"/v1/articles/{article['id']}/key-points?limit=2"
    first = client.get(path)
    assert first.status_code == 200 and len(first.json["sentences"]) == 2
    kept = in_db(lambda: SentenceEmbedding.get_by_id(article["id"]))
    assert kept.article_version == first.json["article_version"]
    client.patch(
        f"/v1/articles/{article['id']}",
        json={"body_text": "One sentence only here."},
        headers=writer,
    )
    again = client.get(path).json
    assert again["article_version"] > first.json["article_version"]
    assert [s["sentence"] for s in again["sentences"]] == ["One sentence only here."]


def test_key_points_are_modified_when_their_article_is_embedded(client, dbconn, make_article):
    # Before its vector they are chosen by the mean of its sentences; after, by its vector.
    article = make_article(title="Ferries every twenty minutes", body=BODY)
    path = f"/v1/articles/{article.id}/key-points?limit=2"
    before = client.get(path)
    embeddings.embed_articles([article.id])
    embedded_at = datetime.datetime(2026, 11, 2)  # after the article's time, before now
    ArticleEmbedding.update(embedded_at=embedded_at).execute()
    after = client.get(path)
    assert after.json["sentences"] != before.json["sentences"]
    assert after.headers["Last-Modified"] == http_date(embedded_at)
    assert parse_date(before.headers["Last-Modified"]) < embedded_at.replace(tzinfo=datetime.UTC)
    since = {"If-Modified-Since": before.headers["Last-Modified"]}
    assert client.get(path, headers=since).status_code == 200


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 422), ("?q=", 422), ("?q=%20%20", 422), ("?q=x&limit=0", 422), ("?q=x&limit=11", 422)],
)
def test_bad_questions_are_problems(client, writer, source, query, status):
    article = post(client, writer, source, "Council approves harbour repairs", BODY)
    response = client.get(f"/v1/articles/{article['id']}/answers{query}")
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert "q" in response.json["errors"] or "limit" in response.json["errors"]


def test_answers_of_a_missing_article_are_404(client):
    for path in ("/v1/articles/999/answers?q=why", "/v1/articles/nope/key-points"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.content_type == "application/problem+json"


def test_pgvector_is_used_where_installed(app, database_url):
    with app.app_context(), db.connection_context():
        has = embeddings.has_pgvector()
        installed = database_url.startswith("postgresql") and embeddings.pgvector_installed()
    assert has is installed


def test_query_vectors_are_kept_per_text_and_read_only():
    first = embeddings.embed_query("harbour bridge reopens")
    assert embeddings.embed_query("harbour bridge reopens") is first
    assert embeddings.embed_query("harbour ferry reopens") is not first
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 1.0


def test_a_search_by_meaning_loads_the_model_before_its_time_limit(dbconn, monkeypatch):
    """The production model loads its weights when first used (1.5 s here): inside the search's
    time limit, the first search by meaning of a server process could be a 503. Searches
    prepare the model with the vector index, before the limit starts."""
    monkeypatch.setattr(embeddings, "_instances", {})  # a process that has not loaded it yet
    monkeypatch.setattr(embeddings, "_active", [])
    model = embeddings.configure("use")
    assert not model.loaded
    embeddings.prepare_index()
    assert model.loaded


def pgvector_only(database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL with pgvector only")
    with connected():
        if not embeddings.has_pgvector():
            pytest.skip("PostgreSQL with pgvector only")


def test_drafts_nearest_a_query_leave_the_published_hits_found(app, make_article, database_url):
    """The index's candidates were filtered after it found them, and without a filter there
    was no exact scan to fall back on: 60 drafts nearer the query than anything published
    left a search by meaning with no hit."""
    pgvector_only(database_url)
    published = [make_article(title=f"Orchard report {n}", body=OTHER[1]).id for n in range(20)]
    drafts = [
        make_article(title=f"{STORY[1][0]} {n}", body=STORY[1][1], status="draft")
        for n in range(60)
    ]
    embeddings.embed_articles([*published, *(draft.id for draft in drafts)])
    # The plan of a large table (the index), not the exact scan a small one gets.
    db.execute_sql("SET enable_seqscan = off")
    db.execute_sql("SET enable_sort = off")
    try:
        hits = embeddings.nearest(embeddings.embed_query(STORY[1][0]), 5)
    finally:
        db.execute_sql("RESET enable_seqscan")
        db.execute_sql("RESET enable_sort")
    assert len(hits) == 5 and {article_id for article_id, _ in hits} <= set(published)


def test_vectors_a_worker_stored_without_the_pgvector_table_reach_it(
    app, client, writer, source, database_url
):
    """A process that looked for the table before ``db init`` made it never wrote to it, and
    ``db init`` filled a new table only."""
    pgvector_only(database_url)
    first = post(client, writer, source, *STORY[0])["id"]
    key = (embeddings.binding(), embeddings.embedder().name)
    embeddings._pgvector[key] = False  # as a worker that looked before the table was made
    second = post(client, writer, source, *STORY[1], hours=1)["id"]
    with db.connection_context():
        stored = {i for (i,) in db.execute_sql("SELECT article_id FROM article_vector")}
        assert stored == {first, second}
        db.execute_sql("DELETE FROM article_vector WHERE article_id = %s", (first,))  # missed
        assert embeddings.ensure_vector_index()
        stored = {i for (i,) in db.execute_sql("SELECT article_id FROM article_vector")}
    assert stored == {first, second}


def test_figures_a_new_body_names_are_stored_without_embedding_again(client, writer, source):
    """The vector embeds the title and excerpt; the figures that place an article in its
    story come from the body too, and stayed those of the first body."""
    posted = post(client, writer, source, *STORY[0], excerpt="Commuters were stranded.")
    before = in_db(lambda: ArticleEmbedding.get_by_id(posted["id"]))
    assert "4200" in before.anchors
    body = "New body. The council said 4,321 goats and 55,555 sheep were counted."
    response = client.patch(
        f"/v1/articles/{posted['id']}", json={"body_text": body}, headers=writer
    )
    assert response.status_code == 200
    after = in_db(lambda: ArticleEmbedding.get_by_id(posted["id"]))
    assert after.anchors == "4321 55555"
    assert after.vector == before.vector and after.text_hash == before.text_hash


@pytest.mark.parametrize("question", ["!!!", "?", "_ _", "…", "   "])
def test_a_question_without_a_word_is_a_422_naming_q(client, writer, source, question):
    posted = post(client, writer, source, *STORY[0])
    response = client.get(f"/v1/articles/{posted['id']}/answers", query_string={"q": question})
    assert response.status_code == 422  # as every query parameter the schema refuses
    assert response.json["errors"] == {"q": ["Has no word to ask with."]}
    asked = client.get(f"/v1/articles/{posted['id']}/answers", query_string={"q": "橋は?"})
    assert asked.status_code == 200
