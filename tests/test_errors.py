import pytest

from api import create_app, paging

PROBLEM = "application/problem+json"


def assert_problem(response, status):
    assert response.status_code == status
    assert response.content_type == PROBLEM
    body = response.json
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
def test_unknown_path_is_404_problem(client, method):
    response = client.open("/no/such/path", method=method)
    assert response.status_code == 404
    assert response.content_type == PROBLEM
    if method != "HEAD":
        assert response.json["title"] == "Not Found"


@pytest.mark.parametrize("path", ["/v1//articles", "/v1/articles//1", "//v1/tags"])
def test_doubled_slashes_are_404_problem_not_a_redirect(client, make_article, path):
    make_article()
    body = assert_problem(client.get(path), 404)
    assert body["title"] == "Not Found"


def test_wrong_method_is_405_with_allow(client):
    body = assert_problem(client.delete("/v1/tags"), 405)
    assert body["title"] == "Method Not Allowed"
    assert set(client.delete("/v1/tags").headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    allow = client.put("/v1/sources", json={}).headers["Allow"]
    assert set(allow.split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


@pytest.mark.parametrize("value", ["", "bad", "2026-13-01", "2026-11-01T25:00:00Z"])
def test_a_time_that_is_no_time_has_one_message_whatever_its_form(client, value):
    body = assert_problem(client.get("/v1/articles", query_string={"published_after": value}), 422)
    assert body["errors"] == {"published_after": ["Not a valid date or RFC 3339 timestamp."]}


@pytest.mark.parametrize(
    "query, bad",
    [
        ("limit=0", {"limit"}),
        ("limit=101", {"limit"}),
        ("limit=ten", {"limit"}),
        ("limit=3_0", {"limit"}),
        ("limit=%2B3", {"limit"}),
        ("limit=%203", {"limit"}),
        ("limit=%D9%A3", {"limit"}),  # ٣, ARABIC-INDIC DIGIT THREE
        ("limit=%EF%BC%93", {"limit"}),  # ３, FULLWIDTH DIGIT THREE
        ("limit=3.0", {"limit"}),
        ("sort=title", {"sort"}),
        ("published_after=yesterday", {"published_after"}),
        ("limit=0&sort=x&updated_since=2026-13-45", {"limit", "sort", "updated_since"}),
    ],
)
def test_bad_query_parameters_are_named(client, query, bad):
    body = assert_problem(client.get(f"/v1/articles?{query}"), 422)
    assert set(body["errors"]) == bad
    assert all(isinstance(messages, list) and messages for messages in body["errors"].values())


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tags",
        "/v1/changes",
        "/v1/stories",
        "/v1/articles/{id}/summary?q=x",
        "/feeds/articles.atom",
        "/feeds/articles.json",
    ],
)
def test_counts_in_a_query_are_digits_only(client, make_article, path):
    article = make_article()
    name = "sentences" if "summary" in path else "limit"
    url = path.format(id=article.id)
    joiner = "&" if "?" in url else "?"
    assert client.get(f"{url}{joiner}{name}=3").status_code == 200
    body = assert_problem(client.get(f"{url}{joiner}{name}=3_0"), 422)
    assert body["errors"] == {name: ["Not a whole number written in the digits 0-9."]}


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "a.b.c",
        "WyItcHVibGlzaGVkX2F0IiwiMjAyNi0xMS0wMVQxMzowMDowMCIsMV0.AAAAAAAAAAAAAAAA",
        "%00%ff",
    ],
)
def test_bad_cursor_is_400(client, cursor):
    body = assert_problem(client.get(f"/v1/articles?cursor={cursor}"), 400)
    assert list(body["errors"]) == ["cursor"]


def test_tampered_and_foreign_cursors_are_400(client, make_article):
    for _ in range(3):
        make_article()
    cursor = client.get("/v1/articles?limit=1").json["next_cursor"]
    body, mac = cursor.split(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    assert_problem(client.get(f"/v1/articles?cursor={tampered}"), 400)
    # A cursor is bound to its ordering and its list.
    assert_problem(client.get(f"/v1/articles?sort=published_at&cursor={cursor}"), 400)
    assert_problem(client.get(f"/v1/sources?cursor={cursor}"), 400)
    assert client.get(f"/v1/articles?cursor={cursor}").status_code == 200


def test_a_cursor_of_a_filtered_list_is_400_with_other_filters(app, client, make_article, make_key):
    """A cursor holds a place in one list: with other filters it is a 400 saying so (it gave a
    page of the other list from that place, skipping or repeating). Limit and fields may
    change; a comma list may come in another order; a cursor made before cursors were bound
    to their filters still pages on."""
    made = [make_article(tags=["climate", "energy"]) for _ in range(3)]
    make_article(tags=["sport"])
    cursor = client.get("/v1/articles?tag=climate,energy&limit=1").json["next_cursor"]
    for other in ("tag=sport", "tag=climate", "", "tag=climate,energy&language=en"):
        body = assert_problem(client.get(f"/v1/articles?{other}&limit=1&cursor={cursor}"), 400)
        assert "other filters" in body["errors"]["cursor"][0], other
    for same in (
        "tag=energy,climate&limit=1",
        "tag=climate,energy,climate&limit=1",
        "tag=climate,energy&limit=5&fields=id",
    ):
        response = client.get(f"/v1/articles?{same}&cursor={cursor}")
        assert response.status_code == 200, response.json
        assert response.json["data"][0]["id"] == made[1].id
    # As the version before made it: the tag alone.
    with app.test_request_context():
        key = app.config["NEWSDESK"].key_for("cursors")
        last = made[2]
        unbound = paging.encode_cursor("-published_at", [last.published_at, last.id], key)
    response = client.get(f"/v1/articles?tag=climate,energy&limit=1&cursor={unbound}")
    assert response.status_code == 200 and response.json["data"][0]["id"] == made[1].id
    # Drafts are another list.
    writer = make_key("write")
    for _ in range(2):
        make_article(status="draft")
    cursor = client.get("/v1/articles?status=draft&limit=1", headers=writer).json["next_cursor"]
    body = assert_problem(client.get(f"/v1/articles?limit=1&cursor={cursor}", headers=writer), 400)
    assert "other filters" in body["errors"]["cursor"][0]
    # An empty filter is none.
    cursor = client.get("/v1/articles?limit=1").json["next_cursor"]
    assert client.get(f"/v1/articles?tag=&limit=1&cursor={cursor}").status_code == 200


def test_unexpected_failure_is_500_without_internals(database_url):
    app = create_app({"database_url": database_url})
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals /etc/passwd")

    response = app.test_client().get("/boom")
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["title"] == "Internal Server Error"


def test_database_unreachable_is_503(tmp_path):
    # A directory where the database file should be: SQLite cannot open it.
    (tmp_path / "db").mkdir()
    app = create_app({"database_url": f"sqlite:///{tmp_path}/db"})
    response = app.test_client().get("/v1/articles")
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "1"
    assert app.test_client().get("/healthz").status_code == 200


@pytest.mark.parametrize("method, path", [("POST", "/v1/sources"), ("PATCH", "/v1/articles/1")])
def test_an_empty_json_body_is_400(client, make_article, make_key, method, path):
    make_article()
    response = client.open(
        path, method=method, data=" ", content_type="application/json", headers=make_key("write")
    )
    body = assert_problem(response, 400)
    assert body["errors"] == {"$": ["The body is empty: send a JSON object."]}
