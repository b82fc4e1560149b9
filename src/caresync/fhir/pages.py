"""The account page's "Apps" card: issue a scoped FHIR app token (shown once) from the browser."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from caresync.core.errors import DomainError
from caresync.fhir.tokens import HOUR_CHOICES, issue_app_token
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, render_page
from caresync.web.pages import security_context

router = APIRouter(include_in_schema=False)


@router.post("/account/app-tokens")
def app_token_issue(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Issue an app token with the chosen scopes; the page shows it once."""
    scope = values.get("custom_scope", "").strip() or values.get("scope", "")
    label = values.get("label", "").strip()[:120]
    hours = values.get("hours", "720")
    try:
        sign_in, granted = issue_app_token(
            db,
            principal,
            scope=scope,
            label=label,
            hours=int(hours) if hours in HOUR_CHOICES else 0,
            user_agent=request.headers.get("user-agent", ""),
        )
    except DomainError as exc:
        db.rollback()
        context = security_context(db, principal, app_errors={"scope": exc.detail}, app_values=values)
        return render_page(request, db, principal, "account/security.html", context, exc.status)
    db.commit()
    new_token = {"token": sign_in.token, "scope": granted, "expires_at": sign_in.auth_session.expires_at}
    context = security_context(db, principal, new_app_token=new_token)
    return render_page(request, db, principal, "account/security.html", context)
