"""A deterministic, realistic synthetic dataset for demos, manual testing and benchmarks.

The same seed gives the same organisations, people and relationships. Demo staff have MFA already
enrolled with secrets derived from the seed, so ``caresync demo-code EMAIL`` can print their current code.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.analytics import demo as analytics_demo
from caresync.analytics.risk import demo as risk_demo
from caresync.bloodbank import demo as bloodbank_demo
from caresync.bloodbank.alerts import service as blood_alerts
from caresync.core import audit, crypto, localtime
from caresync.core.auth import Principal, system_principal
from caresync.db import session_factory, transaction, utcnow
from caresync.documents import demo as documents_demo
from caresync.documents.search import service as search
from caresync.engagement.articles.demo_articles import create_demo_articles
from caresync.engagement.streaks.demo import create_demo_streaks
from caresync.identity.credentials import service as credentials
from caresync.identity.credentials.models import EXPIRED, KIND_BY_ROLE, PractitionerCredential
from caresync.identity.models import CareRelationship, Organisation, Patient, User
from caresync.identity.rules import BLOOD_GROUPS, verhoeff_check_digit
from caresync.imaging import demo as imaging_demo
from caresync.prescriptions import demo as prescriptions_demo
from caresync.records import demo as records_demo
from caresync.records.demo_documents import text_pdf
from caresync.scheduling import demo as scheduling_demo

DEMO_PASSWORD = "CareSync-demo-2026"
# a doctor whose licence lapsed and whose renewal waits for review (not listed, no patient access until then)
LAPSED_LICENCE = "doctor3@riverside.demo.caresync.dev"
ISSUING_BODIES = {
    "doctor": "Ordem dos Médicos",
    "nurse": "Ordem dos Enfermeiros",
    "pharmacist": "Ordem dos Farmacêuticos",
}
DEMO_DOMAIN = "demo.caresync.dev"

ORGANISATIONS = (
    # name, kind, address, city, lat, lon
    ("Riverside General Hospital", "hospital", "1 Riverside Avenue", "Lisbon", 38.7369, -9.1427),
    ("St. Clare University Hospital", "hospital", "200 Campus Road", "Porto", 41.1496, -8.6109),
    ("Harbour Family Clinic", "clinic", "14 Harbour Street", "Setubal", 38.5244, -8.8882),
    ("National Blood Centre Lisbon", "blood_bank", "9 Donor Lane", "Lisbon", 38.7500, -9.1600),
    ("Central Pharmacy", "pharmacy", "33 Market Square", "Lisbon", 38.7139, -9.1394),
)
STAFF_PLAN = {
    "hospital": (("admin", 1), ("doctor", 4), ("nurse", 3), ("bloodbank_staff", 1), ("pharmacist", 1)),
    "clinic": (("admin", 1), ("doctor", 2), ("nurse", 2)),
    "blood_bank": (("admin", 1), ("bloodbank_staff", 3), ("doctor", 1)),
    "pharmacy": (("admin", 1), ("pharmacist", 2)),
}
GIVEN = {
    "female": (
        "Ana",
        "Maria",
        "Sofia",
        "Beatriz",
        "Amara",
        "Leila",
        "Chen",
        "Priya",
        "Olga",
        "Fatima",
        "Grace",
        "Ines",
        "Yuki",
        "Zanele",
        "Elena",
        "Nadia",
        "Carmen",
        "Aisha",
        "Hannah",
        "Lucia",
    ),
    "male": (
        "Joao",
        "Pedro",
        "Miguel",
        "Tiago",
        "Kwame",
        "Omar",
        "Wei",
        "Arjun",
        "Ivan",
        "Samuel",
        "David",
        "Rui",
        "Kenji",
        "Thabo",
        "Luca",
        "Yusuf",
        "Diego",
        "Ahmed",
        "Noah",
        "Mateus",
    ),
}
FAMILY = (
    "Silva",
    "Santos",
    "Ferreira",
    "Pereira",
    "Oliveira",
    "Costa",
    "Rodrigues",
    "Martins",
    "Mensah",
    "Haddad",
    "Zhang",
    "Patel",
    "Petrov",
    "Okafor",
    "Nakamura",
    "Dlamini",
    "Rossi",
    "Garcia",
    "Khan",
    "Cohen",
    "Almeida",
    "Sousa",
    "Lopes",
    "Gomes",
    "Ribeiro",
    "Carvalho",
    "Teixeira",
    "Moreira",
)
INSURERS = ("Medis", "Multicare", "AdvanceCare", "SNS (public)", "Allianz Care", "Cigna Global", "")
ALLERGIES = ("penicillin", "peanuts", "latex", "shellfish", "sulfonamides", "ibuprofen", "pollen", "eggs")
# Approximate ABO/Rh distribution in Western Europe.
BLOOD_WEIGHTS = {"O-": 7, "O+": 38, "A-": 6, "A+": 34, "B-": 2, "B+": 9, "AB-": 1, "AB+": 3}
assert set(BLOOD_WEIGHTS) == set(BLOOD_GROUPS)
DEMO_LOGINS = (
    ("admin", "admin@riverside.demo.caresync.dev"),
    ("doctor", "doctor@riverside.demo.caresync.dev"),
    ("nurse", "nurse@riverside.demo.caresync.dev"),
    ("bloodbank_staff", "bloodbank@riverside.demo.caresync.dev"),
    ("pharmacist", "pharmacist@riverside.demo.caresync.dev"),
    ("patient", f"patient@{DEMO_DOMAIN}"),
    ("donor", f"donor@{DEMO_DOMAIN}"),
)


@dataclass(frozen=True)
class DemoResult:
    """What was loaded."""

    organisations: int
    users: int
    patients: int
    encounters: int = 0
    documents: documents_demo.DocumentsDemo = documents_demo.NOTHING
    imaging: imaging_demo.ImagingDemo = imaging_demo.NOTHING


def demo_totp_secret(email: str, seed: int = 7) -> str:
    """The deterministic TOTP secret of a demo staff account."""
    digest = hashlib.sha256(f"caresync-demo:{seed}:{email}".encode()).digest()
    return base64.b32encode(digest[:20]).decode()


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _slug(org_name: str) -> str:
    return org_name.split()[0].lower().replace(".", "")


def load_demo(
    *,
    patients: int = 600,
    seed: int = 7,
    if_empty: bool = False,
    years: int = 3,
    documents: bool = True,
    imaging: bool = True,
) -> DemoResult | None:
    """Load the dataset in one transaction, with ``years`` of clinical activity (encounters) for the
    analytics, then (``documents``) OCR the demo's scanned letters, transcribe its recorded consultation and
    index the featured patients' records for search (tens of seconds: the engines run for real), and
    (``imaging``) train and serve "demonstration only" imaging models and analyse two studies of the demo
    doctor's first patient (seconds). With ``if_empty``, skip if any user exists."""
    with transaction(session_factory()) as session:
        if if_empty and session.execute(select(func.count(User.id))).scalar_one():
            return None
        session.info[search.DEFER_INDEXING] = True  # one indexing pass at the end, not a job per record
        result = _load(session, patients, seed, documents, imaging)
        encounters = analytics_demo.load(session, years=years, seed=seed)
        risk_demo.train_demo_model(session)  # a "demonstration only" risk model, active for everyone
    documents_demo.process(result.documents)  # OCR and transcription run in their own transactions
    imaging_demo.process(result.imaging)  # the analyses run in their own transactions
    return dataclasses.replace(result, encounters=encounters)


