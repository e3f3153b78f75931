"""Safe defaults: a secret of the deployment's own, commands that fail in one clear line, and
nothing written that nobody asked for."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from api import create_app
from api.cli import main, shown
from api.config import LEGACY_SECRET, Config, ConfigError
from models import ApiKey, Article, db
from models.keys import hash_key

from .servers import answers, free_port

# Servers and workers of their own: run one at a time (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("processes")

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, **env):
    """Run ``newsdesk`` with only the NEWSDESK_ variables given (no secret unless given)."""
    unset = {key: None for key in os.environ if key.startswith("NEWSDESK_")}
    return CliRunner().invoke(
        main, list(args), env={**unset, "NEWSDESK_TASKS_IMMEDIATE": "true", **env}
    )


def test_without_a_secret_sqlite_makes_one_of_its_own(tmp_path):
    config = Config.from_env({"NEWSDESK_INSTANCE_PATH": str(tmp_path / "instance")})
    secret_file = tmp_path / "instance" / "secret_key"
    assert not secret_file.exists()
    first = config.secret()
    assert len(first) >= 60
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    again = Config.from_env({"NEWSDESK_INSTANCE_PATH": str(tmp_path / "instance")})
    assert again.secret() == first  # made once, kept
    other = Config.from_env({"NEWSDESK_INSTANCE_PATH": str(tmp_path / "elsewhere")})
    assert other.secret() != first  # each deployment its own


def test_each_purpose_has_a_key_of_its_own():
    config = Config.from_env({"NEWSDESK_SECRET_KEY": "s" * 40})
    keys = {config.key_for(purpose) for purpose in ("cursors", "etag", "api-keys")}
    assert len(keys) == 3 and config.secret().encode() not in keys


def test_postgresql_without_a_secret_refuses_to_start():
    config = Config.from_env({"NEWSDESK_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    with pytest.raises(ConfigError, match="NEWSDESK_SECRET_KEY is not set") as error:
        config.secret()
    assert "secrets.token_urlsafe" in str(error.value)
    result = cli("keys", "list", NEWSDESK_DATABASE_URL="postgresql://u@127.0.0.1:1/x")
    assert result.exit_code == 1
    assert "NEWSDESK_SECRET_KEY is not set" in result.output and "Traceback" not in result.output


def test_keys_of_earlier_versions_still_work_and_are_stored_again(app, client, dbconn):
    config = app.config["NEWSDESK"]
    token = "nd_" + "k" * 43
    legacy = hash_key(token, config.secret().encode())  # before per-purpose keys
    key = ApiKey.create(name="old", prefix=token[:10], key_hash=legacy, scopes="read")
    dbconn.close()
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with db.connection_context():
        assert ApiKey.get_by_id(key.id).key_hash == hash_key(token, config.key_for("api-keys"))
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_keys_of_the_built_in_secret_work_only_until_a_secret_is_set(app, client, dbconn, tmp_path):
    """Versions without NEWSDESK_SECRET_KEY hashed keys with a constant: such a key works where
    the variable is still unset, and no longer once it is (a secret set after a leak ends
    every key)."""
    token = "nd_" + "c" * 43
    ApiKey.create(
        name="old", prefix=token[:10], key_hash=hash_key(token, LEGACY_SECRET), scopes="read"
    )
    dbconn.close()
    assert client.get("/v1/me", headers={"X-API-Key": token}).status_code == 401
    unset = Config.from_env({}, database_url="sqlite:///x.db", instance_path=str(tmp_path))
    assert unset.legacy_api_key_peppers() == (LEGACY_SECRET,)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("keys", "list"), "no database at"),
        (("demo", "--if-empty"), "no database at"),
        (("related", "rebuild"), "no database at"),
        (("serve",), "no database at"),
        (("worker",), "no database at"),
    ],
)
def test_commands_other_than_db_init_create_no_database(tmp_path, args, expected):
    path = tmp_path / "none.db"
    result = cli(*args, NEWSDESK_DATABASE_URL=f"sqlite:///{path}", NEWSDESK_SECRET_KEY="x" * 40)
    assert result.exit_code == 1
    assert expected in result.output and "newsdesk db init" in result.output
    assert "Traceback" not in result.output
    assert not path.exists()
    assert f"database: sqlite:///{path}" in result.output


def test_an_unreachable_database_is_one_clear_line():
    url = "postgresql://nobody:hunter2@127.0.0.1:9/nowhere"
    result = cli("keys", "list", NEWSDESK_DATABASE_URL=url, NEWSDESK_SECRET_KEY="x" * 40)
    assert result.exit_code == 1
    assert "the database did not answer" in result.output
    assert "hunter2" not in result.output and "nobody:***@" in result.output
    assert "Traceback" not in result.output


def test_an_old_schema_asks_for_db_init(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    assert cli("db", "init", NEWSDESK_DATABASE_URL=url, NEWSDESK_SECRET_KEY="x" * 40).exit_code == 0
    app = create_app({"database_url": url, "testing": True})
    with app.app_context(), db.connection_context():
        db.execute_sql("DELETE FROM schema_version WHERE version > 3")
    result = cli("keys", "list", NEWSDESK_DATABASE_URL=url, NEWSDESK_SECRET_KEY="x" * 40)
    assert result.exit_code == 1 and "run `newsdesk db init`" in result.output


def test_serve_writes_no_demo_data_into_an_empty_database(tmp_path):
    url = f"sqlite:///{tmp_path}/empty.db"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEWSDESK_")},
        "NEWSDESK_DATABASE_URL": url,
        "NEWSDESK_SECRET_KEY": "x" * 40,
        "NEWSDESK_LOG_LEVEL": "warning",
    }
    newsdesk = str(Path(sys.executable).parent / "newsdesk")
    subprocess.run([newsdesk, "db", "init"], env=env, check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [newsdesk, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not answers(f"http://127.0.0.1:{port}/healthz", process, 20):
            pytest.fail("the server did not start")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    app = create_app({"database_url": url, "testing": True})
    with app.app_context(), db.connection_context():
        assert Article.select().count() == 0


def test_a_bad_rate_limit_stops_a_command_with_a_message_naming_it(tmp_path):
    result = cli("keys", "list", NEWSDESK_RATE_LIMIT="abc", NEWSDESK_INSTANCE_PATH=str(tmp_path))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "NEWSDESK_RATE_LIMIT must be one limit such as 600/minute" in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NEWSDESK_LOG_LEVEL", "verbose"),
        ("NEWSDESK_DATABASE_URL", "sqlite:///"),
        ("NEWSDESK_DATABASE_URL", "sqlite://newsdesk.db"),
        ("NEWSDESK_DATABASE_URL", "postgresql://[::1"),
        ("NEWSDESK_DATABASE_URL", "sqlite:///{tmp_path}"),  # a folder
        ("NEWSDESK_RATE_LIMIT_FILE", "/proc/no-such-folder/counters.sqlite"),
    ],
)
@pytest.mark.parametrize("command", [("keys", "list"), ("db", "init")])
def test_a_bad_setting_stops_a_command_with_a_message_naming_it(tmp_path, variable, value, command):
    env = {
        "NEWSDESK_DATABASE_URL": f"sqlite:///{tmp_path}/newsdesk.db",
        "NEWSDESK_INSTANCE_PATH": str(tmp_path),
        variable: value.format(tmp_path=tmp_path),
    }
    result = cli(*command, **env)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"Error: {variable}" in result.output


def test_commands_name_a_database_without_its_password():
    assert shown("postgresql://ann:s3cret@db:5432/news") == "postgresql://ann:***@db:5432/news"
    assert shown("postgresql://ann@db/news?password=s3cret&sslmode=require") == (
        "postgresql://ann@db/news?password=***&sslmode=require"
    )


def test_commands_refuse_what_they_cannot_do_in_one_line(app, database_url):
    env = {"NEWSDESK_DATABASE_URL": database_url, "NEWSDESK_SECRET_KEY": "test-secret"}
    revoke = cli("keys", "revoke", str(2**70), **env)
    assert revoke.exit_code == 2 and "is not in the range" in revoke.output
    for command, workers, limits in [
        ("serve", "0", "1<=x<=1024"),
        ("serve", "5000", "1<=x<=1024"),  # as NEWSDESK_WORKERS: not 5,000 processes forked
        ("worker", "0", "1<=x<=64"),
        ("worker", "100000", "1<=x<=64"),
    ]:
        refused = cli(command, "--workers", workers, **env)
        assert refused.exit_code == 2 and f"is not in the range {limits}" in refused.output
    immediate = cli("worker", **env)  # cli() runs tasks at once, as NEWSDESK_TASKS_IMMEDIATE
    assert immediate.exit_code == 1
    assert "Error: NEWSDESK_TASKS_IMMEDIATE is true" in immediate.output
    # The queue is made as the process starts: a process of its own.
    queue = {"NEWSDESK_TASKS_IMMEDIATE": "false", "NEWSDESK_REDIS_URL": "redis://127.0.0.1:1/0"}
    unreachable = subprocess.run(
        [Path(sys.executable).parent / "newsdesk", "worker"],
        env={**os.environ, **env, **queue},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr
    assert "Error: Redis did not answer" in unreachable.stderr
