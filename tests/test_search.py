import datetime

import pytest

from .conftest import BASE_TIME


@pytest.fixture
def corpus(make_article, make_source):
    wire = make_source(slug="wire", name="Wire", language="de")
    return {
        "storm": make_article(
            title="Storm batters the northern coast",
            body="Winds tore roofs off houses.\n\nThe storm moved east overnight.",
            tags=["weather"],
        ),
        "storms_body": make_article(
            title="Insurance claims rise",
            body="Insurers expect claims after storms hit the coast last week.",
            tags=["business"],
        ),
        "coast_guard": make_article(
            title="Coast guard rescues sailors",
            body="Two sailors were rescued near the harbour.",
            tags=["weather"],
            source=wire,
            language="de",
        ),
        "election": make_article(
            title="Election results delayed",
            body="Officials said counting would resume in the morning.",
            tags=["politics"],
        ),
        "draft": make_article(title="Storm draft", body="Storm draft body.", status="draft"),
    }


def search(client, query, **params):
    """A keyword search (the keyword engine is what this file tests; test_search_hybrid.py
    tests the other modes)."""
    params.setdefault("mode", "keyword")
    response = client.get("/v1/search", query_string={"q": query, **params})
    assert response.status_code == 200, response.json
    return response


def ids(response):
    return [hit["id"] for hit in response.json["data"]]


def test_words_are_anded_and_ranked_title_first(client, corpus):
    hits = ids(search(client, "storm"))
    assert hits == [corpus["storm"].id, corpus["storms_body"].id]
    assert ids(search(client, "storm coast")) == [corpus["storm"].id, corpus["storms_body"].id]
    assert ids(search(client, "storm sailors")) == []


def test_phrase_or_and_exclusion(client, corpus):
    assert ids(search(client, '"coast guard"')) == [corpus["coast_guard"].id]
    assert ids(search(client, '"guard coast"')) == []
    assert set(ids(search(client, "election OR sailors"))) == {
        corpus["election"].id,
        corpus["coast_guard"].id,
    }
    assert ids(search(client, "coast -storm")) == [corpus["coast_guard"].id]
    excluded = set(ids(search(client, 'coast -"northern coast"')))
    assert excluded == {corpus["storms_body"].id, corpus["coast_guard"].id}


def test_and_between_words_says_what_words_say_anyway(client, corpus):
    # It was a word the hits had to have: "storm AND coast" found only articles saying "and".
    both = [corpus["storm"].id, corpus["storms_body"].id]
    assert ids(search(client, "storm AND coast")) == both
    assert ids(search(client, "storm AND sailors")) == []
    assert ids(search(client, "storm and coast")) == []  # a word, as "or" is
    assert set(ids(search(client, "election OR sailors AND rescued"))) == {corpus["coast_guard"].id}


def test_a_query_is_read_in_unicodes_compatibility_form(client, corpus):
    # SQLite's tokenizer kept the ligature "ﬁ" and the full-width letters: no hit there,
    # while PostgreSQL found them.
    election = [corpus["election"].id]
    assert ids(search(client, "Ofﬁcials")) == election  # U+FB01, the "fi" ligature
    assert ids(search(client, "ｅｌｅｃｔｉｏｎ")) == election  # full width
    assert ids(search(client, "＂counting would＂")) == election  # full-width quotes: a phrase


def test_stored_text_is_found_by_each_spelling_of_its_words(client, make_article):
    """The index holds text in NFKC, as queries are read: a ligature, full-width digits and
    half-width katakana stored are found by the plain word (PostgreSQL's unaccent mapped the
    first two, not the third; SQLite none), the text shown is the text stored, and the word
    is marked as it is written."""
    flood = make_article(title="Harbour ﬂood defences hold", body="Water rose to ２０２５ marks.")
    television = make_article(title="ﾃﾚﾋﾞ ratings fall", body="Viewers moved online.")
    warnings = make_article(title="Flood warnings lifted", body="Rivers fell overnight.")
    for query in ("flood defences", "ﬂood defences", "ＦＬＯＯＤ defences", '"flood defences"'):
        assert ids(search(client, query)) == [flood.id], query
    assert ids(search(client, "2025")) == [flood.id]
    for query in ("テレビ", "ﾃﾚﾋﾞ"):
        assert ids(search(client, query)) == [television.id], query
    (hit,) = search(client, "flood defences").json["data"]
    assert hit["title"] == "Harbour ﬂood defences hold"
    assert hit["highlights"]["title"] == "Harbour <mark>ﬂood</mark> <mark>defences</mark> hold"
    assert set(ids(search(client, "flood"))) == {flood.id, warnings.id}


