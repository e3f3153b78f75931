"""``GET /v1/search`` by words, by meaning and both (``mode``), through HTTP, on SQLite and
PostgreSQL, with the deterministic hashed embedder (close for texts that share words or names,
so an English query finds the German and French articles that name the same bridge)."""

import datetime

import pytest

from api import paging
from models import db, embeddings, hybrid
from models.changes import DataVersion
from models.query import parse_query

from .conftest import BASE_TIME, VECTOR_BACKENDS, backend_url, with_vector_index

#: Every backend, and PostgreSQL with its pgvector table made as ``db init`` makes it.
database_url = pytest.fixture(params=VECTOR_BACKENDS, name="database_url")(backend_url)
app = pytest.fixture(name="app")(with_vector_index)


ARTICLES = {
    "collapse": (
        "en",
        "Riverton harbour bridge collapses at rush hour",
        "The Riverton harbour bridge collapsed on Monday; commuters were stranded.",
        ["transport"],
    ),
    "divers": (
        "en",
        "Divers search the river under the Riverton harbour bridge",
        "Divers searched the river after the bridge collapsed in Riverton.",
        ["transport", "rescue"],
    ),
    "german": (
        "de",
        "Riverton: Hafenbrücke eingestürzt",
        "Die Hafenbrücke von Riverton ist am Montag im Berufsverkehr eingestürzt.",
        ["transport"],
    ),
    "french": (
        "fr",
        "Riverton : le pont du port s'effondre",
        "Le pont du port de Riverton s'est effondré lundi à l'heure de pointe.",
        [],
    ),
    "apples": (
        "en",
        "Orchard growers expect a record apple harvest",
        "Apple growers in the valley expect a record harvest this autumn.",
        ["farming"],
    ),
}


@pytest.fixture
def corpus(client, writer, make_source):
    """The articles of :data:`ARTICLES`, written through the API (embedded at once in tests),
    an hour apart; the German one from a source of its own."""
    sources = {
        "default": make_source(slug="daily", name="Daily"),
        "de": make_source(slug="zeitung", name="Zeitung", language="de"),
    }
    found = {}
    for hours, (key, (language, title, body, tags)) in enumerate(ARTICLES.items()):
        response = client.post(
            "/v1/articles",
            json={
                "source": sources.get(language, sources["default"]).slug,
                "title": title,
                "body_text": body,
                "language": language,
                "tags": tags,
                "published_at": (BASE_TIME + datetime.timedelta(hours=hours)).isoformat() + "Z",
            },
            headers=writer,
        )
        assert response.status_code == 201, response.json
        found[key] = response.json["id"]
    return found


def search(client, query, **params):
    response = client.get("/v1/search", query_string={"q": query, **params})
    assert response.status_code == 200, response.json
    assert response.content_type == "application/json"
    return response.json


def matches(body):
    return {hit["id"]: hit["match"] for hit in body["data"]}


def keys(corpus, body):
    names = {article_id: key for key, article_id in corpus.items()}
    return [names[hit["id"]] for hit in body["data"]]


def test_hybrid_is_the_default_and_finds_other_languages(client, corpus):
    body = search(client, "Riverton harbour bridge")
    found = matches(body)
    assert found[corpus["collapse"]] == found[corpus["divers"]] == "both"
    assert found[corpus["german"]] == found[corpus["french"]] == "semantic"
    assert set(keys(corpus, body)[:2]) == {"collapse", "divers"}
    scores = [hit["score"] for hit in body["data"]]
    assert scores == sorted(scores, reverse=True)
    # Found by both rankings, an article scores the sum of its reciprocal ranks: the first
    # is first or second in each.
    k = hybrid.FUSION_K
    assert scores[0] in {round(2 / (k + 1), 6), round(1 / (k + 1) + 1 / (k + 2), 6)}
    assert search(client, "Riverton harbour bridge", mode="hybrid") == body


def test_keyword_mode_finds_the_words_only(client, corpus):
    body = search(client, "Riverton harbour bridge", mode="keyword")
    assert sorted(keys(corpus, body)) == ["collapse", "divers"]
    assert set(matches(body).values()) == {"keyword"}
    assert all(hit["score"] > 0 for hit in body["data"])


