import pytest
from click.testing import CliRunner

from api.cli import main
from models import ApiKey, db, utcnow

NEW_SOURCE = {"slug": "wire", "name": "The Wire"}


def test_bearer_and_x_api_key_both_work(client, make_key):
    bearer, x_api_key = make_key("write"), make_key("write", header="x-api-key")
    assert (
        client.post("/v1/sources", json={"slug": "a", "name": "A"}, headers=bearer).status_code
        == 201
    )
    assert (
        client.post("/v1/sources", json={"slug": "b", "name": "B"}, headers=x_api_key).status_code
        == 201
    )


def test_missing_key_is_401_with_challenge(client):
    response = client.post("/v1/sources", json=NEW_SOURCE)
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="newsdesk"'
    assert "write" in response.json["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer nd_not-a-real-key"},
        {"X-API-Key": "nd_not-a-real-key"},
        {"Authorization": "Bearer "},
    ],
)
def test_unknown_key_is_401(client, headers, make_key):
    response = client.post("/v1/sources", json=NEW_SOURCE, headers=headers)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_two_different_keys_are_401_and_the_same_twice_is_one(client, make_key):
    bearer, x_api_key = make_key("write"), make_key("write", header="x-api-key")
    for other in (x_api_key, {"X-API-Key": "nd_not-a-real-key"}):
        response = client.post("/v1/sources", json=NEW_SOURCE, headers={**bearer, **other})
        assert response.status_code == 401
        assert response.json["detail"] == (
            "Two different API keys were sent, in Authorization and X-API-Key: send one."
        )
    same = {**bearer, "X-API-Key": bearer["Authorization"].removeprefix("Bearer ")}
    assert client.post("/v1/sources", json=NEW_SOURCE, headers=same).status_code == 201


def test_unknown_key_is_refused_on_reads_too(client):
    response = client.get("/v1/articles", headers={"X-API-Key": "nd_forged"})
    assert response.status_code == 401


def test_a_key_after_a_tab_is_a_key_and_one_sent_twice_is_told_so(client, make_key):
    token = make_key("write")["Authorization"].removeprefix("Bearer ")
    tab = {"Authorization": f"Bearer\t{token}"}
    assert client.post("/v1/sources", json=NEW_SOURCE, headers=tab).status_code == 201
    for name, value in (("X-API-Key", token), ("Authorization", f"Bearer {token}")):
        twice = client.get("/v1/me", headers=[(name, value), (name, value)])
        assert twice.status_code == 401, name
        assert twice.json["detail"] == (
            "The API key header was sent more than once: send one key, once."
        )


