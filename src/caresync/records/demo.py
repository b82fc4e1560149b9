"""Health-record demo data: years of history for the demo patients, and the care team's notes, tasks and
messages around them.

Each patient's history fits their age and sex and comes from the demo's seeded random generator: diagnoses
(ICD-10-CM codes in the text), allergies (from the profile), medications, immunisations (the Portuguese
vaccination programme), vital signs whose measurements trend as conditions are treated, lab reports as real
PDFs (values, units, reference ranges, flags), ECG strips as PNG images, procedures, discharge summaries
after hospital stays and, for some patients, mental-health records. Patients with a portal account and the
first :data:`FULL_HISTORIES` patients get 2-6 years; the others a summary (known problems, allergies and
their latest visit), which keeps ``caresync demo`` quick.

Records go through :func:`caresync.records.service.upload` like any upload (stored encrypted, manifest
signed by the uploading clinician or patient, audited); recent visits are linked to the patient's past
appointments. The documents come from :mod:`caresync.records.demo_documents` and the clinical content
from :mod:`caresync.records.demo_catalogue`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.core.auth import Principal
from caresync.identity.models import CareRelationship, Organisation, Patient, User
from caresync.records import consent, service
from caresync.records.demo_catalogue import (
    ADMISSIONS,
    ADULT_CHECK_UP,
    ALLERGY_DETAILS,
    ANALYTES,
    CHILD_CHECK_UP,
    CHILD_VACCINES,
    CONDITIONS,
    PANELS,
    TD_BOOSTER_AGES,
    Condition,
    Medication,
)
from caresync.records.demo_documents import Line, ecg_strip, text_pdf
from caresync.records.models import CareTask, ClinicalNote, Message, MessageThread, ThreadRead
from caresync.scheduling.models import Appointment, Practitioner
from caresync.scheduling.rules import AppointmentStatus

FULL_HISTORIES = 30  # patients (besides those with a portal account) who get several years of history
TIMEZONE = ZoneInfo("Europe/Lisbon")

# --- a patient's history, planned before anything is stored -----------------------------------------------


@dataclass
class Problem:
    """A condition in one patient's history."""

    condition: Condition
    onset: date  # when it was diagnosed (before the history starts for known problems)
    known: bool  # diagnosed before the history starts
    escalated: bool = False  # a second medicine was added


@dataclass
class Planned:
    """A record to upload."""

    category: str
    title: str
    day: date
    data: bytes
    uploader: User
    appointment_id: uuid.UUID | None = None
    measurements: dict[str, float] | None = None
    client: str = "demo"
    corrects: Planned | None = None


@dataclass
class PlannedNote:
    """A SOAP note to add."""

    author: User
    at: datetime
    subjective: str
    objective: str
    assessment: str
    plan: str
    category: str = "note"
    appointment_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Visit:
    """A consultation: the day, who saw the patient, and the appointment when it was booked in CareSync."""

    day: date
    doctor: User
    nurse: User | None
    organisation: Organisation
    appointment_id: uuid.UUID | None = None
    reason: str = ""


@dataclass(frozen=True)
class PastAppointment:
    """A fulfilled appointment of the patient with a doctor."""

    id: uuid.UUID
    start: datetime
    doctor_id: uuid.UUID
    reason: str


@dataclass
class Chart:
    """Everything known about one patient while planning their history."""

    patient: Patient
    doctor: User  # their usual doctor
    nurse: User | None  # a nurse of the same team, if any
    organisation: Organisation
    account: User | None
    today: date
    rng: random.Random
    problems: list[Problem] = field(default_factory=list)
    baseline: dict[str, float] = field(default_factory=dict)
    records: list[Planned] = field(default_factory=list)
    notes: list[PlannedNote] = field(default_factory=list)

    @property
    def sex(self) -> str:
        """The sex used for reference ranges."""
        return "male" if self.patient.sex == "male" else "female"

    @property
    def name(self) -> str:
        """The patient's full name."""
        return f"{self.patient.given_name} {self.patient.family_name}"

    @property
    def penicillin_allergy(self) -> bool:
        """Whether penicillins must be avoided."""
        return "penicillin" in self.patient.allergies

    def age_on(self, day: date) -> float:
        """Age in years on ``day``."""
        return (day - self.patient.birth_date).days / 365.25

    def active(self, day: date) -> list[Problem]:
        """Long-term problems diagnosed by ``day``."""
        return [p for p in self.problems if not p.condition.acute and p.onset <= day]

    def progress(self, problem: Problem, day: date) -> float:
        """How far treatment has brought the problem under control on ``day`` (0 untreated, 1 controlled)."""
        return min(1.0, max(0.0, (day - problem.onset).days / 240))

    def add(
        self,
        category: str,
        title: str,
        day: date,
        data: bytes | str,
        uploader: User,
        *,
        appointment_id: uuid.UUID | None = None,
        measurements: dict[str, float] | None = None,
        client: str = "demo",
        corrects: Planned | None = None,
    ) -> Planned:
        """Plan a record."""
        item = Planned(
            category,
            title[:200],
            day,
            data.encode() if isinstance(data, str) else data,
            uploader,
            appointment_id,
            measurements,
            client,
            corrects,
        )
        self.records.append(item)
        return item


def _weekday_before(day: date) -> date:
    """``day``, or the Friday before it when it falls on a weekend."""
    return day - timedelta(days=max(0, day.weekday() - 4))


def _years_after(day: date, years: float) -> date:
    return day + timedelta(days=round(years * 365.25))


def _at(day: date, hour: int, minute: int) -> datetime:
    """A local clock time on ``day`` in Lisbon, as an aware datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=TIMEZONE)


def _choose_problems(chart: Chart, visits: list[Visit], full: bool) -> None:
    """Draw the patient's conditions (fitting age and sex) and date them: known before the history starts,
    or diagnosed at one of the visits (for long histories)."""
    rng, patient = chart.rng, chart.patient
    age_now = int(chart.age_on(chart.today))
    first = visits[0].day
    for condition in CONDITIONS:
        if rng.random() >= condition.chance_for(age_now, patient.sex):
            continue
        youngest = _years_after(patient.birth_date, condition.ages[0])
        eligible = [v.day for v in visits if v.day >= youngest and chart.age_on(v.day) <= condition.ages[1]]
        if not eligible:
            continue
        if condition.acute:
            chart.problems.append(Problem(condition, rng.choice(eligible), known=False))
        elif full and len(visits) > 2 and rng.random() < 0.4:
            chart.problems.append(Problem(condition, rng.choice(eligible[1:] or eligible), known=False))
        else:
            onset = max(first - timedelta(days=rng.randint(200, 8 * 365)), youngest)
            chart.problems.append(Problem(condition, min(onset, first), known=onset < first))


def _baseline(chart: Chart) -> None:
    """Per-patient set points: lab values inside the reference range, body size, resting signs."""
    rng = chart.rng
    for code, analyte in ANALYTES.items():
        low, high = analyte.reference(chart.sex)
        if low is not None and high is not None:
            chart.baseline[code] = low + (high - low) * rng.uniform(0.25, 0.7)
        elif high is not None:
            chart.baseline[code] = high * rng.uniform(0.5, 0.9)
        elif low is not None:
            chart.baseline[code] = low * rng.uniform(1.15, 1.5)
    male = chart.sex == "male"
    chart.baseline |= {
        "height": rng.gauss(1.75 if male else 1.62, 0.07),
        "bmi": rng.uniform(21, 31),
        "drift": rng.uniform(-0.4, 0.6),  # kg a year
        "child_size": rng.uniform(0.9, 1.12),
        "heart_rate": rng.gauss(0, 5),
        "systolic": rng.gauss(0, 6),
        "diastolic": rng.gauss(0, 3),
    }


def _offsets(chart: Chart, day: date, table: str) -> dict[str, float]:
    """What the patient's conditions add to (vital signs) or set (lab values) on ``day``."""
    out: dict[str, float] = {}
    for problem in chart.problems:
        if problem.onset > day or (problem.condition.acute and problem.onset != day):
            continue
        progress = 0.0 if problem.condition.acute else chart.progress(problem, day)
        for code, untreated, treated in getattr(problem.condition, table):
            value = untreated + (treated - untreated) * progress
            out[code] = out.get(code, 0.0) + value if table == "vitals" else value
    return out


