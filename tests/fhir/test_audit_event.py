"""FHIR AuditEvent: the audit chain as FHIR. The mapping tables, who may review which events (a patient
their own record, a clinician a patient they may see, an administrator their organisation), every search
parameter, paging with totals, reads by hash, and the audit entry each review writes."""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from caresync.core import audit
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.fhir.resources import audit_event as fhir_audit
from caresync.scheduling.models import Practitioner
from tests.conftest import Cast, Factory, Person
from tests.fhir.conftest import FhirApi, assert_valid, ids

SignIn = Callable[[Person], dict[str, str]]
AppToken = Callable[[dict[str, str], str], dict[str, str]]
SRC = Path(__file__).resolve().parents[2] / "src" / "caresync"
ACTION_NAME = re.compile(r"^[a-z_]+(\.[a-z_\-]+)+$")
AUDIT_CALLS = re.compile(r"record|authoriz|require|audit|deny|denied|_log|_for_change|_load|scope|_readable")
OUTCOME_CODES = {"0", "4", "8", "12"}  # AuditEventOutcome (R4, required binding)


def actions_in_source() -> set[str]:
    """Every audit action name written in the source: string arguments of the audit/permission helpers
    (``audit.record(…, "patient.read")``, ``authorize_patient(…, "patient.read")`` …), ``action=`` keywords
    and defaults of ``action`` parameters, plus the steps of f-string actions (``appointment.{step}``)."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                args = [k.value for k in node.keywords if k.arg == "action"]
                if AUDIT_CALLS.search(name):
                    args += node.args
                found |= {str(a.value) for a in args if isinstance(a, ast.Constant) and _is_action(a.value)}
            elif isinstance(node, ast.FunctionDef):
                params = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + list(node.args.defaults)
                defaults += list(node.args.kw_defaults)
                for param, default in zip(params, defaults, strict=True):
                    if (
                        param.arg == "action"
                        and isinstance(default, ast.Constant)
                        and _is_action(default.value)
                    ):
                        found.add(str(default.value))
    from caresync.scheduling.booking import PROGRESS

    found |= {f"appointment.{step}" for step in PROGRESS}
    found |= {"bloodbank.reports.export_csv", "bloodbank.reports.export_pdf"}
    return found


def _is_action(value: object) -> bool:
    return isinstance(value, str) and bool(ACTION_NAME.match(value))


def record(
    tx: Any,
    actor: Principal,
    action: str,
    *,
    patient_id: uuid.UUID | None = None,
    outcome: str = "success",
    resource_type: str = "",
    resource_id: str = "",
) -> AuditEntry:
    """Append one audit entry (committed), as a service would."""
    with tx() as s:
        entry = audit.record(
            s,
            actor,
            action,
            patient_id=patient_id,
            outcome=outcome,
            resource_type=resource_type,
            resource_id=resource_id,
        )
        s.expunge(entry)
    return entry


def principal_of(person: Person, client_ip: str = "203.0.113.9") -> Principal:
    """The principal a person acts as."""
    return Principal(
        user_id=person.id,
        role=person.role,
        full_name=person.full_name,
        organisation_id=person.user.organisation_id,
        client_ip=client_ip,
        patient_id=person.patient.id if person.patient else None,
    )


def entries(tx: Any, action: str) -> list[AuditEntry]:
    with tx() as s:
        return list(
            s.execute(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            ).scalars()
        )


def subtype(event: dict[str, Any]) -> str:
    """Our action name, from the event's subtypes."""
    return next(c["code"] for c in event["subtype"] if c["system"] == fhir_audit.ACTION_SYSTEM)


def chain(event: dict[str, Any]) -> dict[str, str]:
    """The chain details (seq, hash, prev_hash, flagged) of an event."""
    (entity,) = [e for e in event["entity"] if e.get("name") == "Security Audit Log"]
    return {d["type"]: d["valueString"] for d in entity["detail"]}


def search(fhir: FhirApi, query: str, headers: dict[str, str], status: int = 200) -> dict[str, Any]:
    response = fhir.get(f"AuditEvent?{query}", headers)
    assert response.status_code == status, response.text
    return response.json()


# --- the tables ------------------------------------------------------------------------------------------


