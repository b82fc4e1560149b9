"""Health records over the API: signed uploads, verification catching an altered file, manifest or
signature, corrections as new versions, the exported bundle checked by stock openssl and sha256, upload
validation, and the permission matrix of every ``/api/v1/records`` route."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from caresync.core.storage import _path
from caresync.records.models import HealthRecord
from caresync.records.service import OPENSSL_COMMAND
from tests.conftest import API, ROLES, Cast, login
from tests.identity.test_permission_matrix import api_routes

R = f"{API}/records"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% potassium 4.1 mmol/L\n%%EOF\n"


def upload(client: TestClient, headers: dict[str, str], patient_id: Any, **fields: Any) -> Any:
    form = {
        "patient_id": str(patient_id),
        "category": "lab",
        "title": "Blood panel",
        "recorded_on": "2026-01-15",
    }
    form.update({k: str(v) for k, v in fields.items() if k != "content"})
    content = fields.get("content", PDF)
    return client.post(
        R, data=form, files={"file": ("report.pdf", content, "application/pdf")}, headers=headers
    )


@pytest.fixture
def own(client: TestClient, make: Any, sign_in: Any) -> tuple[Any, dict[str, str], dict[str, Any], bytes]:
    """A patient with one uploaded lab report: (person, headers, record JSON, file content)."""
    patient = make.patient_user()
    headers = sign_in(patient)
    # unique content per test: files are content-addressed, and some tests damage the stored blob
    content = PDF + f"% {uuid.uuid4()}\n".encode()
    response = upload(client, headers, patient.patient_id, content=content)
    assert response.status_code == 201, response.text
    return patient, headers, response.json(), content


def test_an_upload_is_stored_hashed_signed_and_verifies(client: TestClient, own: Any, tx: Any) -> None:
    patient, headers, record, content = own
    assert record["sha256"] == hashlib.sha256(content).hexdigest()
    assert record["media_type"] == "application/pdf"
    verdict = client.get(f"{R}/{record['id']}/verify", headers=headers).json()
    assert verdict == {
        **verdict,
        "ok": True,
        "file_intact": True,
        "manifest_matches": True,
        "signature_valid": True,
    }
    assert verdict["problems"] == []
    with tx() as s:
        row = s.get(HealthRecord, uuid.UUID(record["id"]))
        manifest = json.loads(row.manifest)
        audited = s.execute(
            select(func.count()).where(
                AuditEntry.action == "record.create", AuditEntry.patient_id == patient.patient_id
            )
        ).scalar_one()
    assert manifest["sha256"] == record["sha256"]
    assert manifest["patient_health_id"] == patient.patient.health_id
    assert manifest["uploader_id"] == str(patient.id)
    assert audited == 1
    assert content not in _path(record["sha256"]).read_bytes()  # encrypted at rest


@pytest.mark.parametrize("tamper", ["file", "manifest", "signature"])
def test_verification_names_what_was_altered(client: TestClient, own: Any, tx: Any, tamper: str) -> None:
    _patient, headers, record, _content = own
    if tamper == "file":
        path = _path(record["sha256"])
        blob = bytearray(path.read_bytes())
        blob[-5] ^= 1
        path.write_bytes(bytes(blob))
    else:
        with tx() as s:
            row = s.get(HealthRecord, uuid.UUID(record["id"]))
            if tamper == "manifest":
                row.manifest = row.manifest.replace('"lab"', '"note"')
                row.category = "note"  # a consistent forgery: only the signature can tell
            else:
                signature = bytearray(base64.b64decode(row.signature))
                signature[0] ^= 1
                row.signature = base64.b64encode(bytes(signature)).decode()
    verdict = client.get(f"{R}/{record['id']}/verify", headers=headers).json()
    assert verdict["ok"] is False
    expected = {"file": "file_intact", "manifest": "signature_valid", "signature": "signature_valid"}[tamper]
    assert verdict[expected] is False
    assert verdict["problems"]


def test_a_correction_is_a_new_version_and_both_stay_visible(client: TestClient, own: Any) -> None:
    patient, headers, record, _content = own
    fixed = upload(
        client,
        headers,
        patient.patient_id,
        title="Blood panel (corrected)",
        supersedes_id=record["id"],
        content=PDF + b"% corrected\n",
    )
    assert fixed.status_code == 201, fixed.text
    again = upload(client, headers, patient.patient_id, supersedes_id=record["id"])
    assert again.status_code == 409  # correct the newest version instead
    listed = client.get(R, params={"patient_id": str(patient.patient_id)}, headers=headers).json()["items"]
    by_id = {item["id"]: item for item in listed}
    assert by_id[record["id"]]["superseded"] is True
    assert by_id[fixed.json()["id"]]["superseded"] is False
    assert by_id[fixed.json()["id"]]["supersedes_id"] == record["id"]
    verdict = client.get(f"{R}/{record['id']}/verify", headers=headers).json()
    assert verdict["ok"] is True, verdict


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"category": "astrology"}, 422, "category"),
        ({"title": "  "}, 422, "title"),
        ({"recorded_on": "2999-01-01"}, 422, "future"),
        ({"content": b"MZ\x90\x00 an executable"}, 415, "accepted"),
        ({"content": b""}, 422, "empty"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_kept(
    client: TestClient, make: Any, sign_in: Any, tx: Any, fields: dict[str, Any], status: int, field: str
) -> None:
    patient = make.patient_user()
    response = upload(client, sign_in(patient), patient.patient_id, **fields)
    assert response.status_code == status, response.text
    assert field in response.text
    with tx() as s:
        assert s.execute(select(func.count()).select_from(HealthRecord)).scalar_one() == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_exported_bundle_verifies_with_stock_tools(client: TestClient, own: Any, tmp_path: Path) -> None:
    _patient, headers, record, _content = own
    response = client.get(f"{R}/{record['id']}/bundle", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path)
    readme = (tmp_path / "README.txt").read_text()
    command = readme.split("\n")[2].strip().split()  # the documented openssl command, exactly as shipped
    assert command == OPENSSL_COMMAND.split()
    project_readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert OPENSSL_COMMAND in project_readme  # the command the project README documents is the one run here
    checked = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert checked.returncode == 0, checked.stderr
    assert "Signature Verified Successfully" in checked.stdout
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert hashlib.sha256((tmp_path / "record.pdf").read_bytes()).hexdigest() == manifest["sha256"]


# --- permissions

ANON = "anonymous"
CARERS = ("doctor", "nurse", "patient")
RECORD_ROUTES: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/api/v1/records"): {**dict.fromkeys(ROLES, 404), **dict.fromkeys(CARERS, 201), ANON: 401},
    ("GET", "/api/v1/records"): {**dict.fromkeys(ROLES, 404), **dict.fromkeys(CARERS, 200), ANON: 401},
    ("GET", "/api/v1/records/{record_id}"): {
        **dict.fromkeys(ROLES, 404),
        **dict.fromkeys(CARERS, 200),
        ANON: 401,
    },
    ("GET", "/api/v1/records/{record_id}/verify"): {
        **dict.fromkeys(ROLES, 404),
        **dict.fromkeys(CARERS, 200),
        ANON: 401,
    },
    ("GET", "/api/v1/records/{record_id}/bundle"): {
        **dict.fromkeys(ROLES, 404),
        **dict.fromkeys(CARERS, 200),
        ANON: 401,
    },
    ("GET", "/api/v1/records/{record_id}/file"): {
        **dict.fromkeys(ROLES, 404),
        **dict.fromkeys(CARERS, 200),
        ANON: 401,
    },
    ("GET", "/api/v1/records/{record_id}/versions"): {
        **dict.fromkeys(ROLES, 404),
        **dict.fromkeys(CARERS, 200),
        ANON: 401,
    },
}


def test_the_matrices_name_every_records_route(app: Any) -> None:
    from tests.records.test_client_signing import SIGNING_KEY_ROUTES
    from tests.records.test_consent import CONSENT_ROUTES
    from tests.records.test_sharing import SHARE_ROUTES

    named = set(RECORD_ROUTES) | set(CONSENT_ROUTES) | set(SIGNING_KEY_ROUTES) | set(SHARE_ROUTES)
    assert api_routes(app, prefix="/api/v1/records", excluding=()) == named


def test_records_permission_matrix(client: TestClient, cast: Cast, make: Any, sign_in: Any) -> None:
    """The cast's patient (cared for by the cast's doctor and nurse) and a stranger's record nobody in the
    hospital may see: every role gets the table's status on the first and 404 on the second, and the
    stranger's record never leaks."""
    stranger = make.patient_user()
    stranger_record = upload(client, sign_in(stranger), stranger.patient_id).json()
    mine = upload(client, sign_in(cast["patient"]), cast["patient"].patient_id).json()
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    problems = []
    for (method, path), expected in RECORD_ROUTES.items():
        for role in (*ROLES, ANON):
            for target, record, patient_id in (
                ("own", mine, cast["patient"].patient_id),
                ("other", stranger_record, stranger.patient_id),
            ):
                url = path.format(record_id=record["id"])
                if method == "POST":
                    response = upload(client, tokens[role], patient_id)
                elif path == "/api/v1/records":
                    response = client.get(url, params={"patient_id": str(patient_id)}, headers=tokens[role])
                else:
                    response = client.get(url, headers=tokens[role])
                wanted = expected[role] if target == "own" or role == ANON else (404 if role != ANON else 401)
                if response.status_code != wanted:
                    problems.append(
                        f"{method} {path} as {role} ({target}): {response.status_code} != {wanted}"
                    )
                if target == "other" and stranger.patient.family_name in response.text:
                    problems.append(f"{method} {path} as {role}: leaks the stranger's name")
    assert not problems, "\n".join(problems)


