"""Credential endpoints under ``/api/v1/credentials``: a clinician's own verification and submission, the
administrator's review queue, one credential and its document, review and suspension."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import Response

from caresync.core.errors import ValidationFailed
from caresync.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from caresync.identity.credentials import service
from caresync.identity.credentials.models import PENDING
from caresync.identity.credentials.schemas import (
    CredentialOut,
    CredentialPage,
    MyCredentialsOut,
    ReviewIn,
    SuspendIn,
)
from caresync.identity.models import User
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/credentials", tags=["credentials"])
# A document may be previewed in a frame of our own pages, and nothing in it may load or run anything.
DOCUMENT_HEADERS = {
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'",
}
EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}


def _user(db: Db, user_id: uuid.UUID) -> User:
    user = db.get(User, user_id)
    assert user is not None  # a credential's holder, or the signed-in caller
    return user


@router.get("/me", response_model=MyCredentialsOut)
def my_credentials(principal: CurrentUser, db: Db) -> MyCredentialsOut:
    """Whether you hold a valid approved licence today, and your submissions, newest first."""
    rows = service.my_credentials(db, principal)
    assert principal.user_id is not None  # my_credentials admits signed-in clinicians only
    holder = _user(db, principal.user_id)
    out = MyCredentialsOut(
        verified=service.is_verified(db, principal.user_id),
        credentials=[CredentialOut.of(c, holder) for c in rows],
    )
    db.commit()
    return out


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CredentialOut)
def submit(
    principal: CurrentUser,
    db: Db,
    registration_number: Annotated[str, Form(max_length=40)],
    issuing_body: Annotated[str, Form(max_length=200)],
    issued_on: Annotated[date, Form()],
    expires_on: Annotated[date, Form()],
    document: Annotated[UploadFile | None, File(description="the licence: PDF, PNG or JPEG")] = None,
) -> CredentialOut:
    """Submit your licence (doctors, nurses and pharmacists) for review by your organisation's
    administrators. A submission still waiting for review is replaced."""
    if document is None or not document.filename:
        raise ValidationFailed("Attach the licence document (PDF, PNG or JPEG).", extra={"field": "document"})
    data = document.file.read()  # already received and spooled by the framework
    submission = service.Submission(
        registration_number, issuing_body, issued_on, expires_on, document.filename
    )
    credential = service.submit(db, principal, submission, data)
    out = CredentialOut.of(credential, _user(db, credential.user_id))
    db.commit()
    return out


@router.get("", response_model=CredentialPage)
def review_queue(
    principal: CurrentUser,
    db: Db,
    status: Annotated[str, Query(max_length=20)] = PENDING,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> CredentialPage:
    """Administrators: credentials of your organisation's staff with ``status`` (pending by default, oldest
    first; other statuses newest first)."""
    page = service.pending_for_review(db, principal, status=status, limit=limit, cursor=cursor)
    out = CredentialPage(items=[CredentialOut.of(c, h) for c, h in page.items], next_cursor=page.next_cursor)
    db.commit()
    return out


@router.get("/{credential_id}", response_model=CredentialOut)
def get_credential(credential_id: uuid.UUID, principal: CurrentUser, db: Db) -> CredentialOut:
    """One credential: for its holder and the administrators of their organisation."""
    out = CredentialOut.of(*service.get(db, principal, credential_id))
    db.commit()
    return out


@router.get("/{credential_id}/document", response_class=Response)
def credential_document(
    credential_id: uuid.UUID, principal: CurrentUser, db: Db, download: bool = False
) -> Response:
    """The licence document, decrypted: shown inline (for previews) unless ``download`` is set."""
    credential, data = service.document(db, principal, credential_id)
    disposition = "attachment" if download else "inline"
    name = f"licence-{credential.id}.{EXTENSIONS.get(credential.media_type, 'bin')}"
    response = Response(
        data,
        media_type=credential.media_type,
        headers={"Content-Disposition": f'{disposition}; filename="{name}"', **DOCUMENT_HEADERS},
    )
    db.commit()
    return response


@router.post("/{credential_id}/review", response_model=CredentialOut)
def review(credential_id: uuid.UUID, body: ReviewIn, principal: CurrentUser, db: Db) -> CredentialOut:
    """Administrators of the holder's organisation: approve or reject a pending credential (a rejection
    needs a reason, which the clinician reads)."""
    credential = service.review(db, principal, credential_id, body.decision, body.reason)
    out = CredentialOut.of(credential, _user(db, credential.user_id))
    db.commit()
    return out


@router.post("/{credential_id}/suspend", response_model=CredentialOut)
def suspend(credential_id: uuid.UUID, body: SuspendIn, principal: CurrentUser, db: Db) -> CredentialOut:
    """Administrators of the holder's organisation: suspend an approved credential, with a reason."""
    credential = service.suspend(db, principal, credential_id, body.reason)
    out = CredentialOut.of(credential, _user(db, credential.user_id))
    db.commit()
    return out
