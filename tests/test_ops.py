import datetime
import json
import logging
import os
import re
import shutil

import pytest
from playhouse.pool import MaxConnectionsExceeded

from api import create_app
from api.config import Config, ConfigError
from api.observe import JsonFormatter
from models import LATEST_VERSION, Source, db, is_postgres
from models.migrations import SchemaVersion


def test_healthz_needs_no_database(tmp_path):
    (tmp_path / "db").mkdir()
    app = create_app({"database_url": f"sqlite:///{tmp_path}/db", "testing": True})
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "schema_version": LATEST_VERSION, "problems": []}


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


def test_readyz_with_a_newer_schema_says_to_run_the_newer_code(client, dbconn):
    newer = SchemaVersion.create(version=LATEST_VERSION + 1)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["detail"] == (
        f"The database has schema version {LATEST_VERSION + 1}, newer than this code's"
        f" {LATEST_VERSION}: run the newer version of Newsdesk that upgraded it."
    )
    newer.delete_instance()


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


def test_a_key_in_the_url_is_refused_and_never_logged(client, make_key):
    """A key sent in the query was ignored (the request served as anonymous), written to the
    request log, and named again in the public answer's Link."""
    token = make_key("write")["Authorization"].split()[1]
    capture = Capture()
    logger = logging.getLogger("newsdesk.request")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        for name in ("api_key", "key", "access_token", "API%5FKEY", "token"):
            refused = client.get(f"/v1/articles?limit=1&{name}={token}")
            assert refused.status_code == 400, name
            assert refused.content_type == "application/problem+json"
            assert list(refused.json["errors"]) == [name]
            assert "Link" not in refused.headers and token not in refused.get_data(as_text=True)
        # A post with its key in the URL stores nothing.
        sent = client.post(f"/v1/sources?apikey={token}", json={"slug": "s", "name": "S"})
        assert sent.status_code == 400
    finally:
        logger.removeHandler(capture)
    assert client.get("/v1/sources/s").status_code == 404
    assert len(capture.lines) == 6 and all(token not in line for line in capture.lines)
    assert json.loads(capture.lines[0])["path"] == "/v1/articles?limit=1&api_key=REDACTED"


def test_a_key_under_any_spelling_of_its_names_is_refused_and_never_logged(client, make_key):
    """Only seven spellings were: ``x-api-key`` was refused and ``x_api_key`` served as
    anonymous, its key written whole to the request log."""
    token = make_key("write")["Authorization"].split()[1]
    capture = Capture()
    logger = logging.getLogger("newsdesk.request")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    names = ["x_api_key", "accessToken", "auth_token", "api_key[]", "%20api_key", "Authorization"]
    names += ["client_secret", "password", "bearer", "jwt", "id_token"]
    # Names that hold one of the words (they were served, the key logged whole).
    names += ["secret_key", "api_secret", "passwd", "pwd", "private_key", "access_key"]
    names += ["myapikey", "filter[api_key]"]
    # And any name whose value is a key, even percent-encoded.
    values = {"q": token, "session": token, "since": token.replace("_", "%5F"), "x": f"a,{token}"}
    try:
        for name in names:
            refused = client.get(f"/v1/tags?{name}={token}")
            assert refused.status_code == 400, name
            assert list(refused.json["errors"]) == [name]
        for name, value in values.items():
            refused = client.get(f"/v1/articles?limit=1&{name}={value}")
            assert refused.status_code == 400, name
            assert list(refused.json["errors"]) == [name]
        # Refused first for its control character: the log names the key no more.
        assert client.get(f"/v1/tags?api_key%00={token}").status_code == 400
        # A key in a path: a 404, and the log does not show it either.
        assert client.get(f"/v1/articles/{token}").status_code == 404
    finally:
        logger.removeHandler(capture)
    assert len(capture.lines) == len(names) + len(values) + 2
    assert all(token not in line and "REDACTED" in line for line in capture.lines)
    assert client.get("/v1/tags?keyword=x").status_code == 200  # a name, not a part of one


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
    # Every request header the API reads: an async import, a conditional read, a retry.
    asked = (
        "Prefer, If-Modified-Since, If-None-Match, If-Match, If-Unmodified-Since, X-API-Key,"
        " X-Request-ID, Idempotency-Key"
    )
    preflight = client.options(
        "/v1/import",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
    )
    allowed_headers = preflight.headers["Access-Control-Allow-Headers"].lower().split(", ")
    assert sorted(allowed_headers) == sorted(asked.lower().split(", "))
    other = client.get("/v1/articles", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    # Public answers that differ by Origin: a shared cache must keep them apart, also the
    # answer to no Origin and a 304 (one answered before Flask, one by the app).
    none = client.get("/v1/articles")
    revalidated = client.get("/v1/articles", headers={"If-None-Match": none.headers["ETag"]})
    feed = client.get("/feeds/articles.atom", headers={"Origin": "https://evil.example"})
    assert revalidated.status_code == 304
    for answer in (allowed, other, none, revalidated, feed):
        assert "Origin" in answer.vary, answer.headers
    assert {"Authorization", "X-API-Key", "Accept-Encoding"} <= set(none.vary)


PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}


