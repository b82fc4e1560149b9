"""Health articles over the API: writing with validation and normalised keywords, slugs (unique, following
the title until first published, then stable), who sees drafts and who may edit, publish and archive,
search (text in title, summary, body and keywords, any case; topic; newest first; paging), the rendered
sanitised HTML, the patient feed matched to their own diagnoses and medications (with why, audited once,
never another patient's data, never drafts), and the demo articles."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from caresync.engagement.articles import service
from caresync.engagement.articles.demo_articles import ARTICLES, create_demo_articles
from caresync.engagement.articles.markdown import render_markdown
from caresync.engagement.models import Article
from caresync.prescriptions.models import Prescription
from tests.conftest import API, Cast
from tests.records.test_pages import add as add_record

A = f"{API}/articles"


def article_body(**fields: Any) -> dict[str, Any]:
    """A valid new article (unique title), with ``fields`` overriding."""
    body: dict[str, Any] = {
        "title": f"Living with asthma {uuid.uuid4().hex[:6]}",
        "summary": "Control, not just relief.",
        "body_markdown": "## Preventers\n\nUse your preventer **every day**.",
        "topics": ["diseases"],
        "keywords": ["asthma"],
    }
    body.update(fields)
    return body


def write(client: TestClient, headers: dict[str, str], publish: bool = True, **fields: Any) -> dict[str, Any]:
    """Create an article over the API (published unless told otherwise); returns its JSON."""
    response = client.post(A, json={**article_body(**fields), "publish": publish}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def audit_count(tx: Any, action: str, **where: Any) -> int:
    with tx() as s:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        for column, value in where.items():
            query = query.where(getattr(AuditEntry, column) == value)
        return int(s.execute(query).scalar_one())


# --- writing -----------------------------------------------------------------------------------------------


def test_a_writer_creates_a_draft_with_normalised_fields(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any
) -> None:
    doctor = sign_in(cast["doctor"])
    response = client.post(
        A,
        json=article_body(
            title="  Metformin:   what to expect  ",
            topics=["medications", "diseases", "medications"],
            keywords=["Metformin", " E11 ", "metformin", "", "Type  2 Diabetes"],
        ),
        headers=doctor,
    )
    assert response.status_code == 201, response.text
    article = response.json()
    assert article["title"] == "Metformin: what to expect"
    assert article["slug"] == "metformin-what-to-expect"
    assert article["status"] == "draft"
    assert article["published_at"] is None
    assert article["topics"] == ["diseases", "medications"]  # the vocabulary's order, once each
    assert article["keywords"] == ["metformin", "e11", "type 2 diabetes"]
    assert article["author_name"] == cast["doctor"].full_name
    assert "<h2>Preventers</h2>" in article["body_html"]
    with tx() as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "article.create")).scalar_one()
        assert entry.actor_id == cast["doctor"].id
        assert entry.resource_id == article["id"]
        assert entry.patient_id is None


INVALID = [
    ("title-too-short", {"title": "Flu"}, "title"),
    ("title-too-long", {"title": "x" * 201}, "title"),
    ("title-blank", {"title": "     "}, "title"),
    ("no-topic", {"topics": []}, "topics"),
    ("unknown-topic", {"topics": ["astrology"]}, "topics"),
    ("empty-body", {"body_markdown": "  \n "}, "body_markdown"),
    ("body-over-100-kb", {"body_markdown": "é" * 50_001}, "body_markdown"),  # 100 002 bytes
    ("summary-too-long", {"summary": "s" * 501}, "summary"),
    ("too-many-keywords", {"keywords": [f"kw{i}" for i in range(31)]}, "keywords"),
    ("keyword-too-long", {"keywords": ["k" * 41]}, "keywords"),
]


@pytest.mark.parametrize(("fields", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_articles_are_refused_with_the_field(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any, fields: dict[str, Any], field: str
) -> None:
    response = client.post(A, json=article_body(**fields), headers=sign_in(cast["nurse"]))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    with tx() as s:
        assert s.execute(select(func.count()).select_from(Article)).scalar_one() == 0


def test_limits_are_inclusive(client: TestClient, cast: Cast, sign_in: Any) -> None:
    body = article_body(
        title="t" * 200, body_markdown="b" * 100_000, keywords=[f"{i:02d}" + "k" * 38 for i in range(30)]
    )
    assert client.post(A, json=body, headers=sign_in(cast["pharmacist"])).status_code == 201
    assert (
        client.post(A, json=article_body(title="Sleep"), headers=sign_in(cast["pharmacist"])).status_code
        == 201
    )


def test_unknown_fields_are_refused(client: TestClient, cast: Cast, sign_in: Any) -> None:
    response = client.post(
        A, json={**article_body(), "author_id": str(uuid.uuid4())}, headers=sign_in(cast["doctor"])
    )
    assert response.status_code == 422


def test_slugs_are_unique_follow_drafts_and_stay_once_published(
    client: TestClient, cast: Cast, sign_in: Any
) -> None:
    doctor = sign_in(cast["doctor"])
    first = write(client, doctor, title="Sleep well tonight")
    second = write(client, doctor, publish=False, title="Sleep well tonight")
    third = write(client, doctor, publish=False, title="Sleep  well, tonight!")
    assert (first["slug"], second["slug"], third["slug"]) == (
        "sleep-well-tonight",
        "sleep-well-tonight-2",
        "sleep-well-tonight-3",
    )
    assert write(client, doctor, title="Feed!").get("slug") == "feed-2"  # never shadowed by /articles/feed
    assert write(client, doctor, title="Über Ärzte und Öl").get("slug") == "uber-arzte-und-ol"
    assert write(client, doctor, title="血压 与 健康 指南")["slug"] == "article"

    renamed = client.patch(f"{A}/{second['id']}", json={"title": "Better sleep"}, headers=doctor).json()
    assert renamed["slug"] == "better-sleep"  # a draft follows its title
    published = client.post(f"{A}/{second['id']}/publish", headers=doctor).json()
    assert published["slug"] == "better-sleep"
    again = client.patch(
        f"{A}/{second['id']}", json={"title": "Sleep habits that help"}, headers=doctor
    ).json()
    assert again["title"] == "Sleep habits that help"
    assert again["slug"] == "better-sleep"
    assert client.get(f"{A}/better-sleep", headers=sign_in(cast["patient"])).status_code == 200


def test_patch_changes_only_what_is_sent(client: TestClient, cast: Cast, sign_in: Any, tx: Any) -> None:
    doctor = sign_in(cast["doctor"])
    article = write(client, doctor, publish=False)
    response = client.patch(f"{A}/{article['id']}", json={"keywords": ["Asthma", "J45"]}, headers=doctor)
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["keywords"] == ["asthma", "j45"]
    assert (changed["title"], changed["topics"], changed["summary"]) == (
        article["title"],
        article["topics"],
        article["summary"],
    )
    bad = client.patch(f"{A}/{article['id']}", json={"topics": []}, headers=doctor)
    assert bad.status_code == 422
    assert bad.json()["field"] == "topics"
    assert audit_count(tx, "article.update", resource_id=article["id"]) == 1


# --- publishing, visibility and who may edit --------------------------------------------------------------


def test_drafts_are_seen_only_by_those_who_may_edit_them(
    client: TestClient, cast: Cast, make: Any, sign_in: Any
) -> None:
    draft = write(client, sign_in(cast["doctor"]), publish=False)
    url = f"{A}/{draft['slug']}"
    assert client.get(url, headers=sign_in(cast["doctor"])).status_code == 200  # the author
    assert client.get(url, headers=sign_in(cast["admin"])).status_code == 200  # their organisation's admin
    for reader in (
        cast["nurse"],
        cast["pharmacist"],
        cast["patient"],
        cast["donor"],
        make.staff("admin", make.org()),
    ):
        response = client.get(url, headers=sign_in(reader))
        assert response.status_code == 404, reader.role
        assert response.json()["detail"] == "No such article."
        listed = client.get(A, params={"q": draft["title"]}, headers=sign_in(reader)).json()
        assert listed["items"] == []


def test_only_the_author_or_their_admin_edits(
    client: TestClient, cast: Cast, make: Any, sign_in: Any, tx: Any
) -> None:
    article = write(client, sign_in(cast["doctor"]))
    url = f"{A}/{article['id']}"
    nurse = client.patch(url, json={"title": "Taken over"}, headers=sign_in(cast["nurse"]))
    assert nurse.status_code == 403
    assert "author" in nurse.json()["detail"]
    outsider_admin = make.staff("admin", make.org())
    assert client.patch(url, json={"title": "Taken over"}, headers=sign_in(outsider_admin)).status_code == 403
    assert client.post(f"{url}/archive", headers=sign_in(cast["pharmacist"])).status_code == 403
    assert audit_count(tx, "article.update", outcome="denied", resource_id=article["id"]) == 2
    admin = client.patch(url, json={"summary": "Edited by the editor."}, headers=sign_in(cast["admin"]))
    assert admin.status_code == 200
    assert admin.json()["summary"] == "Edited by the editor."
    missing = client.patch(f"{A}/{uuid.uuid4()}", json={"title": "Nothing"}, headers=sign_in(cast["doctor"]))
    assert missing.status_code == 404


def test_archive_hides_and_republishing_keeps_the_original_date(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any
) -> None:
    doctor, patient = sign_in(cast["doctor"]), sign_in(cast["patient"])
    article = write(client, doctor)
    assert client.get(f"{A}/{article['slug']}", headers=patient).status_code == 200
    archived = client.post(f"{A}/{article['id']}/archive", headers=doctor)
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    assert client.get(f"{A}/{article['slug']}", headers=patient).status_code == 404
    assert client.get(A, headers=patient).json()["items"] == []
    mine = client.get(A, params={"status": "archived"}, headers=doctor).json()["items"]
    assert [a["id"] for a in mine] == [article["id"]]
    assert client.post(f"{A}/{article['id']}/archive", headers=doctor).status_code == 200  # idempotent
    again = client.post(f"{A}/{article['id']}/publish", headers=doctor).json()
    assert again["status"] == "published"
    assert again["published_at"] == article["published_at"]
    assert client.post(f"{A}/{article['id']}/publish", headers=doctor).status_code == 200
    assert audit_count(tx, "article.archive", resource_id=article["id"]) == 1
    assert audit_count(tx, "article.publish", resource_id=article["id"]) == 1


def test_odd_slugs_are_simply_not_found(client: TestClient, cast: Cast, sign_in: Any) -> None:
    write(client, sign_in(cast["doctor"]), title="Plain title here")
    patient = sign_in(cast["patient"])
    for slug in ("Plain-Title-Here", "plain%00title", "plain_title_here", "x" * 130, "%E2%9C%93"):
        response = client.get(f"{A}/{slug}", headers=patient)
        assert response.status_code in (404, 422), slug
        assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"{A}/plain-title-here", headers=patient).status_code == 200


def test_odd_input_is_cleaned_or_refused_never_a_server_error(
    client: TestClient, cast: Cast, sign_in: Any
) -> None:
    doctor = sign_in(cast["doctor"])
    made = client.post(
        A,
        json=article_body(title="Nul\x00 in the\u200b title", keywords=["a\x00b"], body_markdown="x\x00y"),
        headers=doctor,
    )
    assert made.status_code == 201, made.text
    assert made.json()["title"] == "Nul in the title"  # control and invisible characters go
    assert made.json()["keywords"] == ["ab"]
    for params in (
        {"q": "\x00%"},
        {"q": "é" * 100},
        {"topic": "\x00"},
        {"status": "draft\x00"},
        {"cursor": "\x00"},
    ):
        response = client.get(A, params=params, headers=doctor)
        assert response.status_code in (200, 422), (params, response.text)


def test_reading_renders_sanitised_html(client: TestClient, cast: Cast, sign_in: Any) -> None:
    source = "Hello <script>alert(1)</script> [x](javascript:alert(1)) **bold**"
    article = write(client, sign_in(cast["nurse"]), body_markdown=source)
    out = client.get(f"{A}/{article['slug']}", headers=sign_in(cast["donor"])).json()
    assert out["body_markdown"] == source
    assert out["body_html"] == render_markdown(source)
    assert "<script" not in out["body_html"]
    assert "href" not in out["body_html"]
    assert "<strong>bold</strong>" in out["body_html"]


# --- search -----------------------------------------------------------------------------------------------


def test_search_matches_title_summary_body_and_keywords_in_any_case(
    client: TestClient, cast: Cast, sign_in: Any
) -> None:
    nurse = sign_in(cast["nurse"])
    by_title = write(client, nurse, title="Inhaler TECHNIQUE matters", keywords=[])
    by_summary = write(client, nurse, summary="All about Spacers and masks", keywords=[])
    by_body = write(client, nurse, body_markdown="Rinse your mouth after the steroid INHALER.", keywords=[])
    by_keyword = write(client, nurse, keywords=["Tiotropium"])
    write(client, nurse, publish=False, title="Inhaler draft notes")  # drafts are not for readers
    patient = sign_in(cast["patient"])

    def found(q: str) -> set[str]:
        response = client.get(A, params={"q": q}, headers=patient)
        assert response.status_code == 200, response.text
        return {a["id"] for a in response.json()["items"]}

    assert found("inhaler") == {by_title["id"], by_body["id"]}
    assert found("technique") == {by_title["id"]}
    assert found("SPACERS") == {by_summary["id"]}
    assert found("tiotropium") == {by_keyword["id"]}
    assert found("100%_") == set()  # LIKE wildcards are searched for literally
    assert len(found("")) == 4


def test_topic_filter_status_and_newest_first_with_paging(
    client: TestClient, cast: Cast, sign_in: Any
) -> None:
    doctor = sign_in(cast["doctor"])
    made = [write(client, doctor, topics=["diet"] if i % 2 else ["wellness", "lifestyle"]) for i in range(5)]
    draft = write(client, doctor, publish=False, topics=["diet"])
    patient = sign_in(cast["patient"])
    diet = client.get(A, params={"topic": "diet"}, headers=patient).json()["items"]
    assert [a["id"] for a in diet] == [made[3]["id"], made[1]["id"]]
    page1 = client.get(A, params={"limit": 2}, headers=patient).json()
    page2 = client.get(A, params={"limit": 2, "cursor": page1["next_cursor"]}, headers=patient).json()
    page3 = client.get(A, params={"limit": 2, "cursor": page2["next_cursor"]}, headers=patient).json()
    listed = [a["id"] for a in page1["items"] + page2["items"] + page3["items"]]
    assert listed == [a["id"] for a in reversed(made)]
    assert page3["next_cursor"] is None
    assert client.get(A, params={"topic": "astrology"}, headers=patient).status_code == 422
    assert client.get(A, params={"status": "sent"}, headers=doctor).status_code == 422
    assert client.get(A, params={"cursor": "nonsense"}, headers=patient).status_code == 422
    assert client.get(A, params={"status": "draft"}, headers=patient).status_code == 403
    drafts = client.get(A, params={"status": "draft"}, headers=doctor).json()["items"]
    assert [a["id"] for a in drafts] == [draft["id"]]
    assert client.get(A, params={"status": "draft"}, headers=sign_in(cast["nurse"])).json()["items"] == []
    admin_view = client.get(A, params={"status": "draft"}, headers=sign_in(cast["admin"])).json()["items"]
    assert [a["id"] for a in admin_view] == [draft["id"]]


# --- the feed ---------------------------------------------------------------------------------------------


def prescribe(tx: Any, patient_id: uuid.UUID, doctor: Any, name: str, status: str = "active") -> None:
    """A prescription row for ``name`` (the prescriptions service is tested elsewhere)."""
    today = date.today()
    with tx() as s:
        s.add(
            Prescription(
                patient_id=patient_id,
                prescriber_id=doctor.id,
                organisation_id=doctor.user.organisation_id,
                status=status,
                medication_code="860975",
                medication_name=name,
                strength="1000 mg",
                form="tablet",
                dose="1 tablet",
                route="oral",
                frequency="BID",
                dose_times=["08:00", "20:00"],
                duration_days=30,
                quantity=60,
                days_supply=30,
                refills=2,
                start_date=today,
                valid_until=today + timedelta(days=180),
            )
        )


@pytest.fixture
def library(client: TestClient, cast: Cast, sign_in: Any) -> dict[str, dict[str, Any]]:
    """Published articles (oldest first) and a draft, by the cast's doctor."""
    doctor = sign_in(cast["doctor"])
    made = {
        "diabetes": write(client, doctor, title="Type 2 diabetes basics", keywords=["e11", "diabetes"]),
        "metformin": write(client, doctor, title="Metformin and you", keywords=["metformin", "e11"]),
        "statins": write(client, doctor, title="About statins", keywords=["atorvastatin", "e78"]),
        "wellness_old": write(client, doctor, title="Walking every day", topics=["wellness"], keywords=[]),
        "wellness_new": write(client, doctor, title="Sleep habits", topics=["wellness"], keywords=["sleep"]),
        "e11_later": write(client, doctor, title="Foot care in diabetes", keywords=["E11.9"]),
        "draft": write(
            client, doctor, publish=False, title="Draft on metformin", keywords=["metformin", "e11"]
        ),
    }
    return made


