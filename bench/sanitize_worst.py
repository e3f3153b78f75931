"""The worst HTML bodies, timed through what a write does with them before its transaction.

Each body is about as large as a write may send (``schemas.html.MAX_LENGTH`` characters), and
the shapes that are kept carry as many tags as ``MAX_TAGS`` allows, the rest words. For each it
times the check of the schema (schemas/html.py: length, nesting depth, attributes per element,
tags) and, for a body the check lets through, ``models.ingest.prepare``: nh3's sanitizing, then
the plain text, excerpt and word count derived from it. The best of ``--repeat`` runs is
printed, with the total a write spends on its body.

    .venv/bin/python bench/sanitize_worst.py [--repeat 3] [--size N] [--only NAME]
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marshmallow import ValidationError  # noqa: E402

from models.ingest import prepare  # noqa: E402
from schemas.html import (  # noqa: E402
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_REOPENED,
    MAX_TAGS,
    check_html,
)


def fill(unit, size):
    """``unit`` repeated to about ``size`` characters."""
    return unit * max(1, size // len(unit))


def nested(tag, depth, size):
    return fill(f"<{tag}>" * depth + "x" + f"</{tag}>" * depth, size)


def at_limit(unit, tags, size):
    """``unit`` (of ``tags`` tags) repeated as often as :data:`MAX_TAGS` and ``size`` allow
    (with room for two more tags), then a paragraph of words up to ``size`` characters."""
    body = unit * min((MAX_TAGS - 2) // tags, size // len(unit))
    return body + "<p>" + fill("word ", size - len(body) - 4)[: size - len(body) - 4]


def bodies(size):
    """``(name, body)`` of every shape measured: first those refused, then the worst kept."""
    attributes = " ".join(f'a{i}="v"' for i in range(MAX_ATTRIBUTES))
    deep = MAX_DEPTH
    yield "div nested 20,000 deep", "<div>" * 20_000 + "x" + "</div>" * 20_000
    yield "div nested past the limit once", nested("div", MAX_DEPTH + 1, 1)
    yield "table cells nested 50 deep, repeated", fill("<table><td>" * 50 + "</table>" * 50, size)
    yield "span/div misnested, repeated", fill("<span><div></span>" * 45 + "</div>" * 45, size)
    yield "unclosed b", fill("<b>x", size)
    yield "one element, 30,000 attributes", "<a " + " ".join(f"a{i}" for i in range(30_000)) + ">"
    yield "script content", "<script>" + fill("<div>x</div>", size - 17) + "</script>"
    formatting = "".join(f'<b title="{n}">' for n in range(deep - 2))
    left_open = f"<div>{formatting}</div>"
    yield (
        "b of 98 titles left open, then paragraphs",
        left_open + fill("<p>x", size - len(left_open)),
    )
    yield "unclosed p, past the tag limit", fill("<p>x", size)
    yield "end tags, past the tag limit", fill("</p>", size)
    yield "text, past the length limit", "<p>" + fill("word ", 4 * size) + "</p>"
    yield f"div nested {deep} deep, repeated", at_limit(nested("div", deep, 1), 2 * deep, size)
    yield f"blockquote nested {deep} deep", at_limit(nested("blockquote", deep, 1), 2 * deep, size)
    yield f"b nested {deep} deep, repeated", at_limit(nested("b", deep, 1), 2 * deep, size)
    # As many paragraphs as a parser may reopen the 98 in (MAX_REOPENED characters of tags).
    reopened = left_open + "<p>x" * (MAX_REOPENED // len(formatting))
    yield "b of 98 titles left open, then as many paragraphs as kept", reopened
    yield "unclosed p", at_limit("<p>x", 1, size)
    yield "unclosed li", "<ul>" + at_limit("<li>x", 1, size - 4)
    yield "unclosed rt", "<ruby>" + at_limit("<rt>x", 1, size - 6)
    yield "unclosed option", "<select>" + at_limit("<option>x", 1, size - 8)
    head = "<select>" + "".join(f'<b title="{n}">' for n in range(50))
    options = head + "<option>x" * (MAX_TAGS - 2 - 51)
    yield (
        "unclosed option, 50 b left open",
        options + "<p>" + fill("word ", size - len(options) - 4),
    )
    yield "end tags", at_limit("</p>", 1, size)
    yield "empty declarations", at_limit("<!>", 1, size)
    yield "empty end tags", at_limit("</>", 1, size)
    yield f"elements of {MAX_ATTRIBUTES} attributes", at_limit(f"<a {attributes}>x</a>", 2, size)
    yield "links with attributes", at_limit('<a href="https://e.org/x" title="t">x</a> ', 2, size)
    yield "plain paragraphs", at_limit("<p>Some words of ordinary text here.</p>", 2, size)
    yield "comments", at_limit("<!-- a comment --><p>x</p>", 3, size)
    yield "huge text, one paragraph", "<p>" + fill("word ", size - 7) + "</p>"
    yield "entities", fill("&amp;&lt;&#x41;&eacute; ", size)
    yield "Japanese text", "<p>" + fill("日本語の文章です。", size - 7) + "</p>"


def best(repeat, action):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = action()
        times.append(time.perf_counter() - start)
    return min(times) * 1000, outcome


def check(body):
    try:
        check_html(body)
    except ValidationError as error:
        return error.messages[0]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=MAX_LENGTH)
    parser.add_argument("--only", help="only the shapes whose name holds this")
    args = parser.parse_args()
    print(
        f"| body ({args.size:,} characters at most) | check ms | answer | prepare ms | total ms |"
    )
    print("|---|---:|---|---:|---:|")
    for name, body in bodies(args.size):
        if args.only and args.only not in name:
            continue
        check_ms, refused = best(args.repeat, lambda body=body: check(body))
        prepare_ms = 0.0
        if not refused:
            prepare_ms, _ = best(args.repeat, lambda body=body: prepare({"body_html": body}))
        print(
            f"| {name} ({len(body):,}) | {check_ms:,.1f} | {'422' if refused else 'kept'}"
            f" | {'-' if refused else f'{prepare_ms:,.1f}'} | {check_ms + prepare_ms:,.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
