"""Blood bank report endpoints (blood bank staff and administrators, for their own organisation):
``GET /api/v1/bloodbank/reports?from=&to=`` as JSON, and the same figures as ``export.csv`` and
``export.pdf``. The period is whole UTC days, by default the last 90 days."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from caresync.bloodbank.reports import export, service
from caresync.bloodbank.reports.schemas import ReportOut
from caresync.core.auth import Principal
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/bloodbank", tags=["blood bank"])
DateFrom = Annotated[date | None, Query(alias="from", description="first day (UTC); default 90 days ago")]
DateTo = Annotated[date | None, Query(alias="to", description="last day (UTC), included; default today")]
CSV_RESPONSE: dict[int | str, dict[str, object]] = {200: {"content": {"text/csv": {}}}}
PDF_RESPONSE: dict[int | str, dict[str, object]] = {200: {"content": {"application/pdf": {}}}}


def download(data: bytes, media_type: str, name: str) -> Response:
    """A file to save (``Content-Disposition: attachment``)."""
    return Response(
        data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/reports", response_model=ReportOut)
def report(principal: CurrentUser, db: Db, date_from: DateFrom = None, date_to: DateTo = None) -> ReportOut:
    """Stock now, utilisation, outdates and wastage, the crossmatch-to-transfusion ratio and donation trends
    of the caller's organisation for the period."""
    out = ReportOut.of(service.organisation_report(db, principal, date_from, date_to))
    db.commit()
    return out


@router.get("/reports/export.csv", response_class=Response, responses=CSV_RESPONSE)
def report_csv(
    principal: CurrentUser, db: Db, date_from: DateFrom = None, date_to: DateTo = None
) -> Response:
    """The report as CSV: one figure per row (section, month, blood_group, component, reason, measure,
    value)."""
    return csv_download(db, principal, date_from, date_to)


@router.get("/reports/export.pdf", response_class=Response, responses=PDF_RESPONSE)
def report_pdf(
    principal: CurrentUser, db: Db, date_from: DateFrom = None, date_to: DateTo = None
) -> Response:
    """The report as an A4 PDF."""
    return pdf_download(db, principal, date_from, date_to)


def csv_download(db: Session, principal: Principal, date_from: date | None, date_to: date | None) -> Response:
    """The CSV export (audited), ending the handler's transaction (for the API and the page alike)."""
    built = service.organisation_report(db, principal, date_from, date_to)
    service.record_export(db, principal, built, "csv")
    response = download(export.report_csv(built), "text/csv; charset=utf-8", export.file_name(built, "csv"))
    db.commit()
    return response


def pdf_download(db: Session, principal: Principal, date_from: date | None, date_to: date | None) -> Response:
    """The PDF export (audited), ending the handler's transaction (for the API and the page alike)."""
    built = service.organisation_report(db, principal, date_from, date_to)
    service.record_export(db, principal, built, "pdf")
    db.commit()  # rendering takes a while: hold no database lock meanwhile (the report is plain data)
    return download(export.report_pdf(built), "application/pdf", export.file_name(built, "pdf"))