# --- timeline, typed entries, files and versions


def test_the_timeline_pages_and_filters(client: TestClient, make: Any, sign_in: Any) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    doctor = make.staff("doctor")
    make.care(doctor, patient)
    entries = [
        ("lab", "2024-03-01"),
        ("diagnosis", "2025-06-10"),
        ("lab", "2026-01-05"),
        ("vitals", "2023-11-20"),
    ]
    for n, (category, day) in enumerate(entries):
        by = sign_in(doctor) if n % 2 else headers
        response = upload(
            client,
            by,
            patient.patient_id,
            category=category,
            recorded_on=day,
            content=PDF + b"%" + bytes([65 + n]),
        )
        assert response.status_code == 201, response.text

    def listed(**params: Any) -> list[tuple[str, str]]:
        seen, cursor = [], None
        while True:
            query = {"patient_id": str(patient.patient_id), "limit": 2, **params}
            if cursor:
                query["cursor"] = cursor
            page = client.get(R, params=query, headers=headers).json()
            seen += [(item["category"], item["recorded_on"]) for item in page["items"]]
            if not (cursor := page["next_cursor"]):
                return seen

    assert listed() == sorted(entries, key=lambda e: e[1], reverse=True)
    assert listed(category="lab") == [("lab", "2026-01-05"), ("lab", "2024-03-01")]
    assert listed(category=["lab", "vitals"], date_from="2023-01-01", date_to="2025-12-31") == [
        ("lab", "2024-03-01"),
        ("vitals", "2023-11-20"),
    ]
    assert listed(uploaded_by=str(doctor.id)) == [("diagnosis", "2025-06-10"), ("vitals", "2023-11-20")]
    reversed_range = client.get(
        R,
        params={"patient_id": str(patient.patient_id), "date_from": "2026-01-01", "date_to": "2025-01-01"},
        headers=headers,
    )
    assert reversed_range.status_code == 422
    unknown = client.get(
        R, params={"patient_id": str(patient.patient_id), "category": "gossip"}, headers=headers
    )
    assert unknown.status_code == 422