def _load(session: Session, n_patients: int, seed: int, documents: bool, imaging: bool) -> DemoResult:
    rng = random.Random(seed)
    password_hash = crypto.hash_password(DEMO_PASSWORD)
    orgs: list[Organisation] = []
    users: list[User] = []
    clinicians: dict[uuid.UUID, list[User]] = {}
    for name, kind, address, city, lat, lon in ORGANISATIONS:
        org = Organisation(
            id=_uuid(rng),
            name=name,
            kind=kind,
            address=address,
            city=city,
            country="PT",
            latitude=lat,
            longitude=lon,
            phone=f"+351 21 {rng.randint(1000000, 9999999)}",
        )
        session.add(org)
        orgs.append(org)
        for role, count in STAFF_PLAN[kind]:
            for i in range(count):
                users.append(_staff(session, rng, org, role, i, password_hash, seed))
                if role in ("doctor", "nurse"):
                    clinicians.setdefault(org.id, []).append(users[-1])
    session.flush()
    _licences(session, users, utcnow().date())
    care_orgs = [o for o in orgs if o.kind in ("hospital", "clinic")]
    now = utcnow()
    links: list[CareRelationship] = []
    patients: list[Patient] = []
    for i in range(n_patients):
        patient = _patient(rng, i, care_orgs)
        session.add(patient)
        patients.append(patient)
        if i == 0:
            users.append(_account(session, rng, f"patient@{DEMO_DOMAIN}", patient, password_hash))
        elif i < 20:
            email = f"{patient.given_name}.{patient.family_name}.{i}@{DEMO_DOMAIN}".lower()
            users.append(_account(session, rng, email, patient, password_hash))
        org = care_orgs[0] if i < 40 else rng.choice(care_orgs)  # the demo doctor has a full list
        team = clinicians[org.id]
        for member in {team[0] if i < 40 else rng.choice(team), rng.choice(team)}:
            links.append(
                CareRelationship(
                    id=_uuid(rng),
                    patient_id=patient.id,
                    practitioner_id=member.id,
                    organisation_id=org.id,
                    reason="demo",
                    created_at=now,
                )
            )
    donor = User(
        id=_uuid(rng),
        email=f"donor@{DEMO_DOMAIN}",
        full_name="Daniel Donor",
        role="donor",
        password_hash=password_hash,
        password_changed_at=now,
    )
    session.add(donor)
    users.append(donor)
    session.flush()
    doctors = {org_id: [u for u in team if u.role == "doctor"] for org_id, team in clinicians.items()}
    appointments = scheduling_demo.load(session, rng, orgs, doctors, patients, links, now)
    session.add_all(links)
    session.flush()
    home = care_orgs[0]  # the demo doctor's and nurse's hospital
    records = records_demo.load(
        session,
        rng,
        patients,
        now,
        doctor=doctors[home.id][0],
        nurse=next(u for u in clinicians[home.id] if u.role == "nurse"),
        other_doctors=[d for org in care_orgs[1:] for d in doctors[org.id]],
    )
    medicines = prescriptions_demo.load(
        session,
        rng,
        patients,
        now,
        doctor=doctors[home.id][0],
        pharmacists=[u for u in users if u.role == "pharmacist"],
    )
    _lapsed_licence_awaiting_review(session, users, now.date())
    articles = create_demo_articles(session, doctors[home.id][0].id)
    for patient in patients:
        if patient.user_id is not None:
            create_demo_streaks(session, patient, localtime.local_date(patient.timezone, now), rng)
    # Last, so that the other demos' random draws stay the same. ``users`` are in creation order: the
    # blood requests go to the first Riverside doctor, the demo doctor.
    blood = bloodbank_demo.load(session, rng, now, organisations=orgs, donor_user=donor, staff=users)
    blood_alerts.scan_all(session, now)  # the blood banks open on their shortage and expiring units
    letters = documents_demo.NOTHING
    if documents:
        letters = documents_demo.load(
            session,
            rng,
            now,
            doctor=doctors[home.id][0],
            nurse=next(u for u in clinicians[home.id] if u.role == "nurse"),
            patients=patients,
        )
    pictures = imaging_demo.NOTHING
    if imaging:  # its own random draws (seeded by ``seed``), after every other demo's
        pictures = imaging_demo.load(session, doctor=doctors[home.id][0], patients=patients, seed=seed)
    audit.record(
        session,
        system_principal("caresync demo"),
        "demo.load",
        detail={
            "organisations": len(orgs),
            "users": len(users),
            "patients": n_patients,
            "appointments": appointments,
            "records": records.records,
            "notes": records.notes,
            "prescriptions": medicines.prescriptions,
            "dispenses": medicines.dispenses,
            "articles": articles,
            "blood_units": blood.units,
            "donors": blood.donors,
            "scans": len(letters.scans),
            "consultations": len(letters.consultations),
        },
    )
    return DemoResult(
        organisations=len(orgs),
        users=len(users),
        patients=n_patients,
        documents=letters,
        imaging=pictures,
    )


