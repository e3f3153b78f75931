"""Synthetic but realistic demo data, the same for the same seed.

Articles come in stories (several pieces on one event from different publishers over a few
days), so related articles, tags and search have something true to find.
"""

import datetime
import itertools
import random

from models import cards
from models.articles import PUBLISHED, Article, ArticleBody, ArticleTag, Relation, Source, Tag
from models.base import db
from models.changes import DataVersion
from models.comments import Comment
from models.embeddings import EmbeddingQueue
from models.search import index_articles
from models.text import make_excerpt, reading_time_minutes, slugify, text_to_html, word_count

#: The newest demo article is published at this time, so a seed always gives the same rows.
ANCHOR = datetime.datetime(2026, 11, 27, 12, 0, 0)
BATCH = 500

SOURCES = [
    ("daily-ledger", "The Daily Ledger", "en", "US"),
    ("northern-post", "Northern Post", "en", "GB"),
    ("pacific-wire", "Pacific Wire", "en", "AU"),
    ("metro-tribune", "Metro Tribune", "en", "US"),
    ("rundschau-24", "Rundschau 24", "de", "DE"),
    ("le-quotidien", "Le Quotidien", "fr", "FR"),
    ("el-diario-global", "El Diario Global", "es", "ES"),
    ("tokyo-shimbun-digital", "Tokyo Shimbun Digital", "ja", "JP"),
]

TOPICS = [
    ("politics", "Politics", ["parliament", "election", "coalition", "minister", "ballot"]),
    ("economy", "Economy", ["inflation", "interest rates", "central bank", "wages", "exports"]),
    (
        "technology",
        "Technology",
        ["chipmaker", "smartphone", "data centre", "software", "robotics"],
    ),
    ("climate", "Climate", ["heatwave", "emissions", "flooding", "wildfire", "drought"]),
    ("health", "Health", ["vaccine", "hospital", "clinical trial", "nurses", "outbreak"]),
    ("sport", "Sport", ["final", "transfer", "championship", "coach", "stadium"]),
    ("science", "Science", ["telescope", "genome", "fusion reactor", "asteroid", "fossil"]),
    ("business", "Business", ["merger", "quarterly results", "startup", "layoffs", "retailer"]),
    ("culture", "Culture", ["film festival", "museum", "novel", "concert tour", "exhibition"]),
    ("world", "World", ["summit", "ceasefire", "embassy", "trade deal", "refugees"]),
    ("energy", "Energy", ["wind farm", "oil price", "power grid", "solar panels", "nuclear plant"]),
    ("education", "Education", ["universities", "teachers", "exam results", "school funding"]),
    ("transport", "Transport", ["rail strike", "airport", "electric buses", "motorway"]),
    ("housing", "Housing", ["rents", "mortgage", "housing estate", "building permits"]),
    ("space", "Space", ["rocket launch", "lunar lander", "satellite", "space station"]),
    ("food", "Food", ["harvest", "food prices", "restaurants", "fisheries"]),
    ("law", "Law", ["supreme court", "trial", "verdict", "appeal", "new law"]),
    ("media", "Media", ["broadcaster", "newspaper", "streaming service", "journalists"]),
    ("ai", "Artificial Intelligence", ["language model", "AI regulation", "chatbot", "GPU"]),
    ("cities", "Cities", ["city council", "mayor", "public transport", "parks"]),
]
EXTRA_TAGS = [
    ("analysis", "Analysis"),
    ("opinion", "Opinion"),
    ("breaking", "Breaking"),
    ("explainer", "Explainer"),
    ("interview", "Interview"),
    ("live", "Live"),
]

