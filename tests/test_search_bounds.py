"""Search answers in bounded time: the worst query shapes give the straightforward plan's
answers, shapes past the limits are a 400 naming q, and a statement past the time limit is a
503 after which the connection serves the next request."""

import collections
import dataclasses
import datetime
import random

import pytest

from api.config import Config, ConfigError
from api.demo import load_demo
from models import Article, ArticleTag, Source, Tag, connected, is_postgres
from models import search as search_index
from models.query import (
    MAX_ALTERNATIVES,
    MAX_EXCLUDED,
    MAX_PHRASE_WORDS,
    MAX_WORDS,
    parse_query,
)
from schemas.articles import SearchArgs

from .conftest import BASE_TIME

#: The corpus's words: a few in nearly every article, the others rarer.
COMMON = ["harbour", "council", "weather"]
RARE = ["ferry", "bridge", "tunnel", "school", "budget", "festival", "market", "river", "storm"]
RARE += ["library", "museum", "station", "garden", "stadium", "airport", "hospital"]
#: Words about half the articles have one of, for exclusions.
SOMETIMES = ["lantern", "pier", "quay", "dock", "lighthouse", "anchor", "sail", "crane"]
SOMETIMES += ["barge", "buoy", "tide", "gull", "net", "rope", "cargo", "mast"]
#: A sentence some articles hold, for phrases as long as allowed.
SENTENCE = ["night", "ferry", "crossing", "resumed", "after", "winter", "repairs", "ended"]


@pytest.fixture
def corpus(make_article, make_source):
    """Sixty articles of two sources and two languages with tags, some drafts, and texts drawn
    from a small vocabulary, so that every query shape has hits and scores vary."""
    rng = random.Random(15)
    sources = [make_source(slug="coast-news", name="Coast News"), None]
    sources[1] = make_source(slug="valley-daily", name="Valley Daily", language="de")
    for number in range(60):
        words = rng.choices(COMMON, k=rng.randint(1, 4)) + rng.choices(RARE, k=rng.randint(2, 9))
        if rng.random() < 0.5:
            words.append(rng.choice(SOMETIMES))
        rng.shuffle(words)
        if number % 7 == 0:
            words += SENTENCE
        title_words = rng.sample(COMMON + RARE, 2)
        make_article(
            title=" ".join(title_words).capitalize(),
            body=" ".join(words) + ".\n\n" + " ".join(rng.choices(RARE, k=5)) + ".",
            tags=rng.sample(["transport", "culture", "money", "weather"], rng.randint(0, 2)),
            source=sources[number % 2],
            language=("en", "de")[number % 3 == 0],
            published_at=BASE_TIME + datetime.timedelta(hours=rng.randint(0, 400)),
            status="draft" if number % 11 == 5 else "published",
        )


def straightforward(parsed, sort, **filters):
    """``[(id, score)]`` of every hit by the plan searches used before bounds: one query
    joining the articles to the matches of the whole expression, ordered in full."""
    if is_postgres():
        query, score = search_index._matching_pg(search_index._pg_tsquery(parsed))
    else:
        query, score = search_index._matching_fts(search_index._fts_expression(parsed))
    query = Article.filtered(query, **filters).select(Article.id, score)
    if sort == "relevance":
        query = query.order_by(score.desc(), Article.id.desc())
    else:
        query = query.order_by(Article.published_at.desc(), Article.id.desc())
    with connected():
        return [(article_id, round(value, 6)) for article_id, value in query.tuples()]


def facet_counts(ids, names):
    """The facets of the hits ``ids``, counted in Python: the answer's ``facets``."""
    with connected():
        rows = list(
            Article.select(Article.id, Source.slug, Article.language)
            .join(Source)
            .where(Article.id.in_(ids))
            .tuples()
        )
        tags = list(
            ArticleTag.select(Tag.slug).join(Tag).where(ArticleTag.article.in_(ids)).tuples()
        )
    counters = {
        "source": collections.Counter(slug for _, slug, _ in rows),
        "language": collections.Counter(language for _, _, language in rows),
        "tag": collections.Counter(slug for (slug,) in tags),
    }
    return {
        name: [
            {"value": value, "count": count}
            for value, count in sorted(counters[name].items(), key=lambda item: (-item[1], item[0]))
        ]
        for name in names
    }


