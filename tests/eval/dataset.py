"""The evaluation set as stored: its sources with their languages, and its files read. Standard
library only, so that ``python3 tests/eval/check.py`` runs without the project installed."""

import json
import pathlib

HERE = pathlib.Path(__file__).parent
SOURCES = {
    "daily-ledger": "en",
    "northern-post": "en",
    "pacific-wire": "en",
    "rundschau-24": "de",
    "le-quotidien": "fr",
    "el-diario-global": "es",
    "tokyo-shimbun-digital": "ja",
}


def articles():
    lines = (HERE / "articles.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def questions():
    return json.loads((HERE / "questions.json").read_text("utf-8"))


def search_queries():
    return json.loads((HERE / "queries.json").read_text("utf-8"))