@pytest.mark.no_db
def test_every_action_in_the_source_has_an_explicit_mapping() -> None:
    found = actions_in_source()
    assert len(found) > 150  # the scan works (it found the platform's actions)
    for required in ("patient.read", "auth.login", "appointment.check-in", "record.read", "fhir.scope"):
        assert required in found
    unmapped_verbs = sorted(
        a
        for a in found
        if a.rsplit(".", 1)[-1] not in fhir_audit.VERBS
        and not any(a.rsplit(".", 1)[-1].startswith(p) for p in fhir_audit.VERB_PREFIXES)
    )
    assert unmapped_verbs == [], "add these verbs to audit_event.VERBS"
    unmapped_domains = sorted(
        a
        for a in found
        if a not in fhir_audit.ACTION_TYPES
        and a.split(".")[0] not in fhir_audit.DOMAIN_TYPES
        and ".".join(a.split(".")[:2]) not in fhir_audit.DOMAIN_TYPES
    )
    assert unmapped_domains == [], "add these action prefixes to audit_event.DOMAIN_TYPES"
    for action in found:
        assert fhir_audit.action_code(action) in fhir_audit.ACTION_DISPLAY
        type_code, subtype_code = fhir_audit.event_type(action)
        assert type_code in fhir_audit.DCM_DISPLAY
        assert subtype_code is None or subtype_code in fhir_audit.DCM_DISPLAY


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("action", "code", "event", "sub"),
    [
        ("patient.read", "R", "110110", None),
        ("patient.create", "C", "110110", None),
        ("patient.update", "U", "110110", None),
        ("patient.list", "E", "110110", None),
        ("patient.break_glass", "E", "110113", "110127"),
        ("patient.access_history", "R", "110101", None),
        ("appointment.book", "C", "110110", None),
        ("appointment.cancel", "D", "110110", None),
        ("appointment.check-in", "U", "110110", None),
        ("consent.revoke", "D", "110110", None),
        ("prescription.create", "C", "110109", None),
        ("bloodbank.request.read", "R", "110109", None),
        ("bloodbank.donor.register", "C", "110100", None),
        ("bloodbank.reports.export_csv", "R", "110106", None),
        ("auth.login", "E", "110114", "110122"),
        ("auth.logout", "E", "110114", "110123"),
        ("audit.search", "E", "110101", None),
        ("audit.read", "R", "110101", None),
        ("fhir.scope", "E", "110113", "110132"),
        ("record.export", "R", "110106", None),
        ("share.redeem", "R", "110106", None),
        ("user.update", "U", "110113", "110137"),
        ("activity.undo", "D", "110110", None),
    ],
)
def test_action_table(action: str, code: str, event: str, sub: str | None) -> None:
    assert fhir_audit.action_code(action) == code
    assert fhir_audit.event_type(action) == (event, sub)


@pytest.mark.no_db
def test_unknown_actions_fall_back_sensibly() -> None:
    assert fhir_audit.action_code("newdomain.frobnicate") == "E"
    assert fhir_audit.event_type("newdomain.frobnicate", has_patient=True) == ("110110", None)
    assert fhir_audit.event_type("newdomain.frobnicate", has_patient=False) == ("110100", None)


@pytest.mark.no_db
def test_every_outcome_maps_to_an_audit_event_outcome() -> None:
    constraint = next(c for c in AuditEntry.__table__.constraints if str(c.name).endswith("outcome"))
    ours = set(re.findall(r"'(\w+)'", str(constraint.sqltext)))
    assert ours == set(fhir_audit.OUTCOMES) == {"success", "denied", "failure"}
    assert fhir_audit.OUTCOMES == {"success": "0", "denied": "4", "failure": "8"}
    assert set(fhir_audit.OUTCOMES.values()) <= OUTCOME_CODES


# --- mapping ---------------------------------------------------------------------------------------------


