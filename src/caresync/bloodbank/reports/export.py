"""The blood bank report as files: a CSV with one figure per row (easy to filter or pivot in a spreadsheet)
and an A4 PDF rendered from the ``bloodbank/reports/print.html`` template by WeasyPrint (imported on first
use: it is slow to import). The PDF fetches nothing: the template carries every style it needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from caresync.bloodbank.reports.service import BloodBankReport
from caresync.core.csvfile import csv_table
from caresync.web.templating import TEMPLATES

CSV_COLUMNS = ("section", "month", "blood_group", "component", "reason", "measure", "value")
PDF_TEMPLATE = "bloodbank/reports/print.html"

Row = tuple[str, str, str, str, str, str, Any]


def file_name(report: BloodBankReport, extension: str) -> str:
    """A sensible name to save the file under."""
    period = report.period
    return f"blood-bank-report-{period.date_from.isoformat()}-{period.date_to.isoformat()}.{extension}"


def report_csv(report: BloodBankReport) -> bytes:
    """The report as CSV (see :mod:`caresync.core.csvfile`)."""
    return csv_table(CSV_COLUMNS, csv_rows(report))


def csv_rows(report: BloodBankReport) -> Iterator[Row]:
    """Every figure of the report as ``(section, month, blood_group, component, reason, measure, value)``."""
    period = report.period
    yield ("report", "", "", "", "", "organisation", report.organisation_name)
    yield ("report", "", "", "", "", "from", period.date_from.isoformat())
    yield ("report", "", "", "", "", "to", period.date_to.isoformat())
    yield ("report", "", "", "", "", "generated_at", report.generated_at.isoformat())
    for s in report.stock:
        for measure in ("available", "reserved", "quarantined"):
            yield ("stock", "", s.blood_group, s.component, "", measure, getattr(s, measure))
    for u in report.utilisation:
        yield ("utilisation", "", u.blood_group, u.component, "", "issued", u.issued)
        yield ("utilisation", "", u.blood_group, u.component, "", "transfused", u.transfused)
    for m in report.utilisation_by_month:
        yield ("utilisation_by_month", m.month, "", "", "", "issued", m.issued)
        yield ("utilisation_by_month", m.month, "", "", "", "transfused", m.transfused)
    for o in report.outdates:
        yield ("outdates", "", "", o.component, "", "expired", o.expired)
        yield ("outdates", "", "", o.component, "", "left_inventory", o.left_inventory)
        yield ("outdates", "", "", o.component, "", "outdate_rate", _ratio(o.rate))
    for w in report.wastage:
        yield ("wastage", "", "", w.component, w.reason, "units", w.units)
    ct = report.crossmatch
    yield ("crossmatch", "", "", "", "", "crossmatched", ct.crossmatched)
    yield ("crossmatch", "", "", "", "", "transfused", ct.transfused)
    yield ("crossmatch", "", "", "", "", "ct_ratio", _ratio(ct.ratio))
    yield ("crossmatch", "", "", "", "", "ct_benchmark", ct.benchmark)
    for d in report.donations_by_month:
        yield ("donations_by_month", d.month, d.blood_group, "", "", "completed", d.completed)
    summary = report.donations
    for measure in ("completed", "deferred", "incomplete", "visits"):
        yield ("donations", "", "", "", "", measure, getattr(summary, measure))
    yield ("donations", "", "", "", "", "deferral_rate", _ratio(summary.deferral_rate))


def report_pdf(report: BloodBankReport) -> bytes:
    """The report as an A4 PDF (tables of every figure, with the benchmark beside the C:T ratio)."""
    import weasyprint  # slow to import: only when a PDF is asked for

    html = TEMPLATES.env.get_template(PDF_TEMPLATE).render({"report": report})
    fetcher = weasyprint.URLFetcher(allowed_protocols=("data",), fail_on_errors=True)
    return bytes(weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf())


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
