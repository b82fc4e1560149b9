"""The blood bank reports page (``/bloodbank/reports``): a period picker, every figure of the report in
tables, Chart.js charts of utilisation, donations and stock, and CSV/PDF export buttons.

The page script (``/bloodbank/reports/charts.js``) reads the figures from a JSON data block: the site's
Content-Security-Policy runs no inline script."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from caresync.bloodbank.reports import service
from caresync.bloodbank.reports.api import csv_download, pdf_download
from caresync.bloodbank.reports.service import BloodBankReport
from caresync.core.errors import ValidationFailed
from caresync.identity.rules import BLOOD_GROUPS
from caresync.web.deps import Db
from caresync.web.pagekit import PageUser, domain_field_errors, render_page

router = APIRouter(include_in_schema=False)
TEMPLATE = "bloodbank/reports/index.html"
CHARTS_SCRIPT = Path(__file__).parents[2] / "web" / "templates" / "bloodbank" / "reports" / "charts.js"
FromText = Query("", alias="from", max_length=20)
ToText = Query("", alias="to", max_length=20)
BAD_DATE = "Enter a date as YYYY-MM-DD."


@router.get("/bloodbank/reports")
def reports(
    request: Request, db: Db, principal: PageUser, date_from: str = FromText, date_to: str = ToText
) -> Response:
    """The report of the signed-in user's organisation for the chosen period (the last 90 days first)."""
    values = {"from": date_from.strip(), "to": date_to.strip()}
    errors: dict[str, str] = {}
    bounds = {name: _date(text, name, errors) for name, text in values.items()}
    report: BloodBankReport | None = None
    if not errors:
        try:
            report = service.organisation_report(db, principal, bounds["from"], bounds["to"])
        except ValidationFailed as exc:
            db.rollback()
            errors = domain_field_errors(exc)
    if report is not None:
        values = {"from": report.period.date_from.isoformat(), "to": report.period.date_to.isoformat()}
    context: dict[str, Any] = {
        "report": report,
        "values": values,
        "errors": errors,
        "charts": chart_data(report) if report else None,
        "query": f"from={values['from']}&to={values['to']}",
    }
    return render_page(request, db, principal, TEMPLATE, context, 422 if errors else 200)


@router.get("/bloodbank/reports/export.csv")
def export_csv(db: Db, principal: PageUser, date_from: str = FromText, date_to: str = ToText) -> Response:
    """The report as CSV (the page's export button)."""
    return csv_download(db, principal, *_period_dates(date_from, date_to))


@router.get("/bloodbank/reports/export.pdf")
def export_pdf(db: Db, principal: PageUser, date_from: str = FromText, date_to: str = ToText) -> Response:
    """The report as a PDF (the page's export button)."""
    return pdf_download(db, principal, *_period_dates(date_from, date_to))


@router.get("/bloodbank/reports/charts.js")
def charts_script() -> Response:
    """The page's chart script (static code, no data: public like the other scripts)."""
    return Response(_script(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


def chart_data(report: BloodBankReport) -> dict[str, Any]:
    """What the charts draw: monthly utilisation, monthly donations by blood group, stock by group."""
    months = report.period.months
    donated: dict[str, dict[str, int]] = {}
    for row in report.donations_by_month:
        donated.setdefault(row.blood_group, dict.fromkeys(months, 0))[row.month] = row.completed
    stock = {
        measure: [sum(getattr(s, measure) for s in report.stock if s.blood_group == g) for g in BLOOD_GROUPS]
        for measure in ("available", "reserved", "quarantined")
    }
    return {
        "months": months,
        "issued": [m.issued for m in report.utilisation_by_month],
        "transfused": [m.transfused for m in report.utilisation_by_month],
        "donations": [{"group": g, "counts": list(by_month.values())} for g, by_month in donated.items()],
        "groups": list(BLOOD_GROUPS),
        "stock": stock,
    }


def _date(text: str, name: str, errors: dict[str, str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = BAD_DATE
        return None


def _period_dates(date_from: str, date_to: str) -> tuple[date | None, date | None]:
    errors: dict[str, str] = {}
    bounds = (_date(date_from.strip(), "from", errors), _date(date_to.strip(), "to", errors))
    if errors:
        name, message = next(iter(errors.items()))
        raise ValidationFailed(message, extra={"field": name})
    return bounds


@cache
def _script() -> bytes:
    return CHARTS_SCRIPT.read_bytes()
