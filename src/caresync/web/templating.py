"""Jinja2 set-up for the HTML pages: the template folder, filters and per-request globals."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from caresync import __version__
from caresync.core import localtime
from caresync.core.auth import Principal
from caresync.identity.rules import format_health_id
from caresync.scheduling.rules import INSURANCE_PLANS, LANGUAGES, SPECIALTIES

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

ROLE_LABELS = {
    "admin": "Administrator",
    "doctor": "Doctor",
    "nurse": "Nurse",
    "patient": "Patient",
    "donor": "Donor",
    "bloodbank_staff": "Blood bank staff",
    "pharmacist": "Pharmacist",
    "system": "System",
    "anonymous": "Anonymous",
}

# (label, href, icon, roles that see it)
NAVIGATION: tuple[tuple[str, str, str, frozenset[str]], ...] = (
    ("Dashboard", "/", "layout-dashboard", frozenset(ROLE_LABELS)),
    ("Patients", "/patients", "users", frozenset({"doctor", "nurse"})),
    ("Analytics", "/analytics", "chart-line", frozenset({"admin", "doctor", "nurse"})),
    ("Analytics reports", "/analytics/reports", "file-analytics", frozenset({"admin", "doctor", "nurse"})),
    ("Find a doctor", "/doctors", "stethoscope", frozenset({"patient"})),
    ("My appointments", "/appointments", "calendar", frozenset({"patient"})),
    ("My place in the queue", "/me/queue", "clock-hour-4", frozenset({"patient"})),
    ("Clinic day", "/schedule/day", "calendar-event", frozenset({"doctor", "nurse"})),
    ("Clinic queue", "/queue", "list-numbers", frozenset({"doctor", "nurse"})),
    ("My health record", "/me/records", "file-text", frozenset({"patient"})),
    ("My care team and notes", "/me/care", "heart-handshake", frozenset({"patient"})),
    ("My medications", "/me/medications", "pill", frozenset({"patient"})),
    ("My activities", "/me/activities", "flame", frozenset({"patient"})),
    ("Pharmacy counter", "/pharmacy", "qrcode", frozenset({"pharmacist"})),
    ("Prescription requests", "/prescriptions/requests", "refresh", frozenset({"doctor"})),
    ("Low adherence", "/prescriptions/adherence", "chart-bar", frozenset({"doctor", "nurse"})),
    (
        "Health articles",
        "/articles",
        "news",
        frozenset({"patient", "donor", "doctor", "nurse", "admin", "pharmacist"}),
    ),
    ("Messages", "/messages", "messages", frozenset({"patient", "doctor", "nurse"})),
    ("Care tasks", "/tasks", "checklist", frozenset({"doctor", "nurse"})),
    ("Search documents", "/documents/search", "file-search", frozenset({"doctor", "nurse"})),
    ("Scanned documents", "/documents/scans", "scan", frozenset({"doctor", "nurse"})),
    ("Imaging studies", "/imaging/studies", "photo-scan", frozenset({"doctor", "nurse"})),
    ("Imaging models", "/imaging/models", "brain", frozenset({"admin", "doctor", "nurse"})),
    ("My profile", "/me/profile", "id-badge-2", frozenset({"patient"})),
    ("Who reads my record", "/me/consents", "user-check", frozenset({"patient"})),
    ("Share links", "/me/shares", "share", frozenset({"patient"})),
    ("Who saw my data", "/me/access", "eye", frozenset({"patient"})),
    ("Order blood", "/blood-requests", "droplet", frozenset({"doctor", "nurse"})),
    ("Blood stock", "/bloodbank/stock", "droplet", frozenset({"bloodbank_staff"})),
    ("Blood requests", "/bloodbank/requests", "clipboard-list", frozenset({"bloodbank_staff"})),
    ("Donors", "/bloodbank/donors", "users-group", frozenset({"bloodbank_staff"})),
    ("Transfers", "/bloodbank/transfers", "truck-delivery", frozenset({"bloodbank_staff"})),
    ("Blood alerts and call-outs", "/bloodbank/alerts", "alert-triangle", frozenset({"bloodbank_staff"})),
    (
        "Blood network",
        "/bloodbank/network",
        "map-pin",
        frozenset({"bloodbank_staff", "doctor", "nurse", "admin"}),
    ),
    ("Blood supply analytics", "/analytics/blood", "chart-line", frozenset({"bloodbank_staff", "admin"})),
    ("Blood reports", "/bloodbank/reports", "report-analytics", frozenset({"bloodbank_staff", "admin"})),
    ("My donations", "/donor", "droplet-heart", frozenset({"donor"})),
    ("Calls for donors", "/donor/callouts", "speakerphone", frozenset({"donor"})),
    ("Need for my blood group", "/analytics/blood", "chart-line", frozenset({"donor"})),
    ("Staff", "/admin/users", "user-cog", frozenset({"admin"})),
    ("Licences", "/admin/credentials", "certificate", frozenset({"admin"})),
    ("Backups", "/admin/backups", "database-export", frozenset({"admin"})),
    ("Risk models", "/analytics/risk/models", "brain", frozenset({"admin"})),
    ("Working hours", "/admin/schedules", "clock", frozenset({"admin"})),
    ("Triage settings", "/queue/settings", "adjustments", frozenset({"admin"})),
    ("Record access policy", "/admin/record-policy", "lock-access", frozenset({"admin"})),
    ("Blood bank settings", "/bloodbank/settings", "adjustments-horizontal", frozenset({"admin"})),
    ("Audit log", "/admin/audit", "shield-check", frozenset({"admin"})),
    ("My licence", "/me/credentials", "certificate", frozenset({"doctor", "nurse", "pharmacist"})),
    ("Notifications", "/notifications", "bell", frozenset(ROLE_LABELS)),
    ("Security", "/account/security", "lock", frozenset(ROLE_LABELS)),
)


def active_navigation(nav: list[tuple[str, str, str]], path: str) -> str | None:
    """The menu entry a path belongs to: the longest entry that is the path or a parent of it (so
    ``/donor/callouts`` lights "Calls for donors", not "My donations" as well)."""
    matches = [href for _, href, _ in nav if path == href or (href != "/" and path.startswith(href + "/"))]
    return max(matches, key=len, default=None)


def _iso(value: datetime | date | None) -> str:
    return value.isoformat() if value else ""


def _age(birth: date | None) -> str:
    if not birth:
        return ""
    today = date.today()
    return str(today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day)))


TEMPLATES.env.filters["iso"] = _iso
TEMPLATES.env.filters["age"] = _age
TEMPLATES.env.filters["health_id"] = format_health_id
TEMPLATES.env.filters["role_label"] = lambda r: ROLE_LABELS.get(r, r)
TEMPLATES.env.filters["specialty_name"] = lambda code: SPECIALTIES.get(code, code)
TEMPLATES.env.filters["plan_name"] = lambda code: INSURANCE_PLANS.get(code, code)
TEMPLATES.env.filters["language_name"] = lambda code: LANGUAGES.get(code, code)
TEMPLATES.env.filters["fromjson"] = json.loads
TEMPLATES.env.globals["version"] = __version__
TEMPLATES.env.globals["time_zones"] = sorted(localtime.known_zones())


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    principal: Principal | None = None,
    csrf: str = "",
    unread: int = 0,
) -> HTMLResponse:
    """Render a page with the navigation for the signed-in user."""
    nav = []
    resolved = getattr(request.state, "resolved", None)
    if principal is not None and (resolved is None or resolved.stage == "full"):
        nav = [(label, href, icon) for label, href, icon, roles in NAVIGATION if principal.role in roles]
    ctx = {
        "user": principal,
        "nav": nav,
        "csrf_token": csrf,
        "unread": unread,
        "messages_unread": None,  # unknown unless the page counts it; the browser then fetches it
        "path": request.url.path,
        "active_nav": active_navigation(nav, request.url.path),
    }
    ctx.update(context or {})
    return TEMPLATES.TemplateResponse(request, template, ctx, status_code=status_code)