def test_mapping_of_an_entry(tx: Any, cast: Cast) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    appointment_id = uuid.uuid4()
    entry = record(
        tx,
        principal_of(doctor),
        "appointment.cancel",
        patient_id=patient.patient_id,
        resource_type="Appointment",
        resource_id=str(appointment_id),
    )
    event = fhir_audit.to_fhir(entry)
    assert_valid(event)
    assert event["id"] == entry.hash
    assert len(entry.hash) == 64
    assert event["type"] == {"system": fhir_audit.DCM, "code": "110110", "display": "Patient Record"}
    assert event["subtype"] == [{"system": "urn:caresync:audit-action", "code": "appointment.cancel"}]
    assert (event["action"], event["outcome"]) == ("D", "0")
    assert "outcomeDesc" not in event
    assert datetime.fromisoformat(event["recorded"]) == entry.at
    (agent,) = event["agent"]
    assert agent["who"] == {
        "display": doctor.full_name,
        "identifier": {"system": "urn:caresync:user", "value": str(doctor.id)},
    }
    assert agent["role"] == [
        {"coding": [{"system": "urn:caresync:role", "code": "doctor"}], "text": "doctor"}
    ]
    assert agent["requestor"] is True
    assert agent["network"] == {"address": "203.0.113.9", "type": "2"}
    assert event["source"]["observer"] == {"display": "CareSync"}
    assert event["source"]["type"][0]["code"] == "4"
    who, what, log = event["entity"]
    assert who["what"] == {"reference": f"Patient/{patient.patient_id}"}
    assert (who["type"]["code"], who["role"]["code"]) == ("1", "1")
    assert what["what"] == {"reference": f"Appointment/{appointment_id}"}
    assert what["type"] == {"system": "http://hl7.org/fhir/resource-types", "code": "Appointment"}
    assert what["role"]["code"] == "4"
    assert log["role"]["code"] == "13"
    assert chain(event) == {
        "seq": str(entry.seq),
        "hash": entry.hash,
        "prev_hash": entry.prev_hash,
        "flagged": "false",
    }


def test_mapping_of_system_denied_and_non_fhir_entries(tx: Any, cast: Cast) -> None:
    system = Principal(user_id=None, role="system", full_name="CareSync system")
    failed = fhir_audit.to_fhir(record(tx, system, "backup.verify", outcome="failure"))
    assert_valid(failed)
    assert (failed["outcome"], failed["outcomeDesc"], failed["action"]) == ("8", "The action failed", "E")
    assert failed["type"]["code"] == "110100"
    assert failed["agent"][0]["who"] == {"display": "CareSync system"}
    assert "network" not in failed["agent"][0]
    assert [e["name"] for e in failed["entity"]] == ["Security Audit Log"]

    denied_entry = record(
        tx,
        principal_of(cast["pharmacist"]),
        "record.read",
        outcome="denied",
        patient_id=cast.other_patient.id,
        resource_type="HealthRecord",
        resource_id="42",
    )
    denied = fhir_audit.to_fhir(denied_entry)
    assert_valid(denied)
    assert (denied["outcome"], denied["outcomeDesc"]) == ("4", "Access denied")
    resource = denied["entity"][1]
    assert resource["what"] == {
        "display": "HealthRecord 42",
        "identifier": {"system": "urn:caresync:resource:HealthRecord", "value": "42"},
    }
    assert resource["type"]["code"] == "2"  # System Object: not a FHIR resource of this server
    assert resource["name"] == "HealthRecord"

    about_patient = fhir_audit.to_fhir(
        record(
            tx,
            principal_of(cast["doctor"]),
            "patient.read",
            patient_id=cast.other_patient.id,
            resource_type="Patient",
            resource_id=str(cast.other_patient.id),
        )
    )
    # the patient is the resource: one entity for it, not two
    assert [e["what"].get("reference") for e in about_patient["entity"]] == [
        f"Patient/{cast.other_patient.id}",
        None,
    ]


# --- the patient's view: who accessed my record --------------------------------------------------------


