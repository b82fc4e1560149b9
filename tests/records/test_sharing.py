"""Record sharing: a patient shares chosen records by a time-limited link and code; whoever holds either
sees only those records (verified) without an account; every use is counted and audited for the patient;
expired and revoked shares are refused; wrong codes are throttled; only digests of the credentials are
stored; the pages to create, see and revoke shares, and the public share pages; and the permission matrix
of every sharing route."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.db import utcnow
from caresync.records.models import ShareItem, ShareLink
from caresync.records.sharing import service
from tests.conftest import API, ROLES, Cast, login, web_login
from tests.records.test_records import PDF, upload

S = f"{API}/records/shares"
SHARED = f"{API}/records/shared"
ANON = "anonymous"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def unique_pdf() -> bytes:
    """Files are content-addressed: a fresh one per record keeps tests independent."""
    return PDF + f"% {uuid.uuid4()}\n".encode()


@pytest.fixture
def records(client: TestClient, make: Any, sign_in: Any) -> tuple[Any, dict[str, str], list[dict[str, Any]]]:
    """A patient with three records (a PDF, a text note, a PNG), oldest first: (person, headers, records)."""
    patient = make.patient_user()
    headers = sign_in(patient)
    made = [
        upload(
            client,
            headers,
            patient.patient_id,
            title="Blood panel",
            recorded_on="2025-11-02",
            content=unique_pdf(),
        ),
        upload(
            client,
            headers,
            patient.patient_id,
            title="Allergy note",
            category="allergy",
            recorded_on="2025-12-01",
            content=f"Penicillin rash {uuid.uuid4()}".encode(),
        ),
        upload(
            client,
            headers,
            patient.patient_id,
            title="Chest X-ray",
            category="procedure",
            recorded_on="2026-01-10",
            content=PNG,
        ),
    ]
    assert all(r.status_code == 201 for r in made), [r.text for r in made]
    return patient, headers, [r.json() for r in made]


def share(
    client: TestClient, headers: dict[str, str], patient_id: Any, record_ids: list[str], **extra: Any
) -> Any:
    return client.post(
        S, json={"patient_id": str(patient_id), "record_ids": record_ids, **extra}, headers=headers
    )


def altered(secret: str) -> str:
    """``secret`` with its last character changed."""
    return secret[:-1] + ("0" if secret[-1] != "0" else "1")


def audit_rows(tx: Any, action: str, **where: Any) -> list[AuditEntry]:
    with tx() as s:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        rows = list(s.execute(query).scalars())
        s.expunge_all()
        return rows


# --- opening a share ----------------------------------------------------------------------------------------


def test_a_share_opens_by_link_and_by_code_showing_only_the_chosen_records(
    client: TestClient, records: Any, tx: Any, app: Any
) -> None:
    patient, headers, (pdf, note, png) = records
    created = share(client, headers, patient.patient_id, [pdf["id"], png["id"]], label="Second opinion")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "active"
    assert body["use_count"] == 0
    assert sorted(body["record_ids"]) == sorted([pdf["id"], png["id"]])
    assert body["url"].endswith(f"/share/{body['token']}")
    assert len(body["token"]) >= 43  # 256 bits, URL-safe
    assert len(body["code"]) == 14
    assert body["code"][4] == body["code"][9] == "-"
    assert set(body["code"].replace("-", "")) <= set(service.CODE_ALPHABET)

    with TestClient(app) as stranger:  # no account, no cookies
        by_link = stranger.get(f"{SHARED}/{body['token']}")
        assert by_link.status_code == 200, by_link.text
        view = by_link.json()
        assert view["patient_name"] == patient.full_name
        assert view["label"] == "Second opinion"
        assert [r["id"] for r in view["records"]] == [png["id"], pdf["id"]]  # newest first, the note left out
        assert all(r["verification"]["ok"] for r in view["records"])
        assert note["title"] not in by_link.text

        lowered = " " + body["code"].lower().replace("-", " ") + " "  # typed loosely
        by_code = stranger.post(f"{SHARED}/redeem", json={"code": lowered})
        assert by_code.status_code == 200, by_code.text
        assert [r["id"] for r in by_code.json()["records"]] == [png["id"], pdf["id"]]
        key = by_code.json()["access_key"]
        assert body["code"] not in key
        assert key != body["token"]
        file = stranger.get(by_code.json()["records"][1]["file_url"])
        assert file.status_code == 200
        assert hashlib.sha256(file.content).hexdigest() == pdf["sha256"]
        assert file.headers["content-type"] == "application/pdf"

    with tx() as s:
        row = s.get(ShareLink, uuid.UUID(body["id"]))
        assert row.use_count == 2
        assert row.last_used_at is not None
        told = s.execute(select(Notification).where(Notification.user_id == patient.id)).scalars().all()
    assert [n.kind for n in told] == ["share"]  # the first open only
    opens = audit_rows(tx, "share.open", outcome="success")
    assert [json.loads(e.detail)["via"] for e in opens] == ["link", "code"]
    assert all(
        e.patient_id == patient.patient_id and e.actor_role == ANON and e.actor_id is None for e in opens
    )
    assert all(json.loads(e.detail)["share_id"] == body["id"] for e in opens)
    assert len(audit_rows(tx, "share.download", outcome="success", patient_id=patient.patient_id)) == 1
    # the patient sees the opens in "Who saw my data"
    history = client.get(f"{API}/patients/{patient.patient_id}/access-history", headers=headers)
    assert history.status_code == 200
    seen = [(e["action"], e["outcome"]) for e in history.json()["items"]]
    assert seen.count(("share.open", "success")) == 2


def test_a_record_not_in_the_share_is_not_found(client: TestClient, records: Any, tx: Any, app: Any) -> None:
    patient, headers, (pdf, note, _png) = records
    token = share(client, headers, patient.patient_id, [pdf["id"]]).json()["token"]
    with TestClient(app) as stranger:
        shown = stranger.get(f"{SHARED}/{token}/records/{pdf['id']}/file", params={"download": "true"})
        assert shown.status_code == 200
        assert shown.headers["content-disposition"].startswith("attachment")
        hidden = stranger.get(f"{SHARED}/{token}/records/{note['id']}/file")
        assert hidden.status_code == 404
        assert hidden.json()["detail"] == service.NOT_SHARED
        assert "Penicillin" not in hidden.text
        assert stranger.get(f"{SHARED}/{token}/records/{uuid.uuid4()}/file").status_code == 404
    denied = audit_rows(tx, "share.download", outcome="denied", patient_id=patient.patient_id)
    assert [e.resource_id for e in denied][:1] == [note["id"]]


def test_an_expired_share_is_refused(client: TestClient, records: Any, tx: Any, app: Any) -> None:
    patient, headers, (pdf, _note, _png) = records
    body = share(client, headers, patient.patient_id, [pdf["id"]]).json()
    with TestClient(app) as stranger:
        key = stranger.post(f"{SHARED}/redeem", json={"code": body["code"]}).json()["access_key"]
        with tx() as s:
            row = s.get(ShareLink, uuid.UUID(body["id"]))
            row.created_at = utcnow() - timedelta(days=8)
            row.expires_at = utcnow() - timedelta(minutes=1)
        for response in (
            stranger.get(f"{SHARED}/{body['token']}"),
            stranger.post(f"{SHARED}/redeem", json={"code": body["code"]}),
            stranger.get(f"{SHARED}/{key}"),
            stranger.get(f"{SHARED}/{body['token']}/records/{pdf['id']}/file"),
        ):
            assert response.status_code == 404
            assert response.json()["detail"] == service.EXPIRED
    listed = client.get(S, params={"patient_id": str(patient.patient_id)}, headers=headers).json()["items"]
    assert [s["status"] for s in listed] == ["expired"]
    refused = audit_rows(tx, "share.open", outcome="denied", patient_id=patient.patient_id)
    assert {json.loads(e.detail)["reason"] for e in refused} == {"expired"}


def test_a_revoked_share_is_refused_and_revoking_twice_is_harmless(
    client: TestClient, records: Any, tx: Any, app: Any
) -> None:
    patient, headers, (pdf, _note, _png) = records
    body = share(client, headers, patient.patient_id, [pdf["id"]]).json()
    first = client.post(f"{S}/{body['id']}/revoke", headers=headers)
    again = client.post(f"{S}/{body['id']}/revoke", headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == "revoked"
    assert again.json()["revoked_at"] == first.json()["revoked_at"]
    assert len(audit_rows(tx, "share.revoke", patient_id=patient.patient_id)) == 1
    with TestClient(app) as stranger:
        by_link = stranger.get(f"{SHARED}/{body['token']}")
        by_code = stranger.post(f"{SHARED}/redeem", json={"code": body["code"]})
    assert by_link.status_code == by_code.status_code == 404
    assert by_link.json()["detail"] == by_code.json()["detail"] == service.REVOKED


def test_unknown_or_forged_credentials_are_refused(
    client: TestClient, records: Any, tx: Any, app: Any
) -> None:
    patient, headers, (pdf, _note, _png) = records
    body = share(client, headers, patient.patient_id, [pdf["id"]]).json()
    share_id = uuid.UUID(body["id"])
    past = int((utcnow() - timedelta(minutes=1)).timestamp())
    future = int((utcnow() + timedelta(minutes=30)).timestamp())
    with TestClient(app) as stranger:
        assert stranger.get(f"{SHARED}/{altered(body['token'])}").json()["detail"] == service.UNKNOWN
        forged = altered(service.view_key(share_id, future))
        assert stranger.get(f"{SHARED}/{forged}").json()["detail"] == service.UNKNOWN
        timed_out = stranger.get(f"{SHARED}/{service.view_key(share_id, past)}")
        assert timed_out.status_code == 404
        assert timed_out.json()["detail"] == service.VIEW_TIMED_OUT
        assert stranger.get(f"{SHARED}/{service.view_key(share_id, future)}").status_code == 200
        malformed = stranger.post(f"{SHARED}/redeem", json={"code": "hello"})
        assert malformed.status_code == 422
    assert audit_rows(tx, "share.open", outcome="denied", patient_id=None)  # unknown tokens are logged too


def test_wrong_codes_are_audited_and_throttled_per_address(
    client: TestClient, records: Any, tx: Any, app: Any
) -> None:
    patient, headers, (pdf, _note, _png) = records
    code = share(client, headers, patient.patient_id, [pdf["id"]]).json()["code"]
    wrong = "2222-2222-2222" if code != "2222-2222-2222" else "3333-3333-3333"
    with TestClient(app) as guesser:
        for _ in range(service.CODE_ATTEMPTS):
            miss = guesser.post(f"{SHARED}/redeem", json={"code": wrong})
            assert miss.status_code == 404
            assert miss.json()["detail"] == service.UNKNOWN
        refused = guesser.post(f"{SHARED}/redeem", json={"code": code})  # even the right one, for now
        assert refused.status_code == 429
        assert refused.json()["retry_after"] == 900
        assert (
            guesser.get(
                f"{SHARED}/{share(client, headers, patient.patient_id, [pdf['id']]).json()['token']}"
            ).status_code
            == 200
        )
    denied = audit_rows(tx, "share.redeem", outcome="denied")
    assert len(denied) == service.CODE_ATTEMPTS + 1
    assert json.loads(denied[-1].detail)["reason"] == "throttled"
    assert {e.client_ip for e in denied} == {"testclient"}
    with tx() as s:  # another address is not affected
        assert service.redeem_code(s, code, "192.0.2.7").expires_at > utcnow()


# --- creating shares ----------------------------------------------------------------------------------------


def test_the_token_and_code_are_stored_only_as_digests(client: TestClient, records: Any, tx: Any) -> None:
    patient, headers, (pdf, _note, _png) = records
    body = share(client, headers, patient.patient_id, [pdf["id"]]).json()
    with tx() as s:
        row = s.get(ShareLink, uuid.UUID(body["id"]))
        stored = " ".join(str(getattr(row, c.key)) for c in ShareLink.__table__.columns)
        entries = " ".join(e.detail + e.resource_id for e in s.execute(select(AuditEntry)).scalars())
    assert row.token_digest == hashlib.sha256(body["token"].encode()).hexdigest()
    assert len(row.code_digest) == 64
    raw_code = body["code"].replace("-", "")
    assert row.code_digest not in (hashlib.sha256(c.encode()).hexdigest() for c in (raw_code, body["code"]))
    for secret in (body["token"], body["code"], raw_code):
        assert secret not in stored
        assert secret not in entries
    listed = client.get(S, params={"patient_id": str(patient.patient_id)}, headers=headers)
    assert body["token"] not in listed.text
    assert body["code"] not in listed.text


def test_expiry_defaults_to_a_week_and_must_be_between_an_hour_and_30_days(
    client: TestClient, records: Any, tx: Any
) -> None:
    patient, headers, (pdf, _note, _png) = records
    ids = [pdf["id"]]
    default = share(client, headers, patient.patient_id, ids).json()
    with tx() as s:
        row = s.get(ShareLink, uuid.UUID(default["id"]))
        assert abs(row.expires_at - row.created_at - timedelta(days=7)) < timedelta(seconds=5)
    at = (utcnow() + timedelta(days=2)).isoformat()
    assert share(client, headers, patient.patient_id, ids, expires_at=at).status_code == 201
    assert share(client, headers, patient.patient_id, ids, expires_in_hours=1).status_code == 201
    cases: dict[str, dict[str, Any]] = {
        "too short": {"expires_at": (utcnow() + timedelta(minutes=30)).isoformat()},
        "too long": {"expires_at": (utcnow() + timedelta(days=31)).isoformat()},
        "past": {"expires_at": (utcnow() - timedelta(days=1)).isoformat()},
        "hours too long": {"expires_in_hours": 721},
        "both": {"expires_in_hours": 5, "expires_at": at},
        "naive time": {"expires_at": "2030-01-01T10:00:00"},
    }
    for name, extra in cases.items():
        response = share(client, headers, patient.patient_id, ids, **extra)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["detail"]
    with tx() as s:
        assert s.execute(select(func.count()).select_from(ShareLink)).scalar_one() == 3


def test_a_patient_has_at_most_20_active_shares(client: TestClient, records: Any, tx: Any) -> None:
    patient, headers, (pdf, _note, _png) = records
    made = [share(client, headers, patient.patient_id, [pdf["id"]]) for _ in range(service.MAX_ACTIVE_SHARES)]
    assert {r.status_code for r in made} == {201}
    refused = share(client, headers, patient.patient_id, [pdf["id"]])
    assert refused.status_code == 409
    assert "Revoke one first" in refused.json()["detail"]
    assert client.post(f"{S}/{made[0].json()['id']}/revoke", headers=headers).status_code == 200
    assert share(client, headers, patient.patient_id, [pdf["id"]], label="ok\x00\n").json()["label"] == "ok"


def test_records_must_be_the_patients_own_and_between_1_and_50(
    client: TestClient, records: Any, make: Any, sign_in: Any, tx: Any
) -> None:
    patient, headers, (pdf, _note, _png) = records
    other = make.patient_user()
    theirs = upload(client, sign_in(other), other.patient_id, content=unique_pdf()).json()
    mixed = share(client, headers, patient.patient_id, [pdf["id"], theirs["id"]])
    assert mixed.status_code == 422
    assert mixed.json()["field"] == "record_ids"
    assert share(client, headers, patient.patient_id, [str(uuid.uuid4())]).status_code == 422
    assert share(client, headers, patient.patient_id, []).status_code == 422
    assert (
        share(client, headers, patient.patient_id, [str(uuid.uuid4()) for _ in range(51)]).status_code == 422
    )
    # naming the other patient is "no such patient", and leaks nothing
    theirs_as_mine = share(client, headers, other.patient_id, [theirs["id"]])
    assert theirs_as_mine.status_code == 404
    assert other.patient.family_name not in theirs_as_mine.text
    with tx() as s:
        assert s.execute(select(func.count()).select_from(ShareLink)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(ShareItem)).scalar_one() == 0


def test_clinicians_cannot_share_or_list_a_patients_records(
    client: TestClient, cast: Cast, sign_in: Any, tx: Any
) -> None:
    patient = cast["patient"]
    record = upload(client, sign_in(patient), patient.patient_id, content=unique_pdf()).json()
    for role in ("doctor", "nurse"):
        headers = sign_in(cast[role])
        created = share(client, headers, patient.patient_id, [record["id"]])
        assert created.status_code == 403, created.text
        assert "Only the patient" in created.json()["detail"]
        assert (
            client.get(S, params={"patient_id": str(patient.patient_id)}, headers=headers).status_code == 403
        )
    assert len(audit_rows(tx, "share.create", outcome="denied", patient_id=patient.patient_id)) == 2
    with tx() as s:
        assert s.execute(select(func.count()).select_from(ShareLink)).scalar_one() == 0


# --- permission matrix ------------------------------------------------------------------------------------

NOT_PATIENT = dict.fromkeys(ROLES, 404)
CARERS_REFUSED = {"doctor": 403, "nurse": 403}  # they may see the patient, but only the patient shares
ANYONE = {**dict.fromkeys(ROLES, 200), ANON: 200}
SHARE_ROUTES: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/api/v1/records/shares"): {**NOT_PATIENT, **CARERS_REFUSED, "patient": 201, ANON: 401},
    ("GET", "/api/v1/records/shares"): {**NOT_PATIENT, **CARERS_REFUSED, "patient": 200, ANON: 401},
    ("POST", "/api/v1/records/shares/{share_id}/revoke"): {**NOT_PATIENT, "patient": 200, ANON: 401},
    ("POST", "/api/v1/records/shared/redeem"): ANYONE,
    ("GET", "/api/v1/records/shared/{token}"): ANYONE,
    ("GET", "/api/v1/records/shared/{token}/records/{record_id}/file"): ANYONE,
}
PUBLIC = {path for (_method, path), expected in SHARE_ROUTES.items() if expected == ANYONE}


def test_the_matrix_names_every_sharing_route(app: Any) -> None:
    from tests.identity.test_permission_matrix import api_routes

    served = api_routes(app, prefix="/api/v1/records/share", excluding=())
    assert served == set(SHARE_ROUTES)


def test_sharing_permission_matrix(client: TestClient, cast: Cast, make: Any, sign_in: Any) -> None:
    """Every role on the cast patient's shares gets the table's status; on a stranger's shares every
    signed-in role gets 404 and the stranger's name never leaks. The public routes answer whoever holds
    the credential, signed in or not."""
    stranger = make.patient_user()
    stranger_headers = sign_in(stranger)
    stranger_record = upload(client, stranger_headers, stranger.patient_id, content=unique_pdf()).json()
    stranger_share = share(client, stranger_headers, stranger.patient_id, [stranger_record["id"]]).json()
    patient_headers = sign_in(cast["patient"])
    mine = upload(client, patient_headers, cast["patient"].patient_id, content=unique_pdf()).json()
    own_share, revocable = (
        share(client, patient_headers, cast["patient"].patient_id, [mine["id"]]).json() for _ in range(2)
    )
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    problems = []
    for (method, path), expected in SHARE_ROUTES.items():
        for role in (*ROLES, ANON):
            targets = [("own", cast["patient"].patient_id, mine)]
            if path not in PUBLIC:
                targets.append(("other", stranger.patient_id, stranger_record))
            for target, patient_id, record in targets:
                if target == "other":
                    made = stranger_share
                else:  # revoking must not change what the other rows see
                    made = revocable if path.endswith("/revoke") else own_share
                url = path.format(share_id=made["id"], token=made["token"], record_id=record["id"])
                if path == "/api/v1/records/shares" and method == "POST":
                    response = share(client, tokens[role], patient_id, [record["id"]])
                elif path == "/api/v1/records/shares":
                    response = client.get(url, params={"patient_id": str(patient_id)}, headers=tokens[role])
                elif path.endswith("/redeem"):
                    response = client.post(url, json={"code": made["code"]}, headers=tokens[role])
                elif method == "POST":
                    response = client.post(url, headers=tokens[role])
                else:
                    response = client.get(url, headers=tokens[role])
                wanted = expected[role] if target == "own" or role == ANON else 404
                if response.status_code != wanted:
                    problems.append(
                        f"{method} {path} as {role} ({target}): {response.status_code} != {wanted}"
                    )
                if target == "other" and stranger.patient.family_name in response.text:
                    problems.append(f"{method} {path} as {role}: leaks the stranger's name")
    assert not problems, "\n".join(problems)


# --- pages ------------------------------------------------------------------------------------------------


def test_patient_creates_sees_and_revokes_a_share_through_the_pages(
    client: TestClient, records: Any, tx: Any
) -> None:
    patient, _headers, (pdf, note, png) = records
    client.follow_redirects = False
    csrf = web_login(client, patient)
    empty = client.get("/me/shares")
    assert empty.status_code == 200
    assert "No share links yet" in empty.text

    form = client.get("/me/shares/new", params={"record": pdf["id"]})
    assert form.status_code == 200
    order = [form.text.index(r["title"]) for r in (png, note, pdf)]
    assert order == sorted(order)  # newest first
    assert "Lab result" in form.text
    assert "2025-11-02" in form.text
    assert f'value="{pdf["id"]}" checked' in form.text

    nothing = client.post("/me/shares/new", data={"csrf_token": csrf, "expires_in_hours": "24"})
    assert nothing.status_code == 422
    assert "Choose at least one record" in nothing.text

    created = client.post(
        "/me/shares/new",
        data={
            "csrf_token": csrf,
            "record_id": [pdf["id"], note["id"]],
            "label": "Dr Silva",
            "expires_in_hours": "72",
        },
    )
    assert created.status_code == 200, created.text
    assert "shown only this once" in created.text
    with tx() as s:
        row = s.execute(select(ShareLink)).scalar_one()
        assert {r.id for r in row.records} == {uuid.UUID(pdf["id"]), uuid.UUID(note["id"])}
        assert row.label == "Dr Silva"
        assert abs(row.expires_at - row.created_at - timedelta(hours=72)) < timedelta(seconds=5)
        share_id = row.id
    url = created.text.split('data-testid="share-url"')[0].rsplit('value="', 1)[1].split('"')[0]
    code = created.text.split('data-testid="share-code"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert url.startswith("http")
    assert "/share/" in url
    token = url.rsplit("/", 1)[1]
    assert row.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert service.code_digest(code) == row.code_digest

    listing = client.get("/me/shares")
    assert "Dr Silva" in listing.text
    assert "active" in listing.text
    assert token not in listing.text
    assert code not in listing.text

    confirm = client.get(f"/me/shares/{share_id}/revoke")
    assert confirm.status_code == 200
    assert "stop working at once" in confirm.text
    assert pdf["title"] in confirm.text
    with tx() as s:
        assert s.get(ShareLink, share_id).revoked_at is None  # asking is not revoking
    revoked = client.post(f"/me/shares/{share_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/me/shares?revoked=1"
    with tx() as s:
        assert s.get(ShareLink, share_id).revoked_at is not None
    assert "revoked" in client.get("/me/shares?revoked=1").text


def test_share_pages_are_for_patients_only(client: TestClient, cast: Cast) -> None:
    client.follow_redirects = False
    web_login(client, cast["doctor"])
    assert client.get("/me/shares").status_code == 404
    assert client.get("/me/shares/new").status_code == 404
    client.cookies.clear()
    assert client.get("/me/shares").status_code == 303  # to sign in


def test_the_public_share_page_by_link_and_by_code(
    client: TestClient, records: Any, app: Any, tx: Any
) -> None:
    patient, headers, (pdf, note, png) = records
    body = share(
        client, headers, patient.patient_id, [pdf["id"], note["id"], png["id"]], label="Dr Silva"
    ).json()
    with TestClient(app, follow_redirects=False) as visitor:
        page = visitor.get(f"/share/{body['token']}")
        assert page.status_code == 200
        assert patient.full_name in page.text
        assert "Dr Silva" in page.text
        assert page.text.count('data-testid="verified"') == 3
        assert page.headers["x-robots-tag"] == "noindex, nofollow"
        assert "Sign out" not in page.text

        pdf_page = visitor.get(f"/share/{body['token']}/records/{pdf['id']}")
        assert f'src="{SHARED}/{body["token"]}/records/{pdf["id"]}/file"' in pdf_page.text
        assert "<iframe" in pdf_page.text
        png_page = visitor.get(f"/share/{body['token']}/records/{png['id']}")
        assert '<img class="img-fluid' in png_page.text
        text_page = visitor.get(f"/share/{body['token']}/records/{note['id']}")
        assert "<pre" in text_page.text
        assert "Penicillin rash" in text_page.text

        form = visitor.get("/share")
        assert form.status_code == 200
        assert 'name="code"' in form.text
        wrong = visitor.post("/share", data={"code": "2222-3333-4444"})
        assert wrong.status_code == 404
        assert service.UNKNOWN in wrong.text
        redeemed = visitor.post("/share", data={"code": body["code"]})
        assert redeemed.status_code == 303
        location = redeemed.headers["location"]
        assert location.startswith("/share/")
        assert body["code"] not in location
        assert body["code"].replace("-", "") not in location
        by_code = visitor.get(location)
        assert by_code.status_code == 200
        assert patient.full_name in by_code.text
        assert f"{SHARED}/{location.rsplit('/', 1)[1]}/records/{pdf['id']}/file" in by_code.text

        with tx() as s:
            row = s.get(ShareLink, uuid.UUID(body["id"]))
            row.revoked_at = utcnow()
        gone = visitor.get(f"/share/{body['token']}", headers={"Accept": "text/html"})
        assert gone.status_code == 404
        assert service.REVOKED in gone.text
        assert "Traceback" not in gone.text
        with tx() as s:
            row = s.get(ShareLink, uuid.UUID(body["id"]))
            row.revoked_at = None
            row.created_at = utcnow() - timedelta(days=8)
            row.expires_at = utcnow() - timedelta(days=1)
        expired = visitor.get(location)
        assert expired.status_code == 404
        assert "expired" in expired.text
        assert visitor.get(f"/share/{body['token']}/records/{pdf['id']}").status_code == 404