def test_a_word_nfkc_parts_is_still_one_term(client, make_article):
    # NFKC puts a space in some words ("don´t" is "don ́t"): with the query read in NFKC
    # whole, "flood -don´t" excluded "don" and required a word "t".
    dont = make_article(title="Why don´t rivers flood", body="Water rose.")
    lifted = make_article(title="Flood warnings lifted", body="Rivers fell overnight.")
    assert ids(search(client, "flood -don´t")) == [lifted.id]
    assert ids(search(client, "ｆｌｏｏｄ －ｄｏｎ´ｔ")) == [lifted.id]  # full-width minus
    assert ids(search(client, "don´t")) == [dont.id]
    assert ids(search(client, "＂don´t rivers＂")) == [dont.id]
    assert set(ids(search(client, "warnings ＯＲ don´t"))) == {dont.id, lifted.id}


def test_hits_have_score_and_highlights(client, corpus):
    hit = search(client, "storm").json["data"][0]
    assert hit["score"] > 0
    assert hit["highlights"]["title"] == "<mark>Storm</mark> batters the northern coast"
    assert "<mark>storm</mark> moved east" in hit["highlights"]["body"]
    assert "body_text" not in hit and hit["source"]["slug"] == "default-source"
    scores = [h["score"] for h in search(client, "storm").json["data"]]
    assert scores == sorted(scores, reverse=True)


def test_highlights_escape_html(client, make_article):
    make_article(title='Tom & Jerry <b>"live"</b>', body="Tom & Jerry <script>x()</script> return.")
    hit = search(client, "jerry").json["data"][0]
    assert (
        hit["highlights"]["title"]
        == "Tom &amp; <mark>Jerry</mark> &lt;b&gt;&quot;live&quot;&lt;/b&gt;"
    )
    assert (
        "&lt;script&gt;" in hit["highlights"]["body"]
        and "<script>" not in hit["highlights"]["body"]
    )
    assert hit["title"] == 'Tom & Jerry <b>"live"</b>'


def test_filters_combine_with_q(client, corpus):
    assert ids(search(client, "coast", source="wire")) == [corpus["coast_guard"].id]
    assert ids(search(client, "coast", language="de")) == [corpus["coast_guard"].id]
    assert ids(search(client, "coast", tag="business")) == [corpus["storms_body"].id]
    after = (BASE_TIME.replace(hour=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = set(ids(search(client, "coast", published_after=after)))
    assert recent == {corpus["coast_guard"].id, corpus["storms_body"].id}


def test_sort_newest_first(client, corpus):
    assert ids(search(client, "coast", sort="-published_at")) == [
        corpus["coast_guard"].id,
        corpus["storms_body"].id,
        corpus["storm"].id,
    ]


def test_cursor_walk_over_hits(client, make_article):
    made = {make_article(title=f"Budget talk {n}", body="budget " * (n + 1)).id for n in range(7)}
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = search(client, "budget", **params).json
        seen += [hit["id"] for hit in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    newest = search(client, "budget", sort="-published_at", limit=2).json["next_cursor"]
    relevance = search(client, "budget", limit=2).json["next_cursor"]
    params = {"q": "budget", "mode": "keyword"}
    bad = client.get("/v1/search", query_string={**params, "cursor": newest})
    assert bad.status_code == 400  # a cursor of the newest-first order is not valid for relevance
    assert client.get("/v1/search", query_string={**params, "cursor": relevance}).status_code == 200


def test_facets_count_the_whole_result(client, corpus):
    body = search(client, "coast", facets="source,tag,language", limit=1).json
    assert len(body["data"]) == 1
    facets = body["facets"]
    assert facets["source"] == [
        {"value": "default-source", "count": 2},
        {"value": "wire", "count": 1},
    ]
    assert facets["language"] == [{"value": "en", "count": 2}, {"value": "de", "count": 1}]
    assert facets["tag"] == [{"value": "weather", "count": 2}, {"value": "business", "count": 1}]
    assert "facets" not in search(client, "coast").json
    bad = client.get("/v1/search?q=coast&facets=source,bogus")  # named by the parameter
    assert bad.status_code == 422 and list(bad.json["errors"]) == ["facets"]


def test_drafts_are_not_found(client, corpus):
    assert corpus["draft"].id not in ids(search(client, "draft"))
    assert corpus["draft"].id not in ids(search(client, "storm"))
    assert corpus["draft"].id not in ids(search(client, "storm", language="en"))


def test_unfiltered_ranking_equals_the_filtered_one(client, make_article):
    """Without filters SQLite ranks from the search index alone; with them, joined to the
    articles: the same hits in the same order, page by page."""
    for n in range(9):
        make_article(title=f"Harbour report {n}", body="tide " * (n % 4 + 1) + "calm waters")
    make_article(title="Tide tide tide", body="tide " * 20, status="draft")

    def walk(**filters):
        pages, cursor = [], None
        while True:
            page = search(
                client, "tide", limit=2, **filters, **({"cursor": cursor} if cursor else {})
            ).json
            pages.append([(hit["id"], hit["score"]) for hit in page["data"]])
            cursor = page["next_cursor"]
            if not cursor:
                return pages

    everything = walk(published_after="2000-01-01T00:00:00Z")
    assert walk() == everything
    assert [len(page) for page in everything] == [2, 2, 2, 2, 1]  # the draft takes no place
    scores = [score for page in everything for _, score in page]
    assert scores == sorted(scores, reverse=True)


def test_index_follows_writes(client, writer, corpus):
    article = corpus["election"]
    client.patch(
        f"/v1/articles/{article.id}", json={"title": "Referendum results delayed"}, headers=writer
    )
    assert ids(search(client, "referendum")) == [article.id]
    assert ids(search(client, "election")) == []
    client.delete(f"/v1/articles/{article.id}", headers=writer)
    assert ids(search(client, "referendum")) == []
    created = client.post(
        "/v1/articles",
        json={"source": "wire", "title": "Volcano erupts", "body_text": "Ash everywhere."},
        headers=writer,
    ).json
    assert ids(search(client, "volcano")) == [created["id"]]


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "NEAR(storm coast)",
        "*",
        "storm*",
        "OR OR",
        "storm OR",
        "- -",
        "' OR 1=1; DROP TABLE article; --",
        "title:storm",
        "{title}: storm",
        "storm AND NOT coast",
        "^storm",
        "(((",
        "🌩️ storm",
        "東京",
        "a" * 500,
    ],
)
def test_odd_queries_never_fail(client, corpus, query):
    response = client.get("/v1/search", query_string={"q": query})
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    assert response.content_type in ("application/json", "application/problem+json")
    if response.status_code == 400:
        assert list(response.json["errors"]) == ["q"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "x" * 501},
        {"q": "storm", "sort": "best"},
        {"q": "storm", "facets": "author"},
    ],
)
def test_bad_search_parameters_are_named(client, params):
    response = client.get("/v1/search", query_string=params)
    assert response.status_code == 422
    assert response.json["errors"]


