"""/docs in a real browser: Debian's Chromium, driven by Playwright, against the app served on
127.0.0.1. Swagger UI renders every operation from the served document, loads nothing from
another host, breaks no rule of the page's Content-Security-Policy, and calls the API."""

import shutil
import threading

import pytest
from werkzeug.serving import make_server

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium")
#: Headless, and quiet on a machine without the internet: Chromium's own background requests
#: (updates, sync, QUIC probes) are refused there, many at a time.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture
def served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def page(served):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_the_docs_page_shows_every_operation_and_calls_the_api(served, page, client, make_article):
    make_article(title="Ferry returns to the island")
    requested, errors = [], []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{served}/docs")
    listing = page.locator("#operations-articles-get_v1_articles")
    listing.wait_for(timeout=30_000)
    document = client.get("/openapi.json").json
    operations = sum(
        method in ("get", "post", "put", "patch", "delete")
        for item in document["paths"].values()
        for method in item
    )
    assert page.locator(".opblock").count() == operations

    listing.locator(".opblock-summary").click()
    listing.locator("button.try-out__btn").click()
    listing.locator("button.execute").click()
    answer = listing.locator(".live-responses-table tbody .response-col_status").first
    answer.wait_for(timeout=30_000)
    assert answer.inner_text().strip().startswith("200")
    assert "Ferry returns to the island" in listing.locator(".live-responses-table").inner_text()

    assert errors == []  # a script error, or anything the Content-Security-Policy refused
    assert [url for url in requested if not url.startswith(served)] == []
