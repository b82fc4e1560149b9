"""FHIR MedicationRequest and MedicationDispense: the code tables, the mapping of prescriptions and
dispenses, every search parameter (a match and a non-match), paging with totals, ``_include``, who sees
what (patient, care team, other patients, pharmacists, scoped app tokens), ``Patient/$everything`` and
the audit entries the reads leave."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction
from caresync.fhir.registry import resource_types
from caresync.fhir.resources import medications as m
from caresync.prescriptions import formulary
from caresync.prescriptions.models import Dispense, Prescription
from caresync.prescriptions.rules import FREQUENCIES, ROUTES, STATUSES
from tests.conftest import Cast, Factory, Person
from tests.fhir.conftest import FhirApi, ids
from tests.prescriptions.conftest import make_prescription
from tests.prescriptions.test_dispensing import code_of, dispense_body
from tests.scheduling.conftest import SchedulingFactory

Headers = dict[str, str]
SignIn = Callable[[Person], Headers]
AppToken = Callable[[Headers, str], Headers]
NOW = datetime.now(UTC).replace(microsecond=0)


def dispense_row(
    prescription: Prescription, pharmacist: Person, at: datetime = NOW, *, quantity: int = 21, lot: str = ""
) -> Dispense:
    """A dispense of the prescription's next fill by ``pharmacist`` at their organisation (committed)."""
    with transaction(session_factory()) as s:
        row = s.get(Prescription, prescription.id)
        assert row is not None
        fill = row.dispense_count + 1
        record = Dispense(
            prescription_id=row.id,
            patient_id=row.patient_id,
            fill_number=fill,
            pharmacist_id=pharmacist.id,
            pharmacy_id=pharmacist.user.organisation_id,
            quantity=quantity,
            days_supply=row.days_supply,
            lot=lot or f"LOT-{fill}",
            dispensed_on=at.date(),
            dispensed_at=at,
        )
        s.add(record)
        row.dispense_count = fill
        s.flush()
    return record


def audit_actions(action: str) -> list[AuditEntry]:
    """Audit entries of ``action``, oldest first."""
    with transaction(session_factory()) as s:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list(s.execute(query).scalars())


def search(fhir: FhirApi, path: str, headers: Headers) -> dict[str, Any]:
    """A search that must succeed; the Bundle."""
    response = fhir.get(path, headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == "searchset"
    return body


# --- code tables ------------------------------------------------------------------------------------------


@pytest.mark.no_db
def test_every_prescription_status_maps_to_a_medicationrequest_status() -> None:
    assert set(m.REQUEST_STATUS) == set(STATUSES)
    assert set(m.REQUEST_STATUS.values()) <= m.FHIR_REQUEST_STATUSES
    assert len(set(m.REQUEST_STATUS.values())) == len(m.REQUEST_STATUS)  # no two statuses collapse
    assert m.STATUS_REASON_STATUSES <= m.FHIR_REQUEST_STATUSES


@pytest.mark.no_db
def test_every_dispense_state_maps_to_a_medicationdispense_status() -> None:
    assert set(m.DISPENSE_STATUS) == set(m.DISPENSE_STATES)
    assert set(m.DISPENSE_STATUS.values()) <= m.FHIR_DISPENSE_STATUSES


@pytest.mark.no_db
def test_every_route_has_a_snomed_route_code() -> None:
    assert set(m.ROUTE_CODES) == set(ROUTES)
    codes = [code for code, _display in m.ROUTE_CODES.values()]
    assert len(set(codes)) == len(codes)
    assert all(code.isdigit() for code in codes)  # SNOMED CT concept ids


@pytest.mark.no_db
def test_every_frequency_has_a_timing_with_a_valid_abbreviation() -> None:
    assert set(m.TIMINGS) == set(FREQUENCIES)
    for frequency, repeat in m.TIMINGS.items():
        assert repeat.code is None or repeat.code in m.TIMING_ABBREVIATIONS, frequency
        if frequency == "PRN":
            assert repeat.frequency == 0
        else:
            assert repeat.frequency >= 1, frequency
            assert repeat.period >= 1, frequency
            assert repeat.unit in ("h", "d"), frequency
    # doses per day agree with the domain's default dose times where the schedule is daily
    for frequency, (_label, times) in FREQUENCIES.items():
        repeat = m.TIMINGS[frequency]
        if repeat.unit == "d":
            assert repeat.frequency == len(times), frequency


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("dose", "expected"),
    [
        ("1 capsule", {"value": 1, "unit": "capsule"}),
        ("2.5 mL", {"value": 2.5, "unit": "mL", "system": m.UCUM, "code": "mL"}),
        ("500 mg", {"value": 500, "unit": "mg", "system": m.UCUM, "code": "mg"}),
        ("two puffs", None),
        ("3", None),
    ],
)
def test_dose_quantity(dose: str, expected: dict[str, Any] | None) -> None:
    assert m.dose_quantity(dose) == expected


