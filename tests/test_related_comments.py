import pytest


def test_related_editorial_first_then_by_score(client, make_article, make_relation):
    article, a, b, c, draft = (make_article() for _ in range(4)), None, None, None, None
    article, a, b, c = list(article)
    draft = make_article(status="draft")
    make_relation(article, a, origin="computed", score=0.9, reasons="similar_text,shared_tags")
    make_relation(article, b, origin="editorial", kind="follow_up", score=0.1)
    make_relation(article, c, origin="computed", score=0.95, reasons="shared_tags")
    make_relation(article, draft, origin="editorial")
    response = client.get(f"/v1/articles/{article.id}/related")
    assert response.status_code == 200
    data = response.json["data"]
    assert [item["id"] for item in data] == [b.id, c.id, a.id]
    assert data[0]["relation"] == {
        "kind": "follow_up",
        "origin": "editorial",
        "score": 0.1,
        "reasons": [],
        "language": "en",
    }
    assert data[2]["relation"]["reasons"] == ["similar_text", "shared_tags"]
    assert data[0]["source"]["slug"] == "default-source"
    assert "body_html" not in data[0]


def test_related_shows_the_body_fields_asked_for(client, make_article, make_relation):
    article = make_article()
    make_relation(article, make_article(body="The related one."), origin="computed", score=0.5)
    response = client.get(f"/v1/articles/{article.slug}/related?fields=id,body_text,body_html")
    assert response.status_code == 200
    (item,) = response.json["data"]
    assert (item["body_text"], item["body_html"]) == ("The related one.", "<p>The related one.</p>")


def test_related_limit_and_fields(client, make_article, make_relation):
    article = make_article()
    for number in range(7):
        make_relation(article, make_article(), origin="computed", score=number / 10)
    response = client.get(f"/v1/articles/{article.slug}/related?limit=2&fields=title")
    assert response.json["data"] == [
        {
            "title": "Article 8",
            "relation": {
                "kind": "related",
                "origin": "computed",
                "score": 0.6,
                "reasons": [],
                "language": "en",
            },
        },
        {
            "title": "Article 7",
            "relation": {
                "kind": "related",
                "origin": "computed",
                "score": 0.5,
                "reasons": [],
                "language": "en",
            },
        },
    ]
    assert len(client.get(f"/v1/articles/{article.id}/related").json["data"]) == 5


def test_related_of_an_article_without_relations_is_empty(client, make_article):
    article = make_article()
    assert client.get(f"/v1/articles/{article.id}/related").json == {
        "data": [],
        "has_more": False,
        "next_cursor": None,
    }


def test_related_pages_by_cursor_in_the_same_order(client, make_article, make_relation):
    article = make_article()
    # Ties of score (a float4 on PostgreSQL, so 0.3 is no exact float) keep relation order.
    for origin, score in [("computed", 0.3), ("editorial", 1.0), ("computed", 0.3)] * 2 + [
        ("computed", 0.7)
    ]:
        make_relation(article, make_article(), origin=origin, score=score)
    path = f"/v1/articles/{article.id}/related"
    whole = client.get(f"{path}?limit=50").json
    assert whole["has_more"] is False and len(whole["data"]) == 7
    walked, page = [], client.get(f"{path}?limit=2")
    while True:
        walked += [item["id"] for item in page.json["data"]]
        if not page.json["has_more"]:
            assert "Link" not in page.headers
            break
        cursor = page.json["next_cursor"]
        assert page.headers["Link"].endswith(f'?limit=2&cursor={cursor}>; rel="next"')
        page = client.get(f"{path}?limit=2&cursor={cursor}")
    assert walked == [item["id"] for item in whole["data"]]
    comments_cursor = client.get(f"/v1/articles/{article.id}/comments?limit=1").json
    other = make_article()
    make_relation(other, make_article())
    make_relation(other, make_article())
    first_page = client.get(f"{path}?limit=2").json["next_cursor"]
    for bad in ("nonsense", comments_cursor["next_cursor"] or "x.y"):
        refused = client.get(f"{path}?cursor={bad}")
        assert refused.status_code == 400 and list(refused.json["errors"]) == ["cursor"]
    # Another article's list: the cursor is no place in it.
    refused = client.get(f"/v1/articles/{other.id}/related?cursor={first_page}")
    assert refused.status_code == 400 and list(refused.json["errors"]) == ["cursor"]


@pytest.mark.parametrize("url", ["/v1/articles/404/related", "/v1/articles/404/comments"])
def test_related_and_comments_of_a_missing_article_are_404(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


def test_comments_visible_oldest_first(client, make_article, make_comment):
    article = make_article()
    first = make_comment(article)
    make_comment(article, status="hidden")
    reply = make_comment(article, parent=first, body="I agree")
    make_comment(make_article())
    response = client.get(f"/v1/articles/{article.id}/comments")
    assert response.status_code == 200
    assert response.json["has_more"] is False
    data = response.json["data"]
    assert [c["id"] for c in data] == [first.id, reply.id]
    assert data[1] == {
        "id": reply.id,
        "article_id": article.id,
        "parent_id": first.id,
        "author_name": "Reader 3",
        "body": "I agree",
        "status": "visible",
        "created_at": "2026-11-01T12:03:00Z",
    }
    assert client.get(f"/v1/articles/{article.id}").json["comment_count"] == 2


def test_comments_empty_list(client, make_article):
    article = make_article()
    response = client.get(f"/v1/articles/{article.id}/comments")
    assert response.json == {"data": [], "has_more": False, "next_cursor": None}


def test_comments_cursor_walk(client, make_article, make_comment):
    article = make_article()
    made = [make_comment(article).id for _ in range(5)]
    first = client.get(f"/v1/articles/{article.id}/comments?limit=2")
    second = client.get(
        f"/v1/articles/{article.id}/comments?limit=2&cursor={first.json['next_cursor']}"
    )
    third = client.get(
        f"/v1/articles/{article.id}/comments?limit=2&cursor={second.json['next_cursor']}"
    )
    seen = [c["id"] for page in (first, second, third) for c in page.json["data"]]
    assert seen == made
    assert third.json["has_more"] is False
