"""Version 28: names are one line. A source's name and a comment's ``author_name`` stored
before the API refused layout characters in them (a tab, a line break, a bidirectional control
such as U+202E, which turns the text after it right to left wherever the name is shown; a
feed's title made such a source name until version 27) are made one line as a feed's title is
now: control characters dropped, each run of spaces and layout characters one space (a name
left empty so is the source's slug, or ``Anonymous``). Each name that changed gets a new
version (and a source a new ``updated_at`` and ``modified_at``, its Last-Modified); when a
source was renamed, ``newsdesk db init`` renders the cards again right after this step (the
card fingerprint is dropped), each card that changed (its source's) with a new version and a
change for delta sync. No ``source.updated`` webhook event is sent: the upgrade is no write of
a client's."""

import datetime
import re

#: schemas.common's CONTROL_CHARACTERS and LAYOUT_CHARACTERS, as this step was written.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
LAYOUT = re.compile(r"[\t\n\r\x85\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: Where cards.py keeps the fingerprint of the schema the stored cards were rendered with.
CARD_FINGERPRINT = "card_fingerprint"
#: Rows read at once.
BATCH = 1000


def upgrade(migrator):
    database, mark = migrator.database, migrator.database.param
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    sources = _made_one_line(database, "source", "name", "slug")
    for source_id, name in sources:
        database.execute_sql(
            f"UPDATE source SET name = {mark}, version = version + 1, updated_at = {mark},"
            f" modified_at = {mark} WHERE id = {mark}",
            (name, now, now, source_id),
        )
    comments = _made_one_line(database, "comment", "author_name", "'Anonymous'")
    for comment_id, name in comments:
        database.execute_sql(
            f"UPDATE comment SET author_name = {mark}, version = version + 1 WHERE id = {mark}",
            (name, comment_id),
        )
    if sources or comments:
        database.execute_sql("UPDATE data_version SET value = value + 1")
    if sources:
        database.execute_sql(f"DELETE FROM setting WHERE name = {mark}", (CARD_FINGERPRINT,))


def _made_one_line(database, table, column, fallback):
    """``(id, name)`` of each row of ``table`` whose ``column`` is not one line, the name made
    one line; ``fallback``: the SQL of the name one that comes out empty is given."""
    mark, found, last = database.param, [], 0
    while True:
        rows = database.execute_sql(
            f"SELECT id, {column}, {fallback} FROM {table} WHERE id > {mark}"
            f" ORDER BY id LIMIT {BATCH}",
            (last,),
        ).fetchall()
        if not rows:
            return found
        last = rows[-1][0]
        found += [
            (row_id, one_line(name) or other)
            for row_id, name, other in rows
            if LAYOUT.search(name) or CONTROL.search(name)
        ]


def one_line(text):
    """``text`` as one line (schemas.common.one_line, as this step was written)."""
    return " ".join(LAYOUT.sub(" ", CONTROL.sub("", text)).split())