# --- MedicationRequest: mapping and read ------------------------------------------------------------------


def test_read_maps_a_prescription(fhir: FhirApi, cast: Cast, sign_in: SignIn, make: Factory) -> None:
    doctor = cast["doctor"]
    profile = SchedulingFactory(make).practitioner(person=doctor).practitioner
    p = make_prescription(doctor, cast["patient"], status_reason="Warnings overridden: tolerated before")
    response = fhir.get(f"MedicationRequest/{p.id}", sign_in(doctor))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "MedicationRequest"
    assert body["id"] == str(p.id)
    assert body["status"] == "active"
    assert body["intent"] == "order"
    assert body["category"][0]["coding"][0] == {
        "system": m.CATEGORY_SYSTEM,
        "code": "community",
        "display": "Community",
    }
    assert body["medicationCodeableConcept"] == {
        "coding": [{"system": m.FORMULARY_SYSTEM, "code": "308191", "display": "Amoxicillin 500 mg capsule"}],
        "text": "Amoxicillin 500 mg capsule",
    }
    assert body["subject"]["reference"] == f"Patient/{cast['patient'].patient_id}"
    # the prescriber's directory profile
    assert body["requester"] == {"reference": f"Practitioner/{profile.id}", "display": doctor.full_name}
    assert body["authoredOn"].startswith(p.created_at.date().isoformat())
    assert "statusReason" not in body
    assert body["note"] == [{"text": "Warnings overridden: tolerated before"}]
    dosage = body["dosageInstruction"][0]
    assert dosage["text"] == "1 capsule by mouth, three times a day, for 7 days"
    assert dosage["patientInstruction"] == "Take with water, with or without food."
    assert dosage["route"]["coding"][0] == {"system": m.SNOMED, "code": "26643006", "display": "Oral route"}
    assert dosage["timing"]["code"]["coding"] == [{"system": m.TIMING_SYSTEM, "code": "TID"}]
    repeat = dosage["timing"]["repeat"]
    assert (repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (3, 1, "d")
    assert repeat["timeOfDay"] == ["08:00:00", "14:00:00", "20:00:00"]
    assert repeat["boundsDuration"] == {"value": 7, "unit": "days", "system": m.UCUM, "code": "d"}
    assert dosage["doseAndRate"] == [{"doseQuantity": {"value": 1, "unit": "capsule"}}]
    assert dosage["asNeededBoolean"] is False
    request = body["dispenseRequest"]
    assert request["numberOfRepeatsAllowed"] == 1
    assert request["quantity"] == {"value": 21, "unit": "capsule"}
    assert request["expectedSupplyDuration"]["value"] == 7
    assert request["validityPeriod"] == {"start": p.start_date.isoformat(), "end": p.valid_until.isoformat()}
    assert body["meta"]["lastUpdated"]


def test_status_reason_prn_units_and_renewal(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    old = make_prescription(
        doctor, patient, status="stopped", status_reason="Rash on day 2", dispense_count=1
    )
    salbutamol = formulary.get("745679")
    assert salbutamol is not None
    renewal = make_prescription(
        doctor,
        patient,
        renewal_of_id=old.id,
        medication_code=salbutamol.code,
        medication_name=salbutamol.name,
        strength=salbutamol.strength,
        form=salbutamol.form,
        dose="2 puff",
        route="inhalation",
        frequency="PRN",
        refills=3,
    )
    headers = sign_in(doctor)
    stopped = fhir.get(f"MedicationRequest/{old.id}", headers).json()
    assert stopped["requester"] == {"display": doctor.full_name}  # no directory profile: named only
    assert stopped["status"] == "stopped"
    assert stopped["statusReason"] == {"text": "Rash on day 2"}
    assert "note" not in stopped
    body = fhir.get(f"MedicationRequest/{renewal.id}", headers).json()
    assert body["priorPrescription"] == {"reference": f"MedicationRequest/{old.id}"}
    dosage = body["dosageInstruction"][0]
    assert dosage["asNeededBoolean"] is True
    assert dosage["route"]["coding"][0]["code"] == "447694001"
    assert dosage["timing"]["code"] == {"text": "As needed"}
    assert "frequency" not in dosage["timing"]["repeat"]
    assert "timeOfDay" not in dosage["timing"]["repeat"]
    assert body["dispenseRequest"]["quantity"]["unit"] == "puff"  # the formulary's dose unit
    assert body["dispenseRequest"]["numberOfRepeatsAllowed"] == 3


def test_read_permissions(fhir: FhirApi, cast: Cast, sign_in: SignIn, make: Factory) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    own = make_prescription(doctor, patient)
    draft = make_prescription(doctor, patient, status="draft")
    others = make_prescription(doctor, cast.other_patient)
    patient_headers = sign_in(patient)
    assert fhir.get(f"MedicationRequest/{own.id}", patient_headers).status_code == 200
    hidden = fhir.get(f"MedicationRequest/{draft.id}", patient_headers)
    assert hidden.status_code == 404  # patients never see drafts
    assert hidden.json()["issue"][0]["code"] == "not-found"
    assert fhir.get(f"MedicationRequest/{draft.id}", sign_in(doctor)).json()["status"] == "draft"
    assert fhir.get(f"MedicationRequest/{others.id}", patient_headers).status_code == 404
    assert fhir.get(f"MedicationRequest/{others.id}", sign_in(doctor)).status_code == 404  # no care
    assert fhir.get(f"MedicationRequest/{uuid.uuid4()}", patient_headers).status_code == 404
    assert fhir.get("MedicationRequest/not-a-uuid", patient_headers).status_code == 404
    stranger = make.staff("doctor", make.org())
    assert fhir.get(f"MedicationRequest/{own.id}", sign_in(stranger)).status_code == 404
    assert fhir.get(f"MedicationRequest/{own.id}", sign_in(cast["pharmacist"])).status_code == 404
    assert fhir.get(f"MedicationRequest/{own.id}").status_code == 401


def test_read_is_audited(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    p = make_prescription(cast["doctor"], cast["patient"])
    assert fhir.get(f"MedicationRequest/{p.id}", sign_in(cast["patient"])).status_code == 200
    entries = [e for e in audit_actions("prescription.read") if e.resource_id == str(p.id)]
    assert len(entries) == 1
    assert entries[0].outcome == "success"
    assert entries[0].resource_type == "MedicationRequest"


# --- MedicationRequest: search ----------------------------------------------------------------------------


def test_search_by_patient_defaults_to_a_patients_own(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    mine = make_prescription(doctor, patient)
    make_prescription(doctor, patient, status="draft")
    make_prescription(doctor, cast.other_patient)
    headers = sign_in(patient)
    own = search(fhir, "MedicationRequest", headers)
    assert ids(own) == [str(mine.id)]
    assert own["total"] == 1
    explicit = search(fhir, f"MedicationRequest?patient=Patient/{patient.patient_id}", headers)
    assert ids(explicit) == [str(mine.id)]
    other = search(fhir, f"MedicationRequest?patient={cast.other_patient.id}", headers)
    assert ids(other) == []
    assert other["total"] == 0
    both = search(
        fhir, f"MedicationRequest?patient={patient.patient_id}&subject={cast.other_patient.id}", headers
    )
    assert ids(both) == []
    doctor_view = search(fhir, f"MedicationRequest?subject=Patient/{patient.patient_id}", sign_in(doctor))
    assert doctor_view["total"] == 2  # the care team sees the draft


def test_clinicians_must_say_whose(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    response = fhir.get("MedicationRequest", sign_in(cast["doctor"]))
    assert response.status_code == 400
    assert "patient=" in response.json()["issue"][0]["diagnostics"]
    bad = fhir.get("MedicationRequest?patient=Practitioner/123", sign_in(cast["doctor"]))
    assert bad.status_code == 400


def test_search_by_status(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    active = make_prescription(doctor, patient)
    on_hold = make_prescription(doctor, patient, status="on-hold", status_reason="Surgery")
    headers = sign_in(doctor)
    base = f"MedicationRequest?patient={patient.patient_id}"
    assert ids(search(fhir, f"{base}&status=active", headers)) == [str(active.id)]
    assert ids(search(fhir, f"{base}&status=on-hold", headers)) == [str(on_hold.id)]
    assert set(ids(search(fhir, f"{base}&status=active,on-hold", headers))) == {
        str(active.id),
        str(on_hold.id),
    }
    assert ids(search(fhir, f"{base}&status=stopped", headers)) == []
    assert ids(search(fhir, f"{base}&status=entered-in-error", headers)) == []
    modified = fhir.get(f"{base}&status:not=active", headers)  # never silently ignored
    assert modified.status_code == 400
    assert modified.json()["issue"][0]["code"] == "not-supported"
    assert (
        fhir.get(f"MedicationDispense?{base.split('?')[1]}&status:not=completed", headers).status_code == 400
    )
    wrong = fhir.get(f"{base}&status=open", headers)
    assert wrong.status_code == 400
    assert wrong.json()["issue"][0]["code"] == "invalid"


def test_search_by_authoredon_requester_and_code(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, make: Factory
) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    sched = SchedulingFactory(make)
    colleague = make.staff("doctor")
    make.care(colleague, patient)
    doctor_profile = sched.practitioner(person=doctor).practitioner
    colleague_profile = sched.practitioner(person=colleague).practitioner
    old = make_prescription(doctor, patient, created_at=datetime(2024, 3, 10, 9, tzinfo=UTC))
    new = make_prescription(
        colleague,
        patient,
        created_at=datetime(2025, 1, 5, 9, tzinfo=UTC),
        medication_code="197361",
        medication_name="Amlodipine",
        strength="5 mg",
        form="tablet",
    )
    headers = sign_in(doctor)
    base = f"MedicationRequest?patient={patient.patient_id}"

    def found(params: str) -> list[str]:
        return ids(search(fhir, f"{base}&{params}", headers))

    assert found("authoredon=2024-03-10") == [str(old.id)]
    assert found("authoredon=2024") == [str(old.id)]
    assert found("authoredon=ge2024-06-01") == [str(new.id)]
    assert found("authoredon=lt2024-06-01") == [str(old.id)]
    assert found("authoredon=ge2024-01-01&authoredon=lt2026-01-01") == [str(new.id), str(old.id)]
    assert found("authoredon=2023") == []
    assert fhir.get(f"{base}&authoredon=yesterday", headers).status_code == 400
    assert found(f"requester=Practitioner/{colleague_profile.id}") == [str(new.id)]
    assert found(f"requester={doctor_profile.id}") == [str(old.id)]
    assert found(f"requester=Practitioner/{uuid.uuid4()}") == []
    assert found(f"requester=Practitioner/{doctor.id}") == []  # a user id is not a Practitioner id
    assert found("code=197361") == [str(new.id)]
    assert found(f"code={m.FORMULARY_SYSTEM}|308191") == [str(old.id)]
    assert found("code=308191,197361") == [str(new.id), str(old.id)]
    assert found("code=http://www.nlm.nih.gov/research/umls/rxnorm|308191") == []
    assert found("code=999999") == []


def test_paging_with_total_and_next_links(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    made = [make_prescription(doctor, patient, created_at=NOW - timedelta(hours=n)).id for n in range(5)]
    headers = sign_in(patient)
    first = search(fhir, "MedicationRequest?_count=2", headers)
    assert first["total"] == 5
    assert len(ids(first)) == 2
    next_link = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_link.startswith("http")
    assert "_cursor=" in next_link
    everything = fhir.search_all("MedicationRequest?_count=2", headers)
    assert [r["id"] for r in everything] == [str(i) for i in made]  # newest first, no repeats
    counted = search(fhir, "MedicationRequest?_summary=count", headers)
    assert counted["total"] == 5
    assert "entry" not in counted


def test_include_patient_and_requester(fhir: FhirApi, cast: Cast, sign_in: SignIn, make: Factory) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    profile = SchedulingFactory(make).practitioner(person=doctor).practitioner
    p = make_prescription(doctor, patient)
    headers = sign_in(patient)
    bundle = search(fhir, "MedicationRequest?_include=MedicationRequest:patient", headers)
    assert ids(bundle) == [str(p.id)]
    included = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [(r["resourceType"], r["id"]) for r in included] == [("Patient", str(patient.patient_id))]
    with_requester = search(fhir, "MedicationRequest?_include=MedicationRequest:requester", headers)
    practitioners = [e["resource"] for e in with_requester["entry"] if e["search"]["mode"] == "include"]
    assert resource_types()["Practitioner"].read is not None
    assert [(r["resourceType"], r["id"]) for r in practitioners] == [("Practitioner", str(profile.id))]
    refused = fhir.get("MedicationRequest?_include=MedicationRequest:medication", headers)
    assert refused.status_code == 400


def test_app_tokens(fhir: FhirApi, cast: Cast, sign_in: SignIn, app_token: AppToken) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    mine = make_prescription(doctor, patient)
    others = make_prescription(doctor, cast.other_patient)
    app = app_token(sign_in(patient), "patient/*.read")
    assert ids(search(fhir, "MedicationRequest", app)) == [str(mine.id)]
    assert fhir.get(f"MedicationRequest/{others.id}", app).status_code == 404
    narrow = app_token(sign_in(patient), "patient/Patient.read")
    denied = fhir.get("MedicationRequest", narrow)
    assert denied.status_code == 403
    assert denied.json()["issue"][0]["code"] == "forbidden"
    assert fhir.get(f"MedicationDispense?patient={patient.patient_id}", narrow).status_code == 403
    staff_app = app_token(sign_in(doctor), "user/MedicationRequest.read")
    assert ids(search(fhir, f"MedicationRequest?patient={patient.patient_id}", staff_app)) == [str(mine.id)]


# --- MedicationDispense -----------------------------------------------------------------------------------


def test_dispense_mapping(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    doctor, patient, pharmacist = cast["doctor"], cast["patient"], cast["pharmacist"]
    p = make_prescription(doctor, patient)
    first = dispense_row(p, pharmacist, NOW - timedelta(days=8), lot="A-1")
    refill = dispense_row(p, pharmacist, NOW, quantity=14)
    headers = sign_in(patient)
    body = fhir.get(f"MedicationDispense/{first.id}", headers).json()
    assert body["status"] == "completed"
    assert body["contained"][0]["resourceType"] == "Medication"
    assert body["contained"][0]["batch"] == {"lotNumber": "A-1"}
    assert body["contained"][0]["code"]["coding"][0]["code"] == "308191"
    assert body["medicationReference"]["reference"] == "#medication"
    assert body["subject"]["reference"] == f"Patient/{patient.patient_id}"
    assert body["performer"][0]["actor"] == {"display": pharmacist.full_name}  # no directory profile
    assert body["performer"][1]["actor"]["reference"] == f"Organization/{pharmacist.user.organisation_id}"
    assert body["authorizingPrescription"][0]["reference"] == f"MedicationRequest/{p.id}"
    assert body["type"]["coding"][0] == {"system": m.ACT_CODE, "code": "FF", "display": "First Fill"}
    assert body["quantity"] == {"value": 21, "unit": "capsule"}
    assert body["daysSupply"]["value"] == 7
    assert body["whenHandedOver"].startswith((NOW - timedelta(days=8)).date().isoformat())
    assert body["dosageInstruction"][0]["timing"]["code"]["coding"][0]["code"] == "TID"
    second = fhir.get(f"MedicationDispense/{refill.id}", headers).json()
    assert second["type"]["coding"][0]["code"] == "RF"
    assert second["quantity"]["value"] == 14
    entries = [e for e in audit_actions("dispense.read") if e.resource_id == str(first.id)]
    assert len(entries) == 1
    assert entries[0].resource_type == "MedicationDispense"


def test_dispense_read_permissions(fhir: FhirApi, cast: Cast, sign_in: SignIn, make: Factory) -> None:
    doctor, patient, pharmacist = cast["doctor"], cast["patient"], cast["pharmacist"]
    mine = dispense_row(make_prescription(doctor, patient), pharmacist)
    others = dispense_row(make_prescription(doctor, cast.other_patient), pharmacist)
    assert fhir.get(f"MedicationDispense/{mine.id}", sign_in(doctor)).status_code == 200  # care team
    assert fhir.get(f"MedicationDispense/{others.id}", sign_in(patient)).status_code == 404
    assert fhir.get(f"MedicationDispense/{others.id}", sign_in(doctor)).status_code == 404  # no care
    assert fhir.get(f"MedicationDispense/{uuid.uuid4()}", sign_in(patient)).status_code == 404
    # pharmacists: their pharmacy's dispenses, whoever the patient; another pharmacy's are hidden
    assert fhir.get(f"MedicationDispense/{others.id}", sign_in(pharmacist)).status_code == 200
    elsewhere = make.staff("pharmacist", make.org("Corner Pharmacy", kind="pharmacy"))
    assert fhir.get(f"MedicationDispense/{mine.id}", sign_in(elsewhere)).status_code == 404
    denied = [e for e in audit_actions("dispense.read") if e.outcome == "denied"]
    assert len(denied) >= 3


def test_dispense_search(fhir: FhirApi, cast: Cast, sign_in: SignIn, make: Factory) -> None:
    doctor, patient, pharmacist = cast["doctor"], cast["patient"], cast["pharmacist"]
    first_rx = make_prescription(doctor, patient, refills=2)
    second_rx = make_prescription(doctor, patient, medication_code="197361", medication_name="Amlodipine")
    old = dispense_row(first_rx, pharmacist, datetime(2025, 2, 1, 10, tzinfo=UTC))
    new = dispense_row(first_rx, pharmacist, datetime(2025, 3, 1, 10, tzinfo=UTC))
    other_rx = dispense_row(second_rx, pharmacist, datetime(2025, 2, 15, 10, tzinfo=UTC))
    strangers = dispense_row(make_prescription(doctor, cast.other_patient), pharmacist)
    headers = sign_in(patient)

    def found(params: str = "", who: Headers = headers) -> list[str]:
        return ids(search(fhir, f"MedicationDispense?{params}", who))

    assert found() == [str(new.id), str(other_rx.id), str(old.id)]
    assert search(fhir, "MedicationDispense", headers)["total"] == 3
    assert found(f"patient=Patient/{patient.patient_id}") == [str(new.id), str(other_rx.id), str(old.id)]
    assert found(f"patient={cast.other_patient.id}") == []
    assert found(f"prescription=MedicationRequest/{second_rx.id}") == [str(other_rx.id)]
    assert found(f"prescription={uuid.uuid4()}") == []
    assert found("status=completed") == [str(new.id), str(other_rx.id), str(old.id)]
    assert found("status=in-progress,cancelled") == []
    assert fhir.get("MedicationDispense?status=dispensed", headers).status_code == 400
    assert found("whenhandedover=2025-03") == [str(new.id)]
    assert found("whenhandedover=lt2025-02-15") == [str(old.id)]
    assert found("whenhandedover=ge2025-02-15&whenhandedover=le2025-02-15") == [str(other_rx.id)]
    assert found("whenhandedover=2024") == []
    doctor_headers = sign_in(doctor)
    assert found(f"patient={patient.patient_id}", doctor_headers) == [
        str(new.id),
        str(other_rx.id),
        str(old.id),
    ]
    assert fhir.get("MedicationDispense", doctor_headers).status_code == 400  # say whose
    # the pharmacist sees the pharmacy's dispenses, for every patient, and may narrow them
    pharmacy = sign_in(pharmacist)
    assert set(found(who=pharmacy)) == {str(new.id), str(other_rx.id), str(old.id), str(strangers.id)}
    assert found(f"patient={cast.other_patient.id}", pharmacy) == [str(strangers.id)]
    elsewhere = make.staff("pharmacist", make.org("Corner Pharmacy", kind="pharmacy"))
    assert found(who=sign_in(elsewhere)) == []


def test_dispense_paging_and_includes(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    doctor, patient, pharmacist = cast["doctor"], cast["patient"], cast["pharmacist"]
    p = make_prescription(doctor, patient, refills=4)
    made = [dispense_row(p, pharmacist, NOW - timedelta(days=30 - n)).id for n in range(5)]
    headers = sign_in(patient)
    page = search(fhir, "MedicationDispense?_count=2", headers)
    assert page["total"] == 5
    assert len(ids(page)) == 2
    assert [r["id"] for r in fhir.search_all("MedicationDispense?_count=2", headers)] == [
        str(i) for i in reversed(made)
    ]
    bundle = search(
        fhir,
        "MedicationDispense?_count=3&_include=MedicationDispense:prescription&_include=MedicationDispense:patient",
        headers,
    )
    included = {
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in bundle["entry"]
        if e["search"]["mode"] == "include"
    }
    assert included == {("MedicationRequest", str(p.id)), ("Patient", str(patient.patient_id))}
    # a pharmacist's includes leave out what they may not read (the prescription, the patient)
    pharmacy = search(
        fhir, "MedicationDispense?_include=MedicationDispense:prescription", sign_in(pharmacist)
    )
    assert len(ids(pharmacy)) == 5
    assert [e for e in pharmacy["entry"] if e["search"]["mode"] == "include"] == []


def test_a_real_dispense_through_the_qr_flow(
    fhir: FhirApi, client: TestClient, cast: Cast, sign_in: SignIn
) -> None:
    patient, pharmacist = cast["patient"], cast["pharmacist"]
    p = make_prescription(cast["doctor"], patient)
    code = code_of(client, sign_in(patient), p.id)["code"]
    done = client.post("/api/v1/pharmacy/dispenses", json=dispense_body(code), headers=sign_in(pharmacist))
    assert done.status_code == 201, done.text
    bundle = search(fhir, f"MedicationDispense?prescription={p.id}", sign_in(patient))
    assert len(ids(bundle)) == 1
    dispense = bundle["entry"][0]["resource"]
    assert dispense["contained"][0]["batch"]["lotNumber"] == "LOT-4711"
    assert dispense["performer"][0]["actor"]["display"] == pharmacist.full_name
    assert dispense["type"]["coding"][0]["code"] == "FF"


# --- Patient/$everything ----------------------------------------------------------------------------------


def test_everything_lists_prescriptions_and_dispenses(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    doctor, patient, pharmacist = cast["doctor"], cast["patient"], cast["pharmacist"]
    active = make_prescription(doctor, patient)
    draft = make_prescription(doctor, patient, status="draft")
    make_prescription(doctor, cast.other_patient)
    dispensed = dispense_row(active, pharmacist)

    def of_type(headers: Headers, resource_type: str) -> set[str]:
        response = fhir.get(f"Patient/{patient.patient_id}/$everything", headers)
        assert response.status_code == 200, response.text
        return {
            e["resource"]["id"]
            for e in response.json()["entry"]
            if e["resource"]["resourceType"] == resource_type
        }

    assert of_type(sign_in(patient), "MedicationRequest") == {str(active.id)}  # no draft
    assert of_type(sign_in(patient), "MedicationDispense") == {str(dispensed.id)}
    assert of_type(sign_in(doctor), "MedicationRequest") == {str(active.id), str(draft.id)}
    assert len(audit_actions("prescription.export")) == 3
    assert len(audit_actions("dispense.export")) == 3


def test_everything_for_many_records_stays_few_queries(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    from sqlalchemy import event

    from caresync.db import engine_for

    doctor, patient, pharmacist = cast["doctor"], cast["patient"], cast["pharmacist"]
    for _ in range(3):
        p = make_prescription(doctor, patient, refills=5)
        for n in range(4):
            dispense_row(p, pharmacist, NOW - timedelta(days=n))
    statements: list[str] = []
    from caresync import config

    engine = engine_for(config.get_settings().resolved_database_url)

    def count(*_args: Any) -> None:
        statements.append("x")

    headers = sign_in(patient)
    event.listen(engine, "before_cursor_execute", count)
    try:
        body = fhir.get(f"Patient/{patient.patient_id}/$everything", headers).json()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    kinds = [e["resource"]["resourceType"] for e in body["entry"]]
    assert kinds.count("MedicationRequest") == 3
    assert kinds.count("MedicationDispense") == 12
    few = len(statements)
    # more records must not mean more queries
    for _ in range(3):
        p = make_prescription(doctor, patient, refills=5)
        for n in range(4):
            dispense_row(p, pharmacist, NOW - timedelta(days=n))
    statements.clear()
    event.listen(engine, "before_cursor_execute", count)
    try:
        more = fhir.get(f"Patient/{patient.patient_id}/$everything", headers).json()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [e["resource"]["resourceType"] for e in more["entry"]].count("MedicationDispense") == 24
    assert len(statements) == few


def test_capability_statement_lists_both(fhir: FhirApi) -> None:
    statement = fhir.get("metadata").json()
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    request = by_type["MedicationRequest"]
    assert {p["name"] for p in request["searchParam"]} >= {
        "patient",
        "status",
        "authoredon",
        "requester",
        "code",
    }
    assert "MedicationRequest:patient" in request["searchInclude"]
    dispense = by_type["MedicationDispense"]
    assert {p["name"] for p in dispense["searchParam"]} >= {
        "patient",
        "prescription",
        "status",
        "whenhandedover",
    }