def test_vital_signs_are_typed_checked_and_signed(
    client: TestClient, make: Any, sign_in: Any, tx: Any
) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    form = {
        "patient_id": str(patient.patient_id),
        "category": "vitals",
        "title": "Home blood pressure",
        "recorded_on": "2026-02-01",
        "text": "Measured after 5 minutes of rest.",
        "measurements": json.dumps({"systolic": 128, "diastolic": 82, "heart_rate": 71}),
    }
    created = client.post(R, data=form, headers=headers)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["media_type"] == "text/plain"
    assert record["measurements"] == {"systolic": 128.0, "diastolic": 82.0, "heart_rate": 71.0}
    with tx() as s:
        manifest = json.loads(s.get(HealthRecord, uuid.UUID(record["id"])).manifest)
    assert manifest["measurements"] == record["measurements"]
    assert client.get(f"{R}/{record['id']}/verify", headers=headers).json()["ok"] is True
    served = client.get(f"{R}/{record['id']}/file", headers=headers)
    assert served.content == b"Measured after 5 minutes of rest."
    assert served.headers["content-disposition"].startswith("inline")
    assert served.headers["x-frame-options"] == "SAMEORIGIN"
    download = client.get(f"{R}/{record['id']}/file", params={"download": "true"}, headers=headers)
    assert download.headers["content-disposition"].startswith("attachment")
    for measurements, message in (
        ({"systolic": 400}, "outside"),
        ({"systolic": 80, "diastolic": 90}, "lower than systolic"),
        ({"mood": 3}, "Unknown vital sign"),
        ("[1, 2]", "JSON object"),
    ):
        raw = measurements if isinstance(measurements, str) else json.dumps(measurements)
        refused = client.post(R, data={**form, "measurements": raw}, headers=headers)
        assert refused.status_code == 422, refused.text
        assert message in refused.json()["detail"]
    not_vitals = client.post(R, data={**form, "category": "lab"}, headers=headers)
    assert not_vitals.status_code == 422
    empty = client.post(R, data={**form, "text": "  ", "measurements": ""}, headers=headers)
    assert empty.status_code == 422
    assert "Attach a file" in empty.json()["detail"]


