"""The report's CSV and PDF exports: the CSV's columns and rows carry the same figures as the JSON report
(and defuse spreadsheet formulas); the PDF is a PDF naming the organisation; each export is audited; the
page's export buttons serve the same files."""

from __future__ import annotations

import csv
import io
import re
import uuid
import zlib
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.reports import export
from caresync.bloodbank.reports.service import (
    BloodBankReport,
    CrossmatchRatio,
    DonationSummary,
    OutdateRow,
    Period,
    StockRow,
    WastageRow,
)
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction
from tests.bloodbank.test_reports import PERIOD, Dataset, build_dataset
from tests.conftest import Cast, web_login

API = "/api/v1/bloodbank/reports"


@pytest.fixture
def dataset(cast: Cast, make: Any) -> Dataset:
    return build_dataset(cast, make)


def rows_of(data: bytes) -> list[dict[str, str]]:
    """The CSV's rows as dictionaries (it starts with a UTF-8 byte order mark)."""
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def inflated(pdf: bytes) -> bytes:
    """The PDF with its compressed (FlateDecode) streams inflated, where its metadata can be read."""
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, flags=re.DOTALL)
    return pdf + b"".join(zlib.decompressobj().decompress(data) for data in streams)


def audit_actions(user_id: Any) -> list[str]:
    with transaction(session_factory()) as s:
        query = select(AuditEntry.action).where(AuditEntry.actor_id == user_id).order_by(AuditEntry.seq)
        return list(s.scalars(query))


def test_csv_has_the_columns_and_the_figures(
    client: TestClient, dataset: Dataset, cast: Cast, sign_in: Any
) -> None:
    staff = cast["bloodbank_staff"]
    response = client.get(f"{API}/export.csv", params=PERIOD, headers=sign_in(staff))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        response.headers["content-disposition"]
        == 'attachment; filename="blood-bank-report-2026-01-01-2026-02-28.csv"'
    )
    header = response.content.decode("utf-8-sig").splitlines()[0]
    assert header == "section,month,blood_group,component,reason,measure,value"
    rows = rows_of(response.content)

    def value(section: str, measure: str, **keys: str) -> str:
        found = [
            r["value"]
            for r in rows
            if r["section"] == section and r["measure"] == measure and all(r[k] == v for k, v in keys.items())
        ]
        assert len(found) == 1, (section, measure, keys, found)
        return found[0]

    assert value("report", "organisation") == dataset.org.name
    assert (value("report", "from"), value("report", "to")) == ("2026-01-01", "2026-02-28")
    assert value("stock", "reserved", blood_group="O+", component="red_cells") == "2"
    assert value("utilisation", "transfused", blood_group="AB+", component="red_cells") == "1"
    assert value("utilisation_by_month", "issued", month="2026-02") == "2"
    assert value("outdates", "outdate_rate", component="all") == "0.2222"
    assert value("outdates", "left_inventory", component="red_cells") == "6"
    assert value("wastage", "units", component="plasma", reason="broken bag") == "2"
    assert value("crossmatch", "ct_ratio") == "1.3300"
    assert value("crossmatch", "ct_benchmark") == "2.0"
    assert value("donations_by_month", "completed", month="2026-02", blood_group="untyped") == "1"
    assert value("donations", "deferral_rate") == "0.1667"
    assert {r["section"] for r in rows} == {
        "report",
        "stock",
        "utilisation",
        "utilisation_by_month",
        "outdates",
        "wastage",
        "crossmatch",
        "donations_by_month",
        "donations",
    }
    assert audit_actions(staff.id)[-1] == "bloodbank.reports.export_csv"


def _report(reason: str) -> BloodBankReport:
    return BloodBankReport(
        organisation_id=uuid.uuid4(),
        organisation_name='=HYPERLINK("http://evil")',
        period=Period(date(2026, 1, 1), date(2026, 1, 31)),
        generated_at=datetime(2026, 2, 1, tzinfo=UTC),
        stock=[StockRow("O-", "red_cells", 1, 0, 0)],
        utilisation=[],
        utilisation_by_month=[],
        outdates=[OutdateRow("all", 0, 0)],
        wastage=[WastageRow("red_cells", reason, 1)],
        crossmatch=CrossmatchRatio(0, 0),
        donations_by_month=[],
        donations=DonationSummary(0, 0, 0),
    )


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("reason", "written"),
    [("=1+2", "'=1+2"), ("+cmd", "'+cmd"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("dropped", "dropped")],
    ids=["equals", "plus", "minus", "at", "plain"],
)
def test_csv_defuses_spreadsheet_formulas(reason: str, written: str) -> None:
    rows = rows_of(export.report_csv(_report(reason)))
    assert next(r["reason"] for r in rows if r["section"] == "wastage") == written
    assert next(r["value"] for r in rows if r["measure"] == "organisation").startswith("'=")
    assert next(r["value"] for r in rows if r["measure"] == "outdate_rate") == ""  # no rate without units


def test_pdf_is_a_pdf_naming_the_organisation(
    client: TestClient, dataset: Dataset, cast: Cast, sign_in: Any
) -> None:
    admin = cast["admin"]
    response = client.get(f"{API}/export.pdf", params=PERIOD, headers=sign_in(admin))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].endswith(
        'filename="blood-bank-report-2026-01-01-2026-02-28.pdf"'
    )
    assert response.content.startswith(b"%PDF-")
    assert response.content.rstrip().endswith(b"%%EOF")
    # the document's title (plain text in its metadata) names the organisation and the period
    title = f"Blood bank report - {dataset.org.name} - 2026-01-01 to 2026-02-28".encode()
    assert title in inflated(response.content)
    assert audit_actions(admin.id)[-1] == "bloodbank.reports.export_pdf"


@pytest.mark.parametrize(("kind", "media"), [("csv", "text/csv"), ("pdf", "application/pdf")])
def test_the_page_buttons_download_the_same_files(
    client: TestClient, dataset: Dataset, cast: Cast, kind: str, media: str
) -> None:
    web_login(client, cast["bloodbank_staff"])
    response = client.get(f"/bloodbank/reports/export.{kind}", params=PERIOD)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    assert response.headers["content-disposition"].startswith("attachment;")
    if kind == "csv":
        assert {"section": "crossmatch", "measure": "crossmatched", "value": "4"}.items() <= next(
            r for r in rows_of(response.content) if r["measure"] == "crossmatched"
        ).items()


def test_a_malformed_date_in_an_export_link_is_explained(client: TestClient, cast: Cast) -> None:
    web_login(client, cast["bloodbank_staff"])
    response = client.get(
        "/bloodbank/reports/export.csv", params={"from": "soon"}, headers={"Accept": "text/html"}
    )
    assert response.status_code == 422
    assert "Enter a date as YYYY-MM-DD." in response.text
