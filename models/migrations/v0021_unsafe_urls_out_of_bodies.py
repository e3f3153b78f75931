"""Version 21: links, images and quotations' sources whose scheme is not http, https or mailto
are taken out of stored article bodies. The sanitizer let ``java&#1;script:`` through (nh3 saw
no scheme in it; the control character was removed after), and never checked ``cite``. An
article whose body changed gets a new version, a change for delta sync, and a new data
version behind ETags."""

import datetime
import html
import re

#: The schemes a link, an image or a quotation's source may have.
SCHEMES = {"http", "https", "mailto"}
#: A start tag as the sanitizer writes it: lowercase names, values in double quotes with ``"``
#: escaped; text holds no ``<`` (escaped), so a match is always a tag, never text.
TAG = re.compile(r'<[a-z][a-z0-9]*(?: [a-z-]+="[^"]*")*\s*/?>')
#: A URL attribute inside such a tag.
ATTRIBUTE = re.compile(r' (href|src|cite)="([^"]*)"')
SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
#: What a browser drops from a URL: controls and spaces at its ends, tabs and newlines anywhere.
ENDS = "".join(map(chr, range(0x21)))
TABS_AND_NEWLINES = re.compile(r"[\t\n\r]")
BATCH = 500


def upgrade(migrator):
    clean_bodies(migrator.database, _safe_attribute)


def clean_bodies(database, safe_attribute):
    """Pass the URL attributes of every stored body through ``safe_attribute`` (a match of
    :data:`ATTRIBUTE`: the attribute to keep, or ``""``); an article whose body changed gets a
    new version and a change, and the data version is raised."""
    mark = database.param
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    changed, last = [], 0
    while True:
        rows = database.execute_sql(
            f"SELECT article_id, body_html FROM article_body WHERE article_id > {mark}"
            f" ORDER BY article_id LIMIT {BATCH}",
            (last,),
        ).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        for article_id, body in rows:
            safe = TAG.sub(lambda tag: ATTRIBUTE.sub(safe_attribute, tag.group(0)), body or "")
            if safe != (body or ""):
                database.execute_sql(
                    f"UPDATE article_body SET body_html = {mark} WHERE article_id = {mark}",
                    (safe, article_id),
                )
                changed.append(article_id)
    for start in range(0, len(changed), BATCH):
        ids = changed[start : start + BATCH]
        marks = ", ".join([mark] * len(ids))
        database.execute_sql(
            f"UPDATE article SET version = version + 1, modified_at = {mark} WHERE id IN ({marks})",
            (now, *ids),
        )
        for article_id in ids:
            database.execute_sql(
                "INSERT INTO change (article_id, op, reason, created_at)"
                f" VALUES ({mark}, 'upsert', NULL, {mark})",
                (article_id, now),
            )
    if changed:
        database.execute_sql("UPDATE data_version SET value = value + 1")


def _safe_attribute(match):
    """The attribute as it is, or nothing when its URL has a scheme not in :data:`SCHEMES`, as
    a browser reads the URL."""
    url = TABS_AND_NEWLINES.sub("", html.unescape(match.group(2))).strip(ENDS)
    scheme = SCHEME.match(url)
    return "" if scheme is not None and scheme.group(1).lower() not in SCHEMES else match.group(0)
