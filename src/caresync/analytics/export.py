"""Downloads shared by the analytics endpoints: every answer as a JSON file, and its table as CSV
(``?format=csv|json``; see :mod:`caresync.core.csvfile` for the CSV rules)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel

from caresync.core.csvfile import csv_download

OrganisationId = Annotated[
    uuid.UUID | None, Query(description="one organisation of your scope; omitted: all of them")
]
Format = Annotated[
    Literal["csv", "json"] | None,
    Query(alias="format", description="download the table as CSV, or the answer as a JSON file"),
]
EXPORTS: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/csv": {}, "application/json": {}}, "description": "the answer, or its export"}
}


def download(body: BaseModel, csv: bytes, name: str, export: str) -> Response:
    """The answer as a CSV (its table) or JSON file to save, named ``caresync-<name>.<format>``."""
    filename = f"caresync-{name}.{export}"
    if export == "csv":
        return csv_download(csv, filename)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body.model_dump_json().encode(), media_type="application/json", headers=headers)
