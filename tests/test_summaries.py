import pytest

from models.summarize import is_boilerplate, split_sentences, summarize

FLOOD = """Floodwater forced 3,000 people from their homes in the Riverton valley on Tuesday after the river burst its banks.

Photo: Rescue boats on Main Street. (Credit: J. Smith/AP)

The river rose 2.5 metres overnight, the highest level since records began in 1890, the Environment Agency said.

Mr. Adams, the mayor, said emergency shelters at the U.S. Army depot and two schools were open. "We have never seen water this high," he said.

Subscribe to our newsletter for more updates.

Forecasters expect more rain on Thursday, and the agency warned that the flood defences in the lower valley could fail.

READ MORE: HOW TO PROTECT YOUR HOME

Insurers said claims from the flood could exceed £200 million."""

RATES = """The central bank raised its main interest rate to 5.25% on Wednesday, its tenth increase in a row, as inflation stayed far above its target.

Governor Dr. Maria Lopez said inflation of 6.8% was "still too high" and that the bank would act again if needed.

Image caption: The bank's headquarters in the capital.

Markets had expected the decision. Mortgage lenders said they would pass the increase on to borrowers within days.

Advertisement

Economists at three large banks said the rate could peak at 5.5% by the spring."""


def test_lead_is_chosen_and_boilerplate_never(client, make_article):
    for body in (FLOOD, RATES):
        article = make_article(body=body)
        for count in (1, 2, 3, 4):
            response = client.get(f"/v1/articles/{article.id}/summary?sentences={count}")
            assert response.status_code == 200
            sentences = response.json["sentences"]
            assert len(sentences) == count
            assert sentences[0] == body.split("\n\n")[0]  # the lead a human would pick first
            for sentence in sentences:
                assert sentence in body  # verbatim
                assert not sentence.lower().startswith(
                    ("photo", "image", "subscribe", "read more", "advert")
                )
            positions = [body.index(s) for s in sentences]
            assert positions == sorted(positions)  # original order


