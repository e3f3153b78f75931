"""Computed related articles on a labelled corpus: story clusters, decoys that share surface
words with them, and a background of ordinary news (so that word frequencies are those of a news
archive, not of twenty articles). Every clustered article must rank its cluster-mates above every
decoy and every background article."""

import datetime

import pytest

from api.demo import load_demo
from models import COMPUTED, EDITORIAL, Article, Relation, related, search

from .conftest import BASE_TIME

CLUSTERS = {
    "bridge": [
        (
            "Riverton harbour bridge collapses during rush hour",
            "The Riverton harbour bridge collapsed on Monday. Engineers had warned about corrosion in the steel cables. Rescue teams searched the river.",
            ["infrastructure", "riverton"],
        ),
        (
            "Engineers warned of corrosion before Riverton bridge collapse",
            "Inspection reports show engineers flagged corrosion on the harbour bridge cables two years ago. The city delayed repairs.",
            ["infrastructure"],
        ),
        (
            "Divers recover cars from river after bridge collapse",
            "Divers pulled three cars from the river beneath the collapsed Riverton bridge. The harbour remains closed to shipping.",
            ["riverton"],
        ),
        (
            "Riverton mayor orders inspection of every harbour bridge",
            "After the collapse, the mayor ordered engineers to inspect every bridge in Riverton for corrosion and cable damage.",
            ["infrastructure", "riverton"],
        ),
    ],
    "phone": [
        (
            "Apple unveils thinner iPhone with longer battery life",
            "Apple showed its new iPhone in Cupertino. The smartphone has a longer battery life and a faster chip. The iPhone goes on sale next week.",
            ["technology"],
        ),
        (
            "iPhone preorders break records in first weekend",
            "Preorders for the new iPhone broke records. Analysts said smartphone demand surprised Apple suppliers. Delivery times for the iPhone slipped to a month.",
            ["technology", "business"],
        ),
        (
            "Reviewers praise new iPhone battery but criticise price",
            "Early reviews of the iPhone praised the battery and the chip but criticised the smartphone price. Reviewers said the iPhone camera barely changed.",
            ["technology"],
        ),
        (
            "Apple suppliers raise iPhone production targets",
            "Suppliers in Asia raised production targets for the iPhone after strong smartphone preorders. Assembly plants will add shifts to build more iPhone units.",
            ["business"],
        ),
    ],
    "measles": [
        (
            "Measles outbreak spreads to three schools",
            "Health officials confirmed a measles outbreak in three schools. Vaccination clinics opened on Tuesday.",
            ["health"],
        ),
        (
            "Vaccination clinics extend hours as measles cases rise",
            "Clinics extended opening hours for measles vaccination as the outbreak grew to forty cases.",
            ["health"],
        ),
        (
            "Parents queue for measles vaccine at pop-up clinics",
            "Hundreds of parents queued at pop-up clinics for the measles vaccine after the school outbreak.",
            ["health", "schools"],
        ),
        (
            "Officials trace measles outbreak to unvaccinated traveller",
            "Health officials traced the measles outbreak to a traveller who had not had the vaccination.",
            ["health"],
        ),
    ],
    "rates": [
        (
            "Central bank raises interest rates to fight inflation",
            "The central bank raised interest rates by half a point. Inflation remains above target, the governor said.",
            ["economy"],
        ),
        (
            "Mortgage costs climb after central bank rate rise",
            "Lenders raised mortgage rates within hours of the central bank decision on interest rates.",
            ["economy", "housing"],
        ),
        (
            "Governor defends rate rise as inflation stays high",
            "The central bank governor defended the interest rate rise, saying inflation was still too high.",
            ["economy"],
        ),
        (
            "Markets expect central bank to pause rate rises",
            "Traders expect the central bank to pause interest rate rises once inflation falls.",
            ["economy", "markets"],
        ),
    ],
}
DECOYS = [
    (
        "Apple orchards expect record harvest",
        "Growers expect a record apple harvest this autumn. Orchards hired extra pickers. Cider makers welcomed the cheaper fruit.",
        ["business"],
    ),
    (
        "Bridge club wins national championship",
        "The Riverton bridge club won the national card championship. Players practised every week.",
        ["riverton"],
    ),
    (
        "Bank holiday traffic jams expected on motorways",
        "Drivers should expect traffic on motorways over the bank holiday weekend.",
        ["transport"],
    ),
    (
        "Wildfire outbreak forces evacuations",
        "An outbreak of wildfires forced evacuations in the hills. Firefighters worked overnight.",
        ["climate"],
    ),
    (
        "Battery factory opens with five hundred jobs",
        "A battery factory opened with five hundred jobs. The plant makes cells for electric buses.",
        ["business", "technology"],
    ),
    (
        "School lunch prices rise again",
        "Parents face higher school lunch prices as food inflation continues.",
        ["schools", "economy"],
    ),
    (
        "River festival returns to the harbour",
        "The river festival returned to the harbour with boats and music.",
        ["culture"],
    ),
]