def test_patient_sees_the_doctors_fhir_read_with_the_doctor_as_agent(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, app_token: AppToken
) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    assert fhir.get(f"Patient/{patient.patient_id}", sign_in(doctor)).status_code == 200

    own = sign_in(patient)
    for headers in (own, app_token(own, "patient/AuditEvent.read")):
        bundle = search(fhir, "subtype=patient.read", headers)
        reads = [e["resource"] for e in bundle["entry"]]
        by_doctor = [
            r for r in reads if r["agent"][0]["who"].get("identifier", {}).get("value") == str(doctor.id)
        ]
        assert len(by_doctor) == 1, reads
        (event,) = by_doctor
        assert event["agent"][0]["who"]["display"] == doctor.full_name
        assert event["agent"][0]["role"][0]["text"] == "doctor"
        assert event["agent"][0]["requestor"] is True
        assert event["action"] == "R"
        assert event["outcome"] == "0"
        assert event["type"]["code"] == "110110"
        assert event["entity"][0]["what"] == {"reference": f"Patient/{patient.patient_id}"}
        assert chain(event)["hash"] == event["id"]
        assert bundle["total"] == 1


def test_a_patient_sees_only_events_about_their_own_record(
    fhir: FhirApi, cast: Cast, make: Factory, sign_in: SignIn, tx: Any
) -> None:
    me, other = cast["patient"], make.patient_user()
    assert fhir.get(f"Patient/{other.patient_id}", sign_in(other)).status_code == 200
    assert fhir.get(f"Patient/{me.patient_id}", sign_in(cast["nurse"])).status_code == 200
    headers = sign_in(me)

    events = fhir.search_all("AuditEvent?_count=50", headers)
    assert events
    patients = {e["entity"][0]["what"]["reference"] for e in events}
    assert patients == {f"Patient/{me.patient_id}"}

    hidden = search(fhir, f"patient=Patient/{other.patient_id}", headers, status=404)
    assert hidden["issue"][0]["code"] == "not-found"
    assert search(fhir, f"patient={me.patient_id}", headers)["total"] >= 1

    (others_read,) = [e for e in entries(tx, "patient.read") if e.patient_id == other.patient_id]
    assert fhir.get(f"AuditEvent/{others_read.hash}", headers).status_code == 404
    assert search(fhir, f"_id={others_read.hash}", headers)["total"] == 0
    # the attempt on the other patient's events was audited as a denial
    denied = [e for e in entries(tx, "patient.access_history") if e.outcome == "denied"]
    assert [(e.actor_id, e.patient_id) for e in denied] == [(me.id, other.patient_id)]