@pytest.mark.parametrize("key", ["known", "unknown"])
def test_a_bearer_key_after_another_authorization_header_is_a_401(client, make_key, key):
    # Basic first, then Bearer: the joined value's scheme is Basic, and the read was served
    # as anonymous, whatever the key (an unknown or revoked one too).
    token = make_key("read")["Authorization"] if key == "known" else "Bearer nd_" + "A" * 43
    for basic in ("Basic dXNlcjpwYXNz", 'Digest username="u", realm="r"'):
        headers = [("Authorization", basic), ("Authorization", token)]
        for method, path in (("GET", "/v1/articles?limit=1"), ("POST", "/v1/sources")):
            response = client.open(path, method=method, headers=headers, json=NEW_SOURCE)
            assert response.status_code == 401, (basic, path)
            assert response.json["detail"] == (
                "The API key header was sent more than once: send one key, once."
            )
    # One header of another scheme whose parameters hold commas is still read as no key.
    for digest in ('Digest username="u", realm="bearer", nonce="n"', 'Digest realm="a, Bearer b"'):
        answer = client.get("/v1/articles?limit=1", headers={"Authorization": digest})
        assert answer.status_code == 200, digest


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "bearer   ", "Bearer\t"])
def test_bearer_without_a_key_is_401_not_anonymous(client, make_key, header):
    # curl -H "Authorization: Bearer $KEY" with KEY unset sends this.
    response = client.get("/v1/articles", headers={"Authorization": header})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers
    assert response.json["detail"] == "Authorization: Bearer carries no key (an empty variable?)."
    # Beside a key in X-API-Key too (that key was used, and the empty variable went unseen).
    beside = client.get("/v1/me", headers={"Authorization": header, **make_key("read", header="x")})
    assert beside.status_code == 401
    assert beside.json["detail"] == response.json["detail"]
    # Another scheme (a proxy's Basic credentials, say) is not Newsdesk's: anonymous.
    assert (
        client.get("/v1/articles", headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("authorization", "told"),
    [
        ("Token {token}", "'Token' scheme"),
        ("Basic dXNlcjpwdw==", "'Basic' scheme"),
        ("{token}", "value"),  # the key without a scheme: not repeated back
        ("Token-{token} x", "value"),
    ],
)
def test_a_401_says_when_the_authorization_header_was_not_read(
    client, make_key, authorization, told
):
    token = make_key("write")["Authorization"].removeprefix("Bearer ")
    headers = {"Authorization": authorization.format(token=token)}
    assert client.get("/v1/articles", headers=headers).status_code == 200  # anonymous
    response = client.post("/v1/sources", json=NEW_SOURCE, headers=headers)
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert response.json["detail"] == (
        "This needs an API key with the 'write' scope. The Authorization header's"
        f" {told} is not read here: send the key as 'Authorization: Bearer <key>' or"
        " 'X-API-Key: <key>'."
    )
    assert token not in response.get_data(as_text=True)
    # The key in X-API-Key beside a proxy's credentials is read, and no header says nothing.
    beside = {**headers, "X-API-Key": token}
    assert client.post("/v1/sources", json=NEW_SOURCE, headers=beside).status_code == 201
    assert client.post("/v1/sources", json=NEW_SOURCE).json["detail"] == (
        "This needs an API key with the 'write' scope."
    )


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_x_api_key_is_401_not_anonymous(client, make_key, value):
    # curl -H "X-API-Key: $KEY" with KEY unset sends this.
    response = client.get("/v1/articles", headers={"X-API-Key": value})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers
    assert response.json["detail"] == "X-API-Key carries no key (an empty variable?)."
    beside = client.get("/v1/me", headers={"X-API-Key": value, **make_key("read")})
    assert beside.status_code == 401
    assert beside.json["detail"] == response.json["detail"]


def test_key_without_the_scope_is_403(client, make_key):
    response = client.post("/v1/sources", json=NEW_SOURCE, headers=make_key("read,comment"))
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"
    assert "write" in response.json["detail"]


def test_admin_may_do_everything(client, make_key):
    assert client.post("/v1/sources", json=NEW_SOURCE, headers=make_key("admin")).status_code == 201


def test_revoked_key_is_refused_at_once(client, make_key, dbconn):
    headers = make_key("write")
    assert client.get("/v1/me", headers=headers).status_code == 200
    ApiKey.update(revoked_at=utcnow()).execute()
    assert client.get("/v1/me", headers=headers).status_code == 401
    assert client.post("/v1/sources", json=NEW_SOURCE, headers=headers).status_code == 401


def test_me_shows_the_key_and_its_rate_limit(client, make_key):
    headers = make_key("read,comment", name="mobile app")
    first = client.get("/v1/me", headers=headers)
    assert first.status_code == 200
    body = first.json
    assert body["name"] == "mobile app"
    assert body["scopes"] == ["read", "comment"]
    assert body["prefix"].startswith("nd_")
    assert body["rate_limit"]["limit"] == 600
    assert body["rate_limit"]["remaining"] == 599
    assert 0 <= body["rate_limit"]["reset"] <= 60
    assert first.headers["Cache-Control"] == "private, no-store"
    assert client.get("/v1/me", headers=headers).json["rate_limit"]["remaining"] == 598
    assert body["last_used_at"] is not None


def test_me_without_a_key_is_401(client):
    assert client.get("/v1/me").status_code == 401


@pytest.mark.parametrize("app_config", [{"public_read": False}])
def test_private_reads_need_the_read_scope(client, make_key, make_article):
    make_article()
    assert client.get("/v1/articles").status_code == 401
    assert client.get("/v1/tags").status_code == 401
    assert client.get("/v1/articles", headers=make_key("read")).status_code == 200
    assert client.get("/v1/articles", headers=make_key("comment")).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_keys_commands_store_only_a_hash(app, database_url):
    env = {"NEWSDESK_DATABASE_URL": database_url}
    created = CliRunner().invoke(
        main, ["keys", "create", "--name", "ci", "--scopes", "write,read"], env=env
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("nd_") and len(token) > 40
    with db.connection_context():
        stored = [str(value) for row in ApiKey.select().tuples() for value in row]
    assert not any(token in value for value in stored)
    assert any(token[:10] == value for value in stored)  # the prefix, for telling keys apart
    listed = CliRunner().invoke(main, ["keys", "list"], env=env)
    assert "ci" in listed.output and "read,write" in listed.output and token not in listed.output
    assert "active" in listed.output
    # Names are listed whole, however long: two may differ at the end alone.
    for name in (
        "nightly import of the harbour wire, one",
        "nightly import of the harbour wire, two",
    ):
        made = CliRunner().invoke(main, ["keys", "create", "--name", name], env=env)
        assert made.exit_code == 0, made.output
    listed = CliRunner().invoke(main, ["keys", "list"], env=env).output
    assert "wire, one " in listed and "wire, two " in listed
    revoked = CliRunner().invoke(main, ["keys", "revoke", "1"], env=env)
    assert revoked.exit_code == 0
    assert "revoked" in CliRunner().invoke(main, ["keys", "list"], env=env).output
    again = CliRunner().invoke(main, ["keys", "revoke", "1"], env=env)
    assert again.exit_code != 0


def test_keys_create_says_which_secret_the_key_needs(app, database_url, tmp_path):
    # A key made without the NEWSDESK_SECRET_KEY the server had was refused (401), and nothing
    # said why.
    env = {"NEWSDESK_DATABASE_URL": database_url}
    made = CliRunner().invoke(main, ["keys", "create", "--name", "ci"], env=env)
    assert made.exit_code == 0, made.output
    assert "secret: NEWSDESK_SECRET_KEY (the server must have the same" in made.output
    assert made.output.strip().splitlines()[-1].startswith("nd_")
    if database_url.startswith("sqlite"):
        env.update(NEWSDESK_SECRET_KEY=None, NEWSDESK_INSTANCE_PATH=str(tmp_path))
        made = CliRunner().invoke(main, ["keys", "create", "--name", "ci"], env=env)
        assert made.exit_code == 0, made.output
        assert f"secret: {tmp_path / 'secret_key'} (the server must have" in made.output


def test_keys_create_rejects_unknown_scopes(app, database_url):
    env = {"NEWSDESK_DATABASE_URL": database_url}
    result = CliRunner().invoke(
        main, ["keys", "create", "--name", "x", "--scopes", "root"], env=env
    )
    assert result.exit_code != 0
    assert "scopes must be some of" in result.output


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("n" * 101, "Give 1 to 100 characters."),
        ("  ", "Give 1 to 100 characters."),
        ("ci\nbot", "No control characters."),
        ("ci\x1b[31mbot", "No control characters."),
    ],
)
def test_keys_create_rejects_a_name_it_cannot_store_or_list(app, database_url, name, message):
    env = {"NEWSDESK_DATABASE_URL": database_url}
    result = CliRunner().invoke(main, ["keys", "create", "--name", name], env=env)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Invalid value for --name: {message}" in result.output


def test_answers_to_keyed_requests_are_private(client, make_key, make_article):
    make_article()
    public = client.get("/v1/articles")
    assert public.headers["Cache-Control"].startswith("public")
    assert {"Authorization", "X-API-Key"} <= set(public.headers["Vary"].split(", "))
    keyed = client.get("/v1/articles", headers=make_key("read"))
    assert keyed.headers["Cache-Control"] == "private, no-cache"
