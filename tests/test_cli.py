"""The ``caresync`` command line: demo data, demo MFA codes, users and the audit check."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from caresync.cli import app as cli_app
from caresync.core.audit import AuditEntry
from caresync.demo import DEMO_LOGINS, DEMO_PASSWORD
from caresync.identity.models import CareRelationship, Organisation, Patient, User
from caresync.identity.rules import normalise_health_id
from caresync.records.models import HealthRecord
from tests.conftest import API, PASSWORD

runner = CliRunner()


def _counts(tx: Any) -> dict[str, int]:
    with tx() as s:
        return {
            name: int(s.execute(select(func.count()).select_from(model)).scalar_one())
            for name, model in (
                ("orgs", Organisation),
                ("users", User),
                ("patients", Patient),
                ("care", CareRelationship),
            )
        }


def test_demo_loads_once_and_its_logins_work(client: TestClient, tx: Any) -> None:
    result = runner.invoke(cli_app, ["demo", "--patients", "50", "--no-documents", "--no-imaging"])
    assert result.exit_code == 0, result.output
    assert re.search(r"loaded 5 organisations, \d+ users, 50 patients", result.output)
    for role, email in DEMO_LOGINS:
        assert email in result.output, role
    counts = _counts(tx)
    assert counts["orgs"] == 5
    assert counts["patients"] == 50
    assert counts["care"] >= 50
    with tx() as s:
        roles = set(s.execute(select(User.role).distinct()).scalars())
        health_ids = list(s.execute(select(Patient.health_id)).scalars())
        staff_without_mfa = s.execute(
            select(func.count()).where(User.role.not_in(("patient", "donor")), User.mfa_enabled.is_(False))
        ).scalar_one()
    assert roles == {"admin", "doctor", "nurse", "bloodbank_staff", "pharmacist", "patient", "donor"}
    assert all(normalise_health_id(h) == h for h in health_ids)
    assert len(set(health_ids)) == 50
    assert staff_without_mfa == 0

    again = runner.invoke(
        cli_app, ["demo", "--patients", "50", "--if-empty", "--no-documents", "--no-imaging"]
    )
    assert again.exit_code == 0, again.output
    assert "demo data already present; nothing loaded" in again.output
    assert _counts(tx) == counts

    verify = runner.invoke(cli_app, ["audit", "verify"])
    assert verify.exit_code == 0, verify.output
    assert "audit chain OK" in verify.output

    # the printed MFA code signs the demo doctor in, and the demo patient needs no code
    doctor = dict(DEMO_LOGINS)["doctor"]
    code = runner.invoke(cli_app, ["demo-code", doctor])
    assert code.exit_code == 0, code.output
    assert re.fullmatch(r"\d{6}\n", code.output)
    login = client.post(
        f"{API}/auth/login", json={"email": doctor, "password": DEMO_PASSWORD, "otp": code.output.strip()}
    )
    assert login.status_code == 200, login.text
    assert login.json()["stage"] == "full"
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert len(client.get(f"{API}/patients", headers=headers).json()["items"]) >= 40
    patient = client.post(
        f"{API}/auth/login", json={"email": dict(DEMO_LOGINS)["patient"], "password": DEMO_PASSWORD}
    )
    assert patient.json()["stage"] == "full"


def test_demo_is_deterministic_for_a_seed(tx: Any) -> None:
    """The same ``--seed`` gives the same patients and the same records (titles, dates, file sizes)."""
    from tests.conftest import empty_database

    def snapshot() -> tuple[list[Any], list[Any]]:
        result = runner.invoke(
            cli_app, ["demo", "--patients", "2", "--seed", "11", "--no-documents", "--no-imaging"]
        )
        assert result.exit_code == 0, result.output
        with tx() as s:
            patients = s.execute(select(Patient.health_id, Patient.family_name)).all()
            records = s.execute(
                select(
                    Patient.health_id,
                    HealthRecord.category,
                    HealthRecord.title,
                    HealthRecord.recorded_on,
                    HealthRecord.size,
                ).join(Patient)
            ).all()
        return sorted(patients), sorted(records)

    first = snapshot()
    empty_database()
    assert snapshot() == first
    patients, records = first
    assert len(patients) == 2
    assert len(records) > 10


def test_demo_code_prints_six_digits_for_demo_accounts_only() -> None:
    result = runner.invoke(cli_app, ["demo-code", "admin@riverside.demo.caresync.dev"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"\d{6}", result.output.strip())
    refused = runner.invoke(cli_app, ["demo-code", "someone@hospital.example"])
    assert refused.exit_code == 2
    assert "only demo accounts" in refused.output


def test_user_create(tx: Any, make: Any) -> None:
    org = make.org("St. Clare University Hospital")
    result = runner.invoke(
        cli_app,
        [
            "user",
            "create",
            "first.admin@stclare.example",
            "First Admin",
            "admin",
            "--organisation",
            org.name,
            "--password",
            PASSWORD,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "created admin first.admin@stclare.example" in result.output
    with tx() as s:
        user = s.execute(select(User).where(User.email == "first.admin@stclare.example")).scalar_one()
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "user.create")).scalar_one()
    assert (user.role, user.organisation_id) == ("admin", org.id)
    assert entry.actor_role == "system"
    assert entry.resource_id == str(user.id)

    weak = runner.invoke(
        cli_app,
        [
            "user",
            "create",
            "second@stclare.example",
            "Second",
            "admin",
            "--organisation",
            org.name,
            "--password",
            "short",
        ],
    )
    assert weak.exit_code == 2
    assert "at least 10 characters" in weak.output
    unknown = runner.invoke(
        cli_app,
        [
            "user",
            "create",
            "third@stclare.example",
            "Third",
            "admin",
            "--organisation",
            "Nowhere",
            "--password",
            PASSWORD,
        ],
    )
    assert unknown.exit_code == 2
    assert "no organisation named 'Nowhere'" in unknown.output
    with tx() as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 1


def test_audit_verify_fails_with_exit_1_when_broken(tx: Any) -> None:
    from sqlalchemy import update

    from caresync.core import audit
    from caresync.core.auth import system_principal

    with tx() as s:
        audit.record(s, system_principal(), "test.one")
    with tx() as s:
        s.execute(update(AuditEntry).values(action="test.two"))
    result = runner.invoke(cli_app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "audit chain BROKEN at entry 1 (altered)" in result.output