def walk(client, params):
    """Every hit of a search, page by page (3 a page): ``([(id, score)], first page's body)``."""
    hits, cursor, first = [], None, None
    while True:
        page_params = {
            "mode": "keyword",
            **params,
            "limit": 3,
            **({"cursor": cursor} if cursor else {}),
        }
        response = client.get("/v1/search", query_string=page_params)
        assert response.status_code == 200, response.json
        first = first or response.json
        hits += [(hit["id"], hit["score"]) for hit in response.json["data"]]
        cursor = response.json["next_cursor"]
        if not cursor:
            return hits, first


FILTERS = {
    "none": ({}, {}),
    "every filter": (
        {
            "source": "coast-news,valley-daily",
            "tag": "transport,culture,weather",
            "language": "en,de",
            "published_after": "2026-11-02T00:00:00Z",
            "published_before": "2026-11-18T00:00:00Z",
            "updated_since": "2026-11-01T00:00:00Z",
        },
        {
            "sources": ["coast-news", "valley-daily"],
            "tags": ["transport", "culture", "weather"],
            "languages": ["en", "de"],
            "published_after": datetime.datetime(2026, 11, 2),
            "published_before": datetime.datetime(2026, 11, 18),
            "updated_since": datetime.datetime(2026, 11, 1),
        },
    ),
    "one language": ({"language": "en"}, {"languages": ["en"]}),
}

