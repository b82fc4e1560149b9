"""Record sharing endpoints under ``/api/v1/records``.

The patient manages shares at ``/shares``. Whoever holds a share needs no account:

- with the link's token: ``GET /shared/{token}`` lists the records (each verified), and
  ``GET /shared/{token}/records/{record_id}/file`` returns one file;
- with the short code: ``POST /shared/redeem`` with ``{"code": "ABCD-EFGH-JKMN"}`` returns the same listing
  plus an ``access_key`` (valid for an hour) to use in place of ``{token}`` in those addresses. The code is
  sent in the body, never in an address; wrong codes are throttled per client address (429).

The token or key in the address is the credential (access logs redact it)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import Response

from caresync.records.api import file_response
from caresync.records.sharing import service
from caresync.records.sharing.schemas import (
    RedeemIn,
    ShareCreatedOut,
    SharedViewOut,
    ShareIn,
    ShareOut,
    SharePage,
)
from caresync.web.deps import CurrentUser, Db, client_ip

router = APIRouter(prefix="/api/v1/records", tags=["record sharing"])
Key = Annotated[str, Path(min_length=1, max_length=200, description="a share link's token, or an access key")]
FILE_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}, "text/plain": {}}}
}


@router.post("/shares", status_code=status.HTTP_201_CREATED, response_model=ShareCreatedOut)
def create_share(body: ShareIn, principal: CurrentUser, db: Db) -> ShareCreatedOut:
    """The patient shares chosen records for a limited time. The link, token and code are in this response
    only: only their digests are kept."""
    created = service.create_share(
        db,
        principal,
        body.patient_id,
        body.record_ids,
        expires_in_hours=body.expires_in_hours,
        expires_at=body.expires_at,
        label=body.label,
    )
    out = ShareCreatedOut(
        **ShareOut.of(created.share).model_dump(),
        token=created.token,
        code=created.code,
        url=created.url,
        code_url=service.code_page_url(),
    )
    db.commit()
    return out


@router.get("/shares", response_model=SharePage)
def list_shares(
    patient_id: uuid.UUID,
    principal: CurrentUser,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SharePage:
    """The patient's shares, newest first, with their status and how often they were used."""
    page = service.list_shares(db, principal, patient_id, limit=limit, cursor=cursor)
    out = SharePage(items=[ShareOut.of(s) for s in page.items], next_cursor=page.next_cursor)
    db.commit()
    return out


@router.post("/shares/{share_id}/revoke", response_model=ShareOut)
def revoke_share(share_id: uuid.UUID, principal: CurrentUser, db: Db) -> ShareOut:
    """The patient withdraws a share: its link and code stop working at once (revoking twice is
    harmless)."""
    out = ShareOut.of(service.revoke_share(db, principal, share_id))
    db.commit()
    return out


@router.post("/shared/redeem", response_model=SharedViewOut)
def redeem(body: RedeemIn, request: Request, db: Db) -> SharedViewOut:
    """Open a share with its code (no account needed). Returns the records and an ``access_key`` for
    their files. Too many wrong codes from one address: 429 for 15 minutes."""
    ip = client_ip(request)
    view_key = service.redeem_code(db, body.code, ip)
    out = SharedViewOut.of(service.open_share(db, view_key.key, ip))
    db.commit()
    return out


@router.get("/shared/{token}", response_model=SharedViewOut)
def open_shared(token: Key, request: Request, db: Db) -> SharedViewOut:
    """The shared records with their verification (no account needed: the token is the credential).
    Expired or withdrawn shares answer 404 saying so."""
    out = SharedViewOut.of(service.open_share(db, token, client_ip(request)))
    db.commit()
    return out


@router.get("/shared/{token}/records/{record_id}/file", response_class=Response, responses=FILE_RESPONSE)
def shared_file(
    token: Key, record_id: uuid.UUID, request: Request, db: Db, download: bool = False
) -> Response:
    """One shared record's file, inline unless ``download`` is set (404 for a record not in the share)."""
    record, data = service.shared_file(db, token, record_id, client_ip(request), download=download)
    response = file_response(record.id, record.media_type, data, download)
    db.commit()
    return response
