"""The health record pages, server-side: the timeline shows each reader only the categories they may read
(and says so without revealing what exists), filters and "Load more"; uploading through the form (vital
signs included); the record page's verified badge and tamper warning; corrections; consents granted and
withdrawn by the patient; and the organisation's care-team policy, for administrators only."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from caresync.core.storage import _path
from caresync.records.models import HealthRecord, RecordConsent, RecordPolicy
from tests.conftest import API, Cast, web_login

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


def add(
    client: TestClient,
    headers: dict[str, str],
    patient_id: Any,
    *,
    category: str = "lab",
    title: str = "Blood panel",
    recorded_on: date | str = "2026-01-15",
    text: str | None = None,
) -> str:
    """Upload a record over the API (as text, unique per call); returns its id."""
    form = {
        "patient_id": str(patient_id),
        "category": category,
        "title": title,
        "recorded_on": str(recorded_on),
        "text": text or f"{title} {uuid.uuid4()}",
    }
    response = client.post(f"{API}/records", data=form, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def record_links(html: str) -> list[str]:
    """The record ids listed on a timeline page or fragment, in order."""
    return re.findall(r'href="/records/([0-9a-f-]{36})" data-testid="record-link"', html)


def count(tx: Any, model: Any, *where: Any) -> int:
    with tx() as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


# --- the timeline ------------------------------------------------------------------------------------------


def test_timeline_shows_each_reader_only_what_they_may_read(
    client: TestClient, cast: Cast, sign_in: Any
) -> None:
    patient = cast["patient"]
    headers = sign_in(patient)
    lab = add(client, headers, patient.patient_id, title="Lipid panel")
    mental = add(client, headers, patient.patient_id, category="mental-health", title="Therapy notes")

    web_login(client, patient)
    own = client.get(f"/patients/{patient.patient_id}/records")
    assert own.status_code == 200
    assert set(record_links(own.text)) == {lab, mental}
    assert "Therapy notes" in own.text
    assert 'data-testid="scope-note"' not in own.text
    assert 'data-testid="add-record"' in own.text
    assert client.get("/me/records", follow_redirects=False).headers["location"] == (
        f"/patients/{patient.patient_id}/records"
    )

    web_login(client, cast["doctor"])  # in the patient's care team, under the standard policy
    seen = client.get(f"/patients/{patient.patient_id}/records")
    assert seen.status_code == 200
    assert record_links(seen.text) == [lab]
    assert "Therapy notes" not in seen.text
    assert "Mental health records are not shared with you." in seen.text
    assert 'value="mental-health"' not in seen.text  # no filter chip for what cannot be read
    assert client.get(f"/records/{mental}").status_code == 404
    assert client.get(f"/records/{lab}").status_code == 200
    assert client.get("/me/records").status_code == 404  # staff have no own record

    assert client.get(f"/patients/{cast.other_patient.id}/records").status_code == 404  # not in their care


def test_scope_note_does_not_depend_on_what_exists(
    client: TestClient, make: Any, sign_in: Any, cast: Cast
) -> None:
    doctor = cast["doctor"]
    empty = make.patient_user()
    make.care(doctor, empty)
    web_login(client, doctor)
    page = client.get(f"/patients/{empty.patient_id}/records")
    assert page.status_code == 200
    assert "Mental health records are not shared with you." in page.text
    assert 'data-testid="timeline-empty"' in page.text


def test_filters_narrow_the_timeline_and_fragments_swap_live(
    client: TestClient, cast: Cast, sign_in: Any
) -> None:
    patient, doctor = cast["patient"], cast["doctor"]
    mine = sign_in(patient)
    lab_old = add(client, mine, patient.patient_id, title="Old lab", recorded_on="2025-03-02")
    lab_new = add(client, mine, patient.patient_id, title="New lab", recorded_on="2026-02-10")
    allergy = add(
        client, mine, patient.patient_id, category="allergy", title="Penicillin", recorded_on="2025-11-20"
    )
    by_doctor = add(client, sign_in(doctor), patient.patient_id, category="diagnosis", title="Hypertension")
    web_login(client, patient)
    url = f"/patients/{patient.patient_id}/records"

    everything = client.get(url)
    assert record_links(everything.text) == [lab_new, by_doctor, allergy, lab_old]  # newest first
    assert re.findall(r'data-testid="month">([^<]+)<', everything.text) == [
        "February 2026",
        "January 2026",
        "November 2025",
        "March 2025",
    ]
    assert f'<option value="{doctor.id}"' in everything.text  # the provider filter lists the uploaders

    labs = client.get(url, params={"category": "lab"}, headers={"HX-Request": "true"})
    assert record_links(labs.text) == [lab_new, lab_old]
    assert "<html" not in labs.text
    several = client.get(url, params=[("category", "lab"), ("category", "allergy")])
    assert record_links(several.text) == [lab_new, allergy, lab_old]
    assert (
        client.get(url, params={"uploaded_by": str(doctor.id)}).text.count('data-testid="record-link"') == 1
    )
    ranged = client.get(url, params={"date_from": "2025-06-01", "date_to": "2025-12-31"})
    assert record_links(ranged.text) == [allergy]
    none = client.get(url, params={"category": "procedure"}, headers={"HX-Request": "true"})
    assert "No records match these filters" in none.text

    backwards = client.get(url, params={"date_from": "2026-01-01", "date_to": "2025-01-01"})
    assert "The start date is after the end date." in backwards.text
    assert record_links(backwards.text) == []
    garbled = client.get(url, params={"date_from": "last tuesday"})
    assert "Enter a date (YYYY-MM-DD)." in garbled.text


def test_load_more_pages_through_the_timeline(client: TestClient, make: Any, sign_in: Any) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    first_day = date(2026, 1, 1)
    ids = [
        add(
            client,
            headers,
            patient.patient_id,
            title=f"Reading {i}",
            recorded_on=first_day + timedelta(days=i),
        )
        for i in range(23)
    ]
    web_login(client, patient)
    first = client.get(f"/patients/{patient.patient_id}/records")
    listed = record_links(first.text)
    assert listed == ids[::-1][:20]
    more = re.search(r'hx-get="([^"]+)" hx-target="closest .load-more"', first.text)
    assert more is not None
    next_url = more.group(1).replace("&amp;", "&")
    assert "after=2026-01" in next_url
    rest = client.get(next_url, headers={"HX-Request": "true"})
    assert rest.status_code == 200
    assert record_links(rest.text) == ids[::-1][20:]
    assert 'data-testid="month"' not in rest.text  # January continues: not headed twice
    assert 'data-testid="load-more"' not in rest.text


# --- uploading ---------------------------------------------------------------------------------------------


def form_of(csrf: str, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "category": "lab",
        "title": "Full blood count",
        "recorded_on": "2026-01-10",
    } | fields


def test_patient_uploads_a_file_through_the_form(client: TestClient, make: Any, tx: Any) -> None:
    patient = make.patient_user()
    client.follow_redirects = False
    csrf = web_login(client, patient)
    form = client.get(f"/patients/{patient.patient_id}/records/new")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text
    content = PDF + f"% {uuid.uuid4()}\n".encode()
    saved = client.post(
        f"/patients/{patient.patient_id}/records/new",
        data=form_of(csrf),
        files={"file": ("fbc.pdf", content, "application/pdf")},
    )
    assert saved.status_code == 303, saved.text
    assert re.fullmatch(r"/records/[0-9a-f-]{36}\?uploaded=1", saved.headers["location"])
    page = client.get(saved.headers["location"])
    assert 'data-testid="uploaded"' in page.text
    assert 'data-testid="verified"' in page.text
    assert 'data-testid="preview-pdf"' in page.text
    with tx() as s:
        row = s.execute(
            select(HealthRecord).where(HealthRecord.patient_id == patient.patient_id)
        ).scalar_one()
        assert (row.title, row.category, row.media_type) == ("Full blood count", "lab", "application/pdf")


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        (
            {"category": "vitals", "m_heart_rate": "400"},
            "e-m_heart_rate",
            "Heart rate of 400 /min is outside",
        ),
        ({"category": "vitals", "m_spo2": "ninety"}, "e-m_spo2", "Enter the oxygen saturation as a number."),
        (
            {"category": "vitals", "m_systolic": "80", "m_diastolic": "95"},
            "vitals-error",
            "Diastolic pressure must be lower than systolic.",
        ),
        (
            {"category": "lab", "m_weight": "70"},
            "vitals-error",
            "Only vital-sign records carry measurements.",
        ),
        ({"text": ""}, "e-file", "Attach a file or type the record&#39;s text"),
        ({"title": "  ", "text": "x"}, "e-title", "Give the record a title."),
        (
            {"recorded_on": "2999-01-01", "text": "x"},
            "e-recorded_on",
            "The record&#39;s date is in the future.",
        ),
        ({"recorded_on": "", "text": "x"}, "e-recorded_on", "Enter the date of the record."),
        ({"category": "", "text": "x"}, "e-category", "Choose a category."),
    ],
)
def test_form_errors_are_shown_inline_and_nothing_is_stored(
    client: TestClient, make: Any, tx: Any, fields: dict[str, str], where: str, message: str
) -> None:
    patient = make.patient_user()
    csrf = web_login(client, patient)
    response = client.post(f"/patients/{patient.patient_id}/records/new", data=form_of(csrf, **fields))
    assert response.status_code == 422, response.text
    shown = re.search(rf'(?:id|data-testid)="{where}"[^>]*>([^<]+)<', response.text)
    assert shown is not None, f"no message at {where}"
    assert message in shown.group(1)
    for name, value in fields.items():
        if name.startswith("m_"):
            assert f'value="{value}"' in response.text  # what was typed comes back
    assert count(tx, HealthRecord) == 0


def test_vital_signs_without_a_document_become_the_record(client: TestClient, cast: Cast, tx: Any) -> None:
    nurse, patient = cast["nurse"], cast["patient"]
    client.follow_redirects = False
    csrf = web_login(client, nurse)
    saved = client.post(
        f"/patients/{patient.patient_id}/records/new",
        data=form_of(csrf, category="vitals", title="Triage vitals", m_heart_rate="72", m_spo2="97,5"),
    )
    assert saved.status_code == 303, saved.text
    page = client.get(saved.headers["location"])
    assert 'data-testid="measurements"' in page.text
    assert "Oxygen saturation" in page.text
    assert "97.5" in page.text
    assert "Heart rate: 72 /min" in page.text  # the stored text, previewed
    with tx() as s:
        row = s.execute(
            select(HealthRecord).where(HealthRecord.patient_id == patient.patient_id)
        ).scalar_one()
        assert row.measurements == {"heart_rate": 72.0, "spo2": 97.5}
        assert row.uploaded_by == nurse.id


def test_the_upload_form_offers_the_patients_appointments_only_to_writers(
    client: TestClient, make: Any, cast: Cast
) -> None:
    outsider = make.staff("doctor")
    web_login(client, outsider)
    assert client.get(f"/patients/{cast['patient'].patient_id}/records/new").status_code == 404
    web_login(client, cast["pharmacist"])
    assert client.get(f"/patients/{cast['patient'].patient_id}/records/new").status_code == 404


# --- one record --------------------------------------------------------------------------------------------


def test_record_page_shows_the_verified_badge_then_the_tamper_warning(
    client: TestClient, make: Any, sign_in: Any, tx: Any
) -> None:
    patient = make.patient_user()
    record_id = add(client, sign_in(patient), patient.patient_id, title="Thyroid panel")
    web_login(client, patient)
    page = client.get(f"/records/{record_id}")
    assert page.status_code == 200
    assert 'data-testid="verified"' in page.text
    assert f"signed by {patient.full_name}" in page.text
    with tx() as s:
        row = s.get(HealthRecord, uuid.UUID(record_id))
        fingerprint, sha = row.signing_key.fingerprint, row.file_sha256
    assert fingerprint in page.text
    assert 'data-testid="preview-text"' in page.text
    assert "Thyroid panel" in page.text
    assert "openssl pkeyutl -verify" in page.text
    assert f"/api/v1/records/{record_id}/bundle" in page.text

    path = _path(sha)
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 1
    path.write_bytes(bytes(blob))
    damaged = client.get(f"/records/{record_id}")
    assert damaged.status_code == 200
    assert 'data-testid="verified"' not in damaged.text
    assert 'data-testid="tamper-warning"' in damaged.text
    assert "The stored file is damaged or missing" in damaged.text
    assert 'data-testid="preview-text"' not in damaged.text  # a damaged file is not shown


def test_a_correction_through_the_pages_keeps_both_versions(
    client: TestClient, make: Any, sign_in: Any, tx: Any
) -> None:
    patient = make.patient_user()
    old = add(client, sign_in(patient), patient.patient_id, title="Cholesterol")
    client.follow_redirects = False
    csrf = web_login(client, patient)
    page = client.get(f"/records/{old}")
    assert 'data-testid="correct"' in page.text
    form = client.get(f"/patients/{patient.patient_id}/records/new", params={"supersedes": old})
    assert f'name="supersedes_id" value="{old}"' in form.text
    assert 'value="Cholesterol"' in form.text
    saved = client.post(
        f"/patients/{patient.patient_id}/records/new",
        data=form_of(csrf, title="Cholesterol (corrected)", supersedes_id=old, text="LDL 2.9"),
    )
    assert saved.status_code == 303, saved.text
    new = saved.headers["location"].split("/records/")[1].split("?")[0]
    old_page = client.get(f"/records/{old}")
    assert 'data-testid="superseded-note"' in old_page.text
    assert 'data-testid="correct"' not in old_page.text  # correct the newest version instead
    assert f'href="/records/{new}" data-testid="version-link"' in old_page.text
    timeline = client.get(f"/patients/{patient.patient_id}/records")
    assert timeline.text.count('data-testid="superseded"') == 1
    again = client.post(
        f"/patients/{patient.patient_id}/records/new",
        data=form_of(csrf, title="Again", supersedes_id=old, text="LDL 3.0"),
    )
    assert again.status_code == 409
    assert "already corrected" in again.text
    assert count(tx, HealthRecord) == 2


# --- consents ----------------------------------------------------------------------------------------------


def test_patient_grants_labs_to_a_doctor_then_withdraws_it(
    client: TestClient, make: Any, sign_in: Any, tx: Any
) -> None:
    patient = make.patient_user()
    mine = sign_in(patient)
    lab = add(client, mine, patient.patient_id, title="HbA1c")
    add(client, mine, patient.patient_id, category="mental-health", title="Counselling summary")
    specialist = make.staff("doctor", make.org(), full_name="Dr Zelda Quorum")
    client.follow_redirects = False

    web_login(client, specialist)
    assert client.get(f"/patients/{patient.patient_id}/records").status_code == 404  # no access yet

    csrf = web_login(client, patient)
    page = client.get("/me/consents")
    assert page.status_code == 200
    assert "You have not shared your record with anyone" in page.text
    assert re.search(r'value="lab" checked', page.text)  # non-sensitive parts pre-ticked
    assert not re.search(r'value="mental-health" checked', page.text)  # sensitive ones never
    found = client.get("/me/consents/clinicians", params={"q": "zelda"})
    assert f'value="{specialist.id}"' in found.text
    assert "Dr Zelda Quorum" in found.text
    assert (
        "No active doctor or nurse" in client.get("/me/consents/clinicians", params={"q": "nobodyxyz"}).text
    )

    refused = client.post("/me/consents", data={"csrf_token": csrf, "grantee": "practitioner"})
    assert refused.status_code == 422
    assert "Search for the doctor or nurse by name" in refused.text
    nothing = client.post(
        "/me/consents",
        data={"csrf_token": csrf, "grantee": "practitioner", "practitioner_id": str(specialist.id)},
    )
    assert nothing.status_code == 422
    assert "Choose at least one category to share." in nothing.text
    assert "Dr Zelda Quorum" in nothing.text  # the chosen doctor stays chosen
    past = client.post(
        "/me/consents",
        data={
            "csrf_token": csrf,
            "grantee": "practitioner",
            "practitioner_id": str(specialist.id),
            "categories": "lab",
            "expires_at": "2020-01-01",
        },
    )
    assert past.status_code == 422
    assert "The expiry must be in the future." in past.text
    assert count(tx, RecordConsent) == 0

    granted = client.post(
        "/me/consents",
        data={
            "csrf_token": csrf,
            "grantee": "practitioner",
            "practitioner_id": str(specialist.id),
            "categories": ["lab"],
        },
    )
    assert granted.status_code == 303, granted.text
    listing = client.get(granted.headers["location"])
    assert 'data-testid="granted"' in listing.text
    assert 'data-status="active"' in listing.text
    assert "Dr Zelda Quorum" in listing.text
    with tx() as s:
        consent = s.execute(select(RecordConsent)).scalar_one()
        assert consent.categories == ["lab"]
        assert consent.grantee_user_id == specialist.id

    web_login(client, specialist)
    assert str(patient.patient_id) in client.get("/patients").text  # listed among the doctor's patients
    shared = client.get(f"/patients/{patient.patient_id}/records")
    assert shared.status_code == 200
    assert record_links(shared.text) == [lab]
    assert "Counselling summary" not in shared.text
    assert "Only Lab result records are shared with you" in shared.text
    assert 'data-testid="add-record"' not in shared.text  # a consent lets them read, not write
    assert client.get(f"/patients/{patient.patient_id}/records/new").status_code == 404

    csrf = web_login(client, patient)
    confirm = client.get(f"/me/consents/{consent.id}/revoke")
    assert confirm.status_code == 200
    assert "Withdraw access?" in confirm.text
    assert "Dr Zelda Quorum" in confirm.text
    with tx() as s:
        assert s.get(RecordConsent, consent.id).revoked_at is None  # asking changed nothing
    withdrawn = client.post(f"/me/consents/{consent.id}/revoke", data={"csrf_token": csrf})
    assert withdrawn.status_code == 303
    after = client.get(withdrawn.headers["location"])
    assert 'data-status="revoked"' in after.text
    assert client.get(f"/me/consents/{consent.id}/revoke").status_code == 404  # nothing left to withdraw
    history = client.get("/me/access")
    assert "Gave someone access to the record" in history.text
    assert "Withdrew someone&#39;s access" in history.text

    web_login(client, specialist)
    assert client.get(f"/patients/{patient.patient_id}/records").status_code == 404
    with tx() as s:
        actions = set(
            s.execute(select(AuditEntry.action).where(AuditEntry.patient_id == patient.patient_id)).scalars()
        )
    assert {"consent.grant", "consent.revoke"} <= actions


def test_patients_grant_to_an_organisation_and_staff_have_no_consent_pages(
    client: TestClient, make: Any, cast: Cast, tx: Any
) -> None:
    patient = make.patient_user()
    hospital = make.org("Lakeside Hospital")
    client.follow_redirects = False
    csrf = web_login(client, patient)
    assert "Lakeside Hospital" in client.get("/me/consents").text
    granted = client.post(
        "/me/consents",
        data={
            "csrf_token": csrf,
            "grantee": "organisation",
            "organisation_id": str(hospital.id),
            "categories": ["lab", "allergy"],
            "expires_at": (date.today() + timedelta(days=30)).isoformat(),
        },
    )
    assert granted.status_code == 303, granted.text
    listing = client.get("/me/consents")
    assert "Lakeside Hospital" in listing.text
    assert "Allergy" in listing.text
    with tx() as s:
        consent = s.execute(select(RecordConsent)).scalar_one()
        assert consent.grantee_organisation_id == hospital.id
        assert consent.expires_at is not None

    web_login(client, cast["doctor"])
    assert client.get("/me/consents").status_code == 404
    assert client.get(f"/me/consents/{consent.id}/revoke").status_code == 404


# --- the organisation's policy -----------------------------------------------------------------------------


def test_record_policy_is_for_admins_and_widening_asks_first(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any
) -> None:
    patient, doctor = cast["patient"], cast["doctor"]
    mental = add(client, sign_in(patient), patient.patient_id, category="mental-health", title="Therapy")
    client.follow_redirects = False

    csrf = web_login(client, doctor)
    assert client.get("/admin/record-policy").status_code == 403
    assert (
        client.post("/admin/record-policy", data={"csrf_token": csrf, "care_team": "full"}).status_code == 403
    )

    csrf = web_login(client, cast["admin"])
    page = client.get("/admin/record-policy")
    assert page.status_code == 200
    assert re.search(r'value="standard" class="form-selectgroup-input" checked', page.text)
    narrowed = client.post("/admin/record-policy", data={"csrf_token": csrf, "care_team": "consent-only"})
    assert narrowed.status_code == 303
    ask = client.post("/admin/record-policy", data={"csrf_token": csrf, "care_team": "full"})
    assert ask.status_code == 200
    assert 'data-testid="confirm-full"' in ask.text
    assert "Mental health" in ask.text
    with tx() as s:
        assert s.get(RecordPolicy, cast.org.id).care_team == "consent-only"  # not switched yet
    bad = client.post("/admin/record-policy", data={"csrf_token": csrf, "care_team": "everything"})
    assert bad.status_code == 422
    assert "Unknown policy" in bad.text
    switched = client.post(
        "/admin/record-policy", data={"csrf_token": csrf, "care_team": "full", "confirm": "1"}
    )
    assert switched.status_code == 303
    with tx() as s:
        assert s.get(RecordPolicy, cast.org.id).care_team == "full"
        denied = s.execute(
            select(func.count()).where(
                AuditEntry.action == "record.policy_update", AuditEntry.outcome == "denied"
            )
        ).scalar_one()
    assert denied == 1

    web_login(client, doctor)
    assert mental in record_links(client.get(f"/patients/{patient.patient_id}/records").text)


def test_patient_profile_links_to_the_record_and_the_consultation(client: TestClient, cast: Cast) -> None:
    patient = cast["patient"]
    web_login(client, cast["doctor"])
    page = client.get(f"/patients/{patient.patient_id}")
    assert f'href="/patients/{patient.patient_id}/records"' in page.text
    assert f'href="/patients/{patient.patient_id}/consult"' in page.text
    web_login(client, patient)
    own = client.get(f"/patients/{patient.patient_id}")
    assert f'href="/patients/{patient.patient_id}/records"' in own.text
    assert "/consult" not in own.text
