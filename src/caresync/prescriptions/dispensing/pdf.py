"""The printable prescription: an A4 PDF with the signed QR code, for patients without a phone at hand.

Rendered from the ``prescriptions/pharmacy_print.html`` template by WeasyPrint (imported on first use:
it is slow to import). The QR code is embedded as a ``data:`` PNG; nothing else is fetched, so a
prescription's text can never make the renderer reach out to another address.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from caresync.identity.rules import format_health_id
from caresync.prescriptions.dispensing import qr
from caresync.prescriptions.models import Prescription
from caresync.prescriptions.rules import FREQUENCIES, ROUTES, fills_allowed, refills_left
from caresync.web.templating import TEMPLATES

TEMPLATE = "prescriptions/pharmacy_print.html"


def prescription_pdf(prescription: Prescription, code: str, issued_at: datetime) -> bytes:
    """The prescription as a PDF carrying ``code`` (issued at ``issued_at``) as a QR code and as text."""
    import weasyprint  # slow to import: only when a PDF is asked for

    png = base64.b64encode(qr.render_png(code)).decode()
    context: dict[str, Any] = {
        "rx": prescription,
        "patient": prescription.patient,
        "health_id": format_health_id(prescription.patient.health_id),
        "route": ROUTES.get(prescription.route, prescription.route),
        "frequency": FREQUENCIES[prescription.frequency][0] if prescription.frequency in FREQUENCIES else "",
        "fills_allowed": fills_allowed(prescription.refills),
        "refills_left": refills_left(prescription.refills, prescription.dispense_count),
        "issued_at": issued_at,
        "code": code,
        "qr_uri": f"data:image/png;base64,{png}",
    }
    html = TEMPLATES.env.get_template(TEMPLATE).render(context)
    return bytes(weasyprint.HTML(string=html, url_fetcher=data_only_fetcher()).write_pdf())


def data_only_fetcher() -> Any:
    """A WeasyPrint URL fetcher that loads ``data:`` URIs (the QR code) and nothing else."""
    import weasyprint

    return weasyprint.URLFetcher(allowed_protocols=("data",), fail_on_errors=True)
