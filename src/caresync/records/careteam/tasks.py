"""Care tasks: work one member of a patient's care team asks of another (or of themselves), with a due
date. The assignee is notified (in the app and live); the assignee or the creator completes or cancels it.
"My tasks" lists the open tasks assigned to a clinician across patients, overdue first. Tasks are the
care team's own work list: the patient does not see them. Every read and write is audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.notify import notify
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import CLINICIANS, Access
from caresync.core.text import clean_line, clean_text
from caresync.db import utcnow
from caresync.records.careteam.team import is_member, require_team_access, team_work_patient_ids
from caresync.records.models import CareTask
from caresync.records.rules import TASK_STATUSES

MAX_TITLE = 200
MAX_DETAIL = 5000
# A due date is "in the past" only once that day is over everywhere (UTC-12 is the last to finish it), so
# that nobody is refused today's date because of their time zone.
LATEST_ZONE = timedelta(hours=12)


@dataclass(frozen=True)
class TaskDraft:
    """A task to create."""

    patient_id: uuid.UUID
    title: str
    assignee_id: uuid.UUID
    due_on: date
    detail: str = ""


def earliest_due_date() -> date:
    """The earliest due date a new task may have (today, somewhere on Earth)."""
    return (utcnow() - LATEST_ZONE).date()


def is_overdue(task: CareTask, today: date | None = None) -> bool:
    """Whether an open task's due date has passed (UTC)."""
    return task.status == "open" and task.due_on < (today or utcnow().date())


def create_task(session: Session, principal: Principal, draft: TaskDraft) -> CareTask:
    """A doctor or nurse of the care team assigns a task to a member of that team (or to themselves)."""
    access = require_team_access(session, principal, draft.patient_id, "task.create", write=True)
    assert principal.user_id is not None  # only signed-in clinicians pass require_team_access
    title = clean_line(draft.title)
    if not title:
        raise ValidationFailed("Give the task a title.", extra={"field": "title"})
    if len(title) > MAX_TITLE:
        raise ValidationFailed(f"Keep the title under {MAX_TITLE} characters.", extra={"field": "title"})
    detail = clean_text(draft.detail)
    if len(detail) > MAX_DETAIL:
        raise ValidationFailed(f"Keep the details under {MAX_DETAIL} characters.", extra={"field": "detail"})
    if draft.due_on < earliest_due_date():
        raise ValidationFailed("The due date is in the past.", extra={"field": "due_on"})
    if draft.assignee_id != principal.user_id and not is_member(session, draft.patient_id, draft.assignee_id):
        raise ValidationFailed(
            "Assign the task to a member of the patient's care team (or to yourself).",
            extra={"field": "assignee_id"},
        )
    task = CareTask(
        patient_id=draft.patient_id,
        title=title,
        detail=detail,
        created_by=principal.user_id,
        assignee_id=draft.assignee_id,
        due_on=draft.due_on,
        status="open",
        created_at=utcnow(),
    )
    session.add(task)
    session.flush()
    audit.record(
        session,
        principal,
        "task.create",
        patient_id=draft.patient_id,
        resource_type="CareTask",
        resource_id=task.id,
        detail={"assignee_id": str(draft.assignee_id), "due_on": draft.due_on.isoformat()},
        flagged=access is Access.BREAK_GLASS,
    )
    if draft.assignee_id != principal.user_id:
        notify(
            session,
            draft.assignee_id,
            "task",
            f"New care task from {principal.full_name}",
            f"{title} (due {draft.due_on.isoformat()})",
            link="/tasks",
        )
    return task


def _ordered(query: Select[Any], status: str) -> tuple[Select[Any], bool]:
    if status not in TASK_STATUSES:
        raise ValidationFailed(
            f"Status must be one of: {', '.join(TASK_STATUSES)}.", extra={"field": "status"}
        )
    return query.where(CareTask.status == status), status != "open"  # open: soonest (overdue) first


