"""Version 24: the slugs of tags whose names hold Latin letters that Unicode does not decompose
(ß, æ, ø, œ, ł, đ, ð, þ, ı, ħ, ŧ, ŋ) spell them as they are written without them: the slug of
"Straße" was ``strae``, and is ``strasse``. Slugs made before dropped those letters.

A tag whose new slug another tag holds already is merged into it when their names are one tag's
names by the rule of ``models.text.tag_name_key`` ("Straße", "STRASSE" and "#Strasse"), and
keeps its slug otherwise ("Ærø" beside "Aero": a writer can give it by that slug, not by its
name, which is another tag's by the rule). Webhook filters and the outbox's events naming an old
slug name the new one. Servers of an earlier release must be stopped first: they would make a
tag of the old slug again. The cards of the articles holding such a tag are rendered again by
``newsdesk db init`` right after this step (the card fingerprint is dropped): each with a new
version and a change for delta sync."""

import re
import unicodedata

LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "TH",
        "ı": "i",
        "ħ": "h",
        "Ħ": "H",
        "ŧ": "t",
        "Ŧ": "T",
        "ŋ": "ng",
        "Ŋ": "NG",
    }
)
#: Where cards.py keeps the fingerprint of the schema the stored cards were rendered with.
CARD_FINGERPRINT = "card_fingerprint"


def upgrade(migrator):
    database = migrator.database
    mark = database.param
    tags = database.execute_sql("SELECT id, slug, name FROM tag").fetchall()
    holders = {slug: (tag_id, name) for tag_id, slug, name in tags}
    renamed = {}  # old slug -> new slug
    for tag_id, slug, name in tags:
        new = _slug(name)
        if name == name.translate(LETTERS) or not new or new == slug:
            continue
        if new not in holders:
            database.execute_sql(f"UPDATE tag SET slug = {mark} WHERE id = {mark}", (new, tag_id))
            holders[new] = holders.pop(slug)
        elif _name_key(holders[new][1]) == _name_key(name):
            _merge(database, tag_id, holders[new][0])
            del holders[slug]
        else:
            continue
        renamed[slug] = new
    if not renamed:
        return
    for table in ("webhook_subscription", "webhook_event"):
        rows = database.execute_sql(f"SELECT id, tags FROM {table} WHERE tags <> ''").fetchall()
        for row_id, listed in rows:
            slugs = [renamed.get(slug, slug) for slug in listed.split(",") if slug]
            named = ",".join(dict.fromkeys(slugs))
            if named != listed:
                database.execute_sql(
                    f"UPDATE {table} SET tags = {mark} WHERE id = {mark}", (named, row_id)
                )
    database.execute_sql(f"DELETE FROM setting WHERE name = {mark}", (CARD_FINGERPRINT,))


def _merge(database, tag_id, into):
    """Give the articles of tag ``tag_id`` the tag ``into`` instead, and drop ``tag_id``."""
    mark = database.param
    database.execute_sql(
        f"UPDATE article_tag SET tag_id = {mark} WHERE tag_id = {mark} AND article_id NOT IN"
        f" (SELECT article_id FROM article_tag WHERE tag_id = {mark})",
        (into, tag_id, into),
    )
    database.execute_sql(f"DELETE FROM article_tag WHERE tag_id = {mark}", (tag_id,))
    database.execute_sql(f"DELETE FROM tag WHERE id = {mark}", (tag_id,))
    database.execute_sql(
        "UPDATE tag SET article_count = (SELECT COUNT(*) FROM article_tag JOIN article"
        " ON article.id = article_tag.article_id WHERE article_tag.tag_id = tag.id"
        f" AND article.status = 'published') WHERE id = {mark}",
        (into,),
    )


def _slug(name, max_length=80):
    """A tag's slug as models.text made it at this version (the letters above spelled out)."""
    latin = unicodedata.normalize("NFKD", name.translate(LETTERS))
    slug = re.sub(r"[^a-z0-9]+", "-", latin.encode("ascii", "ignore").decode("ascii").lower())
    return slug.strip("-")[:max_length].rstrip("-")


def _name_key(name):
    """What two names of one tag share, as models.text.tag_name_key read them at this version:
    letters (without accents, case folded) and digits, and the ``+`` or ``#`` ending a name of
    at most two of them."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    key = "".join(
        c for c in folded if unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lo") or c.isdigit()
    )
    suffix = re.search(r"[+#]+$", name.strip())
    if suffix and len(key) <= 2:
        key += suffix.group(0)
    return key