@pytest.mark.parametrize("query", ["-storm", '-"a b"', "***", "_", "__ ___"])
def test_queries_with_nothing_to_find_are_400(client, query):
    response = client.get("/v1/search", query_string={"q": query})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert "q" in response.json["errors"]


@pytest.mark.parametrize("character", ["%00", "%07", "%09", "%0A", "%0D", "%7F"])
def test_a_control_character_in_a_query_is_400_naming_it(client, character):
    response = client.get(f"/v1/search?q=storm{character}flood&limit=5")
    assert response.status_code == 400
    assert response.json["errors"] == {"q": ["Contains control characters."]}


def post_article(client, writer, title, body, hours=0, **fields):
    published = BASE_TIME + datetime.timedelta(hours=hours)
    article = {"source": "daily", "title": title, "body_text": body, **fields}
    article.setdefault("published_at", published.isoformat() + "Z")
    response = client.post("/v1/articles", json=article, headers=writer)
    assert response.status_code == 201, response.json
    return response.json["id"]


def hit_ids(response):
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["data"]]


@pytest.mark.parametrize(
    ("title", "q"),
    [
        ("COVID-19 cases fall", "covid-19"),
        ("F-35 order signed", "F-35"),
        ("9/11 memorial", "9/11"),
        ("Inflation hits 3.5% in the U.S.", "3.5"),
        ("Inflation hits 3.5% in the U.S.", "U.S."),
        ("Node.js 22 released", '"node.js 22"'),
    ],
)
def test_a_word_with_punctuation_finds_its_article(client, writer, source, title, q):
    """PostgreSQL's parser reads ``covid-19`` or ``3.5`` as one lexeme in a document: the
    query's term goes to it as written, not as the words SQLite's index splits it into."""
    expected = post_article(client, writer, title, "Body text.")
    post_article(client, writer, "Other news", "Nothing of the kind.")
    assert hit_ids(client.get("/v1/search", query_string={"q": q, "mode": "keyword"})) == [expected]


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_relevance_pages_neither_skip_nor_repeat_while_articles_arrive(
    client, writer, source, mode
):
    for number in range(12):
        words = ["tide"] * (1 + number % 7) + ["other words here"] * (number % 5)
        post_article(client, writer, f"Report {number}", " ".join(words), hours=number)

    def walk(between_pages=None):
        seen, cursor = [], None
        while True:
            query = {
                "q": "tide",
                "mode": mode,
                "limit": 4,
                **({"cursor": cursor} if cursor else {}),
            }
            response = client.get("/v1/search", query_string=query)
            seen += hit_ids(response)
            if between_pages and len(seen) == 4:
                between_pages()
            cursor = response.json["next_cursor"]
            if not cursor:
                return seen

    before = walk()

    def arrive():  # moves every BM25 score, and the ranks the hybrid fusion scores
        post_article(client, writer, "Tide tide tide", "tide " * 8, hours=100)
        for number in range(5):
            post_article(client, writer, f"Other {number}", "Calm seas. " * (number + 1))

    during = walk(arrive)
    assert len(during) == len(set(during))
    assert set(before) <= set(during)


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_the_last_hit_of_a_page_deleted_the_next_page_goes_on_at_its_rank(
    client, writer, source, mode
):
    """A delete takes the article out of the index, which moves every BM25 score on SQLite
    (each word weighs more): going on below the score the cursor recorded, the next page
    skipped most of the hits, which now score above it."""
    for number in range(10):
        post_article(client, writer, f"Report {number}", "ballot " * (1 + number % 4), hours=number)
    for number in range(12):  # most articles without the word: it weighs more than nothing
        post_article(client, writer, f"Other {number}", "Calm seas.", hours=number)
    query = {"q": "ballot", "mode": mode}
    whole = hit_ids(client.get("/v1/search", query_string={**query, "limit": 50}))
    assert len(whole) >= 10  # hybrid finds the others too, by meaning
    first = client.get("/v1/search", query_string={**query, "limit": 2})
    assert hit_ids(first) == whole[:2]
    assert client.delete(f"/v1/articles/{whole[1]}", headers=writer).status_code == 204
    cursor = first.json["next_cursor"]
    rest = hit_ids(client.get("/v1/search", query_string={**query, "limit": 3, "cursor": cursor}))
    assert rest == whole[2:5]
    cursor = client.get("/v1/search", query_string={**query, "limit": 3, "cursor": cursor})
    last = hit_ids(
        client.get(
            "/v1/search", query_string={**query, "limit": 50, "cursor": cursor.json["next_cursor"]}
        )
    )
    assert last == whole[5:]


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_published_bounds_keep_fractions_of_a_second_in_every_mode(client, writer, source, mode):
    published = "2026-11-01T10:00:00.250Z"
    expected = post_article(
        client, writer, "Harbour ferry strike", "The ferry strike goes on.", published_at=published
    )
    search = {"q": "ferry", "mode": mode}
    after = {**search, "published_after": "2026-11-01T10:00:00.5Z"}
    before = {**search, "published_before": "2026-11-01T10:00:00.5Z"}
    assert hit_ids(client.get("/v1/search", query_string=after)) == []
    assert hit_ids(client.get("/v1/search", query_string=before)) == [expected]