def test_the_feed_suggests_articles_matching_the_patients_conditions_and_medicines(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any, library: dict[str, dict[str, Any]]
) -> None:
    patient = cast["patient"]
    add_record(client, sign_in(cast["doctor"]), patient.patient_id, category="diagnosis",
               title="E11.9 Type 2 diabetes mellitus without complications")  # fmt: skip
    prescribe(tx, patient.patient_id, cast["doctor"], "Metformin")
    prescribe(tx, patient.patient_id, cast["doctor"], "Atorvastatin", status="stopped")  # not current
    headers = sign_in(patient)
    before = audit_count(tx, "article.feed", patient_id=patient.patient_id)

    response = client.get(f"{A}/feed", params={"limit": 5}, headers=headers)
    assert response.status_code == 200, response.text
    feed = response.json()
    titles = [s["article"]["title"] for s in feed]
    # two matches (the diagnosis and the medicine) before one, then the newest first; then wellness
    assert titles == [
        "Metformin and you",
        "Foot care in diabetes",
        "Type 2 diabetes basics",
        "Sleep habits",
        "Walking every day",
    ]
    assert feed[0]["matches"] == ["Metformin", "Type 2 diabetes mellitus without complications"]
    assert feed[0]["why"] == (
        "Because your record mentions Metformin and Type 2 diabetes mellitus without complications"
    )
    assert feed[1]["why"] == "Because your record mentions Type 2 diabetes mellitus without complications"
    assert feed[3]["matches"] == []
    assert feed[3]["why"] == "New in wellness"
    assert "About statins" not in titles
    assert "Draft on metformin" not in titles
    assert audit_count(tx, "article.feed", patient_id=patient.patient_id) == before + 1
    with tx() as s:
        query = select(AuditEntry).where(AuditEntry.action == "article.feed").order_by(AuditEntry.seq)
        entry = s.execute(query).scalars().all()[-1]
        assert entry.actor_id == patient.id
        assert "diabetes" not in entry.detail.lower()