@pytest.mark.parametrize(
    "app_config", [{"cors_origins": ("https://app.example",), "rate_limit": "2/minute"}]
)
def test_a_preflight_is_answered_whatever_the_rate_limit_left(client):
    for _ in range(2):
        assert client.get("/v1/articles").status_code == 200
    assert client.get("/v1/articles").status_code == 429
    preflight = client.options("/v1/articles", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "RateLimit-Remaining" not in preflight.headers
    assert "Cache-Control" not in preflight.headers  # answers to OPTIONS are not cached


@pytest.mark.parametrize("app_config", [{"rate_limit": "2/minute"}])
def test_options_to_no_route_is_a_404_problem_that_spends_no_budget(client):
    for _ in range(3):
        missing = client.options("/v1/nope")
        assert missing.status_code == 404
        assert missing.content_type == "application/problem+json"
        assert missing.headers["Cache-Control"] == "no-store"
        assert "RateLimit-Remaining" not in missing.headers
    assert client.get("/v1/articles").headers["RateLimit-Remaining"] == "1"


@pytest.mark.parametrize("app_config", [{"cors_origins": ("https://app.example",)}])
def test_a_preflight_allows_the_methods_of_its_route_alone(client, make_article):
    url = f"/v1/articles/{make_article().id}"
    allowed = client.options(url, headers={**PREFLIGHT, "Access-Control-Request-Method": "PATCH"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    methods = allowed.headers["Access-Control-Allow-Methods"]
    assert methods == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    assert set(allowed.headers["Allow"].split(", ")) == set(methods.split(", "))
    for path, method in ((url, "POST"), ("/v1/search", "DELETE"), ("/v1/import", "GET")):
        asked = {**PREFLIGHT, "Access-Control-Request-Method": method}
        refused = client.options(path, headers=asked)
        assert refused.status_code == 200  # the OPTIONS answer; the browser sends nothing
        assert not [n for n, _ in refused.headers.items() if n.startswith("Access-Control")]


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


ELSEWHERE = {"REMOTE_ADDR": "198.51.100.7"}


def test_metrics_are_served_to_loopback_and_admin_keys_by_default(client, make_key):
    served = client.get("/metrics")
    assert served.status_code == 200  # the test client calls from 127.0.0.1
    assert served.headers["Cache-Control"] == "no-store"  # no shared cache serves them on
    refused = client.get("/metrics", environ_base=ELSEWHERE)
    assert refused.status_code == 403
    assert refused.content_type == "application/problem+json"
    assert refused.json["detail"] == (
        "Metrics are served to NEWSDESK_METRICS_ALLOW addresses or admin keys."
    )
    admin = client.get("/metrics", environ_base=ELSEWHERE, headers=make_key("admin"))
    assert admin.status_code == 200 and "newsdesk_requests_total" in admin.get_data(as_text=True)
    writer = client.get("/metrics", environ_base=ELSEWHERE, headers=make_key("write"))
    assert writer.status_code == 403
    unknown = client.get("/metrics", environ_base=ELSEWHERE, headers={"X-API-Key": "nd_guess"})
    assert unknown.status_code == 401 and "WWW-Authenticate" in unknown.headers
    no_address = client.get("/metrics", environ_base={"REMOTE_ADDR": ""})
    assert no_address.status_code == 403  # a Unix socket's peer has no address to allow
    # A key sent is looked up from an allowed address too: a wrong one is never anonymous.
    assert client.get("/metrics", headers={"X-API-Key": "nd_guess"}).status_code == 401
    assert client.get("/metrics", headers=make_key("read")).status_code == 200


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "metrics_allow": Config.from_env(
                {"NEWSDESK_METRICS_ALLOW": "10.0.0.0/8, 198.51.100.7"}
            ).metrics_allow
        }
    ],
)
def test_metrics_allow_lists_addresses_and_networks(client):
    assert client.get("/metrics", environ_base=ELSEWHERE).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.30.40"}).status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback is no longer listed