def _by_age(age: float, table: tuple[tuple[float, float], ...], adult: float) -> float:
    """The first value whose age limit is above ``age`` (``adult`` beyond them all)."""
    return next((value for limit, value in table if age < limit), adult)


def vital_signs(chart: Chart, day: date, *, home: bool = False) -> dict[str, float]:
    """Plausible vital signs on ``day`` for the patient's age, body and conditions (home readings: blood
    pressure and pulse only; no blood pressure under 3 years)."""
    rng, base = chart.rng, chart.baseline
    age = chart.age_on(day)
    shift = _offsets(chart, day, "vitals")
    heart_rate = _by_age(age, ((1, 130), (3, 115), (6, 100), (12, 90), (18, 80)), 72) + base["heart_rate"]
    systolic = _by_age(age, ((6, 96), (12, 104), (18, 112)), 116 + 0.45 * max(0.0, age - 30))
    systolic += base["systolic"] + shift.get("systolic", 0) + rng.gauss(0, 5)
    diastolic = systolic * 0.62 + base["diastolic"] + shift.get("diastolic", 0) + rng.gauss(0, 3)
    values: dict[str, float] = {
        "systolic": round(systolic),
        "diastolic": round(min(diastolic, systolic - 25)),
        "heart_rate": round(heart_rate + shift.get("heart_rate", 0) + rng.gauss(0, 4)),
    }
    if home:
        return values
    if age < 3:
        del values["systolic"], values["diastolic"]
    if age < 1:
        weight = 3.4 + 0.5 * age * 12
    elif age < 10:
        weight = 2 * age + 8
    elif age < 18:
        weight = 28 + (age - 10) * 4.5
    else:
        weight = base["bmi"] * base["height"] ** 2 + base["drift"] * (day - chart.today).days / 365.25
    if age < 18:
        weight *= base["child_size"]
    values |= {
        "temperature": round(36.6 + rng.gauss(0, 0.2) + shift.get("temperature", 0), 1),
        "spo2": round(min(100, 98 + rng.gauss(0, 0.8) + shift.get("spo2", 0))),
        "respiratory_rate": round(
            _by_age(age, ((1, 34), (3, 28), (6, 24), (12, 20), (18, 17)), 14)
            + shift.get("respiratory_rate", 0)
            + rng.gauss(0, 1.5)
        ),
        "weight": round(weight + shift.get("weight", 0) + rng.gauss(0, 0.4), 1),
    }
    return values


def _vitals_text(visit: Visit, values: dict[str, float], by: User, irregular: bool) -> str:
    lines = [
        f"Vital signs, {visit.day.isoformat()}",
        f"Recorded by {by.full_name}, {visit.organisation.name}",
        "",
    ]
    if "systolic" in values:
        lines.append(
            f"Blood pressure: {values['systolic']:g}/{values['diastolic']:g} mmHg (seated, left arm)"
        )
    rhythm = "irregularly irregular" if irregular else "regular"
    lines.append(f"Heart rate: {values['heart_rate']:g}/min, {rhythm}")
    if "temperature" in values:
        lines += [
            f"Temperature: {values['temperature']:.1f} °C (tympanic)",
            f"Oxygen saturation: {values['spo2']:g}% on room air",
            f"Respiratory rate: {values['respiratory_rate']:g}/min",
            f"Weight: {values['weight']:.1f} kg",
        ]
    return "\n".join(lines) + "\n"


def ckd_epi_2021(creatinine: float, age: float, sex: str) -> float:
    """eGFR (mL/min/1.73 m²) from serum creatinine (mg/dL) by the race-free CKD-EPI 2021 equation."""
    kappa, alpha = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    ratio = creatinine / kappa
    egfr = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.2 * 0.9938**age
    return egfr * (1.012 if sex == "female" else 1)


def lab_values(chart: Chart, day: date, known: dict[str, float] | None = None) -> dict[str, float]:
    """Every analyte on ``day``: the patient's set point, or what a condition makes it (trending towards
    the treated value), or what is ``known`` of the day, with a little analytical noise; eGFR and total
    cholesterol are derived."""
    values = chart.baseline | _offsets(chart, day, "labs") | (known or {})
    values = {code: values[code] * (1 + chart.rng.gauss(0, 0.03)) for code in ANALYTES}
    ckd = next((p for p in chart.problems if p.condition.code == "N18.30" and p.onset <= day), None)
    if ckd is not None:  # kidney function keeps declining slowly
        values["creatinine"] += 0.04 * (day - ckd.onset).days / 365.25
    values["egfr"] = ckd_epi_2021(values["creatinine"], chart.age_on(day), chart.sex)
    values["chol"] = values["ldl"] + values["hdl"] + values["tg"] / 5
    return {code: round(value, ANALYTES[code].decimals) for code, value in values.items()}


def _reference_text(low: float | None, high: float | None, decimals: int) -> str:
    if low is not None and high is not None:
        return f"{low:.{decimals}f} - {high:.{decimals}f}"
    return f"< {high:.{decimals}f}" if high is not None else f"> {low:.{decimals}f}"


PATHOLOGISTS = ("Dr. Helena Marques", "Dr. Paulo Nunes", "Dr. Teresa Vieira")
# Hospital specialists who write reports and discharge summaries that the patient's own doctor files.
HOSPITAL_DOCTORS = ("Dr. Ricardo Lopes", "Dr. Sara Antunes", "Dr. Miguel Tavares", "Dr. Inês Cardoso")


def lab_report(
    chart: Chart,
    day: date,
    panels: Sequence[str],
    doctor: User,
    organisation: Organisation,
    known: dict[str, float] | None = None,
) -> tuple[bytes, list[str]]:
    """A clinical pathology report (PDF) of ``panels`` on ``day`` (see :func:`lab_values`); also the
    results flagged H or L."""
    values = lab_values(chart, day, known)
    patient = chart.patient
    lines: list[Line] = [
        *_patient_lines(chart),
        f"Requested by: {doctor.full_name} · Collected: {day.isoformat()} 08:{chart.rng.randint(5, 55):02d}"
        f" · Reported: {day.isoformat()} 15:{chart.rng.randint(5, 55):02d}",
        "Specimen: venous blood (serum and EDTA)",
    ]
    flagged: list[str] = []
    for key in sorted(panels, key=list(PANELS).index):
        title, codes = PANELS[key]
        lines += [f"# {title}", ("Test", "Result", "Units", "Reference range", "Flag")]
        for code in codes:
            analyte, value = ANALYTES[code], values[code]
            low, high = analyte.reference(chart.sex)
            flag = (
                "H" if high is not None and value > high else "L" if low is not None and value < low else ""
            )
            if flag:
                flagged.append(f"{analyte.name} {value:.{analyte.decimals}f} {analyte.unit}")
            lines.append(
                (analyte.name, f"{value:.{analyte.decimals}f}", analyte.unit,
                 _reference_text(low, high, analyte.decimals), flag)
            )  # fmt: skip
    comment = (
        "Results outside the reference range are flagged H (high) or L (low) for the requesting clinician."
        if flagged
        else "All results are within the reference ranges."
    )
    lines += [
        "",
        "# Comment",
        comment,
        "",
        f"Validated by {chart.rng.choice(PATHOLOGISTS)}, Clinical Pathology. Reference ranges are the "
        "laboratory's own for the patient's sex and age; eGFR by CKD-EPI 2021.",
    ]
    pdf = text_pdf(
        "Clinical Pathology Report",
        lines,
        subtitle=f"{organisation.name} - Clinical Pathology Laboratory",
        footer=f"{chart.name} - Health ID {patient.health_id} - collected {day.isoformat()}",
        created=_at(day, 15, 30),
    )
    return pdf, flagged


