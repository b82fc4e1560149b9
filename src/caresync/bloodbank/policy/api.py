"""The blood bank settings API: ``GET``/``PUT /api/v1/bloodbank/policy`` for the caller's own
organisation (read: administrators and blood bank staff; change: administrators)."""

from __future__ import annotations

from fastapi import APIRouter

from caresync.bloodbank.policy import service
from caresync.bloodbank.policy.schemas import PolicyIn, PolicyOut
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/bloodbank", tags=["blood bank"])


@router.get("/policy", response_model=PolicyOut)
def read_policy(principal: CurrentUser, db: Db) -> PolicyOut:
    """The organisation's blood bank settings (the defaults until an administrator saves them)."""
    out = PolicyOut.of(service.read_policy(db, principal))
    db.rollback()
    return out


@router.put("/policy", response_model=PolicyOut)
def update_policy(body: PolicyIn, principal: CurrentUser, db: Db) -> PolicyOut:
    """Administrators: replace the organisation's blood bank settings (422 names the field at fault)."""
    out = PolicyOut.of(service.update_policy(db, principal, **body.model_dump()))
    db.commit()
    return out