def test_metrics_allow_star_and_bad_values():
    everyone = Config.from_env({"NEWSDESK_METRICS_ALLOW": "*"}).metrics_allow
    assert [str(network) for network in everyone] == ["0.0.0.0/0", "::/0"]
    with pytest.raises(ConfigError, match="NEWSDESK_METRICS_ALLOW"):
        Config.from_env({"NEWSDESK_METRICS_ALLOW": "10.0.0.0/33"})
    with pytest.raises(ConfigError, match="NEWSDESK_TRUSTED_PROXIES"):
        Config.from_env({"NEWSDESK_TRUSTED_PROXIES": "proxy.internal"})
    assert Config.from_env({"NEWSDESK_TRUSTED_PROXIES": "64"}).trusted_proxies == 64
    with pytest.raises(ConfigError, match="NEWSDESK_TRUSTED_PROXIES must be from 0 to 64"):
        Config.from_env({"NEWSDESK_TRUSTED_PROXIES": "99999999999999999999999"})


@pytest.mark.parametrize("app_config", [{"min_free_disk_mb": 2**40}])
def test_readyz_reports_little_free_disk_on_sqlite(client, database_url):
    response = client.get("/readyz")
    assert response.status_code == 200
    if database_url.startswith("postgresql"):  # the server's disk is not visible from here
        assert response.json["status"] == "ready"
        return
    assert response.json["status"] == "degraded"
    (problem,) = response.json["problems"]
    assert problem.startswith("Only ") and problem.endswith(
        " MB free on the database's disk; writes fail when it is full."
    )


def _fill_the_disk(dbconn):
    """Make the database refuse to grow, as a full disk does: SQLite's max_page_count on the
    connection the requests use; on PostgreSQL a trigger raising the server's 53100 disk_full."""
    if is_postgres():
        db.execute_sql(
            "CREATE FUNCTION disk_is_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'could not extend file: No space left on device'"
            " USING ERRCODE = 'disk_full'; END $$"
        )
        db.execute_sql(
            "CREATE TRIGGER disk_is_full BEFORE INSERT OR UPDATE ON article"
            " FOR EACH ROW EXECUTE FUNCTION disk_is_full()"
        )
    else:
        pages = db.execute_sql("PRAGMA page_count").fetchone()[0]
        db.execute_sql(f"PRAGMA max_page_count = {pages}")


def _free_the_disk(dbconn):
    if is_postgres():
        db.execute_sql("DROP TRIGGER disk_is_full ON article")
        db.execute_sql("DROP FUNCTION disk_is_full()")
    else:
        db.execute_sql("PRAGMA max_page_count = 1073741823")


def test_a_full_disk_is_507_and_readyz_says_so(client, dbconn, writer, source, make_article):
    kept = make_article(title="Kept", source=source)
    body = {"source": "daily", "external_id": "big", "title": "Big", "body_text": "word " * 50000}
    _fill_the_disk(dbconn)
    try:
        refused = client.post("/v1/articles", json=body, headers=writer)
        assert refused.status_code == 507, refused.json
        assert refused.content_type == "application/problem+json"
        assert refused.headers["Retry-After"] == "60"
        assert refused.json["detail"] == (
            "The database's disk is full: nothing can be written until space is freed. Reads work."
        )
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json["status"] == "degraded"
        assert "A write failed 0 s ago: the database's disk is full." in ready.json["problems"]
        listed = client.get("/v1/articles")
        assert listed.status_code == 200
        assert [item["title"] for item in listed.json["data"]] == ["Kept"]
    finally:
        _free_the_disk(dbconn)
    stored = client.post("/v1/articles", json=body, headers=writer)
    assert stored.status_code == 201
    assert client.get(f"/v1/articles/{kept.id}").json["title"] == "Kept"
    assert Source.get(Source.slug == "daily").article_count == 2