def test_medication_records_match_by_drug_name(
    client: TestClient, cast: Cast, sign_in: Any, library: dict[str, dict[str, Any]]
) -> None:
    add_record(client, sign_in(cast["doctor"]), cast["patient"].patient_id, category="medication",
               title="Atorvastatin 20 mg tablets (started)")  # fmt: skip
    feed = client.get(f"{A}/feed", params={"limit": 1}, headers=sign_in(cast["patient"])).json()
    assert [(s["article"]["title"], s["why"]) for s in feed] == [
        ("About statins", "Because your record mentions Atorvastatin")
    ]


def test_another_patient_sees_none_of_it(
    client: TestClient, cast: Cast, make: Any, sign_in: Any, tx: Any, library: dict[str, dict[str, Any]]
) -> None:
    patient = cast["patient"]
    add_record(client, sign_in(cast["doctor"]), patient.patient_id, category="diagnosis",
               title="E11.9 Type 2 diabetes mellitus without complications")  # fmt: skip
    prescribe(tx, patient.patient_id, cast["doctor"], "Metformin")
    stranger = make.patient_user()
    response = client.get(f"{A}/feed", params={"limit": 5}, headers=sign_in(stranger))
    assert response.status_code == 200
    feed = response.json()
    assert [s["article"]["title"] for s in feed] == ["Sleep habits", "Walking every day"]
    assert all(s["matches"] == [] for s in feed)
    assert "Metformin" not in response.text
    assert "mellitus" not in response.text
    assert audit_count(tx, "article.feed", patient_id=stranger.patient_id) == 1