@pytest.fixture
def labelled(make_article, make_source, dbconn):
    sources = [make_source(slug=f"s{n}") for n in range(3)]
    labelled_stories = [(name, story) for name, stories in CLUSTERS.items() for story in stories]
    labelled_stories += [(None, story) for story in DECOYS]
    cluster_of = {}
    for number, (cluster, (title, body, tags)) in enumerate(labelled_stories, start=1):
        article = make_article(
            title=title,
            body=body,
            tags=tags,
            source=sources[number % 3],
            published_at=BASE_TIME + datetime.timedelta(hours=number * 5),
        )
        cluster_of[article.id] = cluster
    load_demo(articles=200, seed=5)
    for (article_id,) in (
        Article.select(Article.id).where(Article.id.not_in(list(cluster_of))).tuples()
    ):
        cluster_of[article_id] = None
    related.rebuild()
    return cluster_of


def test_cluster_mates_rank_above_every_decoy(client, labelled):
    precisions = []
    for article_id, cluster in labelled.items():
        if cluster is None:
            continue
        response = client.get(f"/v1/articles/{article_id}/related?limit=10")
        ranked = [item["id"] for item in response.json["data"]]
        mates = [i for i in ranked if labelled[i] == cluster]
        others = [i for i in ranked if labelled[i] != cluster]
        assert len(mates) == 3, (article_id, ranked)
        if others:
            assert ranked.index(others[0]) > max(ranked.index(m) for m in mates), (
                article_id,
                ranked,
            )
        precisions.append(sum(labelled[i] == cluster for i in ranked[:3]) / 3)
        for item in response.json["data"]:
            assert item["relation"]["origin"] == "computed"
            assert 0 < item["relation"]["score"] <= 1
            if labelled[item["id"]] == cluster:
                assert "similar_text" in item["relation"]["reasons"]
    assert sum(precisions) / len(precisions) == 1.0


def test_editorial_relation_still_comes_first(client, labelled, writer):
    bridge = [i for i, c in labelled.items() if c == "bridge"]
    festival = [i for i, c in labelled.items() if c is None][-1]
    client.post(
        f"/v1/articles/{bridge[0]}/relations",
        json={"article_id": festival, "kind": "background"},
        headers=writer,
    )
    ranked = client.get(f"/v1/articles/{bridge[0]}/related?limit=10").json["data"]
    assert ranked[0]["id"] == festival and ranked[0]["relation"]["origin"] == "editorial"
    assert {item["id"] for item in ranked[1:4]} == set(bridge[1:])