def tasks_page(
    session: Session,
    principal: Principal,
    *,
    patient_id: uuid.UUID | None = None,
    status: str = "open",
    limit: int = 50,
    cursor: str | None = None,
) -> Page[CareTask]:
    """One page of a patient's tasks (for their care team), or, without ``patient_id``, of the tasks
    assigned to the principal for patients they still care for. Open tasks come soonest due first (so
    overdue ones lead); done and cancelled ones latest due first. Audited per patient."""
    if patient_id is not None:
        access = require_team_access(session, principal, patient_id, "task.list", write=False)
        query = select(CareTask).where(CareTask.patient_id == patient_id)
    else:
        _require_clinician(session, principal, "task.list")
        access = Access.CARE_TEAM
        query = select(CareTask).where(
            CareTask.assignee_id == principal.user_id,
            CareTask.patient_id.in_(team_work_patient_ids(principal)),
        )
    query, descending = _ordered(query, status)
    page = paginate(
        session,
        query,
        sort_column=CareTask.due_on,
        id_column=CareTask.id,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )
    listed = {task.patient_id for task in page.items} if patient_id is None else {patient_id}
    for listed_patient in sorted(listed):
        audit.record(
            session,
            principal,
            "task.list",
            patient_id=listed_patient,
            resource_type="CareTask",
            detail={"status": status, "mine": patient_id is None},
            flagged=access is Access.BREAK_GLASS,
        )
    return page


def list_tasks(
    session: Session,
    principal: Principal,
    *,
    patient_id: uuid.UUID | None = None,
    status: str = "open",
) -> list[CareTask]:
    """The first page (50) of :func:`tasks_page`: a patient's tasks, or mine across patients."""
    return tasks_page(session, principal, patient_id=patient_id, status=status).items


def _require_clinician(session: Session, principal: Principal, action: str) -> None:
    if principal.role not in CLINICIANS:
        audit.record_and_commit(session, principal, action, outcome="denied")
        raise Forbidden("Care tasks are for doctors and nurses.")


def complete_task(session: Session, principal: Principal, task_id: uuid.UUID) -> CareTask:
    """The assignee or the creator marks an open task done."""
    return _close(session, principal, task_id, "done")


def cancel_task(session: Session, principal: Principal, task_id: uuid.UUID) -> CareTask:
    """The assignee or the creator cancels an open task."""
    return _close(session, principal, task_id, "cancelled")


def _close(session: Session, principal: Principal, task_id: uuid.UUID, status: str) -> CareTask:
    action = "task.complete" if status == "done" else "task.cancel"
    task = session.get(CareTask, task_id, with_for_update=True)  # two closers: one wins, one is told
    if task is None:
        audit.record_and_commit(
            session, principal, action, outcome="denied", resource_type="CareTask", resource_id=task_id
        )
        raise NotFound("No such task.")
    try:
        access = require_team_access(session, principal, task.patient_id, action, write=True)
    except NotFound:
        raise NotFound("No such task.") from None
    if principal.user_id not in (task.assignee_id, task.created_by):
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=task.patient_id,
            resource_type="CareTask",
            resource_id=task.id,
        )
        raise Forbidden("Only the person the task is assigned to, or who created it, can close it.")
    if task.status != "open":
        raise Conflict(f"This task is already {task.status}.")
    task.status = status
    task.completed_at = utcnow()
    task.completed_by = principal.user_id
    session.flush()
    audit.record(
        session,
        principal,
        action,
        patient_id=task.patient_id,
        resource_type="CareTask",
        resource_id=task.id,
        flagged=access is Access.BREAK_GLASS,
    )
    if task.created_by != principal.user_id:
        verb = "done" if status == "done" else "cancelled"
        notify(
            session,
            task.created_by,
            "task",
            f"Care task {verb} by {principal.full_name}",
            task.title,
            link=f"/patients/{task.patient_id}/care#tasks",
        )
    return task
