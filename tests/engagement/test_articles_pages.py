"""The article pages, server-side: the library (cards, live-search fragment, topic chips, empty states,
paging, "Write an article" for writers only), one article rendered safely, writing with inline errors and
a sanitised live preview, save draft / publish / archive through the forms, the edit form for its editors
only, and the patient dashboard's suggestions panel."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.engagement.models import Article
from tests.conftest import Cast, web_login
from tests.engagement.test_articles import write
from tests.records.test_pages import add as add_record


def card_titles(html: str) -> list[str]:
    """The titles of the article cards on a page or fragment, in order."""
    return re.findall(r'<h2 class="h3 mb-1"><a href="/articles/[^"]+">([^<]+)</a></h2>', html)


def form(csrf: str, **fields: str) -> dict[str, str]:
    """The writing form's fields."""
    values = {
        "csrf_token": csrf,
        "title": "Inhaler technique",
        "summary": "Get the medicine where it is needed.",
        "topic_medications": "1",
        "keywords": "Salbutamol, J45, inhaler",
        "body_markdown": "## Steps\n\n1. Shake\n2. Breathe out\n3. Press and breathe in",
        "action": "draft",
    }
    values.update(fields)
    return values


def test_the_library_lists_published_articles_with_search_and_topics(
    client: TestClient, cast: Cast, sign_in: Any
) -> None:
    doctor = sign_in(cast["doctor"])
    write(
        client, doctor, title="Salt and blood pressure", topics=["diet"], summary="Less salt, lower pressure."
    )
    write(client, doctor, title="Sleep habits", topics=["wellness"], keywords=["insomnia"])
    write(client, doctor, publish=False, title="Unfinished draft on salt", topics=["diet"])
    web_login(client, cast["patient"])

    page = client.get("/articles")
    assert page.status_code == 200
    assert card_titles(page.text) == ["Sleep habits", "Salt and blood pressure"]
    assert "Less salt, lower pressure." in page.text  # the summary on the card
    assert 'data-testid="write-article"' not in page.text
    assert 'data-testid="status-tabs"' not in page.text
    assert 'hx-get="/articles"' in page.text
    assert 'name="topic" value="diet"' in page.text

    fragment = client.get("/articles", params={"q": "SALT"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert card_titles(fragment.text) == ["Salt and blood pressure"]
    assert card_titles(client.get("/articles", params={"q": "insomnia"}).text) == ["Sleep habits"]
    assert card_titles(client.get("/articles", params={"topic": "wellness"}).text) == ["Sleep habits"]

    nothing = client.get("/articles", params={"q": "zebra"})
    assert card_titles(nothing.text) == []
    assert "No article matches" in nothing.text
    draft_tab = client.get("/articles", params={"status": "draft"})  # patients only ever see published ones
    assert card_titles(draft_tab.text) == ["Sleep habits", "Salt and blood pressure"]
    bad_cursor = client.get("/articles", params={"cursor": "garbage"})
    assert bad_cursor.status_code == 200
    assert 'data-testid="form-error"' in bad_cursor.text


def test_an_empty_library_says_so(client: TestClient, cast: Cast) -> None:
    web_login(client, cast["donor"])
    page = client.get("/articles")
    assert page.status_code == 200
    assert "No articles yet" in page.text


def test_the_library_pages(client: TestClient, cast: Cast, sign_in: Any) -> None:
    doctor = sign_in(cast["doctor"])
    for i in range(14):
        write(client, doctor, title=f"Article number {i:02d}")
    web_login(client, cast["nurse"])
    first = client.get("/articles")
    assert card_titles(first.text) == [f"Article number {i:02d}" for i in range(13, 1, -1)]
    next_url = re.search(r'href="(/articles\?[^"]*cursor=[^"]+)" rel="next"', first.text)
    assert next_url
    second = client.get(next_url.group(1).replace("&amp;", "&"))
    assert card_titles(second.text) == ["Article number 01", "Article number 00"]
    assert 'rel="next"' not in second.text
    assert "First page" in second.text


def test_a_writer_drafts_previews_publishes_and_archives(client: TestClient, cast: Cast, tx: Any) -> None:
    csrf = web_login(client, cast["nurse"])
    library = client.get("/articles")
    assert 'data-testid="write-article"' in library.text
    assert 'data-testid="status-tabs"' in library.text
    new = client.get("/articles/new")
    assert new.status_code == 200
    assert 'hx-post="/articles/preview"' in new.text
    assert 'name="topic_wellness"' in new.text

    preview = client.post(
        "/articles/preview",
        data={
            "csrf_token": csrf,
            "body_markdown": "**Hi** <script>alert(1)</script> [x](javascript:alert(1))",
        },
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200
    assert "<strong>Hi</strong>" in preview.text
    assert "<script" not in preview.text
    assert "href" not in preview.text
    assert "<html" not in preview.text

    invalid = client.post("/articles/new", data=form(csrf, title="Hi", topic_medications=""))
    assert invalid.status_code == 422
    assert "The title needs 5 to 200 characters." in invalid.text
    assert 'value="Hi"' in invalid.text  # what was typed stays
    no_topic = client.post("/articles/new", data=form(csrf, topic_medications=""))
    assert no_topic.status_code == 422
    assert "Choose at least one topic." in no_topic.text

    saved = client.post("/articles/new", data=form(csrf), follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/articles/inhaler-technique?saved=1"
    with tx() as s:
        article = s.execute(select(Article)).scalar_one()
        assert article.status == "draft"
        assert article.keywords == ["salbutamol", "j45", "inhaler"]
        assert article.topics == ["medications"]
        article_id = article.id
    page = client.get(saved.headers["location"])
    assert 'data-testid="status"' in page.text
    assert "It is a draft" in page.text
    assert "<h2>Steps</h2>" in page.text
    assert 'data-testid="publish"' in page.text

    edit = client.get(f"/articles/{article_id}/edit")
    assert edit.status_code == 200
    assert 'value="salbutamol, j45, inhaler"' in edit.text
    published = client.post(
        f"/articles/{article_id}/edit",
        data=form(csrf, title="Inhaler technique step by step", action="publish"),
        follow_redirects=False,
    )
    assert published.status_code == 303
    assert published.headers["location"] == "/articles/inhaler-technique-step-by-step?saved=1"
    shown = client.get(published.headers["location"])
    assert "Readers can see it." in shown.text
    assert 'data-testid="archive"' in shown.text
    assert "data-confirm=" in shown.text  # archiving asks first

    archived = client.post(
        f"/articles/{article_id}/archive", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert archived.status_code == 303
    with tx() as s:
        row = s.get(Article, article_id)
        assert row is not None
        assert row.status == "archived"
    tab = client.get("/articles", params={"status": "archived"})
    assert card_titles(tab.text) == ["Inhaler technique step by step"]
    republished = client.post(
        f"/articles/{article_id}/publish", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert republished.status_code == 303
    assert (
        client.post(f"/articles/{article_id}/archive", follow_redirects=False).status_code == 403
    )  # no CSRF


def test_readers_cannot_write_and_drafts_stay_hidden(client: TestClient, cast: Cast, sign_in: Any) -> None:
    draft = write(client, sign_in(cast["doctor"]), publish=False)
    published = write(client, sign_in(cast["doctor"]), body_markdown="Text <img src=x onerror=alert(1)>")
    csrf = web_login(client, cast["patient"])
    assert client.get("/articles/new").status_code == 403
    assert client.post("/articles/new", data=form(csrf)).status_code == 403
    assert (
        client.post("/articles/preview", data={"csrf_token": csrf, "body_markdown": "x"}).status_code == 403
    )
    assert client.get(f"/articles/{draft['slug']}").status_code == 404
    assert client.get(f"/articles/{draft['id']}/edit").status_code == 403  # patients never write
    page = client.get(f"/articles/{published['slug']}")
    assert page.status_code == 200
    assert "<img" not in page.text.split('data-testid="article-body"')[1].split("</div>")[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert 'data-testid="edit"' not in page.text
    web_login(client, cast["pharmacist"])  # a writer, but not this article's
    assert client.get(f"/articles/{published['id']}/edit").status_code == 403
    assert client.get(f"/articles/{draft['slug']}").status_code == 404


def test_the_feed_panel_suggests_with_why(client: TestClient, cast: Cast, sign_in: Any) -> None:
    doctor = sign_in(cast["doctor"])
    write(client, doctor, title="Metformin and you", keywords=["metformin", "e11"])
    write(client, doctor, title="Walking every day", topics=["wellness"], keywords=[])
    add_record(
        client, doctor, cast["patient"].patient_id, category="medication", title="Metformin 500 mg tablets"
    )
    web_login(client, cast["patient"])
    panel = client.get("/articles/feed/panel", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    assert "<html" not in panel.text
    assert re.findall(r'data-testid="why">.*?</i>([^<]+)</div>', panel.text) == [
        "Because your record mentions Metformin",
        "New in wellness",
    ]
    web_login(client, cast["bloodbank_staff"])
    assert client.get("/articles/feed/panel").status_code == 403


def test_the_feed_panel_has_an_empty_state(client: TestClient, cast: Cast) -> None:
    web_login(client, cast["patient"])
    panel = client.get("/articles/feed/panel")
    assert panel.status_code == 200
    assert "Nothing to suggest yet" in panel.text