def test_a_new_article_joins_its_story(client, labelled, writer, make_source):
    measles = [i for i, c in labelled.items() if c == "measles"]
    created = client.post(
        "/v1/articles",
        json={
            "source": "s0",
            "title": "Measles outbreak: schools demand more vaccination clinics",
            "body_text": "Schools asked health officials for more measles vaccination clinics as the outbreak spread.",
            "tags": ["health"],
            "published_at": (BASE_TIME + datetime.timedelta(hours=70)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        },
        headers=writer,
    ).json
    own = [
        item["id"]
        for item in client.get(f"/v1/articles/{created['id']}/related?limit=4").json["data"]
    ]
    assert set(own) == set(measles)
    # The older stories list the new one too, without waiting for a rebuild.
    neighbours = client.get(f"/v1/articles/{measles[0]}/related?limit=10").json["data"]
    assert created["id"] in [item["id"] for item in neighbours]


def test_reading_related_is_one_query(client, labelled, count_queries):
    article_id = next(iter(labelled))
    count_queries.queries.clear()
    response = client.get(f"/v1/articles/{article_id}/related?fields=id,title")
    assert response.status_code == 200 and response.json["data"]
    relation_queries = [q for q in count_queries.queries if "relation" in q.lower()]
    assert len(relation_queries) == 1
    assert Relation.select().where(Relation.origin == "computed").count() > 0


def test_a_stored_list_is_offered_to_its_neighbours_where_it_makes_their_top(make_article):
    """Storing an article's list puts it in each related article's own computed list when it
    beats the lowest of a full one (which leaves), updates it where it is already computed,
    and leaves editorial relations and lists it does not beat alone."""
    new, full, beaten, listed, edited = (make_article() for _ in range(5))
    others = [make_article() for _ in range(related.KEEP)]

    def relation(article, other, score, origin=COMPUTED):
        Relation.create(
            article=article, related=other, kind="related", origin=origin, score=score, reasons=""
        )

    for owner in (full, beaten):
        for rank, other in enumerate(others):
            relation(owner, other, 0.5 + rank / 100)
    relation(listed, new, 0.1)
    relation(edited, new, 1.0, origin=EDITORIAL)
    related.store(
        new.id,
        [
            (full.id, 0.52, ["similar_text"]),
            (beaten.id, 0.4, ["similar_text"]),
            (listed.id, 0.7, ["shared_tags"]),
            (edited.id, 0.9, ["similar_text"]),
        ],
    )

    def computed(owner):
        rows = (
            Relation.select()
            .where((Relation.article == owner) & (Relation.origin == COMPUTED))
            .order_by(Relation.score.desc())
        )
        return [(row.related_id, round(row.score, 2)) for row in rows]

    assert len(computed(full)) == related.KEEP
    assert (new.id, 0.52) in computed(full) and (others[0].id, 0.5) not in computed(full)
    assert new.id not in dict(computed(beaten)) and len(computed(beaten)) == related.KEEP
    assert computed(listed) == [(new.id, 0.7)]
    updated = Relation.get((Relation.article == listed) & (Relation.related == new))
    assert (updated.kind, updated.reasons) == ("related", "shared_tags")
    editorial = Relation.get((Relation.article == edited) & (Relation.related == new))
    assert (editorial.origin, editorial.score) == (EDITORIAL, 1.0)


def test_how_rare_a_word_is_is_counted_again_as_articles_arrive(make_article, monkeypatch):
    # Kept per process for good, the counts of a worker started on a small database scored
    # every list after a large import by the words of the first few articles.
    now = search.counting_period()
    monkeypatch.setattr(search, "counting_period", lambda: now)  # no hour ends mid-test
    make_article(title="Harbour ferry returns", body="The harbour ferry sails again.")
    rare = search.inverse_frequency("ferry")
    for n in range(20):
        make_article(title=f"Orchard report {n}", body="Apples and pears.")
    assert search.inverse_frequency("ferry") == rare  # within one counting period
    monkeypatch.setattr(search, "counting_period", lambda: now + 1)
    assert search.inverse_frequency("ferry") > rare


def test_an_articles_words_are_looked_for_in_the_form_the_index_holds(make_article):
    # The index holds text in NFKC: "ｆｅｒｒｙ" (full width) as written, the word a full-width
    # article looked for its relations with, was in no document on SQLite, its own included.
    plain = make_article(title="Harbour ferry returns", body="The harbour ferry sails again.")
    body = "Ｆｅｒｒｙ tickets cost more."
    wide = make_article(title="Ｆｅｒｒｙ fares rise", body=body)
    (word, _), *_ = related.keywords(wide.title, wide.excerpt, body).values()
    assert word == "ferry"
    found = search.similar([word], wide.published_at, 2)
    assert {article_id for article_id, _ in found} == {plain.id, wide.id}
