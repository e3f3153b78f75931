import logging

import pytest

from api import create_app
from api.observe import JsonFormatter
from models import LATEST_VERSION
from models.migrations import SchemaVersion


def test_healthz_needs_no_database(tmp_path):
    (tmp_path / "db").mkdir()
    app = create_app({"database_url": f"sqlite:///{tmp_path}/db", "testing": True})
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready" and response.json["schema_version"] == LATEST_VERSION


def test_readyz_with_an_old_schema_is_503(client, dbconn):
    SchemaVersion.delete().execute()
    SchemaVersion.create(version=1)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert "newsdesk db init" in response.json["detail"]
    assert response.headers["Retry-After"] == "5"
    # Only the stamp was old: put it back, or the next test would upgrade a current schema.
    SchemaVersion.create(version=LATEST_VERSION)


def test_readyz_without_a_database_is_503(tmp_path):
    (tmp_path / "db").mkdir()
    app = create_app({"database_url": f"sqlite:///{tmp_path}/db", "testing": True})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"


def _sample(text, endpoint, status):
    for line in text.splitlines():
        if (
            line.startswith("newsdesk_requests_total{")
            and f'endpoint="{endpoint}"' in line
            and f'status="{status}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_per_endpoint_and_status(client):
    before = client.get("/metrics").get_data(as_text=True)
    for _ in range(3):
        client.get("/v1/tags")
    client.get("/v1/tags/none")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert _sample(text, "/v1/tags", "200") - _sample(before, "/v1/tags", "200") == 3
    assert _sample(text, "/v1/tags/<slug>", "404") - _sample(before, "/v1/tags/<slug>", "404") == 1
    assert "newsdesk_request_duration_seconds_bucket" in text


def test_request_id_is_echoed_or_made(client):
    given = client.get("/v1/tags", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/v1/tags", headers={"X-Request-ID": "bad id\twith junk"}).headers[
        "X-Request-ID"
    ]
    assert made != "bad id\twith junk" and len(made) == 32
    assert len(client.get("/nope").headers["X-Request-ID"]) == 32


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []
        self.setFormatter(JsonFormatter())

    def emit(self, record):
        self.lines.append(self.format(record))


def test_one_json_log_line_per_request_without_keys(client, make_key):
    capture = Capture()
    logger = logging.getLogger("newsdesk.request")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        headers = make_key("write")
        token = headers["Authorization"].split()[1]
        client.post(
            "/v1/sources",
            json={"slug": "s", "name": "S"},
            headers={**headers, "X-Request-ID": "req-1"},
        )
        client.get("/v1/me", headers={"X-API-Key": token})
    finally:
        logger.removeHandler(capture)
    assert len(capture.lines) == 2
    import json

    entry = json.loads(capture.lines[0])
    assert entry["request_id"] == "req-1" and entry["method"] == "POST"
    assert entry["path"] == "/v1/sources" and entry["status"] == 201
    assert entry["duration_ms"] >= 0 and entry["key_id"] == 1
    assert all(token not in line for line in capture.lines)


@pytest.mark.parametrize("url", ["/v1/articles", "/nope", "/v1/articles?limit=0", "/docs"])
def test_security_headers(client, url):
    response = client.get(url)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response.headers


def test_cors_is_off_by_default(client):
    response = client.get("/v1/articles", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("app_config", [{"cors_origins": ("https://app.example",)}])
def test_cors_when_configured(client):
    allowed = client.get("/v1/articles", headers={"Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "ETag" in allowed.headers["Access-Control-Expose-Headers"]
    preflight = client.options(
        "/v1/articles",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    other = client.get("/v1/articles", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_url_too_long_is_414(client):
    response = client.get("/v1/articles?source=" + "a" * 5000)
    assert response.status_code == 414
    assert response.content_type == "application/problem+json"


HOSTILE = [
    "' OR '1'='1",
    "1; DROP TABLE article; --",
    "../../etc/passwd",
    "%00",
    "<script>alert(1)</script>",
    '{"$gt": ""}',
    "a" * 1000,
    "*",
    "😀",
    "\\",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "url",
    [
        "/v1/articles?source={}",
        "/v1/articles?tag={}",
        "/v1/articles?language={}",
        "/v1/articles?cursor={}",
        "/v1/articles?fields={}",
        "/v1/articles?sort={}",
        "/v1/search?q={}",
        "/v1/search?q=storm&tag={}",
        "/v1/changes?since={}",
        "/v1/articles/{}",
        "/v1/articles/{}/related",
        "/v1/sources/{}",
        "/feeds/articles.atom?source={}",
    ],
)
def test_hostile_input_never_gives_5xx(client, make_article, url, value):
    make_article()
    response = client.get(url.format(value))
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.status_code in (200, 400, 404, 414, 422)


def test_hooks_and_views_are_called_as_they_are_unless_coroutine_functions(tmp_path):
    """The app remembers which functions are coroutine functions: plain ones (and methods bound
    to a new view each request) come back as they are, async ones still go to async_to_sync."""
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'x.db'}", "testing": True})

    def plain():
        return "plain"

    async def coroutine():
        return "coroutine"

    class View:
        def get(self):
            return "bound"

    assert app.ensure_sync(plain) is plain
    assert app.ensure_sync(plain) is plain
    first, second = View().get, View().get
    assert app.ensure_sync(first) is first and app.ensure_sync(second) is second
    wrapped = []
    app.async_to_sync = lambda func: wrapped.append(func) or (lambda: "wrapped")
    assert app.ensure_sync(coroutine)() == "wrapped"
    assert app.ensure_sync(coroutine)() == "wrapped"
    assert wrapped == [coroutine, coroutine]


def test_text_log_lines_for_terminals_carry_the_query(client):
    from api.observe import TextFormatter

    class Capture(logging.Handler):
        def __init__(self):
            super().__init__()
            self.setFormatter(TextFormatter())
            self.lines = []

        def emit(self, record):
            self.lines.append(self.format(record))

    capture = Capture()
    logger = logging.getLogger("newsdesk.request")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        client.get("/v1/articles?limit=5&fields=id", headers={"X-Request-ID": "req-2"})
    finally:
        logger.removeHandler(capture)
    (line,) = capture.lines
    assert "info    GET /v1/articles?limit=5&fields=id 200 " in line
    assert line.endswith("rid=req-2") and line[:4].isdigit()


def test_a_bad_log_format_is_refused():
    from api.config import Config, ConfigError

    with pytest.raises(ConfigError, match="NEWSDESK_LOG_FORMAT must be one of json, text"):
        Config.from_env({"NEWSDESK_LOG_FORMAT": "xml"})