@pytest.mark.parametrize("how", ["moved", "replaced", "moved before any write"])
def test_writes_are_refused_while_the_sqlite_file_is_not_at_its_path(
    client, database_url, writer, source, how
):
    """A connection kept open writes on into the file it opened: moved away (or deleted) or
    replaced by another file, the writes would reach a file nothing reads again."""
    if not database_url.startswith("sqlite"):
        pytest.skip("a SQLite file")
    path = database_url.removeprefix("sqlite:///")
    body = {"source": "daily", "title": "Harbour opens", "body_text": "Ferries run again."}
    written = 0 if how == "moved before any write" else 1
    if written:
        assert client.post("/v1/articles", json=body, headers=writer).status_code == 201
    assert client.get("/v1/articles").status_code == 200  # the connection is open
    os.rename(path, f"{path}.moved")
    if how == "replaced":
        shutil.copyfile(f"{path}.moved", path)
    refused = client.post("/v1/articles", json=body, headers=writer)
    assert refused.status_code == 503
    assert refused.content_type == "application/problem+json"
    assert refused.json["detail"].startswith(f"The database file {path} was ")
    assert ("replaced by another file" if how == "replaced" else "deleted or moved") in (
        refused.json["detail"]
    )
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["detail"] == refused.json["detail"]
    os.replace(f"{path}.moved", path)
    assert client.get("/readyz").status_code == 200
    assert client.post("/v1/articles", json=body, headers=writer).status_code == 201
    titles = [item["title"] for item in client.get("/v1/articles").json["data"]]
    assert titles == ["Harbour opens"] * (written + 1)


def test_a_revalidation_while_every_connection_is_in_use_is_a_503_problem(
    client, make_article, monkeypatch
):
    """The early revalidation, outside Flask, hands a busy pool to the app (it answered
    gunicorn's HTML 500 before)."""
    make_article()
    etag = client.get("/v1/articles").headers["ETag"]

    def busy(*args, **kwargs):
        raise MaxConnectionsExceeded("Exceeded maximum connections.")

    monkeypatch.setattr(db.obj, "connect", busy)
    for headers in ({}, {"If-None-Match": etag}):
        response = client.get("/v1/articles", headers=headers)
        assert response.status_code == 503
        assert response.content_type == "application/problem+json"
        assert response.headers["Retry-After"] == "1"


def test_keyed_reads_work_where_nothing_can_be_written(client, dbconn, make_key, make_article):
    """A key's last use is written as it is read, at most once a minute: on a database that
    takes no writes (a full disk, a read-only replica) that write is left for later, and the
    read answered."""
    make_article(title="Kept")
    reader = make_key("read")
    if is_postgres():
        db.execute_sql("SET default_transaction_read_only = on")
    else:
        db.execute_sql("PRAGMA query_only = ON")
    try:
        listed = client.get("/v1/articles", headers=reader)
        assert listed.status_code == 200 and listed.json["data"][0]["title"] == "Kept"
        assert client.get("/v1/me", headers=reader).status_code == 200
    finally:
        if is_postgres():
            db.execute_sql("SET default_transaction_read_only = off")
        else:
            db.execute_sql("PRAGMA query_only = OFF")


def _count(text, **labels):
    """The sum of newsdesk_requests_total's samples whose labels include ``labels``."""
    wanted = [f'{name}="{value}"' for name, value in labels.items()]
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("newsdesk_requests_total{") and all(w in line for w in wanted)
    )


def test_made_up_methods_are_counted_as_one_and_405s_by_their_route(client):
    """Each method a client made up was a series more in the metrics (5,000 of them made a
    scrape take 10 s), and a known path asked with a wrong method was counted as unmatched."""
    before = client.get("/metrics").get_data(as_text=True)
    for method in ("BREW", "X00001", "X00002"):
        assert client.open("/v1/articles", method=method).status_code == 405
    assert client.delete("/v1/tags").status_code == 405
    text = client.get("/metrics").get_data(as_text=True)
    other = {"method": "OTHER", "endpoint": "/v1/articles", "status": "405"}
    assert _count(text, **other) - _count(before, **other) == 3
    wrong = {"method": "DELETE", "endpoint": "/v1/tags", "status": "405"}
    assert _count(text, **wrong) - _count(before, **wrong) == 1
    assert 'method="BREW"' not in text and 'method="X00001"' not in text