def test_semantic_mode_ranks_by_meaning_in_any_language(client, corpus):
    body = search(client, "Riverton bridge collapsed", mode="semantic")
    assert set(matches(body).values()) == {"semantic"}
    ranked = keys(corpus, body)
    assert set(ranked) == set(ARTICLES)
    assert ranked[-1] == "apples"
    german = search(client, "Riverton bridge collapsed", mode="semantic", language="de")
    assert keys(corpus, german) == ["german"]
    assert german["data"][0]["score"] == round(1 / (hybrid.FUSION_K + 1), 6)


@pytest.mark.parametrize("mode", hybrid.MODES)
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"language": "de"}, {"german"}),
        ({"language": "en,fr"}, {"collapse", "divers", "french", "apples"}),
        ({"source": "zeitung"}, {"german"}),
        ({"tag": "rescue"}, {"divers"}),
        ({"published_after": "2026-11-01T14:00:00Z"}, {"german", "french", "apples"}),
        ({"published_before": "2026-11-01T13:00:00Z"}, {"collapse"}),
        (
            {"updated_since": "2000-01-01T00:00:00Z", "tag": "transport"},
            {"collapse", "divers", "german"},
        ),
    ],
)
def test_every_filter_narrows_every_mode(client, corpus, mode, params, expected):
    """Meaning ranks every article the filters leave (there are fewer than the window);
    the words are only in two English articles."""
    if mode == "keyword":
        expected = expected & {"collapse", "divers"}
    assert set(keys(corpus, search(client, "Riverton bridge", mode=mode, **params))) == expected


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_exclusions_take_out_hits_found_by_meaning(client, corpus, mode):
    found = matches(search(client, "Riverton bridge -divers", mode=mode))
    assert corpus["divers"] not in found and corpus["collapse"] in found
    assert corpus["german"] in found


def test_highlights_mark_the_words_hits_by_meaning_have(client, corpus):
    hits = {hit["id"]: hit for hit in search(client, "Riverton harbour bridge")["data"]}
    assert "<mark>Riverton</mark>" in hits[corpus["collapse"]]["highlights"]["title"]
    assert (
        hits[corpus["german"]]["highlights"]["title"]
        == "<mark>Riverton</mark>: Hafenbrücke eingestürzt"
    )
    assert "<mark>" not in hits[corpus["apples"]]["highlights"]["title"]


