import random
import re
from pathlib import Path

import pytest

from api.config import Config, ConfigError
from models.text import (
    html_to_text,
    make_excerpt,
    reading_time_minutes,
    slugify,
    text_to_html,
    word_count,
)


def test_config_reads_the_environment():
    config = Config.from_env(
        {
            "NEWSDESK_DATABASE_URL": "postgresql://u@h/db",
            "NEWSDESK_PUBLIC_READ": "false",
            "NEWSDESK_CACHE_MAX_AGE": "5",
            "NEWSDESK_MAX_BODY_BYTES": "2048",
            "NEWSDESK_RATE_LIMIT": "10/second",
            "UNRELATED": "x",
        }
    )
    assert config.database_url == "postgresql://u@h/db" and config.is_postgres
    assert config.public_read is False
    assert config.cache_max_age == 5 and config.max_body_bytes == 2048
    assert config.rate_limit == "10/second"


def test_config_defaults_are_safe():
    config = Config.from_env({})
    # The project's own instance folder, wherever the command runs from.
    project = Path(__file__).resolve().parent.parent
    assert config.database_url == f"sqlite:///{project}/instance/newsdesk.db"
    assert config.bind == "127.0.0.1:8000"
    assert config.public_read is True and config.max_body_bytes == 1024 * 1024


@pytest.mark.parametrize(
    "name, value",
    [
        ("NEWSDESK_PUBLIC_READ", "maybe"),
        ("NEWSDESK_WORKERS", "0"),
        ("NEWSDESK_CACHE_MAX_AGE", "soon"),
        ("NEWSDESK_RATE_LIMIT", "abc"),
        # Two limits, of which only the first would hold.
        ("NEWSDESK_WRITE_RATE_LIMIT", "10/second;600/minute"),
        # Accepted at the start, each failed requests or tasks later: past what dates, timers
        # or PostgreSQL's integers hold, or a limit nothing passes.
        ("NEWSDESK_WEBHOOK_SECRET_GRACE", "10000000000000"),
        ("NEWSDESK_STATEMENT_TIMEOUT_MS", "2147483648"),
        ("NEWSDESK_REDIS_TIMEOUT_MS", "99999999999999999999999"),
        ("NEWSDESK_WEBHOOK_TIMEOUT", "1e300"),
        ("NEWSDESK_WEBHOOK_RETRY_SCHEDULE", "5,1e12"),
        ("NEWSDESK_REQUEST_TIMEOUT", "99999999999999999999999"),
        ("NEWSDESK_WORKERS", "99999999999999999999999"),
        ("NEWSDESK_RATE_LIMIT", "0/minute"),
        # Tracebacks at the start, or accepted and wrong.
        ("NEWSDESK_REDIS_URL", "redis://127.0.0.1:abc/0"),
        ("NEWSDESK_REDIS_URL", "redis://127.0.0.1:99999/0"),
        ("NEWSDESK_REDIS_URL", "unix:///tmp/redis.sock"),
        ("NEWSDESK_REDIS_URL", "redis://"),
        ("NEWSDESK_BIND", "127.0.0.1:99999"),
        ("NEWSDESK_BIND", "garbage"),
        ("NEWSDESK_PUBLIC_BASE_URL", "not a url"),
        ("NEWSDESK_PUBLIC_BASE_URL", "ftp://x.org"),
        ("NEWSDESK_CORS_ORIGINS", "https://a.org,a.org"),
        ("NEWSDESK_CORS_ORIGINS", "https://a.org/app"),
        ("NEWSDESK_CORS_ORIGINS", "https://a.org:99999"),
    ],
)
def test_config_rejects_bad_values(name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})


def test_config_takes_what_a_user_means_by_urls_and_binds():
    config = Config.from_env(
        {
            "NEWSDESK_PUBLIC_BASE_URL": "https://news.example.org/",
            "NEWSDESK_CORS_ORIGINS": "https://a.org/, http://localhost:3000",
            "NEWSDESK_BIND": "[::1]:9000",
            "NEWSDESK_REDIS_URL": "rediss://cache.internal:6380/2",
            "NEWSDESK_STATEMENT_TIMEOUT_MS": "2147483647",
        }
    )
    assert config.public_base_url == "https://news.example.org"
    assert config.cors_origins == ("https://a.org", "http://localhost:3000")
    assert config.bind == "[::1]:9000"
    assert Config.from_env({"NEWSDESK_BIND": "unix:/run/newsdesk.sock"}).bind.startswith("unix:")
    assert Config.from_env({"NEWSDESK_CORS_ORIGINS": "*"}).cors_origins == ("*",)


@pytest.mark.parametrize(
    "title, slug",
    [
        ("Hello, World!", "hello-world"),
        ("Café crème à Paris", "cafe-creme-a-paris"),
        ("東京の天気", ""),
        ("  --  ", ""),
    ],
)
def test_slugify(title, slug):
    assert slugify(title) == slug


def test_html_and_text_round_trip():
    html = "<p>One &amp; <b>two</b>.</p><p>Three\n  four.</p>"
    assert html_to_text(html) == "One & two.\n\nThree four."
    assert text_to_html("One <b>\n\nTwo") == "<p>One &lt;b&gt;</p><p>Two</p>"


def test_word_count_and_reading_time():
    assert word_count("Three little words") == 3
    assert word_count("東京の天気 is nice") == 7
    assert word_count("日本 and 中国語, 한국어") == 9
    assert reading_time_minutes(0) == 0
    assert reading_time_minutes(1) == 1
    assert reading_time_minutes(231) == 2


def test_word_count_counts_each_cjk_character_and_each_other_word():
    cjk = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
    chooser = random.Random(17)
    for _ in range(2000):
        text = "".join(chooser.choice("日本語の文章です。한국어 ab c,d-\n_9é") for _ in range(60))
        expected = len(cjk.findall(text)) + len(re.findall(r"\w+", cjk.sub(" ", text)))
        assert word_count(text) == expected, text


def test_excerpt_cuts_at_a_word():
    assert make_excerpt("Short.\n\nSecond") == "Short."
    long_text = "word " * 100
    excerpt = make_excerpt(long_text, limit=50)
    assert excerpt.endswith("…") and len(excerpt) <= 51 and "wor…" not in excerpt
