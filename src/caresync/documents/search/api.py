"""Document search under ``/api/v1/documents/search``: hits with highlighted snippets, one patient's
documents (``patient_id``) or every patient the caller may access."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from caresync.documents.search import service
from caresync.documents.search.query import MAX_QUERY_CHARS
from caresync.records.rules import CATEGORIES
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/documents/search", tags=["documents"])


class SearchHitOut(BaseModel):
    """One found document. ``snippet`` is HTML: the passage escaped, the matched terms in ``<mark>``."""

    document_id: uuid.UUID  # the record (open it with ``url``, or /api/v1/records/{id})
    patient_id: uuid.UUID
    patient_name: str
    title: str
    category: str
    category_label: str
    date: date
    score: float
    snippet: str
    concepts: list[str]  # the query's concepts the document mentions
    negated: bool  # it mentions them only as absent ("denies chest pain")
    url: str


class SearchOut(BaseModel):
    """One page of hits."""

    query: str
    patient_id: uuid.UUID | None  # the patient searched; null: all of the caller's patients
    patients: int
    offset: int
    limit: int
    has_more: bool
    items: list[SearchHitOut]


def hits_out(db: Db, query: str, results: service.SearchResults) -> list[SearchHitOut]:
    """The API shape of the hits (with their patients' names)."""
    names = service.patient_names(db, (h.patient_id for h in results.hits))
    return [
        SearchHitOut(
            document_id=h.document_id,
            patient_id=h.patient_id,
            patient_name=names.get(h.patient_id, ""),
            title=h.title,
            category=h.category,
            category_label=CATEGORIES.get(h.category, h.category),
            date=h.created_at.date(),
            score=h.score,
            snippet=h.snippet,
            concepts=list(h.concepts),
            negated=h.negated,
            url=service.open_url(h.document_id, query),
        )
        for h in results.hits
    ]


@router.get("", response_model=SearchOut)
def search(
    principal: CurrentUser,
    db: Db,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
    patient_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SearchOut:
    """Documents matching symptoms or words (synonyms included; mentions only as absent rank lower), of one
    patient or of all your patients, limited to the parts of each record you may read."""
    results = service.search(db, principal, q, patient_id=patient_id, limit=limit, offset=offset)
    out = SearchOut(
        query=q,
        patient_id=results.patient_id,
        patients=results.patients,
        offset=offset,
        limit=limit,
        has_more=results.has_more,
        items=hits_out(db, q, results),
    )
    db.commit()
    return out
