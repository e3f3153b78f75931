"""How long /v1/changes takes from the start, in process: its first page of 1,000, and the
whole replay a new client makes (pages of 1,000 until has_more is false).

    .venv/bin/python bench/changes_feed.py --database postgresql://.../bench
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    os.environ.setdefault("NEWSDESK_LOG_LEVEL", "warning")
    from api import create_app

    config = {"database_url": args.database, "rate_limit": "100000000/minute"}
    client = create_app(config).test_client()
    started = time.perf_counter()
    first = client.get("/v1/changes", query_string={"limit": 1000})
    elapsed = (time.perf_counter() - started) * 1000
    print(f"first page of 1,000: {first.status_code} in {elapsed:.0f} ms", flush=True)
    since, pages, changes = None, 0, 0
    started = time.perf_counter()
    while True:
        query = {"limit": 1000, **({"since": since} if since else {})}
        page = client.get("/v1/changes", query_string=query)
        assert page.status_code == 200, page.get_json()
        pages, changes, since = pages + 1, changes + len(page.json["data"]), page.json["next_since"]
        if not page.json["has_more"]:
            break
    elapsed = time.perf_counter() - started
    print(f"whole replay: {pages} pages, {changes:,} changes, {elapsed:.2f} s", flush=True)


if __name__ == "__main__":
    main()