# --- planning one patient's record -------------------------------------------------------------------------


def _medication_text(medication: Medication, indication: str, visit: Visit, note: str) -> str:
    return (
        f"{medication.name}\nDose: {medication.dose}\nIndication: {indication}\n"
        f"Started: {visit.day.isoformat()}\n"
        f"Prescribed by: {visit.doctor.full_name}, {visit.organisation.name}\n{note}\n"
    )


def _first_medication(chart: Chart, condition: Condition) -> Medication | None:
    if condition.penicillin_free is not None and chart.penicillin_allergy:
        return condition.penicillin_free
    return condition.medications[0] if condition.medications else None


def _diagnose(chart: Chart, problem: Problem, visit: Visit) -> None:
    """The diagnosis record of a problem, and the medication it starts (both at ``visit``)."""
    condition = problem.condition
    if condition.mental_health:
        return  # recorded in the mental-health section (see _mental_health)
    if problem.known:
        onset = f"{problem.onset:%B %Y} (known diagnosis, carried over from previous records)"
    else:
        onset = f"{problem.onset:%B %Y} (diagnosed at this visit)"
    status = "resolved" if condition.acute else "active"
    text = (
        f"Diagnosis: {condition.label}\nStatus: {status}\nOnset: {onset}\n"
        + (f"Findings: {condition.presentation}\n" if condition.presentation and not problem.known else "")
        + f"Recorded by: {visit.doctor.full_name}, {visit.organisation.name}\n"
    )
    chart.add(
        "diagnosis", condition.label, visit.day, text, visit.doctor, appointment_id=visit.appointment_id
    )
    medication = _first_medication(chart, condition)
    if medication is not None:
        verb = "continued at medication reconciliation" if problem.known else "started"
        chart.add(
            "medication",
            f"{medication.name} ({verb})",
            visit.day,
            _medication_text(medication, condition.label, visit, f"Status: {verb}."),
            visit.doctor,
            appointment_id=visit.appointment_id,
        )
    if problem.known:
        return
    if condition.code == "I48.91" or (condition.code == "I10" and chart.rng.random() < 0.5):
        af = condition.code == "I48.91"
        chart.add(
            "procedure",
            "12-lead ECG: "
            + ("atrial fibrillation, ventricular rate about 105/min" if af else "sinus rhythm"),
            visit.day,
            ecg_strip("af", 105) if af else ecg_strip("sinus", 72),
            visit.doctor,
            appointment_id=visit.appointment_id,
        )
    if condition.code in ("J44.9", "J45.909"):
        result = (
            "Post-bronchodilator FEV1/FVC 0.61; FEV1 62% of predicted: airflow obstruction, GOLD 2 "
            "(moderate)."
            if condition.code == "J44.9"
            else "FEV1 78% of predicted, rising 16% (310 mL) after salbutamol 400 micrograms: reversible "
            "airflow obstruction consistent with asthma."
        )
        chart.add(
            "procedure",
            "Spirometry with bronchodilator reversibility",
            visit.day,
            f"Spirometry, {visit.day.isoformat()}\n{result}\nTechnically acceptable and repeatable (ATS/ERS "
            f"2019).\nPerformed by: {(visit.nurse or visit.doctor).full_name}\n",
            visit.nurse or visit.doctor,
            appointment_id=visit.appointment_id,
        )


def _panels_for(chart: Chart, visit: Visit, new: list[Problem], full: bool) -> list[str]:
    """Which lab panels are drawn at a visit."""
    panels = {panel for p in chart.active(visit.day) for panel in p.condition.panels}
    if any(p.condition.panels for p in new):
        return sorted(panels)
    if panels:
        return sorted(panels) if chart.rng.random() < (0.8 if full else 1.0) else []
    age = chart.age_on(visit.day)
    if age >= 18 and chart.rng.random() < 0.5:
        return ["fbc", "lipids", "hba1c"] if age >= 40 else ["fbc", "lipids"]
    return []


def _soap(
    chart: Chart, visit: Visit, vitals: dict[str, float], flagged: list[str], new: list[Problem]
) -> PlannedNote:
    """A SOAP note of a visit, from what happened at it."""
    active = [p for p in chart.active(visit.day) if not p.condition.mental_health]
    episode = [p for p in chart.problems if p.condition.acute and p.onset == visit.day]
    if new or episode:
        told = [p.condition.presentation for p in [*new, *episode]]
    else:
        told = [p.condition.review for p in active][:2]
    subjective = " ".join(t for t in told if t) or "Routine review; no new complaints."
    if visit.reason:
        subjective = f"{visit.reason}. {subjective}"
    signs = [f"HR {vitals['heart_rate']:g}/min"]
    if "systolic" in vitals:
        signs.insert(0, f"BP {vitals['systolic']:g}/{vitals['diastolic']:g} mmHg")
    if "temperature" in vitals:
        signs += [
            f"T {vitals['temperature']:.1f} °C",
            f"SpO2 {vitals['spo2']:g}%",
            f"weight {vitals['weight']:.1f} kg",
        ]
    objective = ", ".join(signs) + "."
    if flagged:
        objective += " Labs today: " + "; ".join(flagged[:3]) + "."
    assessment = []
    for problem in [*episode, *active]:
        if problem in new or problem in episode:
            status = "new diagnosis"
        else:
            status = "controlled" if chart.progress(problem, visit.day) >= 1 else "improving on treatment"
        assessment.append(f"{problem.condition.label}: {status}")
    if not assessment:
        assessment.append(ADULT_CHECK_UP if chart.age_on(visit.day) >= 18 else CHILD_CHECK_UP)
    plan = [p.condition.plan for p in [*new, *active] if p.condition.plan][:3]
    for problem in [*new, *episode]:
        medication = _first_medication(chart, problem.condition)
        if medication is not None:
            plan.insert(0, f"Start {medication.name}: {medication.dose}.")
    plan.append("Review in 3 months." if active else "Review as needed.")
    return PlannedNote(
        visit.doctor,
        _at(visit.day, chart.rng.randint(9, 17), chart.rng.choice((0, 15, 30, 45))),
        subjective,
        objective,
        "; ".join(assessment) + ".",
        " ".join(plan),
        appointment_id=visit.appointment_id,
    )