#: The worst shapes the limits allow, over the test corpus's words.
SHAPES = {
    "most exclusions": " ".join(["harbour"] + [f"-{word}" for word in SOMETIMES[:MAX_EXCLUDED]]),
    "most alternatives": " OR ".join(RARE[:MAX_ALTERNATIVES]),
    "longest phrase": '"' + " ".join(SENTENCE[:MAX_PHRASE_WORDS]) + '"',
    "common words": " ".join(COMMON),
    "every kind": f'"{" ".join(SENTENCE[:3])}" harbour OR council -market -"budget festival"',
    "alternatives and exclusions": (
        " OR ".join(COMMON + RARE[: MAX_ALTERNATIVES - len(COMMON)])
        + " "
        + " ".join(f"-{word}" for word in SOMETIMES[-4:])
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_worst_shapes_answer_what_the_straightforward_plan_does(client, corpus, shape):
    query = SHAPES[shape]
    parsed = parse_query(query)
    for sort in ("relevance", "-published_at"):
        for name, (params, filters) in FILTERS.items():
            expected = straightforward(parsed, sort, **filters)
            hits, first = walk(
                client, {"q": query, "sort": sort, "facets": "source,tag,language", **params}
            )
            assert [i for i, _ in hits] == [i for i, _ in expected], (sort, name)
            assert [s for _, s in hits] == pytest.approx([s for _, s in expected]), (sort, name)
            assert first["facets"] == facet_counts(
                [i for i, _ in expected], ["source", "tag", "language"]
            ), (sort, name)
    assert straightforward(parsed, "relevance"), "the shape finds something in the corpus"


def test_drafts_and_exclusions_are_left_out(client, corpus):
    everything = {i for i, _ in walk(client, {"q": "harbour OR council OR weather"})[0]}
    with connected():
        drafts = {a.id for a in Article.select(Article.id).where(Article.status == "draft")}
    ferry = {i for i, _ in walk(client, {"q": "ferry"})[0]}
    assert drafts and not drafts & everything
    kept = {i for i, _ in walk(client, {"q": "harbour OR council OR weather -ferry"})[0]}
    assert kept == everything - ferry and ferry & everything


def _words(count, prefix="w"):
    return [f"{prefix}{n}" for n in range(count)]


@pytest.mark.parametrize(
    "query, limit",
    [
        (" ".join(_words(MAX_WORDS + 1)), MAX_WORDS),
        ("ferry " * (MAX_WORDS - 1) + '-"a b"', MAX_WORDS),
        (" OR ".join(_words(MAX_ALTERNATIVES + 1)), MAX_ALTERNATIVES),
        ("a OR b " * ((MAX_ALTERNATIVES + 2) // 2), MAX_ALTERNATIVES),
        ("ferry " + " ".join(f"-{w}" for w in _words(MAX_EXCLUDED + 1)), MAX_EXCLUDED),
        ('"' + " ".join(_words(MAX_PHRASE_WORDS + 1)) + '"', MAX_PHRASE_WORDS),
        ('-"' + " ".join(_words(MAX_PHRASE_WORDS + 1)) + '" ferry', MAX_PHRASE_WORDS),
        (
            " ".join(
                '"' + " ".join(_words(MAX_PHRASE_WORDS, f"p{n}x")) + '"'
                for n in range(MAX_WORDS // MAX_PHRASE_WORDS + 1)
            ),
            MAX_WORDS,
        ),
    ],
    ids=[
        "words",
        "words-excluded",
        "alternatives",
        "alternatives-in-clauses",
        "exclusions",
        "phrase",
        "excluded-phrase",
        "phrase-words",
    ],
)
def test_shapes_past_the_limits_are_400_naming_q(client, query, limit):
    response = client.get("/v1/search", query_string={"q": query})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert list(response.json["errors"]) == ["q"]
    (message,) = response.json["errors"]["q"]
    assert f"at most {limit} " in message and response.json["detail"] == message


@pytest.mark.parametrize(
    "query",
    [
        " ".join(_words(MAX_WORDS - MAX_EXCLUDED) + [f"-x{n}" for n in range(MAX_EXCLUDED)]),
        " OR ".join(_words(MAX_ALTERNATIVES)),
        '"' + " ".join(_words(MAX_PHRASE_WORDS)) + '"',
        " ".join(
            '"' + " ".join(_words(MAX_PHRASE_WORDS, f"p{n}x")) + '"'
            for n in range(MAX_WORDS // MAX_PHRASE_WORDS)
        ),
    ],
    ids=["words-and-exclusions", "alternatives", "phrase", "phrase-words"],
)
def test_shapes_at_the_limits_are_searched(client, corpus, query):
    response = client.get("/v1/search", query_string={"q": query})
    assert response.status_code == 200, response.json
    assert response.json["data"] == []


@pytest.fixture
def big_corpus(dbconn):
    """Enough articles (demo data) that a broad search takes well over a millisecond."""
    load_demo(articles=3000, seed=3)


#: Words in most English demo articles, as many alternatives as allowed.
BROAD = " OR ".join(
    ["said", "officials", "critics", "analysts", "residents", "supporters", "questions"][
        :MAX_ALTERNATIVES
    ]
)


@pytest.mark.parametrize("app_config", [{"statement_timeout_ms": 1}])
def test_a_search_past_the_time_limit_is_503_and_the_next_request_works(app, client, big_corpus):
    params = {
        "q": BROAD,
        "facets": "source,tag,language",
        "sort": "-published_at",
        "mode": "keyword",
    }
    response = client.get("/v1/search", query_string=params)
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert response.json["status"] == 503 and "1 ms" in response.json["detail"]

    # The same connection, without the limit: the search answers in full.
    app.config["NEWSDESK"] = dataclasses.replace(app.config["NEWSDESK"], statement_timeout_ms=0)
    response = client.get("/v1/search", query_string=params)
    assert response.status_code == 200
    assert len(response.json["data"]) == 20 and response.json["facets"]["language"]
    assert client.get("/v1/articles", query_string={"limit": 1}).status_code == 200


@pytest.mark.parametrize("app_config", [{"statement_timeout_ms": 60_000}])
def test_a_search_within_the_time_limit_answers(client, big_corpus):
    params = {"q": BROAD, "facets": "source", "mode": "keyword"}
    response = client.get("/v1/search", query_string=params)
    assert response.status_code == 200
    assert sum(v["count"] for v in response.json["facets"]["source"]) > 1000


def test_statement_timeout_is_configured():
    assert Config.from_env({}).statement_timeout_ms == 2000
    config = Config.from_env({"NEWSDESK_STATEMENT_TIMEOUT_MS": "0"})
    assert config.statement_timeout_ms == 0
    with pytest.raises(ConfigError, match="NEWSDESK_STATEMENT_TIMEOUT_MS"):
        Config.from_env({"NEWSDESK_STATEMENT_TIMEOUT_MS": "soon"})


def test_the_q_description_states_the_limits():
    description = SearchArgs().fields["q"].metadata["description"]
    assert f"At most {MAX_WORDS} words" in description
    assert f"{MAX_ALTERNATIVES} alternatives joined by OR" in description
    assert f"{MAX_EXCLUDED} exclusions" in description
    assert f"{MAX_PHRASE_WORDS} words in a phrase" in description
