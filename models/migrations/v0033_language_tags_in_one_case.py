"""Version 33: language tags in one case. Tags are the same whatever their case (``en-gb`` is
``en-GB``), but the API stored them as sent and compared them as stored: a filter on ``en-GB``
did not find an article written with ``en-gb``, and facets counted the two apart. The API now
keeps the case RFC 5646 recommends; this step gives it to the tags stored before, of articles,
sources and stories. An article whose tag changed gets ``modified_at`` (the vector indexes of
running servers read it again); ``newsdesk db init`` then renders the cards again right after
this step (the card fingerprint is dropped), each card that changed with a new version and a
change for delta sync. A source whose tag changed gets a new version and ``updated_at``, a
story a new ``updated_at``. No webhook event is sent: the upgrade is no write of a client's.
A tag written after this step by a server of the release before (still running while a
deployment upgrades) keeps the case it was sent in: the README's upgrade notes say to stop
them first for this version."""

import datetime

#: Where cards.py keeps the fingerprint of the schema the stored cards were rendered with.
CARD_FINGERPRINT = "card_fingerprint"
#: Rows read at once.
BATCH = 1000


def upgrade(migrator):
    database, mark = migrator.database, migrator.database.param
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    articles = _recased(database, "article", "language", canonical_language)
    for article_id, language in articles:
        database.execute_sql(
            f"UPDATE article SET language = {mark}, modified_at = {mark} WHERE id = {mark}",
            (language, now, article_id),
        )
    sources = _recased(database, "source", "language", canonical_language)
    for source_id, language in sources:
        database.execute_sql(
            f"UPDATE source SET language = {mark}, version = version + 1, updated_at = {mark},"
            f" modified_at = {mark} WHERE id = {mark}",
            (language, now, now, source_id),
        )
    stories = _recased(database, "story", "languages", _canonical_list)
    for story_id, languages in stories:
        database.execute_sql(
            f"UPDATE story SET languages = {mark}, updated_at = {mark} WHERE id = {mark}",
            (languages, now, story_id),
        )
    if articles or sources or stories:
        database.execute_sql("UPDATE data_version SET value = value + 1")
    if articles:  # a card shows its article's language, not its source's
        database.execute_sql(f"DELETE FROM setting WHERE name = {mark}", (CARD_FINGERPRINT,))


def _recased(database, table, column, recase):
    """``(id, value)`` of each row of ``table`` whose ``column`` changes by ``recase``, with
    its new value."""
    mark, found, last = database.param, [], 0
    while True:
        rows = database.execute_sql(
            f"SELECT id, {column} FROM {table} WHERE id > {mark} ORDER BY id LIMIT {BATCH}",
            (last,),
        ).fetchall()
        if not rows:
            return found
        last = rows[-1][0]
        found += [(row_id, recase(value)) for row_id, value in rows if recase(value) != value]


def _canonical_list(languages):
    """A story's sorted, comma-separated languages, each in one case (two may become one)."""
    return ",".join(sorted({canonical_language(code) for code in languages.split(",") if code}))


def canonical_language(tag):
    """schemas.common.canonical_language, as this step was written."""
    first, *rest = tag.split("-")
    subtags = [first.lower()]
    for subtag in rest:
        if len(subtag) == 2:
            subtags.append(subtag.upper())
        elif len(subtag) == 4 and subtag.isalpha():
            subtags.append(subtag.capitalize())
        else:
            subtags.append(subtag.lower())
    return "-".join(subtags)