def _visit(chart: Chart, visit: Visit, *, full: bool, first: bool, wants_note: bool) -> None:
    """The records of one consultation: what was diagnosed and started, vital signs, labs, a note."""
    if first:
        for allergen in (a.strip() for a in chart.patient.allergies.split(",") if a.strip()):
            code, reaction, advice = ALLERGY_DETAILS.get(allergen, ("", "reaction not documented", ""))
            text = f"Allergy: {allergen}\n{code}\nReaction: {reaction}\nSeverity and advice: {advice}\n"
            chart.add("allergy", f"Allergy: {allergen}", visit.day, text, visit.doctor)
    new = [p for p in chart.problems if p.onset == visit.day or (first and p.onset <= visit.day and p.known)]
    for problem in new:
        _diagnose(chart, problem, visit)
    new = [p for p in new if not (p.known or p.condition.acute or p.condition.mental_health)]
    for problem in chart.active(visit.day):  # the second medicine, at the first review after 5 months
        later = problem.condition.medications[1:2]
        due = problem.onset + timedelta(days=150) <= visit.day
        if later and due and not problem.escalated and chart.rng.random() < 0.5:
            problem.escalated = True
            chart.add(
                "medication",
                f"{later[0].name} (added)",
                visit.day,
                _medication_text(later[0], problem.condition.label, visit, "Status: added to treatment."),
                visit.doctor,
                appointment_id=visit.appointment_id,
            )
    by = visit.nurse or visit.doctor
    vitals = vital_signs(chart, visit.day)
    irregular = any(p.condition.code == "I48.91" for p in chart.active(visit.day))
    chart.add(
        "vitals",
        "Vital signs",
        visit.day,
        _vitals_text(visit, vitals, by, irregular),
        by,
        appointment_id=visit.appointment_id,
        measurements=vitals,
    )
    flagged: list[str] = []
    panels = _panels_for(chart, visit, new, full)
    if panels:
        pdf, flagged = lab_report(chart, visit.day, panels, visit.doctor, visit.organisation)
        names = ", ".join(PANELS[p][0] for p in sorted(panels, key=list(PANELS).index))
        chart.add(
            "lab",
            f"Lab results: {names}",
            visit.day,
            pdf,
            visit.doctor,
            appointment_id=visit.appointment_id,
            client="lab-interface",
        )
    if wants_note or new:
        chart.notes.append(_soap(chart, visit, vitals, flagged, new))


def _patient_lines(chart: Chart) -> list[Line]:
    patient = chart.patient
    return [
        f"Patient: {chart.name} · Health ID: {patient.health_id} · Born: {patient.birth_date.isoformat()} · "
        f"Sex: {patient.sex}"
    ]


def _immunisations(chart: Chart, start: date, latest: int | None) -> None:
    """The vaccines due in the window (children's programme, Td boosters, seasonal influenza and COVID-19
    from 60 or with a chronic condition, pneumococcal from 65); only the ``latest`` few for short
    histories."""
    rng, birth = chart.rng, chart.patient.birth_date
    due = [(birth + timedelta(days=round(months * 30.44)), vaccine) for months, vaccine in CHILD_VACCINES]
    due += [(_years_after(birth, age), "Tetanus and diphtheria (Td), booster") for age in TD_BOOSTER_AGES]
    pneumococcal = False
    for year in range(start.year, chart.today.year + 1):
        day = date(year, 10, 1) + timedelta(days=rng.randint(0, 50))
        age = chart.age_on(day)
        season = f"season {year}/{(year + 1) % 100:02d}"
        if age >= 60 or any(p.condition.flu_vaccine for p in chart.active(day)):
            due.append((day, f"Influenza vaccine (inactivated, quadrivalent), {season}"))
        if age >= 60:
            due.append((day, f"COVID-19 mRNA vaccine (adapted), {season}"))
        if age >= 65 and not pneumococcal and rng.random() < 0.5:
            pneumococcal = True
            due.append((day, "Pneumococcal conjugate vaccine (Pn20)"))
    given = sorted((day, vaccine) for day, vaccine in due if start <= day <= chart.today)
    by = chart.nurse or chart.doctor
    for day, vaccine in given[-latest:] if latest else given:
        site = "anterolateral thigh" if chart.age_on(day) < 1 else "left deltoid"
        lot = "".join(rng.choices("ABCDEFGHKLMNPRSTVWXZ", k=2)) + str(rng.randint(1000, 9999))
        text = (
            f"{vaccine}\nGiven: {day.isoformat()}\nRoute and site: intramuscular, {site}\nLot: {lot}\n"
            f"Given by: {by.full_name}, {chart.organisation.name}\n"
            "Observed for 30 minutes: no immediate reaction.\n"
        )
        chart.add("immunisation", vaccine, day, text, by)


def _some_day(chart: Chart, start: date, margin: int = 30) -> date:
    """A weekday in the history window, away from its ends when it is long enough."""
    window = (chart.today - start).days
    low = margin if window > 3 * margin else 0
    return _weekday_before(start + timedelta(days=chart.rng.randint(low, max(low, window - margin))))


def _procedures(chart: Chart, start: date) -> None:
    """Screening and elective procedures that fit the patient's age and sex."""
    rng, doctor = chart.rng, chart.doctor
    age = chart.age_on(chart.today)
    if 50 <= age <= 75 and rng.random() < 0.3:
        day = _some_day(chart, start)
        polyps = rng.random() < 0.6
        lines: list[Line] = [
            *_patient_lines(chart),
            f"Endoscopist: {rng.choice(HOSPITAL_DOCTORS)} · Date: {day.isoformat()}",
            "Indication: Z12.11 Encounter for screening for malignant neoplasm of colon (positive faecal "
            "immunochemical test in the colorectal cancer screening programme).",
            "Sedation: propofol, given by the anaesthetist; oxygen saturation above 94% throughout.",
            "Bowel preparation: Boston Bowel Preparation Scale 8/9 (good).",
            "# Findings",
            "Caecum reached, confirmed by the appendiceal orifice and ileocaecal valve; withdrawal time "
            "9 minutes.",
            "Two sessile polyps of 4 and 6 mm in the sigmoid colon (Paris 0-Is), removed by cold snare and "
            "retrieved for histology. Scattered sigmoid diverticula."
            if polyps
            else "No polyps or masses. Scattered sigmoid diverticula.",
            "# Conclusion and recommendation",
            "Two small sigmoid polyps removed; diverticulosis. If histology shows adenomas, surveillance "
            "colonoscopy in 3 years; otherwise back to the screening programme in 10 years."
            if polyps
            else "Normal colonoscopy apart from diverticulosis. Back to the screening programme in 10 years.",
        ]
        pdf = text_pdf(
            "Colonoscopy Report",
            lines,
            subtitle=f"{chart.organisation.name} - Gastroenterology and Endoscopy Unit",
            footer=f"{chart.name} - Health ID {chart.patient.health_id}",
            created=_at(day, 12, 0),
        )
        chart.add("procedure", "Colonoscopy (screening)", day, pdf, doctor)
    if age >= 70 and rng.random() < 0.25:
        day = _some_day(chart, start, 90)
        label = "H25.11 Age-related nuclear cataract, right eye"
        chart.add(
            "diagnosis",
            label,
            _weekday_before(day - timedelta(days=60)),
            f"Diagnosis: {label}\nStatus: treated\nFindings: glare and blurred distance vision; visual "
            f"acuity 6/24 right, 6/9 left.\nRecorded by: {doctor.full_name}\n",
            doctor,
        )
        chart.add(
            "procedure",
            "Phacoemulsification with intraocular lens, right eye",
            day,
            "Procedure: phacoemulsification with a posterior chamber intraocular lens (+21.5 D), right "
            f"eye, under topical anaesthesia.\nIndication: {label}.\nOutcome: uneventful; visual acuity "
            "6/9 at the one-week review.\nAfter care: dexamethasone/tobramycin eye drops four times daily "
            f"for a week, then tapered over three weeks.\nOphthalmology, {chart.organisation.name}\n",
            doctor,
        )
    if chart.patient.sex == "female" and 50 <= age <= 69 and rng.random() < 0.5:
        chart.add(
            "procedure",
            "Screening mammography: BI-RADS 1",
            _some_day(chart, start),
            "Bilateral screening mammography (breast cancer screening programme)\nBreast composition: B "
            "(scattered fibroglandular density)\nFindings: no suspicious mass, calcification or "
            "architectural distortion.\nConclusion: BI-RADS 1, negative. Next screening in 2 years.\n",
            doctor,
        )