def test_versions_list_the_whole_chain(client: TestClient, own: Any) -> None:
    patient, headers, first, _content = own
    second = upload(
        client, headers, patient.patient_id, supersedes_id=first["id"], content=PDF + b"%2"
    ).json()
    third = upload(
        client, headers, patient.patient_id, supersedes_id=second["id"], content=PDF + b"%3"
    ).json()
    for record in (first, second, third):
        chain = client.get(f"{R}/{record['id']}/versions", headers=headers).json()
        assert [(v["id"], v["superseded"]) for v in chain] == [
            (first["id"], True),
            (second["id"], True),
            (third["id"], False),
        ]


def test_a_record_attaches_only_to_the_patients_own_appointment(client: TestClient, own: Any) -> None:
    patient, headers, _record, _content = own
    refused = upload(client, headers, patient.patient_id, appointment_id=uuid.uuid4())
    assert refused.status_code == 422
    assert "appointment" in refused.json()["detail"]


def test_control_characters_never_reach_the_database(client: TestClient, own: Any) -> None:
    """A NUL cannot be stored by PostgreSQL: titles and consent notes are cleaned, not a 500."""
    patient, headers, _record, _content = own
    created = upload(
        client, headers, patient.patient_id, title="Blood\x00 panel\x07\n  2026", content=PDF + b"%nul"
    )
    assert created.status_code == 201, created.text
    assert created.json()["title"] == "Blood panel 2026"