def _staff(
    session: Session,
    rng: random.Random,
    org: Organisation,
    role: str,
    index: int,
    password_hash: str,
    seed: int,
) -> User:
    sex = rng.choice(("female", "male"))
    full_name = f"{rng.choice(GIVEN[sex])} {rng.choice(FAMILY)}"
    prefix = {"bloodbank_staff": "bloodbank"}.get(role, role)
    email = f"{prefix}{index or ''}@{_slug(org.name)}.{DEMO_DOMAIN}"
    title = "Dr. " if role == "doctor" else ""
    user = User(
        id=_uuid(rng),
        email=email,
        full_name=title + full_name,
        role=role,
        organisation_id=org.id,
        password_hash=password_hash,
        password_changed_at=utcnow(),
    )
    user.mfa_secret_encrypted = crypto.encrypt_text(demo_totp_secret(email, seed), aad=str(user.id))
    user.mfa_enabled = True
    session.add(user)
    return user


def _licence_pdf(user: User, number: str, issuer: str, issued: date, expires: date) -> bytes:
    return text_pdf(
        f"{issuer}: registration certificate",
        [user.full_name, f"Registration number {number}", f"Valid from {issued} until {expires}"],
    )


def _licences(session: Session, users: list[User], today: date) -> None:
    """Every demo clinician holds an approved licence (five years, issued at some time in the past)."""
    for user in users:
        if user.role not in KIND_BY_ROLE:
            continue
        number = f"{KIND_BY_ROLE[user.role][:3].upper()}-{int(user.id) % 10**6:06d}"
        issuer = ISSUING_BODIES[user.role]
        issued = today - timedelta(days=int(user.id) % 1500 + 30)
        expires = issued + timedelta(days=5 * 365)
        credentials.record_verified(
            session,
            user,
            registration_number=number,
            issuing_body=issuer,
            document=_licence_pdf(user, number, issuer, issued, expires),
            issued_on=issued,
            expires_on=expires,
        )


