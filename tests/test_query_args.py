"""Query-argument schemas load field by field (schemas.common.QueryArgs): the same result as
marshmallow's own load, or the same errors, for any query."""

import random

import pytest
from marshmallow import EXCLUDE, Schema, ValidationError

from api.feeds import FeedArgs
from schemas.articles import ArticleQueryArgs, ChangeArgs, FieldsArgs, RelatedArgs, SearchArgs
from schemas.common import PageArgs
from schemas.summaries import SummaryArgs

VALUES = [
    "", " ", "0", "1", "20", "100", "101", "-1", "+5", " 7 ", "1_000", "2.5", "abc", "99999999999",
    "2026-11-28", "2026-11-28T09:55:56Z", "2026-11-28T09:55:56+02:00", "2026-11-28T09:55:56.123Z",
    "2026-02-30", "2026-11-28T25:00:00Z", "yesterday", "daily", "daily,wire", "daily,,wire",
    " daily , wire ", "a\tb", "en", "de,fr", "-published_at", "published_at", "-updated_at",
    "relevance", "title", "id,title", "id,nope", "source,tag", "storm", '"exact phrase"', "x" * 600,
]
NAMES = [
    "limit", "cursor", "fields", "source", "tag", "language", "published_after",
    "published_before", "updated_since", "sort", "q", "facets", "since", "sentences", "other",
]
SCHEMAS = [ArticleQueryArgs, SearchArgs, FieldsArgs, RelatedArgs, ChangeArgs, PageArgs, SummaryArgs, FeedArgs]


def outcome(load, data):
    try:
        return "ok", load(data, unknown=EXCLUDE)
    except ValidationError as error:
        return "error", error.messages


@pytest.mark.parametrize("schema_class", SCHEMAS, ids=lambda cls: cls.__name__)
def test_field_by_field_loading_equals_marshmallow(schema_class):
    schema = schema_class()
    rng = random.Random(schema_class.__name__)
    queries = [{}] + [
        {name: rng.choice(VALUES) for name in rng.sample(NAMES, rng.randint(1, 6))} for _ in range(1500)
    ]
    for query in queries[::2]:
        query.setdefault("q", "storm")  # search's one required argument, mostly given
    loaded = 0
    for query in queries:
        fast = outcome(schema.load, query)
        assert fast == outcome(lambda data, **kw: Schema.load(schema, data, **kw), query), query
        loaded += fast[0] == "ok"
    assert loaded > 100  # the comparison covered successful loads, not only errors


def test_other_calls_go_to_marshmallow():
    schema = ArticleQueryArgs()
    with pytest.raises(ValidationError) as raised:
        schema.load({"limit": "5", "other": "x"})  # unknown fields are errors by default
    assert raised.value.messages == {"other": ["Unknown field."]}
    assert schema.load([{"limit": "5"}], many=True, unknown=EXCLUDE)[0]["limit"] == 5


def test_query_strings_read_as_parse_qsl_reads_them():
    """Unescaped queries are split without parse_qsl; the first value of each key either way."""
    from types import SimpleNamespace
    from urllib.parse import parse_qsl

    from api.http import ArgumentParser

    parser = ArgumentParser()
    rng = random.Random(11)
    alphabet = ["a", "b", "=", "&", ";", "é", "-", ",", "1", "%", "%20", "%2C", "+", "%zz"]
    for _ in range(5000):
        query = "".join(rng.choice(alphabet) for _ in range(rng.randrange(14)))
        request = SimpleNamespace(query_string=query.encode())
        expected = {}
        for key, value in parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"):
            expected.setdefault(key, value)
        assert parser.load_querystring(request, None) == expected, query