def test_staff_and_donors_get_the_newest_wellness_reading_unaudited(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any, library: dict[str, dict[str, Any]]
) -> None:
    for role in ("donor", "nurse"):
        feed = client.get(f"{A}/feed", headers=sign_in(cast[role])).json()
        assert [s["article"]["title"] for s in feed] == ["Sleep habits", "Walking every day"]
    assert audit_count(tx, "article.feed") == 0
    assert client.get(f"{A}/feed", params={"limit": 0}, headers=sign_in(cast["donor"])).status_code == 422


def test_an_empty_library_gives_an_empty_feed(client: TestClient, cast: Cast, sign_in: Any) -> None:
    response = client.get(f"{A}/feed", headers=sign_in(cast["patient"]))
    assert response.status_code == 200
    assert response.json() == []


# --- matching rules ---------------------------------------------------------------------------------------

MATCHES = [
    ("icd-prefix", "e11", service.condition_mention("E11.9 Type 2 diabetes mellitus"), True),
    ("icd-full-code", "e11.9", service.condition_mention("E11.9 Type 2 diabetes mellitus"), True),
    ("icd-without-dot", "e119", service.condition_mention("E11.9 Type 2 diabetes mellitus"), True),
    ("icd-other-code", "e10", service.condition_mention("E11.9 Type 2 diabetes mellitus"), False),
    ("icd-more-specific", "i48.91", service.condition_mention("I48 Atrial fibrillation"), False),
    ("condition-word", "diabetes", service.condition_mention("E11.9 Type 2 diabetes mellitus"), True),
    (
        "condition-phrase",
        "type 2 diabetes",
        service.condition_mention("E11.9 Type 2 diabetes mellitus"),
        True,
    ),
    ("condition-part-of-word", "diabet", service.condition_mention("E11.9 Type 2 diabetes mellitus"), False),
    ("condition-without-code", "asthma", service.condition_mention("Asthma, mild"), True),
    ("drug-in-record-title", "metformin", service.medication_mention("Metformin 1000 mg tablets"), True),
    ("drug-two-words", "ferrous sulfate", service.medication_mention("Ferrous sulfate 200 mg tablets"), True),
    ("drug-other", "metoprolol", service.medication_mention("Metformin 1000 mg tablets"), False),
    ("short-keyword-ignored", "mg", service.medication_mention("Metformin 1000 mg tablets"), False),
    ("code-keyword-on-drug", "e11", service.medication_mention("Metformin 1000 mg tablets"), False),
]


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("keyword", "mention", "expected"), [c[1:] for c in MATCHES], ids=[c[0] for c in MATCHES]
)
def test_keyword_matching(keyword: str, mention: service.Mention, expected: bool) -> None:
    assert service.keyword_matches(keyword, mention) is expected