def test_summary_answer_and_cache(client, make_article, writer, source):
    article = make_article(body=FLOOD, source=source)
    first = client.get(f"/v1/articles/{article.id}/summary")
    assert first.status_code == 200
    body = first.json
    assert body["article_id"] == article.id and body["method"] == "textrank-v2"
    assert body["article_version"] == 1 and len(body["sentences"]) == 3
    etag = first.headers["ETag"]
    assert (
        client.get(
            f"/v1/articles/{article.id}/summary", headers={"If-None-Match": etag}
        ).status_code
        == 304
    )
    client.patch(
        f"/v1/articles/{article.id}",
        json={"body_text": "A short new body about the dam. It has two sentences only."},
        headers=writer,
    )
    again = client.get(f"/v1/articles/{article.id}/summary", headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert again.json["article_version"] == 2
    assert again.json["sentences"] == [
        "A short new body about the dam.",
        "It has two sentences only.",
    ]


@pytest.mark.parametrize("count", ["0", "11", "-1", "three"])
def test_sentences_out_of_range_is_422(client, make_article, count):
    article = make_article()
    response = client.get(f"/v1/articles/{article.id}/summary?sentences={count}")
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["sentences"]


def test_summary_of_a_missing_article_is_404(client):
    assert client.get("/v1/articles/999/summary").status_code == 404


def test_splitting_handles_abbreviations_numbers_and_quotes():
    text = 'Mr. Smith met Dr. Jones in the U.S. capital at 3.30 p.m. on Monday. "It went well," he said. Was it? Yes!'
    assert split_sentences(text) == [
        "Mr. Smith met Dr. Jones in the U.S. capital at 3.30 p.m. on Monday.",
        '"It went well," he said.',
        "Was it?",
        "Yes!",
    ]
    assert split_sentences('She said: "We won." Then she left.') == [
        'She said: "We won."',
        "Then she left.",
    ]
    assert split_sentences("J. K. Rowling wrote it. It sold well.") == [
        "J. K. Rowling wrote it.",
        "It sold well.",
    ]


def test_splitting_initials_no_and_marks_of_other_scripts():
    assert split_sentences("Analysts at J.P. Morgan expect a cut. Others do not.") == [
        "Analysts at J.P. Morgan expect a cut.",
        "Others do not.",
    ]
    assert split_sentences("It was shipped from Washington D.C. The crate arrived.") == [
        "It was shipped from Washington D.C.",
        "The crate arrived.",
    ]
    assert split_sentences("He said no. Then he left. Room No. 5 was empty.") == [
        "He said no.",
        "Then he left.",
        "Room No. 5 was empty.",
    ]
    assert split_sentences("هل انتهى الإضراب؟ لم ينته بعد.") == [
        "هل انتهى الإضراب؟",
        "لم ينته بعد.",
    ]
    assert split_sentences("हड़ताल जारी है। रेलगाड़ियाँ बंद हैं।") == [
        "हड़ताल जारी है।",
        "रेलगाड़ियाँ बंद हैं।",
    ]


def test_splitting_japanese_and_chinese():
    assert split_sentences("東京で地震があった。けが人はいない！本当か？") == [
        "東京で地震があった。",
        "けが人はいない！",
        "本当か？",
    ]
    assert split_sentences("今天下雨。明天晴天。") == ["今天下雨。", "明天晴天。"]
    summary = summarize(
        "東京で大きな地震があった。地震の後、東京の電車は止まった。けが人はいないと当局は発表した。",
        2,
    )
    assert len(summary) == 2 and all(s.endswith("。") for s in summary)


@pytest.mark.parametrize(
    "text", ["", "   ", "One sentence only.", "no punctuation at all", "。。。", "!!!"]
)
def test_odd_bodies_do_not_fail(text):
    summary = summarize(text, 3)
    assert len(summary) <= 3
    assert all(s in text for s in summary)


def test_very_long_body_is_summarized():
    body = " ".join(
        f"Sentence number {n} talks about topic {n % 7} in some detail here." for n in range(3000)
    )
    summary = summarize(body, 5)
    assert len(summary) == 5 and summary[0].startswith("Sentence number 0")


@pytest.mark.parametrize(
    "line",
    [
        "Photo: Boats on Main Street.",
        "(Reuters)",
        "Subscribe to our newsletter for more updates.",
        "READ MORE: HOW TO PROTECT YOUR HOME",
        "Image caption: The bank.",
        "Advertisement",
    ],
)
def test_boilerplate_lines(line):
    assert is_boilerplate(line)


def test_story_sentences_are_not_boilerplate():
    assert not is_boilerplate("The river rose 2.5 metres overnight, the agency said.")


BRIEF = "Ferry cancelled today.\n\nStorm warning issued.\n\nPhoto: The harbour."


def test_a_brief_of_short_sentences_has_a_summary_key_points_and_answers(client, make_article):
    article = make_article(body=BRIEF)
    expected = ["Ferry cancelled today.", "Storm warning issued."]
    assert client.get(f"/v1/articles/{article.id}/summary").json["sentences"] == expected
    points = client.get(f"/v1/articles/{article.id}/key-points").json["sentences"]
    assert [point["sentence"] for point in points] == expected
    answers = client.get(f"/v1/articles/{article.id}/answers?q=ferry").json["sentences"]
    assert answers and {a["sentence"] for a in answers} <= set(expected)


def test_keys_that_may_write_read_a_drafts_summary_key_points_and_answers(
    client, make_article, make_key
):
    draft = make_article(body=FLOOD, status="draft")
    writer, reader = make_key("write"), make_key("read")
    for path in ("summary", "key-points", "answers?q=how+many+people"):
        url = f"/v1/articles/{draft.id}/{path}"
        shown = client.get(url, headers=writer)
        assert shown.status_code == 200 and shown.json["sentences"], path
        assert "private" in shown.headers["Cache-Control"]
        assert client.get(url).status_code == 404
        assert client.get(url, headers=reader).status_code == 404
        # The writer's ETag is no way in for others, nor the early 304 path.
        tag = shown.headers["ETag"]
        assert client.get(url, headers={"If-None-Match": tag}).status_code == 404


def test_a_summary_or_answers_of_an_article_deleted_as_they_are_made_are_not_kept(
    client, writer, make_article
):
    # A read that found the article, then made its summary and sentence vectors while a write
    # deleted it: their rows cannot be kept (the article's foreign key), and the read answers
    # what it found (it was a 409 "conflicts with data already stored").
    from models import Article, answers
    from models.answers import SentenceEmbedding
    from models.summaries import Summary

    article = make_article(body=FLOOD)
    found = Article.get_by_id(article.id)
    assert client.delete(f"/v1/articles/{article.id}", headers=writer).status_code == 204
    summary = Summary.for_article(found, 3)
    assert summary.sentence_list[0].startswith("Floodwater forced 3,000 people")
    assert answers.key_points(found)[0] == []  # its body is gone too
    assert not Summary.select().where(Summary.article == article.id).exists()
    assert not SentenceEmbedding.select().where(SentenceEmbedding.article == article.id).exists()