def _admission(chart: Chart, start: date, forced: bool) -> None:
    """A hospital stay, for some patients (always for the tour patient when one fits their age): the
    diagnosis, the operation if any, new medicines and the discharge summary."""
    rng, doctor = chart.rng, chart.doctor
    age = chart.age_on(chart.today)
    codes = {p.condition.code for p in chart.problems}
    options = [
        a for a in ADMISSIONS if a.ages[0] <= age <= a.ages[1] and (a.code != "M17.11" or a.code in codes)
    ]
    if not options or not (forced or rng.random() < 0.2):
        return
    stay = rng.choice(options)
    child = age < 16
    ward = f"Paediatric {stay.ward.lower()}" if child else stay.ward
    consultant = rng.choice(HOSPITAL_DOCTORS)
    admitted = _some_day(chart, start, 45)
    discharged = admitted + timedelta(days=rng.randint(*stay.stay))
    if discharged > chart.today:
        admitted, discharged = admitted - (discharged - chart.today), chart.today
    label = f"{stay.code} {stay.name}"
    if stay.code not in codes:
        chart.add(
            "diagnosis",
            label,
            admitted,
            f"Diagnosis: {label}\nStatus: resolved\nOnset: {admitted:%B %Y} (admitted to {ward})\n"
            f"Recorded by: {doctor.full_name}, {chart.organisation.name}\n",
            doctor,
        )
    if stay.procedure:
        chart.add(
            "procedure",
            stay.procedure,
            admitted,
            f"Procedure: {stay.procedure}\nDate: {admitted.isoformat()}\nIndication: {label}\n"
            f"Ward: {ward}, {chart.organisation.name}\nSurgeon: {consultant}\nOutcome: no complications.\n",
            doctor,
        )
    pdf, _ = lab_report(chart, admitted, ("fbc", "renal", "crp"), doctor, chart.organisation, dict(stay.labs))
    chart.add(
        "lab",
        "Lab results: Full blood count, Renal function and electrolytes, Inflammatory markers",
        admitted,
        pdf,
        doctor,
        client="lab-interface",
    )
    antibiotic = stay.antibiotic[1 if chart.penicillin_allergy else 0]
    others = [p.condition.label for p in chart.active(admitted) if p.condition.code != stay.code]
    continuing = sorted(
        {p.condition.medications[0].name for p in chart.active(admitted) if p.condition.medications}
    )
    lines: list[Line] = [
        *_patient_lines(chart),
        f"Admitted: {admitted.isoformat()}    Discharged: {discharged.isoformat()}    Length of stay: "
        f"{(discharged - admitted).days} days",
        f"Ward: {ward}, {chart.organisation.name} · Responsible consultant: {consultant}",
        "# Diagnoses",
        f"Principal: {label}",
        "Other active problems: " + ("; ".join(others) if others else "none"),
        "# Procedures",
        stay.procedure or "None",
        "# Clinical course",
        stay.course.format(antibiotic=antibiotic),
        "# Investigations",
        *(f"- {line}" for line in stay.investigations),
        "# Allergies",
        chart.patient.allergies or "No known drug allergies.",
        "# Medicines on discharge",
        *(f"New: {m.name} - {m.dose}" for m in (stay.child_medications if child else stay.medications)),
        *(f"Continue: {name}" for name in continuing),
        "# Follow-up",
        stay.follow_up,
        "# Advice to the patient",
        "Come back to the emergency department, or call SNS 24 (808 24 24 24), if you have a fever above "
        "38 °C, worsening pain, breathlessness, bleeding, or redness or discharge from a wound.",
        "",
        f"Signed electronically by {consultant} on {discharged.isoformat()}.",
    ]
    pdf = text_pdf(
        "Discharge Summary",
        lines,
        subtitle=f"{chart.organisation.name} - {ward}",
        footer=f"{chart.name} - Health ID {chart.patient.health_id} - discharged {discharged.isoformat()}",
        created=_at(discharged, 14, 0),
    )
    chart.add("discharge", f"Discharge summary: {stay.name}", discharged, pdf, doctor)


MOOD_TRIGGERS = (
    "losing their job",
    "a bereavement",
    "the end of a relationship",
    "a long period of work stress",
)


def _mental_health(chart: Chart, visits: list[Visit]) -> None:
    """For a depressive or anxiety disorder: a psychiatric assessment and a follow-up (mental-health
    records, which a care team reads only with the patient's consent) and a mental-health note."""
    for problem in (p for p in chart.problems if p.condition.mental_health):
        visit = next((v for v in visits if v.day >= problem.onset), visits[0])
        condition, rng = problem.condition, chart.rng
        depression = condition.code == "F32.1"
        scale = "PHQ-9" if depression else "GAD-7"
        before, after = (9, 5) if problem.known else ((16, 6) if depression else (15, 5))
        medication = condition.medications[0]
        complaint = (
            f"Low mood, loss of interest and early-morning waking for three months after "
            f"{rng.choice(MOOD_TRIGGERS)}."
            if depression
            else "Persistent worry about work and family, restlessness, poor sleep and tension headaches "
            "for eight months."
        )
        kind = "Psychiatric follow-up" if problem.known else "Psychiatric assessment"
        plan = (
            f"{medication.name}: {medication.dose}. Referral for cognitive behavioural therapy "
            "(12 sessions). Review in 4 weeks. Crisis contact: SNS 24 (808 24 24 24), option 4 for "
            "psychological support."
        )
        chart.add(
            "mental-health",
            f"{kind}: {condition.label}",
            visit.day,
            f"{kind}\nDiagnosis: {condition.label}\nPresenting complaint: {complaint}\n{scale}: {before}\n"
            "Risk assessment: no suicidal thoughts, plans or self-harm; protective factors: family and "
            "work.\n"
            f"Plan: {plan}\nClinician: {visit.doctor.full_name}\n",
            visit.doctor,
            appointment_id=visit.appointment_id,
        )
        chart.notes.append(
            PlannedNote(
                visit.doctor,
                _at(visit.day, 16, 30),
                complaint,
                f"Alert and engaged; mood subjectively low, affect reactive; no psychotic features. {scale} "
                f"{before}.",
                f"{condition.label}; low immediate risk.",
                plan,
                category="mental-health",
                appointment_id=visit.appointment_id,
            )
        )
        later = next((v for v in visits if v.day >= visit.day + timedelta(days=90)), None)
        if later is not None:
            chart.add(
                "mental-health",
                f"Psychiatric follow-up: {condition.label}",
                later.day,
                f"Psychiatric follow-up\nDiagnosis: {condition.label}\n{scale}: {after} (was {before})\n"
                "Sleeping better and back to usual activities; attending CBT. No risk concerns.\n"
                f"Plan: continue {medication.name} for at least 6 months after remission.\n"
                f"Clinician: {later.doctor.full_name}\n",
                later.doctor,
                appointment_id=later.appointment_id,
            )


FAMILY_DOCTORS = ("Dr. Carla Mendes", "Dr. Nuno Pires", "Dr. Joana Rocha", "Dr. Filipe Correia")