def _lapsed_licence_awaiting_review(session: Session, users: list[User], today: date) -> None:
    """One doctor's licence lapsed ten days ago and its renewal waits in the hospital administrator's review
    queue: until it is approved they are not listed and see no patients."""
    doctor = next(u for u in users if u.email == LAPSED_LICENCE)
    held = session.execute(
        select(PractitionerCredential).where(PractitionerCredential.user_id == doctor.id)
    ).scalar_one()
    held.issued_on, held.expires_on = today - timedelta(days=5 * 365 + 10), today - timedelta(days=10)
    held.status = EXPIRED
    principal = Principal(
        user_id=doctor.id,
        role=doctor.role,
        full_name=doctor.full_name,
        organisation_id=doctor.organisation_id,
    )
    issuer, issued = ISSUING_BODIES["doctor"], today - timedelta(days=12)
    renewal = credentials.Submission(
        held.registration_number, issuer, issued, issued + timedelta(days=5 * 365)
    )
    pdf = _licence_pdf(doctor, renewal.registration_number, issuer, renewal.issued_on, renewal.expires_on)
    credentials.submit(session, principal, renewal, pdf)


def _account(session: Session, rng: random.Random, email: str, patient: Patient, password_hash: str) -> User:
    user = User(
        id=_uuid(rng),
        email=email,
        full_name=f"{patient.given_name} {patient.family_name}",
        role="patient",
        password_hash=password_hash,
        password_changed_at=utcnow(),
    )
    session.add(user)
    patient.user_id = user.id
    patient.email = email
    return user


def _mobile(rng: random.Random) -> str:
    return f"+351 9{rng.randint(10, 69)} {rng.randint(100, 999)} {rng.randint(100, 999)}"


def _patient(rng: random.Random, index: int, orgs: list[Organisation]) -> Patient:
    sex = rng.choices(("female", "male", "other", "unknown"), weights=(50, 48, 1, 1))[0]
    given = rng.choice(
        GIVEN["female" if sex == "female" else "male" if sex == "male" else rng.choice(("female", "male"))]
    )
    family = rng.choice(FAMILY)
    age_days = int(rng.triangular(0, 95, 45) * 365.25)
    home = rng.choice(orgs)
    body = str(rng.randrange(10**10, 10**11))
    allergies = ", ".join(sorted(rng.sample(ALLERGIES, rng.choice((0, 0, 0, 1, 1, 2)))))
    return Patient(
        id=_uuid(rng),
        health_id=body + verhoeff_check_digit(body),
        given_name=given,
        family_name=family,
        birth_date=date.today() - timedelta(days=age_days),
        sex=sex,
        phone=_mobile(rng),
        email="",
        address_line=f"{rng.randint(1, 250)} {rng.choice(('Rua', 'Avenida', 'Travessa'))} "
        f"{rng.choice(FAMILY)}",
        city=home.city,
        postal_code=f"{rng.randint(1000, 4999)}-{rng.randint(100, 999)}",
        country="PT",
        latitude=round((home.latitude or 0) + rng.uniform(-0.08, 0.08), 5),
        longitude=round((home.longitude or 0) + rng.uniform(-0.08, 0.08), 5),
        insurance_provider=(insurer := rng.choice(INSURERS)),
        insurance_number=f"{rng.randint(10**8, 10**9 - 1)}" if insurer else "",
        emergency_contact_name=f"{rng.choice(GIVEN[rng.choice(('female', 'male'))])} {family}",
        emergency_contact_phone=_mobile(rng),
        emergency_contact_relation=rng.choice(("spouse", "parent", "child", "sibling", "friend")),
        allergies=allergies,
        timezone="Europe/Lisbon",
        blood_group=rng.choices(list(BLOOD_WEIGHTS), weights=list(BLOOD_WEIGHTS.values()))[0]
        if index % 5
        else None,
    )


def print_logins(echo: Callable[[str], None], password: str) -> None:
    """Print the demo sign-ins, one per role."""
    echo("")
    echo(f"Demo sign-ins (password for all: {password}):")
    for role, email in DEMO_LOGINS:
        mfa = (
            "  (MFA: run `caresync demo-code " + email + "` for the current code)"
            if role not in ("patient", "donor")
            else ""
        )
        echo(f"  {role:<16} {email}{mfa}")
    echo("")
