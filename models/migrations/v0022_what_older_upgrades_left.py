"""Version 22: what upgrades from older releases left undone (an audit upgraded copies of
schema 5, 10 and 19 holding data).

- Articles without a vector, written before schema 11 (which queued none), are queued for the
  worker's embedding as a bulk write's: their stories, meaning search and related lists by
  meaning follow. (The worker embeds what is queued; only ``newsdesk embed`` looked further.)
- A webhook endpoint disabled when its database was upgraded to 20 got no pause
  (``paused_from`` empty), so once enabled it received the events of its disabled time. Its
  pause starts at its ``since_version``: the code before 20 skipped, when an endpoint was
  enabled again, every event up to then not yet given to it.
- Links whose URL holds a control character (``java\\x01script:``, stored by releases before
  the sanitizer dropped them; not a tab or a line break, which it keeps) are taken out of
  bodies, as the sanitizer does now; step 21 took out only those a browser reads as another
  scheme.
"""

import datetime
import html
import re

from . import v0021_unsafe_urls_out_of_bodies as step_21

#: The control characters the sanitizer refuses in a URL (``schemas.common``'s, as of this
#: step): not tabs and line breaks, which browsers drop from URLs and feeds wrap long ones with.
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def upgrade(migrator):
    database = migrator.database
    mark = database.param
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    database.execute_sql(
        "INSERT INTO embedding_queue (article_id, queued_at, bulk)"
        f" SELECT id, {mark}, {mark} FROM article WHERE NOT EXISTS"
        " (SELECT 1 FROM article_embedding WHERE article_embedding.article_id = article.id)"
        " AND NOT EXISTS"
        " (SELECT 1 FROM embedding_queue WHERE embedding_queue.article_id = article.id)",
        (now, True),
    )
    database.execute_sql(
        "UPDATE webhook_subscription SET paused_from = since_version"
        f" WHERE enabled = {mark} AND paused_from IS NULL",
        (False,),
    )
    step_21.clean_bodies(database, _safe_attribute)


def _safe_attribute(match):
    """The attribute as step 21 leaves it, or nothing when its URL holds a control character."""
    kept = step_21._safe_attribute(match)
    if kept and CONTROLS.search(html.unescape(match.group(2))):
        return ""
    return kept