@pytest.mark.no_db
def test_mentions_are_labelled_for_the_patient() -> None:
    assert (
        service.condition_mention("I10 Essential (primary) hypertension").label
        == "Essential (primary) hypertension"
    )
    assert service.condition_mention("I10").label == "I10"
    assert service.medication_mention("Amlodipine 5 mg tablets (started)").label == "Amlodipine"
    assert service.medication_mention("Hydrocortisone 1% cream").label == "Hydrocortisone"
    assert service.medication_mention("Salbutamol").label == "Salbutamol"
    mentions = [
        service.medication_mention("Metformin"),
        service.medication_mention("metformin 500 mg tablets"),
    ]
    assert service.match(["metformin"], mentions) == ("Metformin",)  # the same drug counts once


# --- demo content -------------------------------------------------------------------------------------------


def test_demo_articles_are_published_once_and_match_demo_records(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any
) -> None:
    with tx() as s:
        assert create_demo_articles(s, cast["doctor"].id) == len(ARTICLES) >= 15
    with tx() as s:
        assert create_demo_articles(s, cast["doctor"].id) == 0
        rows = s.execute(select(Article)).scalars().all()
        assert all(a.status == "published" and a.published_at for a in rows)
        assert len({a.slug for a in rows}) == len(rows)
        for article in rows:
            html = render_markdown(article.body_markdown)
            assert html.count("<p>") >= 2, article.title
            assert len(article.summary) <= service.SUMMARY_MAX
    add_record(client, sign_in(cast["doctor"]), cast["patient"].patient_id, category="diagnosis",
               title="I10 Essential (primary) hypertension")  # fmt: skip
    add_record(client, sign_in(cast["doctor"]), cast["patient"].patient_id, category="medication",
               title="Amlodipine 5 mg tablets (started)")  # fmt: skip
    feed = client.get(f"{A}/feed", headers=sign_in(cast["patient"])).json()
    assert feed[0]["article"]["title"] == "Living well with high blood pressure"
    assert feed[0]["matches"] == ["Amlodipine", "Essential (primary) hypertension"]
