"""What a new user meets first holds: the README's examples, the Makefile, the Docker image."""

import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from .servers import free_port

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MAKE = ["make", "--no-print-directory", "-C", str(ROOT)]


def sh_blocks(text):
    """The ```sh blocks of a Markdown text, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.M | re.S)


def make(*args, **env):
    """``make`` in the project with ``env`` added to (or, when None, removed from) the
    environment: its output."""
    environ = {k: v for k, v in os.environ.items() if k not in env or env[k] is not None}
    environ.update({k: v for k, v in env.items() if v is not None})
    done = subprocess.run(
        [*MAKE, *args], env=environ, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_readme_links_nothing_outside_the_repository():
    hosts = {
        urlhost
        for urlhost in re.findall(r"https?://([^/\s'\"`)>]+)", README)
        if not re.fullmatch(r"127\.0\.0\.1(:\d+)?|([\w-]+\.)*example\.(org|com)", urlhost)
    }
    assert hosts == set()


def test_readme_creates_every_variable_before_its_examples_use_it():
    defined = set()
    for block in sh_blocks(README):
        for line in block.splitlines():
            code = line.split(" #", 1)[0]
            for used in re.findall(r"\$\{?([A-Z][A-Z_]*)", code):
                assert used in defined, f"${used} is used before it is made: {line}"
            defined.update(re.findall(r"^(?:export )?([A-Z][A-Z_]*)=", code.strip()))


def test_readme_ndjson_example_imports(client, make_key):
    block = next(b for b in sh_blocks(README) if "articles.ndjson <<'EOF'" in b)
    lines = block.split("articles.ndjson <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0].splitlines()
    assert lines and all(json.loads(line) for line in lines)
    writer = make_key("write")
    source = {"slug": "harbour-gazette", "name": "Harbour Gazette"}
    assert client.post("/v1/sources", json=source, headers=writer).status_code == 201

    response = client.post(
        "/v1/import",
        data="\n".join(lines).encode(),
        headers={**writer, "Content-Type": "application/x-ndjson"},
    )

    assert response.status_code == 200, response.json
    assert response.json == {
        "lines": len(lines),
        "created": len(lines),
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "rejections": [],
        "rejections_omitted": 0,
        "rejected_by_code": {},
        "stored_lines": [[1, len(lines)]],
    }
    assert client.get("/v1/articles/bridge-reopens").json["body_text"] == (
        "The bridge is open again."
    )


@pytest.mark.parametrize(
    "env, bind",
    [
        ({"NEWSDESK_BIND": None, "PORT": None}, "127.0.0.1:8000"),
        ({"NEWSDESK_BIND": None, "PORT": "9100"}, "127.0.0.1:9100"),
        ({"NEWSDESK_BIND": "0.0.0.0:9200", "PORT": "9100"}, "0.0.0.0:9200"),
    ],
)
def test_make_run_serves_where_it_is_told(env, bind):
    commands = make("-n", "run", **env)

    assert f".venv/bin/newsdesk serve --bind {bind}\n" in commands


def test_make_run_installs_again_only_when_pyproject_changes():
    """The install stamps are newer than pyproject.toml once installed: no pip then."""
    stamp = ROOT / ".venv" / ".installed"
    if not stamp.exists() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        pytest.skip("the venv was not installed through make")
    assert "pip install" not in make("-n", "run")


def test_make_help_lists_every_target_in_one_line():
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", makefile, flags=re.M).group(1).split()

    lines = make("help").splitlines()

    assert sorted(line.split()[0] for line in lines) == sorted(phony)
    assert all(len(line.split()) > 2 for line in lines)


@pytest.mark.xdist_group("processes")
def test_make_test_ends_with_the_counts_per_database():
    """A database test run without PostgreSQL: the last lines count what passed on each
    database and why tests were skipped, and no skipped test is listed one by one."""
    output = make(
        "-o",
        ".venv/.installed-test",
        "test",
        "PYTEST_ARGS=-p no:cacheprovider tests/test_sources_tags.py::test_source_detail_and_404",
        NEWSDESK_TEST_POSTGRES_URL=None,
    )

    assert output.rstrip().splitlines()[-3:] == [
        "newsdesk backends: 1 passed on sqlite, 0 passed on postgres, 0 on postgres with"
        " pgvector, 0 without a database",
        "newsdesk skipped: 0 on sqlite, 1 on postgres, 0 on postgres with pgvector,"
        " 0 without a database, because",
        "     1 NEWSDESK_TEST_POSTGRES_URL is not set",
    ]
    assert "SKIPPED" not in output


def docker_instructions():
    """(instruction, arguments) of each Dockerfile line, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_docker_installs_dependencies_from_pyproject_alone():
    instructions = docker_instructions()
    first_install = next(
        n for n, (word, args) in enumerate(instructions) if word == "RUN" and "pip install" in args
    )
    copied = [args for word, args in instructions[:first_install] if word == "COPY"]

    assert copied == ["pyproject.toml ./"]
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "instance", "bench/out", "**/__pycache__"} <= ignored


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_docker_healthcheck_asks_the_bound_port(health_server):
    command = next(args for word, args in docker_instructions() if word == "HEALTHCHECK")
    argv = shlex.split(command.split(" CMD ", 1)[1])
    assert argv[:2] == ["python", "-c"]

    def check(bind):
        env = {**os.environ, "NEWSDESK_BIND": bind}
        return subprocess.run([sys.executable, "-c", argv[2]], env=env, capture_output=True)

    assert check(f"0.0.0.0:{health_server}").returncode == 0
    assert check(f"127.0.0.1:{health_server}").returncode == 0
    assert check(f"0.0.0.0:{free_port()}").returncode != 0


def test_docker_keeps_the_instance_folder_in_a_volume_and_the_worker_unchecked():
    assert ("VOLUME", "/app/instance") in docker_instructions()
    readme = (ROOT / "README.md").read_text()
    worker = readme[readme.index("### Running the worker") :]
    assert "docker run -d --name newsdesk-worker --no-healthcheck" in worker
    compose_worker = worker[worker.index("  worker:") :]
    assert "healthcheck: {disable: true}" in compose_worker.split("\n\n")[0]
