"""The consultation view: one page per patient for the doctor at the visit — the clinical summary
(allergies, problems, medications, latest vital signs), active prescriptions with their adherence, recent
records, notes and tasks, the latest imaging studies with their AI findings, and the latest scanned
documents."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from caresync.core.errors import Forbidden
from caresync.core.rbac import CLINICIANS
from caresync.documents.scans import service as scans
from caresync.imaging.studies import service as imaging
from caresync.prescriptions.access import CATEGORY as MEDICATIONS
from caresync.prescriptions.adherence.service import patient_adherence
from caresync.prescriptions.service import progress
from caresync.records.careteam import notes, tasks, team
from caresync.records.rules import CATEGORIES
from caresync.records.summary import clinical_summary
from caresync.web.deps import Db
from caresync.web.pagekit import PageUser, render_page

router = APIRouter(include_in_schema=False)
LATEST = 4  # imaging studies and scanned documents shown


@router.get("/patients/{patient_id}/consult")
def consultation(request: Request, db: Db, principal: PageUser, patient_id: uuid.UUID) -> Response:
    """Everything a doctor or nurse needs about the patient during the visit, within their consent."""
    if principal.role not in CLINICIANS:
        raise Forbidden("The consultation view is for doctors and nurses.")
    summary = clinical_summary(db, principal, patient_id)
    coordinates = team.may_coordinate(db, principal, patient_id)
    open_tasks = tasks.list_tasks(db, principal, patient_id=patient_id) if coordinates else []
    adherence = patient_adherence(db, principal, patient_id) if summary.scope.allows(MEDICATIONS) else None
    context = {
        "s": summary,
        "patient": summary.patient,
        "categories": CATEGORIES,
        "hidden": sorted(set(CATEGORIES) - summary.scope.categories),
        "notes": notes.list_notes(db, principal, patient_id, limit=5),
        "tasks": open_tasks,
        "overdue": {task.id for task in open_tasks if tasks.is_overdue(task)},
        "coordinates": coordinates,
        "adherence": adherence,
        "progress": progress,
        "studies": imaging.of_patient(db, principal, patient_id)[:LATEST],
        "scans": scans.inbox(db, principal, patient_id=patient_id, limit=LATEST).items,
    }
    return render_page(request, db, principal, "records/consult.html", context)