@pytest.mark.parametrize("mode", hybrid.MODES)
@pytest.mark.parametrize("sort", ["relevance", "-published_at"])
def test_cursors_page_through_every_hit_once(client, corpus, mode, sort):
    whole = search(client, "Riverton bridge", mode=mode, sort=sort, limit=50)
    assert not whole["has_more"]
    seen, cursor = [], None
    while True:
        params = {"mode": mode, "sort": sort, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = search(client, "Riverton bridge", **params)
        seen += page["data"]
        assert len(page["data"]) <= 2
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == whole["data"]
    if sort == "-published_at":
        times = [hit["published_at"] for hit in seen]
        assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(("made", "used"), [("keyword", "hybrid"), ("hybrid", "semantic")])
def test_a_cursor_of_another_mode_is_refused(client, corpus, made, used):
    page = search(client, "Riverton bridge", mode=made, limit=1)
    response = client.get(
        "/v1/search",
        query_string={"q": "Riverton bridge", "mode": used, "cursor": page["next_cursor"]},
    )
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert "cursor" in response.json["errors"]


@pytest.mark.parametrize("mode", hybrid.MODES)
def test_facets_count_the_hits_of_each_mode(client, corpus, mode):
    body = search(client, "Riverton bridge", mode=mode, facets="language,source,tag", limit=50)
    languages = {}
    for hit in body["data"]:
        languages[hit["language"]] = languages.get(hit["language"], 0) + 1
    counted = {value["value"]: value["count"] for value in body["facets"]["language"]}
    assert counted == languages
    tags = {value["value"]: value["count"] for value in body["facets"]["tag"]}
    assert tags["transport"] == sum(
        "transport" in [t["slug"] for t in hit["tags"]] for hit in body["data"]
    )


def test_drafts_and_deleted_articles_are_never_hits(client, corpus, writer):
    draft = client.patch(
        f"/v1/articles/{corpus['german']}", json={"status": "draft"}, headers=writer
    )
    assert draft.status_code == 200, draft.json
    assert client.delete(f"/v1/articles/{corpus['french']}", headers=writer).status_code == 204
    for mode in hybrid.MODES:
        found = matches(search(client, "Riverton bridge", mode=mode))
        assert corpus["german"] not in found and corpus["french"] not in found


@pytest.mark.parametrize("mode", ["", "vector", "HYBRID"])
def test_an_unknown_mode_is_a_422(client, corpus, mode):
    response = client.get("/v1/search", query_string={"q": "bridge", "mode": mode})
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert "mode" in response.json["errors"]


def test_the_window_is_what_the_spec_says():
    from schemas.articles import SearchArgs

    description = SearchArgs().fields["mode"].metadata["description"]
    assert f"the {hybrid.HITS} published articles" in description
    assert f"the best {hybrid.HITS // 2} of each ranking merged" in description
    assert f"ranks the newest {hybrid.NEWEST} matches" in description


def test_the_keyword_ranking_of_hybrid_ranks_the_newest_matches(app, corpus):
    parsed = parse_query("Riverton bridge")
    with app.app_context(), db.connection_context():
        assert sorted(hybrid.keyword_ranking(parsed)) == [corpus["collapse"], corpus["divers"]]
        assert hybrid.keyword_ranking(parsed, newest=1) == [corpus["divers"]]
        assert hybrid.keyword_ranking(parsed, newest=1, languages=["fr"]) == []
        assert hybrid.keyword_ranking(parsed, limit=1, tags=["transport"]) in (
            [corpus["collapse"]],
            [corpus["divers"]],
        )
        excluding = parse_query("Riverton bridge -collapses")
        assert hybrid.keyword_ranking(excluding) == []  # both say the bridge collapsed
        excluding = parse_query("Riverton bridge -divers")
        assert hybrid.keyword_ranking(excluding) == [corpus["collapse"]]
        assert hybrid.keyword_ranking(excluding, sources=["daily"]) == [corpus["collapse"]]
        assert hybrid.keyword_ranking(excluding, sources=["zeitung"]) == []
        later = BASE_TIME + datetime.timedelta(minutes=30)
        assert hybrid.keyword_ranking(parsed, published_after=later) == [corpus["divers"]]
        assert hybrid.keyword_ranking(parsed, published_before=later) == [corpus["collapse"]]


def test_the_keyword_ranking_of_hybrid_never_ranks_a_draft(app, client, corpus, writer):
    """Without filters the ranking takes the drafts' ids out of the matches; with one, it
    reads each match's article row: neither holds a draft."""
    draft = client.patch(
        f"/v1/articles/{corpus['divers']}", json={"status": "draft"}, headers=writer
    )
    assert draft.status_code == 200, draft.json
    parsed = parse_query("Riverton bridge")
    with app.app_context(), db.connection_context():
        assert hybrid.keyword_ranking(parsed) == [corpus["collapse"]]
        assert hybrid.keyword_ranking(parsed, tags=["transport"]) == [corpus["collapse"]]
        assert hybrid.keyword_ranking(parsed, tags=["rescue"]) == []


@pytest.mark.parametrize("mode", ["semantic"])
def test_the_last_hit_of_a_page_gone_the_next_page_skips_nothing(client, corpus, writer, mode):
    """Each hit below a hit that is gone moves up a rank, and its fused score with it: the hit
    that took the rank of a page's last hit had that hit's score, and a page that went on past
    that score skipped it when its id was the larger. (Hybrid mode pages by the same code; in
    this corpus the ids of its hits fall so that it skipped none that way.)"""
    whole = [hit["id"] for hit in search(client, "Riverton bridge", mode=mode, limit=50)["data"]]
    assert len(whole) >= 4
    first = search(client, "Riverton bridge", mode=mode, limit=2)
    assert [hit["id"] for hit in first["data"]] == whole[:2]
    response = client.delete(f"/v1/articles/{whole[1]}", headers=writer)
    assert response.status_code == 204
    rest = search(client, "Riverton bridge", mode=mode, limit=50, cursor=first["next_cursor"])
    assert [hit["id"] for hit in rest["data"]] == whole[2:]


def ids(body):
    return [hit["id"] for hit in body["data"]]


def pages_after(client, query, first, **params):
    """The ids of every page after ``first``, one list each, by its cursors."""
    pages, cursor = [], first["next_cursor"]
    while cursor:
        page = search(client, query, cursor=cursor, **params)
        pages.append(ids(page))
        cursor = page["next_cursor"]
    return pages


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
@pytest.mark.parametrize("moved", ["shown", "not shown"])
def test_a_hit_moved_up_between_pages_is_neither_repeated_nor_skipped(
    client, corpus, writer, mode, moved
):
    """A write between two pages takes a hit to the top: the first page's last one (the next
    page went on past it, and held again the hits it had passed), or one no page had held (the
    next page went on past the first page's last hit, below it, and skipped it)."""
    query = "Riverton harbour bridge"
    whole = ids(search(client, query, mode=mode, limit=50))
    assert len(whole) >= 4
    first = search(client, query, mode=mode, limit=2)
    assert ids(first) == whole[:2]
    moving = whole[1] if moved == "shown" else whole[3]
    response = client.patch(
        f"/v1/articles/{moving}", json={"title": query, "body_text": f"{query}."}, headers=writer
    )
    assert response.status_code == 200, response.json
    assert ids(search(client, query, mode=mode, limit=1)) == [moving]
    later = pages_after(client, query, first, mode=mode, limit=2)
    shown = ids(first) + [article_id for page in later for article_id in page]
    assert sorted(shown) == sorted(whole)
    assert all(len(page) == 2 for page in later[:-1])


def test_articles_that_arrive_between_pages_come_on_the_next_ones_once(
    app, client, corpus, writer, monkeypatch
):
    """Three articles nearer the query than any arrive after a first page of a search of four
    hits (``HITS``): the next pages hold them, each once, and none of the first page's."""
    monkeypatch.setattr(hybrid, "HITS", 4)
    query = "Riverton harbour bridge"
    first = search(client, query, mode="semantic", limit=2)
    assert len(first["data"]) == 2 and first["has_more"]
    arrived = []
    for number in range(3):
        response = client.post(
            "/v1/articles",
            json={"source": "daily", "title": f"{query} {number}", "body_text": f"{query}."},
            headers=writer,
        )
        assert response.status_code == 201, response.json
        arrived.append(response.json["id"])
    assert set(ids(search(client, query, mode="semantic", limit=3))) == set(arrived)
    later = pages_after(client, query, first, mode="semantic", limit=2)
    assert [len(page) for page in later] == [2, 1]
    assert sorted(article_id for page in later for article_id in page) == sorted(arrived)
    # The cursor after the second page holds the ids of the hits shown that are still hits
    # (a search has four), not those the arrivals pushed out.
    second = search(client, query, mode="semantic", limit=2, cursor=first["next_cursor"])
    types = (paging.number, paging.integer, paging.integer, paging.ids)
    with app.test_request_context():
        tag = paging.bound("searchsemanticrelevance", q=query)
        *_, held = paging.decode_cursor(second["next_cursor"], tag, types)
    hits = set(ids(search(client, query, mode="semantic", limit=50)))
    shown = set(ids(first)) | set(ids(second))
    assert len(shown - hits) == 1
    assert set(held) == shown & hits


def test_a_hit_that_comes_among_the_hits_as_a_shown_one_goes_is_shown(
    client, corpus, writer, monkeypatch
):
    """The first page's last hit deleted, the fifth nearest article becomes one of a search's
    four hits (``HITS``): the next pages hold the three not shown."""
    monkeypatch.setattr(hybrid, "HITS", 4)
    query = "Riverton harbour bridge"
    every = ids(search(client, query, mode="semantic", limit=50))
    assert len(every) == 4
    first = search(client, query, mode="semantic", limit=2)
    assert client.delete(f"/v1/articles/{every[1]}", headers=writer).status_code == 204
    now = ids(search(client, query, mode="semantic", limit=50))
    assert len(now) == 4 and set(now) - set(every)
    later = pages_after(client, query, first, mode="semantic", limit=2)
    assert sorted(article_id for page in later for article_id in page) == sorted(now[1:])


@pytest.mark.parametrize("mode", hybrid.MODES)
def test_a_cursor_of_one_search_is_a_400_in_another(client, corpus, mode):
    """Other words or filters with a search's cursor are a 400 (it skipped hits of the other
    search, shown or not); another limit is not."""
    first = search(client, "Riverton harbour bridge", mode=mode, limit=1)
    cursor = first["next_cursor"]
    for query, extra in (("harvest", {}), ("Riverton harbour bridge", {"language": "en"})):
        response = client.get(
            "/v1/search", query_string={"q": query, "mode": mode, "cursor": cursor, **extra}
        )
        assert response.status_code == 400 and list(response.json["errors"]) == ["cursor"]
        assert "other filters" in response.json["errors"]["cursor"][0]
    later = search(client, "Riverton harbour bridge", mode=mode, limit=3, cursor=cursor)
    assert later["data"] and first["data"][0]["id"] not in ids(later)
    # A comma list in another order is the same filter.
    query = "Riverton harbour bridge"
    first = search(client, query, mode=mode, limit=1, language="en,fr")
    again = search(client, query, mode=mode, limit=1, language="fr,en", cursor=first["next_cursor"])
    assert ids(again) == ids(search(client, query, mode=mode, limit=2, language="en,fr"))[1:]


def test_a_keyword_cursor_made_before_cursors_held_their_query_still_pages_on(app, client, corpus):
    """Its tag alone, as keyword searches' cursors had it before there were modes."""
    query = "Riverton harbour bridge"
    whole = search(client, query, mode="keyword", limit=50)["data"]
    first = search(client, query, mode="keyword", limit=1)
    types = (paging.number, paging.integer, paging.integer)
    with app.test_request_context():
        key = app.config["NEWSDESK"].key_for("cursors")
        values = paging.decode_cursor(
            first["next_cursor"], paging.bound("searchrelevance", q=query), types
        )
        old = paging.encode_cursor("searchrelevance", values, key)
    rest = search(client, query, mode="keyword", limit=50, cursor=old)
    assert ids(rest) == [hit["id"] for hit in whole[1:]]


@pytest.mark.parametrize(
    "held", [[1, 0], [-1], "x", [1.5], [True], [2**63 - 1, 1], None, [1] * (paging.MAX_IDS + 1)]
)
def test_a_cursor_whose_ids_are_not_ids_is_a_400(app, client, corpus, held):
    key = app.config["NEWSDESK"].key_for("cursors")
    cursor = paging.encode_cursor("searchsemanticrelevance", [0.5, corpus["apples"], 2, held], key)
    response = client.get(
        "/v1/search", query_string={"q": "bridge", "mode": "semantic", "cursor": cursor}
    )
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert "cursor" in response.json["errors"]


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
def test_a_cursor_made_before_the_ids_were_kept_still_pages_on(app, client, corpus, mode):
    query = "Riverton harbour bridge"
    whole = search(client, query, mode=mode, limit=50)["data"]
    last = whole[1]
    key = app.config["NEWSDESK"].key_for("cursors")
    for kept in ([last["score"], last["id"], 2], [last["score"], last["id"]]):
        cursor = paging.encode_cursor(f"search{mode}relevance", kept, key)
        rest = search(client, query, mode=mode, limit=50, cursor=cursor)
        assert ids(rest) == [hit["id"] for hit in whole[2:]]


def test_articles_as_near_come_in_the_order_of_their_ids(app, client, writer, make_source):
    """Two articles of one text are as near any query: the first written comes first, however
    the engine keeps them (a vector index keeps them in the order it met them, pgvector's graph
    in its own)."""
    title, body = ARTICLES["collapse"][1:3]
    first, second = (
        client.post(
            "/v1/articles",
            json={"source": make_source(slug=slug).slug, "title": title, "body_text": body},
            headers=writer,
        ).json["id"]
        for slug in ("daily", "wire")
    )
    with app.app_context(), db.connection_context():
        # An index that met the second first: the first's vector was made again since (on
        # PostgreSQL a new index reads a row written again last, too).
        vector = embeddings.embed_query(title)
        embeddings.ArticleEmbedding.delete().where(
            embeddings.ArticleEmbedding.article == first
        ).execute()
        index = embeddings.VectorIndex()
        assert [i for i, _ in index.nearest(vector, 2, set(), {})] == [second]
        embeddings.embed_articles([first])
        DataVersion.bump()
        assert [i for i, _ in index.nearest(vector, 2, set(), {})] == [first, second]
        assert [i for i, _ in embeddings.VectorIndex().nearest(vector, 2, set(), {})] == [
            first,
            second,
        ]
        assert [i for i, _ in embeddings.nearest(vector, 2)] == [first, second]
    hits = search(client, "Riverton harbour bridge", mode="semantic")["data"]
    assert [hit["id"] for hit in hits] == [first, second]