@pytest.fixture
def app_logging():
    """The loggers create_app configures, put back as they were after the test."""
    names = ("newsdesk.request", "api", "models", "huey")
    kept = {
        name: (list(logger.handlers), logger.level, logger.propagate)
        for name, logger in ((n, logging.getLogger(n)) for n in names)
    }
    yield
    for name, (handlers, level, propagate) in kept.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def _json_lines(text):
    import json

    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_every_line_logged_for_a_request_carries_its_id(database_url, app_logging, capsys):
    """A 500's traceback was logged without the request's id: it could be matched with its
    request only by the time."""
    app = create_app({"database_url": database_url})  # logs JSON on stderr, as deployed
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "boom-1"
    lines = _json_lines(capsys.readouterr().err)
    (failure,) = [line for line in lines if "error" in line]
    assert failure["request_id"] == "boom-1" and "RuntimeError: boom" in failure["error"]
    (request_line,) = [line for line in lines if line["logger"] == "newsdesk.request"]
    assert request_line["request_id"] == "boom-1" and request_line["status"] == 500
    logging.getLogger("api").warning("outside any request")
    (outside,) = _json_lines(capsys.readouterr().err)
    assert "request_id" not in outside


def test_logged_paths_cannot_forge_lines(client):
    """A line break in a path (%0A) started a forged line in the text log; a path in UTF-8
    was logged as Latin-1 (cafÃ©)."""
    from api.observe import TextFormatter

    capture = Capture()
    capture.setFormatter(TextFormatter())
    logger = logging.getLogger("newsdesk.request")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        client.get("/v1/articles%0A2026-12-02T12:00:00.000Z%20error%20GET%20/admin%20200")
        client.get("/v1/tags/caf%C3%A9?q=%E2%9C%93")
        client.get("/v1/x%250A%2Fy?q=%0A")
    finally:
        logger.removeHandler(capture)
    forged, accented, as_sent = capture.lines
    assert "GET /v1/x%250A%2Fy?q=%0A 400 " in as_sent  # not an escaped break, nor a slash
    assert "\n" not in forged
    assert "GET /v1/articles%0A2026-12-02T12:00:00.000Z%20error%20GET%20/admin%20200 404" in forged
    assert "GET /v1/tags/caf%C3%A9?q=%E2%9C%93 404 " in accented


def test_an_error_before_flask_is_answered_as_a_problem_with_its_id(app_logging, capsys):
    """An error raised outside Flask (in a middleware before it) reached gunicorn, which
    answered a bare 500 without the request id or security headers and logged its traceback
    in its own format."""
    from werkzeug.test import Client

    from api.observe import RequestLog, configure_logging

    configure_logging("info")

    def failing(environ, start_response):
        raise RuntimeError("before flask")

    response = Client(RequestLog(failing)).get("/v1/articles", headers={"X-Request-ID": "pre-1"})
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["X-Request-ID"] == "pre-1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json["status"] == 500
    lines = _json_lines(capsys.readouterr().err)
    (failure,) = [line for line in lines if "error" in line]
    assert failure["request_id"] == "pre-1" and "RuntimeError: before flask" in failure["error"]


def test_the_early_304_leaves_an_unexpected_database_error_to_the_app(
    database_url, app_logging, make_article
):
    """A database error other than the database being away (here, a column renamed under the
    server) escaped the early 304 as gunicorn's bare 500 (PostgreSQL raises ProgrammingError)."""
    article = make_article()
    app = create_app({"database_url": database_url})
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    etag = client.get(f"/v1/articles/{article.id}").headers["ETag"]
    with db.connection_context():
        db.execute_sql('ALTER TABLE "article" RENAME COLUMN "version" TO "version_x"')
    try:
        response = client.get(
            f"/v1/articles/{article.id}",
            headers={"If-None-Match": etag, "X-Request-ID": "early-1"},
        )
    finally:
        with db.connection_context():
            db.execute_sql('ALTER TABLE "article" RENAME COLUMN "version_x" TO "version"')
    # What the app answers such errors with: SQLite's is an OperationalError (503, as when the
    # database is away), PostgreSQL's a ProgrammingError.
    assert response.status_code == (500 if database_url.startswith("postgres") else 503)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["X-Request-ID"] == "early-1"


