"""Clinical notes in SOAP form (subjective, objective, assessment, plan) by the patient's care team.

A note is never edited: an amendment is a new note naming the one it amends, and both stay visible. Notes
obey the consent rule like records do: a note's category (``note`` or ``mental-health``) must be among the
categories the reader may read (:func:`caresync.records.consent.read_scope`), otherwise the note, and any
amendment of it, does not exist for them. Patients read their own notes (open notes); doctors and nurses of
the care team (or under break-glass) write them. Every read and write is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Access
from caresync.core.text import clean_text
from caresync.records.careteam.team import require_team_access
from caresync.records.consent import ReadScope, read_scope
from caresync.records.models import ClinicalNote
from caresync.records.rules import CATEGORIES, NOTE_CATEGORIES
from caresync.scheduling import booking

SOAP_FIELDS = ("subjective", "objective", "assessment", "plan")
MAX_SECTION = 20_000


@dataclass(frozen=True)
class NoteDraft:
    """What a new note says. ``category`` defaults to ``note`` (an amendment keeps the amended note's)."""

    patient_id: uuid.UUID
    subjective: str = ""
    objective: str = ""
    assessment: str = ""
    plan: str = ""
    category: str | None = None
    appointment_id: uuid.UUID | None = None
    amends_id: uuid.UUID | None = None


def write_note(session: Session, principal: Principal, draft: NoteDraft) -> ClinicalNote:
    """A doctor or nurse of the care team (or under break-glass) adds a note, or amends one."""
    access = require_team_access(session, principal, draft.patient_id, "note.create", write=True)
    sections = {name: clean_text(getattr(draft, name)) for name in SOAP_FIELDS}
    if not any(sections.values()):
        raise ValidationFailed(
            "Write at least one of subjective, objective, assessment or plan.", extra={"field": "subjective"}
        )
    for name, text in sections.items():
        if len(text) > MAX_SECTION:
            raise ValidationFailed(
                f"{name.capitalize()} is longer than {MAX_SECTION} characters.", extra={"field": name}
            )
    scope = read_scope(session, principal, draft.patient_id, "note.create")
    category = _category(session, scope, draft)
    if draft.appointment_id is not None and not booking.appointment_belongs_to(
        session, draft.appointment_id, draft.patient_id
    ):
        raise ValidationFailed("That appointment is not this patient's.", extra={"field": "appointment_id"})
    assert principal.user_id is not None  # only signed-in clinicians pass require_team_access
    note = ClinicalNote(
        patient_id=draft.patient_id,
        author_id=principal.user_id,
        category=category,
        appointment_id=draft.appointment_id,
        amends_id=draft.amends_id,
        **sections,
    )
    session.add(note)
    session.flush()
    audit.record(
        session,
        principal,
        "note.amend" if draft.amends_id else "note.create",
        patient_id=draft.patient_id,
        resource_type="ClinicalNote",
        resource_id=note.id,
        detail={"category": category, "amends": str(draft.amends_id) if draft.amends_id else None},
        flagged=access is Access.BREAK_GLASS,
    )
    return note


def _category(session: Session, scope: ReadScope, draft: NoteDraft) -> str:
    """The new note's category: checked against what the author may read (nobody writes what they could
    not read back), and for an amendment, the amended note's."""
    if draft.category is not None and draft.category not in NOTE_CATEGORIES:
        names = " or ".join(CATEGORIES[c].lower() for c in NOTE_CATEGORIES)
        raise ValidationFailed(f"A note is a {names}.", extra={"field": "category"})
    category = draft.category
    if draft.amends_id is not None:
        amended = session.get(ClinicalNote, draft.amends_id)
        if amended is None or amended.patient_id != draft.patient_id or not scope.allows(amended.category):
            raise ValidationFailed(
                "The note to amend is not in this patient's notes.", extra={"field": "amends_id"}
            )
        if category is not None and category != amended.category:
            raise ValidationFailed(
                "An amendment keeps the category of the note it amends.", extra={"field": "category"}
            )
        if session.execute(select(ClinicalNote.id).where(ClinicalNote.amends_id == amended.id)).first():
            raise Conflict("That note was already amended; amend its newest version instead.")
        category = amended.category
    category = category or "note"
    if not scope.allows(category):
        raise Forbidden(
            f"You may not write {CATEGORIES[category].lower()} notes: the patient has not shared that part "
            "of their record with you.",
            extra={"field": "category"},
        )
    return category


def _readable(scope: ReadScope, patient_id: uuid.UUID) -> Select[ClinicalNote]:
    """The patient's notes in the reader's categories; an amendment of a hidden note stays hidden too."""
    allowed = sorted(set(NOTE_CATEGORIES) & scope.categories)
    readable_ids = select(ClinicalNote.id).where(
        ClinicalNote.patient_id == patient_id, ClinicalNote.category.in_(allowed)
    )
    return select(ClinicalNote).where(
        ClinicalNote.patient_id == patient_id,
        ClinicalNote.category.in_(allowed),
        ClinicalNote.amends_id.is_(None) | ClinicalNote.amends_id.in_(readable_ids),
    )


def notes_page(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    limit: int = 20,
    cursor: str | None = None,
) -> Page[ClinicalNote]:
    """One page of the patient's notes the principal may read, newest first (audited)."""
    scope = read_scope(session, principal, patient_id, "note.list")
    page = paginate(
        session,
        _readable(scope, patient_id),
        sort_column=ClinicalNote.created_at,
        id_column=ClinicalNote.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    audit.record(
        session,
        principal,
        "note.list",
        patient_id=patient_id,
        resource_type="ClinicalNote",
        detail={"count": len(page.items), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return page


def list_notes(
    session: Session, principal: Principal, patient_id: uuid.UUID, *, limit: int = 20
) -> list[ClinicalNote]:
    """The newest ``limit`` notes of the patient the principal may read, newest first (audited)."""
    return notes_page(session, principal, patient_id, limit=limit).items


def get_note(session: Session, principal: Principal, note_id: uuid.UUID) -> ClinicalNote:
    """One note the principal may read (404 otherwise, audited)."""
    note = session.get(ClinicalNote, note_id)
    scope = None
    if note is not None:
        try:
            scope = read_scope(session, principal, note.patient_id, "note.read")
        except NotFound:
            raise NotFound("No such note.") from None
    visible = (
        note is not None
        and scope is not None
        and session.execute(_readable(scope, note.patient_id).where(ClinicalNote.id == note.id)).first()
    )
    if note is None or scope is None or not visible:
        audit.record_and_commit(
            session,
            principal,
            "note.read",
            outcome="denied",
            patient_id=note.patient_id if note else None,
            resource_type="ClinicalNote",
            resource_id=note_id,
        )
        raise NotFound("No such note.")
    audit.record(
        session,
        principal,
        "note.read",
        patient_id=note.patient_id,
        resource_type="ClinicalNote",
        resource_id=note.id,
        detail={"access": scope.access.value},
        flagged=scope.break_glass,
    )
    return note


def amended_ids(session: Session, notes: list[ClinicalNote]) -> dict[uuid.UUID, uuid.UUID]:
    """For each of ``notes`` that was amended: the id of its amendment."""
    ids = [note.id for note in notes]
    if not ids:
        return {}
    rows = session.execute(
        select(ClinicalNote.amends_id, ClinicalNote.id).where(ClinicalNote.amends_id.in_(ids))
    ).all()
    return {row.amends_id: row.id for row in rows}
