"""The imaging condition catalog: which tasks (model heads) exist, what images each accepts, and which
conditions (with ICD-10 codes) each one covers. The data itself lives in :mod:`catalog_data`."""

from __future__ import annotations

import re

from caresync.core.errors import ValidationFailed
from caresync.imaging.catalog_data import CONDITION_LIST, TASK_LIST, Condition, Task

__all__ = [
    "CONDITIONS",
    "TASKS",
    "Condition",
    "Task",
    "conditions_of",
    "get_task",
    "label_of",
    "tasks_for",
]

TASKS: dict[str, Task] = {task.key: task for task in TASK_LIST}
CONDITIONS: tuple[Condition, ...] = CONDITION_LIST


def get_task(key: str) -> Task:
    """The task called ``key``; ValidationFailed (422) naming the known tasks otherwise."""
    try:
        return TASKS[key]
    except KeyError:
        raise ValidationFailed(
            f"Unknown imaging task {key!r}. Known tasks: {', '.join(sorted(TASKS))}."
        ) from None


def conditions_of(task_key: str) -> tuple[Condition, ...]:
    """The conditions the task ``task_key`` covers, in catalog order (empty for anatomy/cell-type tasks)."""
    get_task(task_key)
    return tuple(condition for condition in CONDITIONS if condition.task == task_key)


def tasks_for(modality: str | None, body_part: str | None, channels: int) -> list[Task]:
    """The tasks whose input contract an image fits.

    Channels must match. A DICOM modality must be one the task accepts (PNG/JPEG have none and fit by
    channels alone); a body part, when the image states one and the task restricts them, must be listed.
    """
    found = []
    for task in TASKS.values():
        if task.channels != channels:
            continue
        if modality and modality.upper() not in task.modalities:
            continue
        if body_part and task.body_parts and _norm_dicom(body_part) not in task.body_parts:
            continue
        found.append(task)
    return found


def label_of(task: Task, name: str) -> str | None:
    """The task's label a dataset folder or code ``name`` stands for (case, spaces, ``_``/``-`` ignored;
    the task's aliases understood), or None."""
    wanted = _norm_label(name)
    for label in task.labels:
        if _norm_label(label) == wanted:
            return label
    for alias, label in task.aliases:
        if _norm_label(alias) == wanted:
            return label
    return None


def _norm_dicom(value: str) -> str:
    return value.strip().upper()


def _norm_label(value: str) -> str:
    return re.sub(r"[\s_\-]+", " ", value.strip().lower())
