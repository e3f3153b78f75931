import gzip
import re
from pathlib import Path

import brotli
import yaml

from api import create_app, openapi_yaml
from schemas.articles import ARTICLE_FIELDS

ROOT = Path(__file__).resolve().parent.parent


def test_committed_openapi_yaml_matches_the_code():
    generated = openapi_yaml(create_app({"database_url": "sqlite:///unused.db"}))
    committed = (ROOT / "openapi.yaml").read_text()
    assert committed == generated, "openapi.yaml is stale: run `newsdesk openapi > openapi.yaml`"


def test_served_spec_equals_the_committed_one():
    app = create_app({"database_url": "sqlite:///unused.db"})
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.json == yaml.safe_load((ROOT / "openapi.yaml").read_text())


def test_spec_documents_errors_as_problem_json():
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    responses = spec["components"]["responses"]
    for name in ("NOT_FOUND", "UNPROCESSABLE_ENTITY", "DEFAULT_ERROR"):
        assert list(responses[name]["content"]) == ["application/problem+json"]
    operation = spec["paths"]["/v1/articles/{key}"]["get"]
    assert "404" in operation["responses"]
    assert operation["summary"] == "Get one article, with its body, by id or slug."
    listing = spec["paths"]["/v1/articles"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names >= {
        "source",
        "tag",
        "language",
        "published_after",
        "published_before",
        "updated_since",
        "sort",
        "cursor",
        "limit",
        "fields",
    }


def test_sparse_fieldsets_list_the_article_fields_and_the_yaml_has_no_aliases():
    """A client generator can offer the names ``fields`` takes; and a node the spec holds in
    several places is written out each time (YAML anchors and aliases trip some tools)."""
    text = (ROOT / "openapi.yaml").read_text()
    spec = yaml.safe_load(text)
    for path, always in (
        ("/v1/articles", []),
        ("/v1/articles/{key}", []),
        ("/v1/search", ["score", "match", "highlights"]),  # on every hit, and may be named
        ("/v1/articles/{key}/related", ["relation"]),
        ("/v1/stories/{story_id}", ["duplicate_of"]),
    ):
        (fields,) = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "fields"]
        assert fields["schema"]["items"]["enum"] == [*ARTICLE_FIELDS, *always], path
    assert "body_html" in ARTICLE_FIELDS and "story" in ARTICLE_FIELDS
    assert not re.search(r"[&*]id\d+", text)


def test_every_operation_documents_what_the_pipeline_may_answer():
    """401, 414, 429 and 431 anywhere; 304 and an optional key on reads; 400, 413 and 415 on
    JSON writes: answers the request pipeline gives before or after any view."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        if path.startswith(("/v1/", "/feeds/"))
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 40
    for path, method, operation in operations:
        statuses = set(operation["responses"])
        assert {"401", "414", "429", "431"} <= statuses, (method, path)
        if method == "get":
            assert "304" in statuses and operation["security"], path  # optional, or required
        elif "application/json" in operation.get("requestBody", {}).get("content", {}):
            assert {"400", "413", "415"} <= statuses, (method, path)


def test_docs_page_uses_no_cdn():
    app = create_app({"database_url": "sqlite:///unused.db"})
    client = app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in (
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/static/docs.js",
    ):
        assert asset in html
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.data) > 100
        response.close()


def test_docs_assets_are_compressed_and_revalidated():
    client = create_app({"database_url": "sqlite:///unused.db"}).test_client()
    asset = "/docs/assets/swagger-ui-bundle.js"
    plain = client.get(asset)
    assert plain.mimetype == "text/javascript" and "Content-Encoding" not in plain.headers
    assert plain.headers["Cache-Control"] == "public, max-age=86400"
    for coding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        coded = client.get(asset, headers={"Accept-Encoding": coding})
        assert coded.headers["Content-Encoding"] == coding
        assert coded.headers["Vary"] == "Accept-Encoding"
        assert decode(coded.data) == plain.data
        assert coded.headers["ETag"] == plain.headers["ETag"][:-1] + f':{coding}"'
        again = client.get(
            asset, headers={"Accept-Encoding": coding, "If-None-Match": coded.headers["ETag"]}
        )
        assert again.status_code == 304 and again.headers["Vary"] == "Accept-Encoding"
    assert client.get("/docs/assets/../../api/__init__.py").status_code == 404
    assert client.get("/docs/assets/missing.js").status_code == 404


def test_docs_serve_only_the_files_the_page_loads():
    # The package's demo page loads the Petstore's spec from the web; its source maps are for
    # debugging Swagger UI: neither is the API's.
    client = create_app({"database_url": "sqlite:///unused.db"}).test_client()
    html = client.get("/docs").get_data(as_text=True)
    for name in ("index.html", "swagger-initializer.js", "swagger-ui-bundle.js.map"):
        assert name not in html
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
        assert response.content_type == "application/problem+json"