def _referral_letter(chart: Chart, visit: Visit) -> None:
    """The family doctor's referral letter, scanned into the record at the first hospital visit."""
    known = [p for p in chart.problems if p.known and not p.condition.mental_health]
    reason = f"review of {known[0].condition.label}" if known else "a general health assessment"
    age = int(chart.age_on(visit.day))
    lines: list[Line] = [
        "Dear colleague,",
        "",
        f"I would be grateful if you would see {chart.name}, {age} years old, Health ID "
        f"{chart.patient.health_id}, for {reason}.",
        "# Background",
        *([p.condition.label for p in known] or ["No significant past medical history."]),
        "# Current medication",
        *([f"{m.name} - {m.dose}" for p in known for m in p.condition.medications[:1]] or ["None."]),
        "# Allergies",
        chart.patient.allergies or "No known drug allergies.",
        "",
        "Kind regards,",
        f"{chart.rng.choice(FAMILY_DOCTORS)}, family doctor",
    ]
    pdf = text_pdf(
        "Referral Letter",
        lines,
        subtitle=f"USF {chart.patient.city or 'Lisboa'} (family health unit) to {visit.organisation.name}",
        created=_at(visit.day - timedelta(days=20), 11, 0),
    )
    chart.add("document", "Referral letter from the family health unit", visit.day, pdf, visit.doctor)


def _patient_uploads(chart: Chart) -> None:
    """What a patient with a portal account adds: home blood pressure readings, and for some older
    patients their advance healthcare directive."""
    account, rng = chart.account, chart.rng
    if account is None or chart.age_on(chart.today) < 18:
        return
    for _ in range(rng.randint(1, 3)):
        day = chart.today - timedelta(days=rng.randint(3, 120))
        values = vital_signs(chart, day, home=True)
        chart.add(
            "vitals",
            "Home blood pressure reading",
            day,
            f"Home blood pressure reading, {day.isoformat()} {rng.randint(7, 9)}:{rng.randint(0, 59):02d}\n"
            f"{values['systolic']:g}/{values['diastolic']:g} mmHg, pulse {values['heart_rate']:g}/min\n"
            "Automatic upper-arm monitor, seated, after 5 minutes' rest.\n",
            account,
            measurements=values,
            client="mobile-app",
        )
    if chart.age_on(chart.today) >= 65 and rng.random() < 0.5:
        patient = chart.patient
        signed = chart.today - timedelta(days=rng.randint(100, 700))
        lines: list[Line] = [
            f"I, {chart.name}, Health ID {patient.health_id}, born {patient.birth_date.isoformat()}, state "
            "my wishes for my healthcare should I become unable to express them:",
            "- I do not want cardiopulmonary resuscitation if my condition is irreversible and terminal.",
            "- I do not want to be kept alive artificially (mechanical ventilation, dialysis, artificial "
            "feeding) when there is no reasonable hope of recovery.",
            "- I want palliative care and adequate pain relief, even if it may shorten my life.",
            "# Healthcare proxy",
            f"{patient.emergency_contact_name or 'Not named'} ({patient.emergency_contact_relation or '-'}), "
            f"phone {patient.emergency_contact_phone or '-'}",
            "",
            f"Signed by {chart.name} on {signed.isoformat()}, before a witness at the family health unit.",
        ]
        pdf = text_pdf(
            "Advance Healthcare Directive",
            lines,
            subtitle="Diretiva antecipada de vontade (living will), registered with RENTEV",
            created=_at(signed, 10, 0),
        )
        chart.add("document", "Advance healthcare directive (living will)", signed, pdf, account,
                  client="mobile-app")  # fmt: skip


def _correction(chart: Chart) -> None:
    """A vital-signs entry whose weight was typed a decimal place out, then corrected by a new version."""
    candidates = [r for r in chart.records if r.measurements and "weight" in r.measurements]
    if not candidates:
        return
    fixed = chart.rng.choice(candidates)
    assert fixed.measurements is not None
    weight = fixed.measurements["weight"]
    wrong_values = fixed.measurements | {"weight": round(weight / 10, 1)}
    wrong = Planned(
        fixed.category,
        fixed.title,
        fixed.day,
        fixed.data.replace(f"Weight: {weight:.1f} kg".encode(), f"Weight: {weight / 10:.1f} kg".encode()),
        fixed.uploader,
        fixed.appointment_id,
        wrong_values,
        fixed.client,
    )
    chart.records.insert(chart.records.index(fixed), wrong)
    fixed.title, fixed.corrects = "Vital signs (weight corrected)", wrong


def _visits(
    chart: Chart, appointments: list[PastAppointment], team: dict[uuid.UUID, User], full: bool,
    organisations: dict[uuid.UUID, Organisation],
) -> list[Visit]:  # fmt: skip
    """Consultations over the history window (more often for older patients), then the patient's latest
    fulfilled appointments with a member of their care team; for a short history only the latest visit."""
    rng, today, birth = chart.rng, chart.today, chart.patient.birth_date
    years = rng.randint(2, 6) if full else 1
    start = min(today, max(today - timedelta(days=round(years * 365.25)), birth + timedelta(days=3)))
    gap = (90, 200) if chart.age_on(today) >= 50 else (180, 400)
    days: list[date] = []
    day = start + timedelta(days=rng.randint(0, 30))
    while day <= today - timedelta(days=35):
        days.append(_weekday_before(day))
        day += timedelta(days=rng.randint(*gap))
    days = days or [max(birth, _weekday_before(start))]
    visits = [Visit(d, chart.doctor, chart.nurse, chart.organisation) for d in days]
    booked = [a for a in appointments if a.doctor_id in team and team[a.doctor_id].role == "doctor"]
    for appointment in booked[-2 if full else -1 :]:
        doctor = team[appointment.doctor_id]
        assert doctor.organisation_id is not None
        nurse = chart.nurse if chart.nurse and chart.nurse.organisation_id == doctor.organisation_id else None
        day = min(today, appointment.start.astimezone(TIMEZONE).date())
        visits.append(
            Visit(
                day, doctor, nurse, organisations[doctor.organisation_id], appointment.id, appointment.reason
            )
        )
    return visits if full else visits[-1:]


def _plan(chart: Chart, visits: list[Visit], *, full: bool, tour: bool) -> None:
    """Every record and note of one patient's history (the tour patient gets one of each kind)."""
    for index, visit in enumerate(visits):
        wants_note = visit.appointment_id is not None or (full and index >= len(visits) - 2)
        _visit(chart, visit, full=full, first=index == 0, wants_note=wants_note)
    _mental_health(chart, visits)
    start = visits[0].day
    _immunisations(chart, start, None if full else 1)
    if full:
        _procedures(chart, start)
        _admission(chart, start, forced=tour)
        _patient_uploads(chart)
        if tour or chart.rng.random() < 0.5:
            _referral_letter(chart, visits[0])
    if tour or (full and chart.rng.random() < 0.1):
        _correction(chart)


def _care_teams(session: Session, patients: list[Patient]) -> dict[uuid.UUID, list[tuple[User, str]]]:
    """Each patient's active carers (with why they care for them), as rbac counts them."""
    query = (
        select(CareRelationship, User)
        .join(User, User.id == CareRelationship.practitioner_id)
        .where(
            CareRelationship.patient_id.in_([p.id for p in patients]),
            CareRelationship.ended_at.is_(None),
            CareRelationship.organisation_id == User.organisation_id,
        )
    )
    teams: dict[uuid.UUID, list[tuple[User, str]]] = {}
    for link, user in session.execute(query):
        teams.setdefault(link.patient_id, []).append((user, link.reason))
    return teams