def test_a_patient_who_acted_appears_as_the_patient(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    me = cast["patient"]
    headers = sign_in(me)
    assert fhir.get(f"Patient/{me.patient_id}", headers).status_code == 200
    (event,) = [e["resource"] for e in search(fhir, "subtype=patient.read", headers)["entry"]]
    assert event["agent"][0]["who"]["reference"] == f"Patient/{me.patient_id}"
    assert event["agent"][0]["who"]["identifier"]["value"] == str(me.id)
    # and agent=Patient/<id> finds it
    assert ids(search(fhir, f"agent=Patient/{me.patient_id}&subtype=patient.read", headers)) == [event["id"]]


def test_a_clinician_with_a_directory_profile_appears_as_the_practitioner(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any
) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    with tx() as s:
        profile = Practitioner(
            user_id=doctor.id,
            organisation_id=doctor.user.organisation_id,
            display_name=doctor.full_name,
            search_text=doctor.full_name.lower(),
        )
        s.add(profile)
        s.flush()
        profile_id = profile.id
    assert fhir.get(f"Patient/{patient.patient_id}", sign_in(doctor)).status_code == 200
    headers = sign_in(patient)
    (event,) = [e["resource"] for e in search(fhir, "subtype=patient.read", headers)["entry"]]
    assert event["agent"][0]["who"]["reference"] == f"Practitioner/{profile_id}"
    # the reference resolves to the directory's Practitioner, readable by the patient
    practitioner = fhir.get(event["agent"][0]["who"]["reference"], headers)
    assert practitioner.status_code == 200, practitioner.text
    assert ids(search(fhir, f"agent=Practitioner/{profile_id}&subtype=patient.read", headers)) == [
        event["id"]
    ]
    assert search(fhir, f"agent=Practitioner/{uuid.uuid4()}", headers)["total"] == 0
    # a nurse without a profile is named and identified, without a reference
    nurse = record(tx, principal_of(cast["nurse"]), "patient.read", patient_id=patient.patient_id)
    assert "reference" not in fhir.get(f"AuditEvent/{nurse.hash}", headers).json()["agent"][0]["who"]


def test_reviewing_is_audited(fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any) -> None:
    me = cast["patient"]
    search(fhir, "", sign_in(me))
    (review,) = [e for e in entries(tx, "patient.access_history") if e.actor_id == me.id]
    assert (review.patient_id, review.outcome) == (me.patient_id, "success")
    admin = cast["admin"]
    search(fhir, "", sign_in(admin))
    assert [e.actor_id for e in entries(tx, "audit.search")] == [admin.id]


def test_scopes(fhir: FhirApi, cast: Cast, sign_in: SignIn, app_token: AppToken) -> None:
    assert fhir.get(f"Patient/{cast['patient'].patient_id}", sign_in(cast["doctor"])).status_code == 200
    own = sign_in(cast["patient"])
    refused = search(fhir, "", app_token(own, "patient/Patient.read"), status=403)
    assert refused["issue"][0]["code"] == "forbidden"
    assert search(fhir, "", app_token(own, "patient/*.read"))["total"] >= 1
    admin = sign_in(cast["admin"])
    assert search(fhir, "", app_token(admin, "user/AuditEvent.read"))["total"] >= 1
    assert fhir.get("AuditEvent").status_code == 401


# --- clinicians and others -----------------------------------------------------------------------------


def test_clinicians_review_the_patients_they_may_see(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    patient = cast["patient"]
    assert fhir.get(f"Patient/{patient.patient_id}", sign_in(cast["nurse"])).status_code == 200
    doctor = sign_in(cast["doctor"])
    bundle = search(fhir, f"patient=Patient/{patient.patient_id}&subtype=patient.read", doctor)
    assert [e["resource"]["agent"][0]["who"]["display"] for e in bundle["entry"]] == [cast["nurse"].full_name]
    assert search(fhir, f"patient={cast.other_patient.id}", doctor, status=404)
    whole_log = search(fhir, "", doctor, status=403)
    assert "administrators" in whole_log["issue"][0]["diagnostics"]


@pytest.mark.parametrize("role", ["pharmacist", "bloodbank_staff", "donor"])
def test_roles_without_patient_access_see_nothing(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, role: str
) -> None:
    headers = sign_in(cast[role])
    assert search(fhir, "", headers, status=403)
    assert search(fhir, f"patient={cast['patient'].patient_id}", headers, status=404)


# --- administrators -------------------------------------------------------------------------------------


def test_admin_searches_the_organisations_log(
    fhir: FhirApi, cast: Cast, make: Factory, sign_in: SignIn, tx: Any
) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    assert fhir.get(f"Patient/{patient.patient_id}", sign_in(doctor)).status_code == 200
    elsewhere = make.staff("doctor", make.org())
    record(tx, principal_of(elsewhere), "patient.read", patient_id=patient.patient_id)
    admin = sign_in(cast["admin"])

    events = fhir.search_all("AuditEvent?subtype=patient.read", admin)
    assert [e["agent"][0]["who"]["identifier"]["value"] for e in events] == [str(doctor.id)]
    everything = fhir.search_all("AuditEvent?_count=200", admin)
    actors = {e["agent"][0]["who"].get("identifier", {}).get("value") for e in everything}
    assert str(elsewhere.id) not in actors
    assert str(doctor.id) in actors

    # the other organisation's admin sees their doctor's read, not ours
    their_admin = sign_in(make.staff("admin", elsewhere.organisation))
    theirs = fhir.search_all("AuditEvent?subtype=patient.read", their_admin)
    assert [e["agent"][0]["who"]["identifier"]["value"] for e in theirs] == [str(elsewhere.id)]

    # read by id: own organisation yes, the other organisation's no
    (ours,) = [e for e in entries(tx, "patient.read") if e.actor_id == doctor.id]
    (theirs_entry,) = [e for e in entries(tx, "patient.read") if e.actor_id == elsewhere.id]
    read = fhir.get(f"AuditEvent/{ours.hash}", admin)
    assert read.status_code == 200
    assert read.json()["id"] == ours.hash
    assert fhir.get(f"AuditEvent/{theirs_entry.hash}", admin).status_code == 404
    assert [e.outcome for e in entries(tx, "audit.read")] == ["success", "denied"]


# --- search parameters ----------------------------------------------------------------------------------


@pytest.fixture
def history(tx: Any, cast: Cast) -> dict[str, AuditEntry]:
    """Events about the cast's patient by several people, with every outcome."""
    patient_id = cast["patient"].patient_id
    appointment = str(uuid.uuid4())
    return {
        "doctor_read": record(
            tx, principal_of(cast["doctor"]), "patient.read", patient_id=patient_id, resource_type="Patient"
        ),
        "nurse_cancel": record(
            tx,
            principal_of(cast["nurse"]),
            "appointment.cancel",
            patient_id=patient_id,
            resource_type="Appointment",
            resource_id=appointment,
        ),
        "doctor_denied": record(
            tx, principal_of(cast["doctor"]), "record.read", patient_id=patient_id, outcome="denied"
        ),
        "nurse_failed": record(
            tx,
            principal_of(cast["nurse"]),
            "prescription.create",
            patient_id=patient_id,
            outcome="failure",
            resource_type="MedicationRequest",
        ),
    }


def _match(fhir: FhirApi, headers: dict[str, str], query: str) -> set[str]:
    return {e["id"] for e in fhir.search_all(f"AuditEvent?{query}", headers)}


def test_each_search_parameter_matches_and_excludes(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, history: dict[str, AuditEntry]
) -> None:
    headers = sign_in(cast["patient"])
    h = {k: e.hash for k, e in history.items()}
    doctor, nurse = cast["doctor"], cast["nurse"]
    today = datetime.now(UTC).date()
    cases = {
        f"agent={doctor.id}": {h["doctor_read"], h["doctor_denied"]},
        f"agent=urn:caresync:user|{nurse.id}": {h["nurse_cancel"], h["nurse_failed"]},
        f"agent={uuid.uuid4()}": set(),
        "agent-name=" + nurse.full_name.split()[-1]: {h["nurse_cancel"], h["nurse_failed"]},
        "agent-role=doctor": {h["doctor_read"], h["doctor_denied"]},
        "agent-role=admin": set(),
        "action=D": {h["nurse_cancel"]},
        "action=C,D": {h["nurse_cancel"], h["nurse_failed"]},
        "subtype=appointment.cancel": {h["nurse_cancel"]},
        "subtype=urn:caresync:audit-action|record.read": {h["doctor_denied"]},
        "subtype=patient.delete": set(),
        "type=110109": {h["nurse_failed"]},
        f"type={fhir_audit.DCM}|110106": set(),
        "outcome=4": {h["doctor_denied"]},
        "outcome=8": {h["nurse_failed"]},
        "outcome=4,8": {h["doctor_denied"], h["nurse_failed"]},
        "outcome=http://hl7.org/fhir/audit-event-outcome|4": {h["doctor_denied"]},
        "action=http://hl7.org/fhir/audit-event-action|C": {h["nurse_failed"]},
        "entity-type=Appointment": {h["nurse_cancel"]},
        "entity-type=http://hl7.org/fhir/resource-types|MedicationRequest": {h["nurse_failed"]},
        "entity-type=DocumentReference": set(),
        f"entity=Appointment/{history['nurse_cancel'].resource_id}": {h["nurse_cancel"]},
        f"entity=Appointment/{uuid.uuid4()}": set(),
        "date=lt2000-01-01": set(),
        f"date=gt{today + timedelta(days=1)}": set(),
    }
    for query, expected in cases.items():
        assert _match(fhir, headers, query) == expected, query
    every = set(h.values())
    # the date window of today holds them all (and the patient's own reviews, left out here)
    assert every <= _match(fhir, headers, f"date={today}")
    assert every <= _match(
        fhir, headers, f"date=ge{today - timedelta(days=1)}&date=lt{today + timedelta(days=2)}"
    )
    assert every <= _match(fhir, headers, f"patient=Patient/{cast['patient'].patient_id}")


@pytest.mark.parametrize(
    "query",
    [
        "outcome=2",
        "action=X",
        "date=yesterday",
        "patient=Practitioner/abc",
        "patient=Patient/not-a-uuid",
        "agent=someone",
        "agent=Location/5f0c6f5e-4a5b-4d67-9c1e-0a3f2b1c9d8e",
        "type=http://loinc.org|110110",
        "outcome=http://loinc.org|0",
        "subtype=http://example.org|patient.read",
        "entity-type=http://example.org|Thing",
        "entity=Appointment",
        "agent=Patient/",
        "flavour=sweet",
        "_count=500",
    ],
)
def test_bad_search_input_is_an_operation_outcome(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, query: str
) -> None:
    body = search(fhir, query, sign_in(cast["patient"]), status=400)
    assert body["issue"][0]["code"] in ("invalid", "not-supported", "processing")
    assert body["issue"][0]["diagnostics"]


def test_paging_newest_first_with_total(fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any) -> None:
    patient_id = cast["patient"].patient_id
    made = [
        record(tx, principal_of(cast["nurse"]), "appointment.read", patient_id=patient_id) for _ in range(5)
    ]
    headers = sign_in(cast["patient"])
    first = search(fhir, "subtype=appointment.read&_count=2", headers)
    assert first["total"] == 5
    assert len(first["entry"]) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith("http")
    assert "_cursor=" in next_url
    assert "_count=2" in next_url

    events = fhir.search_all("AuditEvent?subtype=appointment.read&_count=2", headers)
    assert [e["id"] for e in events] == [e.hash for e in reversed(made)]  # newest first, no repeats
    seqs = [int(chain(e)["seq"]) for e in events]
    assert seqs == sorted(seqs, reverse=True)

    counted = search(fhir, "subtype=appointment.read&_summary=count", headers)
    assert counted["total"] == 5
    assert "entry" not in counted


def test_the_chain_links_up(fhir: FhirApi, cast: Cast, sign_in: SignIn, tx: Any) -> None:
    patient_id = cast["patient"].patient_id
    nurse, doctor = principal_of(cast["nurse"]), principal_of(cast["doctor"])  # both made before the reads
    first = record(tx, nurse, "note.read", patient_id=patient_id)
    second = record(tx, doctor, "note.read", patient_id=patient_id)
    later, earlier = fhir.search_all("AuditEvent?subtype=note.read", sign_in(cast["patient"]))
    assert int(chain(later)["seq"]) == int(chain(earlier)["seq"]) + 1
    assert chain(later)["prev_hash"] == chain(earlier)["hash"] == first.hash
    assert later["id"] == second.hash
    assert audit.entry_hash(second) == second.hash


# --- read ------------------------------------------------------------------------------------------------


def test_read_by_hash(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, history: dict[str, AuditEntry], tx: Any
) -> None:
    entry = history["nurse_cancel"]
    headers = sign_in(cast["patient"])
    response = fhir.get(f"AuditEvent/{entry.hash}", headers)
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["id"] == entry.hash
    assert subtype(event) == "appointment.cancel"
    assert event == fhir_audit.to_fhir(entry)
    by_id = search(fhir, f"_id={entry.hash}", headers)
    assert ids(by_id) == [entry.hash]
    # clinicians with access to the patient may read it; a pharmacist may not
    assert fhir.get(f"AuditEvent/{entry.hash}", sign_in(cast["doctor"])).status_code == 200
    assert fhir.get(f"AuditEvent/{entry.hash}", sign_in(cast["pharmacist"])).status_code == 404
    for bad in (str(entry.seq), "0" * 64, entry.hash.upper(), "x"):
        missing = fhir.get(f"AuditEvent/{bad}", headers)
        assert missing.status_code == 404, bad
        assert missing.json()["issue"][0]["code"] == "not-found"
    reads = [(e.actor_id, e.outcome) for e in entries(tx, "audit.read")]
    assert (cast["patient"].id, "success") in reads
    assert (cast["pharmacist"].id, "denied") in reads


def test_capability_statement_lists_audit_event(fhir: FhirApi) -> None:
    statement = fhir.get("metadata").json()
    (resource,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "AuditEvent"]
    assert {i["code"] for i in resource["interaction"]} == {"read", "search-type"}
    names = {p["name"] for p in resource["searchParam"]}
    assert {
        "patient",
        "date",
        "agent",
        "action",
        "outcome",
        "entity",
        "entity-type",
        "subtype",
        "type",
    } <= names