@pytest.mark.parametrize(
    ("title", "q"),
    [
        ("The Who reunite", "the who"),
        ("Why we don't fly", "don't"),
        ("Café opens on the harbour", "cafe"),
        ("Cafe opens on the harbour", "café"),
    ],
)
def test_both_engines_keep_stop_words_and_fold_accents(client, writer, source, title, q):
    expected = post_article(client, writer, title, "Body text.")
    post_article(client, writer, "Other news", "Nothing of the kind.")
    assert hit_ids(client.get("/v1/search", query_string={"q": q, "mode": "keyword"})) == [expected]


def test_excluding_a_common_word_excludes_the_articles_that_have_it(client, writer, source):
    post_article(client, writer, "Ferry returns", "The ferry is back.")
    kept = post_article(client, writer, "Ferry timetable", "Ferries run hourly.")
    query = {"q": "ferry -the", "mode": "keyword"}
    assert hit_ids(client.get("/v1/search", query_string=query)) == [kept]


def test_an_underscore_parts_words_as_both_engines_do(client, writer, source):
    """``_`` is no letter: a query word of underscores alone is no word (PostgreSQL found every
    article for ``storm _``, SQLite none)."""
    found = post_article(client, writer, "Storm hits", "The storm_front arrived.")
    for query in ("storm _", "storm ___", "front", "storm_front"):
        hits = client.get("/v1/search", query_string={"q": query, "mode": "keyword"}).json
        assert [hit["id"] for hit in hits["data"]] == [found], query