def _past_appointments(
    session: Session, patients: list[Patient], now: datetime
) -> dict[uuid.UUID, list[PastAppointment]]:
    """Each patient's fulfilled appointments, oldest first (the demo's own rows, read to link records)."""
    query = (
        select(
            Appointment.id, Appointment.patient_id, Appointment.start_at, Appointment.reason,
            Practitioner.user_id,
        )
        .join(Practitioner, Practitioner.id == Appointment.practitioner_id)
        .where(
            Appointment.patient_id.in_([p.id for p in patients]),
            Appointment.status == AppointmentStatus.FULFILLED.value,
            Appointment.start_at < now,
        )
        .order_by(Appointment.start_at, Appointment.id)
    )  # fmt: skip
    found: dict[uuid.UUID, list[PastAppointment]] = {}
    for appointment_id, patient_id, start, reason, doctor_id in session.execute(query):
        found.setdefault(patient_id, []).append(PastAppointment(appointment_id, start, doctor_id, reason))
    return found


def _usual_carers(team: list[tuple[User, str]], doctor: User, nurse: User) -> tuple[User | None, User | None]:
    """The patient's usual doctor (the demo doctor when on the team) and a nurse working with them."""
    doctors = sorted(
        (u for u, reason in team if u.role == "doctor"),
        key=lambda u: (u.id != doctor.id, u.email),
    )
    usual = doctors[0] if doctors else min((u for u, _ in team), key=lambda u: u.email, default=None)
    if usual is None:
        return None, None
    nurses = sorted(
        (u for u, _ in team if u.role == "nurse" and u.organisation_id == usual.organisation_id),
        key=lambda u: (u.id != nurse.id, u.email),
    )
    return usual, nurses[0] if nurses else None


def _principal(user: User, patient: Patient) -> Principal:
    """The acting user (a patient acts on their own record)."""
    return Principal(
        user.id,
        user.role,
        user.full_name,
        user.organisation_id,
        patient_id=patient.id if user.role == "patient" else None,
    )


def _store(session: Session, chart: Chart) -> int:
    """Upload the chart's records in date order through the records service, and add its notes."""
    ids: dict[int, uuid.UUID] = {}
    for item in sorted(chart.records, key=lambda r: r.day):
        record = service.upload(
            session,
            _principal(item.uploader, chart.patient),
            service.Upload(
                chart.patient.id,
                item.category,
                item.title,
                item.day,
                item.client,
                ids[id(item.corrects)] if item.corrects is not None else None,
                item.appointment_id,
                item.measurements,
            ),
            item.data,
        )
        ids[id(item)] = record.id
    session.add_all(
        ClinicalNote(
            patient_id=chart.patient.id,
            author_id=note.author.id,
            category=note.category,
            appointment_id=note.appointment_id,
            subjective=note.subjective,
            objective=note.objective,
            assessment=note.assessment,
            plan=note.plan,
            created_at=note.at,
        )
        for note in chart.notes
    )
    return len(ids)


@dataclass(frozen=True)
class RecordsDemo:
    """What the records demo added."""

    records: int
    notes: int
    tasks: int
    threads: int
    messages: int
    consents: int


def load(
    session: Session,
    rng: random.Random,
    patients: list[Patient],
    now: datetime,
    *,
    doctor: User,
    nurse: User,
    other_doctors: list[User],
    full_histories: int = FULL_HISTORIES,
) -> RecordsDemo:
    """Add the patients' histories (after their care relationships and appointments are flushed), then
    the demo ``doctor`` and ``nurse``'s shared tasks and threads, and the demo patient's consent for a
    doctor of another organisation (the first of ``other_doctors`` not caring for them) to read their
    labs for 30 days."""
    today = now.date()
    organisations = {o.id: o for o in session.scalars(select(Organisation))}
    teams = _care_teams(session, patients)
    appointments = _past_appointments(session, patients, now)
    account_ids = [p.user_id for p in patients if p.user_id is not None]
    accounts = {u.id: u for u in session.scalars(select(User).where(User.id.in_(account_ids)))}
    planned: list[tuple[Chart, list[Visit], bool]] = []
    for index, patient in enumerate(patients):
        usual, team_nurse = _usual_carers(teams.get(patient.id, []), doctor, nurse)
        if usual is None or usual.organisation_id is None:
            continue  # nobody cares for them, so nobody writes in their record
        chart = Chart(
            patient,
            usual,
            team_nurse,
            organisations[usual.organisation_id],
            accounts.get(patient.user_id) if patient.user_id else None,
            today,
            random.Random(rng.getrandbits(64)),
        )
        _baseline(chart)
        full = index < full_histories or patient.user_id is not None
        team = {u.id: u for u, _ in teams.get(patient.id, [])}
        visits = _visits(chart, appointments.get(patient.id, []), team, full, organisations)
        _choose_problems(chart, visits, full)
        planned.append((chart, visits, full))
    _ensure_mental_health(planned)
    # Hold the linked appointments in the session: the upload's check that each is the patient's then
    # finds them there instead of loading them one at a time.
    linked = {v.appointment_id for _, visits, _ in planned for v in visits if v.appointment_id is not None}
    held = session.scalars(select(Appointment).where(Appointment.id.in_(linked))).unique().all()
    records = 0
    for chart, visits, full in planned:
        _plan(chart, visits, full=full, tour=chart.patient is patients[0])
        records += _store(session, chart)
    charts = [chart for chart, _, _ in planned]
    tasks, threads, messages = _care_team_work(session, charts, teams, doctor, nurse, now)
    consents = _consent(session, charts, patients[0], teams, other_doctors, organisations, now)
    session.flush()
    del held
    return RecordsDemo(records, sum(len(c.notes) for c in charts), tasks, threads, messages, consents)