def test_a_message_huey_repeats_is_logged_once_a_minute():
    """Huey's consumer logged 'Error reading from queue' with its traceback twice a second
    while Redis was down (10 KB/s of log)."""
    from api.observe import Repeats

    capture = Capture()
    capture.addFilter(Repeats(seconds=60))
    logger = logging.getLogger("huey.consumer.test")
    logger.addHandler(capture)
    try:
        for _ in range(5):
            logger.error("Error reading from queue")
        logger.error("Something else")
        for task in ("deliver", "deliver", "embed"):  # one template, two tasks
            logger.error("Unhandled exception in task %s.", task)
    finally:
        logger.removeHandler(capture)
    assert [line["message"] for line in _json_lines("\n".join(capture.lines))] == [
        "Error reading from queue",
        "Something else",
        "Unhandled exception in task deliver.",
        "Unhandled exception in task embed.",
    ]


def test_readiness_and_metrics_say_when_no_worker_does_the_work_waiting(database_url, make_article):
    """Work waited for a worker that was not running (31 writes' embeddings, related lists and
    webhook events) and /readyz said ready, /metrics nothing of it."""
    from api import tasks
    from models import EmbeddingQueue, RelatedQueue, utcnow

    tasks.huey.delete(tasks.BACKLOG)  # no sweep measured it yet
    article = make_article()
    app = create_app({"database_url": database_url, "testing": True, "tasks_immediate": False})
    client = app.test_client()
    long_ago = utcnow() - datetime.timedelta(minutes=10)
    with db.connection_context():
        EmbeddingQueue.create(article=article, queued_at=long_ago)
        RelatedQueue.create(article=article, queued_at=utcnow())

    def waited(seconds, since=long_ago, least=600):
        """Whether ``seconds``, as read, is how long ago ``since`` was (``least`` at first):
        to the second (``utcnow`` is), and the test takes time (on a busy machine a request
        took 2 s, and 603 was read where 600-602 was asserted)."""
        return least <= float(seconds) <= (utcnow() - since).total_seconds() + 1

    ready = client.get("/readyz").json
    assert ready["status"] == "degraded"
    (problem,) = ready["problems"]
    found = re.fullmatch(
        r"Background work waits \(embeddings, related_lists, the oldest for (\d+) s\) and no"
        r" worker has swept yet: run `newsdesk worker` \(it is all recorded: none is lost\)\.",
        problem,
    )
    assert found and waited(found.group(1)), problem
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "newsdesk_worker_last_sweep_seconds -1.0" in metrics
    assert "newsdesk_backlog_items" not in metrics  # until a sweep measures it

    tasks.sweep.call_local()  # a worker's sweep: it does the work, says it ran, measures
    with db.connection_context():
        assert tasks.last_backlog() is not None
        assert EmbeddingQueue.select().count() == RelatedQueue.select().count() == 0
        EmbeddingQueue.create(article=article, queued_at=long_ago)
    assert client.get("/readyz").json["problems"] == []  # behind, but a worker runs
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'newsdesk_backlog_items{queue="embeddings"} 0.0' in metrics  # as the sweep left it
    assert re.search(r"^newsdesk_worker_last_sweep_seconds [0-2]\.\d+", metrics, re.M)

    tasks.record_backlog()
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'newsdesk_backlog_items{queue="embeddings"} 1.0' in metrics
    assert 'newsdesk_backlog_items{queue="webhook_deliveries"} 0.0' in metrics
    found = re.search(
        r'^newsdesk_backlog_oldest_seconds\{queue="embeddings"\} (\d+\.\d+)$', metrics, re.M
    )
    assert found and waited(found.group(1)), metrics

    swept = tasks.last_backlog()
    earlier = swept["at"] - datetime.timedelta(minutes=5)
    tasks.huey.put(tasks.BACKLOG, {**swept, "at": earlier})
    (problem,) = client.get("/readyz").json["problems"]
    found = re.search(
        r"\(embeddings, the oldest for (\d+) s\) and no worker has swept for (\d+) s", problem
    )
    assert found and waited(found.group(1)), problem
    assert waited(found.group(2), since=earlier, least=300), problem
