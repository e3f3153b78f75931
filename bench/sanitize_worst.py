"""The worst HTML bodies, timed through what a write does with them before its transaction.

Each body is about as large as a write may send: 1 MiB (the JSON body limit of POST, PUT and
PATCH) or 2,000,000 characters (the longest body_html an import line may carry). For each it
times the shape check of the schema (schemas/html.py: nesting depth and attributes per element)
and, for a body the check lets through, ``models.ingest.prepare``: nh3's sanitizing, then the
plain text, excerpt and word count derived from it. The best of ``--repeat`` runs is printed.

    .venv/bin/python bench/sanitize_worst.py [--repeat 3] [--size 1048576] [--only NAME]
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marshmallow import ValidationError  # noqa: E402

from models.ingest import prepare  # noqa: E402
from schemas.html import MAX_ATTRIBUTES, MAX_DEPTH, check_shape  # noqa: E402


def fill(unit, size):
    """``unit`` repeated to about ``size`` characters."""
    return unit * max(1, size // len(unit))


def nested(tag, depth, size):
    return fill(f"<{tag}>" * depth + "x" + f"</{tag}>" * depth, size)


def bodies(size):
    """``(name, body)`` of every shape measured."""
    attributes = " ".join(f'a{i}="v"' for i in range(MAX_ATTRIBUTES))
    yield "div nested 50,000 deep", "<div>" * 50_000 + "x" + "</div>" * 50_000
    yield "div nested past the limit once", nested("div", MAX_DEPTH + 1, 1)
    yield f"div nested {MAX_DEPTH} deep, repeated", nested("div", MAX_DEPTH, size)
    yield f"blockquote nested {MAX_DEPTH} deep, repeated", nested("blockquote", MAX_DEPTH, size)
    yield f"b nested {MAX_DEPTH} deep, repeated", nested("b", MAX_DEPTH, size)
    yield "table cells nested 50 deep, repeated", fill("<table><td>" * 50 + "</table>" * 50, size)
    yield "span/div misnested, repeated", fill("<span><div></span>" * 45 + "</div>" * 45, size)
    yield "unclosed b", fill("<b>x", size)
    yield "unclosed p", fill("<p>x", size)
    yield "unclosed li", "<ul>" + fill("<li>x", size)
    yield "one element, 100,000 attributes", "<a " + " ".join(f"a{i}" for i in range(100_000)) + ">"
    yield f"elements of {MAX_ATTRIBUTES} attributes", fill(f"<a {attributes}>x</a>", size)
    yield "links with attributes", fill('<a href="https://e.org/x" title="t" rel="r">x</a> ', size)
    yield "plain paragraphs", fill("<p>Some words of ordinary text here.</p>", size)
    yield "huge text, one paragraph", "<p>" + fill("word ", size) + "</p>"
    yield "entities", fill("&amp;&lt;&#x41;&eacute; ", size)
    yield "comments", fill("<!-- a comment --><p>x</p>", size)
    yield "script content", "<script>" + fill("<div>x</div>", size) + "</script>"


def best(repeat, action):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = action()
        times.append(time.perf_counter() - start)
    return min(times) * 1000, outcome


def check(body):
    try:
        check_shape(body)
    except ValidationError as error:
        return error.messages[0]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=1_048_576)
    parser.add_argument("--only", help="only the shapes whose name holds this")
    args = parser.parse_args()
    print(f"| body ({args.size:,} characters at most) | check ms | answer | prepare ms |")
    print("|---|---:|---|---:|")
    for name, body in bodies(args.size):
        if args.only and args.only not in name:
            continue
        check_ms, refused = best(args.repeat, lambda body=body: check(body))
        if refused:
            answer, prepare_ms = "422", "-"
        else:
            answer = "kept"
            elapsed, _ = best(args.repeat, lambda body=body: prepare({"body_html": body}))
            prepare_ms = f"{elapsed:,.1f}"
        print(f"| {name} ({len(body):,}) | {check_ms:,.1f} | {answer} | {prepare_ms} |", flush=True)


if __name__ == "__main__":
    main()