PLACES = [
    "Lisbon",
    "Nairobi",
    "Osaka",
    "Toronto",
    "Melbourne",
    "Hamburg",
    "Lyon",
    "Valencia",
    "Chicago",
    "Manchester",
    "Seoul",
    "Santiago",
    "Oslo",
    "Cairo",
    "Mumbai",
    "Denver",
]
PEOPLE = [
    "Amara Okafor",
    "Jonas Richter",
    "Claire Dubois",
    "Lucía Moreno",
    "Haruto Sato",
    "Priya Raman",
    "Tom Gallagher",
    "Ines Carvalho",
    "Mei Lin",
    "Samuel Adeyemi",
]
VERBS = [
    "unveils plan for",
    "faces pressure over",
    "moves to expand",
    "warns of risks in",
    "reaches agreement on",
    "delays decision on",
    "launches review of",
    "doubles down on",
    "cuts funding for",
    "bets big on",
    "reverses course on",
    "calls for inquiry into",
]
FOLLOW_UPS = ["What we know about", "Why it matters:", "Reactions to", "Five questions on"]
SENTENCES_EN = [
    "Officials in {place} said the {subject} would be reviewed before the end of the year.",
    "{person}, who has followed the {subject} for a decade, called the move overdue.",
    "The decision comes after weeks of debate over the {subject} in {place}.",
    "Critics argue that the {subject} has been handled poorly from the start.",
    "Supporters say the plan could reshape the {subject} for a generation.",
    "Figures released on {weekday} showed a sharp change in the {subject}.",
    "Analysts expect the {subject} to dominate headlines in the coming weeks.",
    "Residents of {place} have been divided on the {subject} since it was first proposed.",
    "{person} said the priority now was to explain the {subject} to the public.",
    "The {subject} has drawn attention far beyond {place}.",
    "A spokesperson declined to comment on the {subject} on {weekday}.",
    "Questions remain over how the {subject} will be paid for.",
]
SENTENCES = {
    "de": [
        "Die Behörden in {place} kündigten an, das Thema {subject} neu zu prüfen.",
        "{person} bezeichnete die Entscheidung zum Thema {subject} als überfällig.",
        "Kritiker sagen, beim Thema {subject} sei von Anfang an viel schiefgelaufen.",
        "Am {weekday} wurden neue Zahlen zum Thema {subject} veröffentlicht.",
    ],
    "fr": [
        "Les autorités de {place} ont annoncé un réexamen du dossier {subject}.",
        "{person} a jugé la décision sur le dossier {subject} trop tardive.",
        "Les critiques estiment que le dossier {subject} a été mal géré.",
        "De nouveaux chiffres sur le dossier {subject} ont été publiés {weekday}.",
    ],
    "es": [
        "Las autoridades de {place} anunciaron una revisión del asunto {subject}.",
        "{person} calificó de tardía la decisión sobre el asunto {subject}.",
        "Los críticos creen que el asunto {subject} se gestionó mal desde el principio.",
        "El {weekday} se publicaron nuevas cifras sobre el asunto {subject}.",
    ],
    "ja": [
        "{place}の当局は{subject}について年内に見直すと発表した。",
        "{person}氏は{subject}をめぐる決定は遅すぎたと述べた。",
        "批判的な人々は{subject}への対応が最初から不十分だったと指摘する。",
        "{weekday}に{subject}に関する新しい数字が公表された。",
    ],
}
NOUNS = [
    "ambulance",
    "archive",
    "auditor",
    "bakery",
    "ballot",
    "barrier",
    "battery",
    "bicycle",
    "blueprint",
    "border",
    "bridge",
    "budget",
    "cabinet",
    "canal",
    "candidate",
    "capital",
    "cargo",
    "castle",
    "cathedral",
    "census",
    "charity",
    "chemist",
    "circuit",
    "clinic",
    "coalition",
    "coastline",
    "commuter",
    "compass",
    "contract",
    "convoy",
    "corridor",
    "courtroom",
    "crater",
    "crew",
    "currency",
    "customs",
    "dam",
    "database",
    "deadline",
    "delegate",
    "depot",
    "diesel",
    "diplomat",
    "district",
    "dockyard",
    "donor",
    "drone",
    "embassy",
    "engine",
    "estate",
    "exhibit",
    "factory",
    "farmland",
    "ferry",
    "festival",
    "fisherman",
    "forecast",
    "fortress",
    "freight",
    "gallery",
    "garrison",
    "glacier",
    "granary",
    "grant",
    "greenhouse",
    "harbour",
    "hangar",
    "highway",
    "hospital",
    "inspector",
    "invoice",
    "island",
    "jury",
    "kiln",
    "laboratory",
    "landfill",
    "lantern",
    "ledger",
    "library",
    "lighthouse",
    "lobbyist",
    "locomotive",
    "magistrate",
    "mandate",
    "marina",
    "market",
    "meadow",
    "memorial",
    "merchant",
    "meteorologist",
    "midwife",
    "mine",
    "monument",
    "mortgage",
    "museum",
    "negotiator",
    "notary",
    "observatory",
    "orchard",
    "orchestra",
    "paramedic",
    "parish",
    "pavilion",
    "pension",
    "pharmacy",
    "pilot",
    "pipeline",
    "plaza",
    "portfolio",
    "prison",
    "quarry",
    "railway",
    "rancher",
    "refinery",
    "regiment",
    "reservoir",
    "retailer",
    "runway",
    "salary",
    "satellite",
    "sawmill",
    "scholar",
    "senate",
    "shipyard",
    "shrine",
    "silo",
    "skyline",
    "smelter",
    "stadium",
    "statute",
    "subsidy",
    "subway",
    "surgeon",
    "surveyor",
    "tariff",
    "terminal",
    "textile",
    "theatre",
    "timber",
    "tournament",
    "tractor",
    "tram",
    "treasury",
    "tribunal",
    "tunnel",
    "turbine",
    "university",
    "vaccine",
    "valley",
    "vendor",
    "verdict",
    "vineyard",
    "voter",
    "warehouse",
    "watchdog",
    "wetland",
    "wharf",
    "wildlife",
    "workshop",
]
DETAILS = [
    "Questions about the {noun} were raised at a meeting near the {noun2}.",
    "The {noun} has been under review since the {noun2} was closed.",
    "Local reporters spoke to a {noun} worker outside the {noun2}.",
    "A report on the {noun} and the {noun2} is due next month.",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
COMMENTS = [
    "Thanks for the clear explanation.",
    "I would like to see the full figures behind this.",
    "This affects my family directly, good to see it covered.",
    "The headline is a bit misleading compared to the article.",
    "Great reporting, please follow up on this.",
]


def _zipf_weights(count, exponent=1.1):
    return [1 / (rank**exponent) for rank in range(1, count + 1)]


def _story(rng, index):
    slug, _, subjects = TOPICS[rng.choices(range(len(TOPICS)), _TOPIC_WEIGHTS)[0]]
    return {
        "index": index,
        "topic": slug,
        "subject": rng.choice(subjects),
        "place": rng.choice(PLACES),
        "person": rng.choice(PEOPLE),
        "actor": f"{rng.choice(PLACES)} {rng.choice(['government', 'council', 'regulator', 'union', 'group'])}",
        "verb": rng.choice(VERBS),
    }


_TOPIC_WEIGHTS = _zipf_weights(len(TOPICS))


def _paragraphs(rng, story, language, count):
    bank = SENTENCES.get(language, SENTENCES_EN)
    fill = {
        "place": story["place"],
        "person": story["person"],
        "subject": story["subject"],
        "weekday": rng.choice(WEEKDAYS),
    }
    joiner = "" if language == "ja" else " "
    paragraphs = []
    for _ in range(count):
        sentences = [rng.choice(bank).format(**fill) for _ in range(rng.randint(2, 4))]
        if language == "en":
            detail = rng.choice(DETAILS).format(noun=rng.choice(NOUNS), noun2=rng.choice(NOUNS))
            sentences.insert(rng.randint(1, len(sentences)), detail)
        paragraphs.append(joiner.join(sentences))
    return paragraphs


def _title(rng, story, part):
    base = f"{story['actor']} {story['verb']} {story['subject']}"
    if part == 0:
        return base[0].upper() + base[1:]
    return f"{rng.choice(FOLLOW_UPS)} {story['subject']} in {story['place']}"


def generate(rng, articles, seed):
    """Demo articles one by one: ``{"article": row, "body_text", "tags", "story", "part"}``.

    The row names its source by slug. Articles come newest last, spread over the days before
    :data:`ANCHOR`, in stories of one to six pieces.
    """
    extra_weights = _zipf_weights(len(EXTRA_TAGS), 0.8)
    story = None
    span = datetime.timedelta(days=max(30, articles // 80))
    for number in range(articles):
        if story is None or story["left"] == 0:
            story = _story(rng, number)
            story["left"] = rng.choice([1, 1, 2, 3, 4, 6])
            story["part"] = 0
        source_slug, _, language, _ = rng.choice(SOURCES)
        offset = span * (1 - number / max(1, articles)) + datetime.timedelta(
            minutes=rng.randint(0, 600)
        )
        published_at = (ANCHOR - offset).replace(microsecond=0)
        title = _title(rng, story, story["part"])
        paragraphs = _paragraphs(rng, story, language, rng.randint(3, 7))
        body_text = "\n\n".join(paragraphs)
        words = word_count(body_text)
        article_tags = {story["topic"]}
        if rng.random() < 0.4:
            article_tags.add(rng.choices(EXTRA_TAGS, extra_weights)[0][0])
        if rng.random() < 0.3:
            article_tags.add(rng.choices(TOPICS, _TOPIC_WEIGHTS)[0][0])
        yield {
            "article": {
                "slug": f"{slugify(title, 60) or 'article'}-{seed}-{number}",
                "source": source_slug,
                "external_id": f"demo-{seed}-{number}",
                "title": title,
                "excerpt": make_excerpt(body_text),
                "url": f"https://{source_slug}.example.com/news/{seed}-{number}",
                "image_url": f"https://{source_slug}.example.com/img/{seed}-{number}.jpg",
                "byline": rng.choice(PEOPLE),
                "language": language,
                "status": PUBLISHED,
                "published_at": published_at,
                "created_at": published_at,
                "updated_at": published_at,
                "word_count": words,
                "reading_time_minutes": reading_time_minutes(words),
            },
            "body_text": body_text,
            "tags": sorted(article_tags),
            "story": story["index"],
            "part": story["part"],
        }
        story["left"] -= 1
        story["part"] += 1


def load_demo(articles=1000, seed=42):
    """Load ``articles`` demo articles (with sources, tags, relations and comments).

    Rows are keyed by ``(source, external_id)`` and slug, so loading the same seed again adds
    nothing. Returns the number of articles the call created.
    """
    rng = random.Random(seed)
    # Only rows not there yet are inserted: an insert that is then ignored uses up an id.
    with db.atomic():
        stored = {slug for (slug,) in Source.select(Source.slug).tuples()}
        sources = [
            {
                "slug": slug,
                "name": name,
                "language": language,
                "country": country,
                "homepage_url": f"https://{slug}.example.com/",
                "logo_url": f"https://{slug}.example.com/logo.png",
            }
            for slug, name, language, country in SOURCES
            if slug not in stored
        ]
        if sources:
            Source.insert_many(sources).on_conflict_ignore().execute()
        stored = {slug for (slug,) in Tag.select(Tag.slug).tuples()}
        tags = [(slug, name) for slug, name, _ in TOPICS] + EXTRA_TAGS
        tags = [{"slug": s, "name": n} for s, n in tags if s not in stored]
        if tags:
            Tag.insert_many(tags).on_conflict_ignore().execute()
        DataVersion.bump()  # every transaction that changes answers changes their ETags
    sources = {s.slug: s for s in Source.select().where(Source.slug.in_([s[0] for s in SOURCES]))}
    tag_ids = {t.slug: t.id for t in Tag.select(Tag.id, Tag.slug)}

    created = 0
    articles_iter = generate(rng, articles, seed)
    while batch := list(itertools.islice(articles_iter, BATCH)):
        for row in batch:
            row["article"]["source"] = sources[row["article"]["source"]].id
        created += _insert_batch(rng, batch, tag_ids)
    with db.atomic():
        Source.refresh_counts()
        Tag.refresh_counts()
        DataVersion.bump()
    return created


def _insert_batch(rng, rows, tag_ids):
    with db.atomic():
        external_ids = [row["article"]["external_id"] for row in rows]
        known = Article.select(Article.external_id, Article.id).where(
            Article.external_id.in_(external_ids)
        )
        stored = dict(known.tuples())
        existing = set(stored.values())
        fresh = [row["article"] for row in rows if row["article"]["external_id"] not in stored]
        if fresh:
            Article.insert_many(fresh).on_conflict_ignore().execute()
        ids = dict(known.tuples())
        new_ids = set(ids.values()) - existing
        bodies, links, relations, comments = [], [], [], []
        first_of_story = {}
        for row in rows:
            article_id = ids[row["article"]["external_id"]]
            bodies.append(
                {
                    "article": article_id,
                    "body_text": row["body_text"],
                    "body_html": text_to_html(row["body_text"]),
                }
            )
            for slug in row["tags"]:
                links.append(
                    {
                        "article": article_id,
                        "tag": tag_ids[slug],
                        "published_at": row["article"]["published_at"],
                    }
                )
            if row["part"] == 0:
                first_of_story[row["story"]] = article_id
            elif row["story"] in first_of_story and article_id in new_ids:
                lead = first_of_story[row["story"]]
                kind = "same_story" if row["part"] == 1 else "follow_up"
                relations.append({"article": lead, "related": article_id, "kind": kind})
                relations.append({"article": article_id, "related": lead, "kind": "background"})
            if rng.random() < 0.1:
                minutes = sorted(rng.sample(range(5, 600), rng.randint(1, 3)))
                authors = [rng.choice(PEOPLE).split()[0] for _ in minutes]
                texts = [rng.choice(COMMENTS) for _ in minutes]
                if article_id in new_ids:
                    comments.extend(
                        {
                            "article": article_id,
                            "author_name": author,
                            "body": text,
                            "created_at": row["article"]["published_at"]
                            + datetime.timedelta(minutes=after),
                        }
                        for after, author, text in zip(minutes, authors, texts, strict=True)
                    )
        ArticleBody.insert_many(bodies).on_conflict_ignore().execute()
        ArticleTag.insert_many(links).on_conflict_ignore().execute()
        index_articles(new_ids)
        if relations:
            Relation.insert_many(relations).on_conflict_ignore().execute()
        if comments:
            Comment.insert_many(comments).execute()
            Comment.recount({c["article"] for c in comments})
        cards.publish(sorted(new_ids))
        DataVersion.bump()
        if new_ids:
            # The worker embeds them, gathers them into stories and relates them by meaning.
            EmbeddingQueue.add(sorted(new_ids), bulk=True)
    return len(new_ids)