def _ensure_mental_health(planned: list[tuple[Chart, list[Visit], bool]]) -> None:
    """At least one long history shows a mental-health record and note."""
    full = [(chart, visits) for chart, visits, is_full in planned if is_full]
    if any(p.condition.mental_health for chart, _ in full for p in chart.problems):
        return
    anxiety = next(c for c in CONDITIONS if c.code == "F41.1")
    for chart, visits in full:
        eligible = [v for v in visits if 18 <= chart.age_on(v.day) <= anxiety.ages[1]]
        if eligible:
            chart.problems.append(Problem(anxiety, eligible[len(eligible) // 2].day, known=False))
            return


# --- the care team's work: tasks, message threads, a consent -----------------------------------------------

# (from the doctor?, title, detail, due in days (negative: overdue), done)
TASKS: tuple[tuple[bool, str, str, int, bool], ...] = (
    (True, "Repeat blood pressure check", "Seated reading after 5 minutes' rest, both arms. Message me if it "
     "is still above 140/90 mmHg.", -3, False),
    (False, "Review the latest blood results", "The laboratory flagged results outside the reference range; "
     "please decide on follow-up before the patient's next visit.", -1, False),
    (True, "Book a follow-up visit in 3 months", "With fasting bloods a week before.", 6, False),
    (False, "Renew the repeat prescription", "The patient has about a week of tablets left and asked for "
     "the repeat prescription to be renewed.", 2, False),
    (True, "Give this season's influenza vaccine", "Eligible this season; the patient agreed at today's "
     "visit.", -12, True),
)  # fmt: skip


def _shared_patients(
    session: Session, charts: list[Chart], teams: dict[uuid.UUID, list[tuple[User, str]]], doctor: User,
    nurse: User, now: datetime,
) -> list[Chart]:  # fmt: skip
    """Patients both the demo doctor and the demo nurse care for (hypertensive ones first). If there are
    none, the nurse joins the care team of the doctor's first patient."""

    def on_team(chart: Chart, user: User) -> bool:
        return any(u.id == user.id for u, _ in teams.get(chart.patient.id, []))

    shared = [c for c in charts if on_team(c, doctor) and on_team(c, nurse)]
    if not shared:
        chart = next((c for c in charts if on_team(c, doctor)), charts[0])
        assert nurse.organisation_id is not None
        session.add(
            CareRelationship(
                patient_id=chart.patient.id,
                practitioner_id=nurse.id,
                organisation_id=nurse.organisation_id,
                reason="demo",
                created_at=now,
            )
        )
        teams.setdefault(chart.patient.id, []).append((nurse, "demo"))
        shared = [chart]
    return sorted(shared, key=lambda c: not any(p.condition.code == "I10" for p in c.problems))


# Conversations: subject, then (who, days after the first day, hour, minute, text).
Script = tuple[tuple[str, int, int, int, str], ...]
PATIENT_THREADS: tuple[tuple[str, Script], ...] = (
    (
        "Question about my latest blood test",
        (
            (
                "patient",
                0,
                19,
                40,
                "Good evening. I saw my new blood test results in the app and some values are "
                "marked H. Is that something to worry about before my next appointment?",
            ),
            (
                "doctor",
                1,
                9,
                15,
                "Good morning. I have looked at the results: the flagged values are only slightly "
                "outside the range and fit what we discussed at your last visit. Nothing needs to "
                "change now; we will go through them at your next appointment.",
            ),
            (
                "patient",
                1,
                10,
                2,
                "Thank you, that is reassuring. Should I come fasting for the next blood test?",
            ),
            (
                "nurse",
                2,
                11,
                30,
                "Yes, please: nothing to eat after midnight (water is fine), and come between "
                "8:00 and 9:30. Bring your list of medicines.",
            ),
        ),
    ),
    (
        "Cough since the last visit",
        (
            (
                "patient",
                0,
                19,
                40,
                "Good evening. Since the last appointment the cough is better but still "
                "there at night. Is that expected, or should we come back sooner?",
            ),
            (
                "doctor",
                1,
                9,
                15,
                "Good morning, and thank you for the update. A cough can last two to three weeks "
                "after a cold: plenty of fluids and rest. If there is a fever, difficulty breathing, "
                "or no improvement within a week, please book an appointment.",
            ),
            ("patient", 1, 10, 2, "Thank you, that is reassuring."),
            (
                "nurse",
                2,
                11,
                30,
                "If you need to, you can book straight from the app: there are free slots later this week.",
            ),
        ),
    ),
)
TEAM_THREADS: tuple[tuple[str, Script], ...] = (
    ("Plan after today's review", (
        ("doctor", 1, 12, 10, "Blood pressure still above target today and I have adjusted the treatment. "
         "Could you recheck it in clinic in two weeks and give them a home blood pressure diary?"),
        ("nurse", 1, 14, 45, "Will do: nurse visit booked and diary sheet given. They also asked about "
         "this season's flu vaccine; happy for me to give it at the same visit?"),
        ("doctor", 1, 15, 5, "Yes, please. Thanks!"),
    )),
    ("Follow-up after today's visit", (
        ("doctor", 1, 12, 10, "Seen today and stable. Could you phone them in two weeks to see how they "
         "are getting on, and book bloods for the week before the next visit?"),
        ("nurse", 1, 14, 45, "Will do: call on the diary and bloods booked. They also asked about this "
         "season's flu vaccine; happy for me to give it at the blood test visit?"),
        ("doctor", 1, 15, 5, "Yes, please. Thanks!"),
    )),
)  # fmt: skip


def _conversation(script: Script, cast: dict[str, User], first_day: date) -> list[tuple[User, datetime, str]]:
    """A script's messages with their senders and times."""
    return [
        (cast[who], _at(first_day + timedelta(days=days), hour, minute), text)
        for who, days, hour, minute, text in script
    ]


def _thread(
    session: Session, chart: Chart, kind: str, subject: str, messages: list[tuple[User, datetime, str]]
) -> int:
    """A message thread with its messages; each sender has read up to their own last message."""
    thread = MessageThread(
        patient_id=chart.patient.id,
        kind=kind,
        subject=subject,
        created_by=messages[0][0].id,
        created_at=messages[0][1],
        last_message_at=messages[-1][1],
    )
    session.add(thread)
    session.flush()
    read: dict[uuid.UUID, datetime] = {}
    for sender, at, body in messages:
        session.add(Message(thread_id=thread.id, sender_id=sender.id, body=body, created_at=at))
        read[sender.id] = at
    session.add_all(
        ThreadRead(thread_id=thread.id, user_id=user_id, read_at=at) for user_id, at in read.items()
    )
    return len(messages)


def _care_team_work(
    session: Session, charts: list[Chart], teams: dict[uuid.UUID, list[tuple[User, str]]], doctor: User,
    nurse: User, now: datetime,
) -> tuple[int, int, int]:  # fmt: skip
    """Open (some overdue) and done tasks between the demo doctor and nurse, a thread between the tour
    patient and their care team, and a care-team-only thread. Returns (tasks, threads, messages)."""
    if not charts:
        return 0, 0, 0
    shared = _shared_patients(session, charts, teams, doctor, nurse, now)
    today = now.date()
    for index, (from_doctor, title, detail, due, done) in enumerate(TASKS):
        creator, assignee = (doctor, nurse) if from_doctor else (nurse, doctor)
        created = now - timedelta(days=max(2, 2 - due + index))
        session.add(
            CareTask(
                patient_id=shared[index % len(shared)].patient.id,
                title=title,
                detail=detail,
                created_by=creator.id,
                assignee_id=assignee.id,
                due_on=today + timedelta(days=due),
                status="done" if done else "open",
                created_at=created,
                completed_at=created + timedelta(days=1) if done else None,
                completed_by=assignee.id if done else None,
            )
        )
    day = today - timedelta(days=3)
    tour = charts[0]
    threads = messages = 0
    if tour.account is not None:
        has_labs = any(r.category == "lab" for r in tour.records)
        subject, script = PATIENT_THREADS[0 if has_labs else 1]
        cast = {"patient": tour.account, "doctor": tour.doctor, "nurse": tour.nurse or tour.doctor}
        messages += _thread(session, tour, "patient", subject, _conversation(script, cast, day))
        threads += 1
    hypertensive = any(p.condition.code == "I10" for p in shared[0].problems)
    subject, script = TEAM_THREADS[0 if hypertensive else 1]
    cast = {"doctor": doctor, "nurse": nurse}
    messages += _thread(session, shared[0], "team", subject, _conversation(script, cast, day))
    return len(TASKS), threads + 1, messages


def _consent(
    session: Session, charts: list[Chart], tour_patient: Patient,
    teams: dict[uuid.UUID, list[tuple[User, str]]], other_doctors: list[User],
    organisations: dict[uuid.UUID, Organisation], now: datetime,
) -> int:  # fmt: skip
    """The tour patient lets a doctor of another organisation read their lab results for 30 days (through
    the consent service, so it is audited and the doctor is notified)."""
    chart = next((c for c in charts if c.patient is tour_patient), None)
    if chart is None or chart.account is None or not other_doctors:
        return 0
    carers = {u.id for u, _ in teams.get(tour_patient.id, [])}
    consultant = next((d for d in other_doctors if d.id not in carers), other_doctors[0])
    where = (
        organisations[consultant.organisation_id].name if consultant.organisation_id else "another hospital"
    )
    consent.grant(
        session,
        _principal(chart.account, tour_patient),
        consent.Grant(
            tour_patient.id,
            ("lab",),
            practitioner_id=consultant.id,
            expires_at=now + timedelta(days=30),
            note=f"Second opinion at {where}",
        ),
    )
    return 1
