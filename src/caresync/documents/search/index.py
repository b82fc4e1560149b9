"""Adding documents to the search index and taking them out.

A document becomes a ``SearchDocument`` row (with the lexicon concepts it mentions, affirmed or negated)
and passages of one to three sentences (``SearchChunk``) with their embeddings; the database keeps the
full-text index of the passages in step by itself (see :mod:`.models`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from caresync.core.errors import ValidationFailed
from caresync.documents.clinical_terms import find_mentions
from caresync.documents.search.embeddings import Embedder, default_embedder, to_bytes
from caresync.documents.search.models import SearchChunk, SearchDocument, scope_tokens
from caresync.documents.search.passages import passages

MAX_TEXT_CHARS = 1_000_000
CONCEPT_SEPARATOR = "|"


@dataclass(frozen=True)
class SearchableDocument:
    """What the index needs of a document: its identity, the permission facts and its text."""

    document_id: uuid.UUID
    patient_id: uuid.UUID
    organisation_id: uuid.UUID | None
    category: str
    title: str
    created_at: datetime
    text: str


def concept_summary(text: str) -> str:
    """The concepts a text mentions: ``+name`` if any mention is affirmed, ``-name`` if all are negated."""
    status: dict[str, bool] = {}
    for m in find_mentions(text):
        status[m.concept] = status.get(m.concept, False) or not m.negated
    return CONCEPT_SEPARATOR.join(
        f"{'+' if affirmed else '-'}{name}" for name, affirmed in sorted(status.items())
    )


def parse_concept_summary(summary: str) -> dict[str, bool]:
    """``{concept: affirmed}`` from :func:`concept_summary`'s form."""
    return {item[1:]: item[0] == "+" for item in summary.split(CONCEPT_SEPARATOR) if item}


def index_documents(
    session: Session, documents: Sequence[SearchableDocument], *, embedder: Embedder | None = None
) -> list[SearchDocument]:
    """Index (or re-index, replacing the old entry) several documents, embedding all their passages in one
    batch. Blank documents are indexed with no passages (they never match)."""
    for doc in documents:
        if len(doc.text) > MAX_TEXT_CHARS:
            raise ValidationFailed(f"The document is too long to index ({len(doc.text)} characters).")
    remove_documents(session, [d.document_id for d in documents])
    split = [passages(d.text) for d in documents]
    vectors = (embedder or default_embedder()).embed([p.text for ps in split for p in ps])
    rows, chunks, v = [], [], 0
    for doc, parts in zip(documents, split, strict=True):
        row = SearchDocument(
            id=uuid.uuid4(),
            document_id=doc.document_id,
            patient_id=doc.patient_id,
            organisation_id=doc.organisation_id,
            category=doc.category,
            title=doc.title,
            created_at=doc.created_at,
            text=doc.text,
            concepts=concept_summary(doc.text),
        )
        rows.append(row)
        for position, part in enumerate(parts):
            chunks.append(
                {
                    "search_document_id": row.id,
                    "position": position,
                    "start": part.start,
                    "end": part.end,
                    "text": part.text,
                    "scope": scope_tokens(doc.patient_id, doc.organisation_id),
                    "embedding": to_bytes(vectors[v]),
                }
            )
            v += 1
    session.add_all(rows)
    session.flush()
    if chunks:
        session.execute(insert(SearchChunk), chunks)
    return rows


def index_document(
    session: Session, document: SearchableDocument, *, embedder: Embedder | None = None
) -> SearchDocument:
    """Index (or re-index) one document; see :func:`index_documents`."""
    return index_documents(session, [document], embedder=embedder)[0]


def remove_documents(session: Session, document_ids: Sequence[uuid.UUID]) -> int:
    """Take documents out of the index (passages and full text too); returns how many were there."""
    ids = list(session.scalars(select(SearchDocument.id).where(SearchDocument.document_id.in_(document_ids))))
    if ids:
        session.execute(delete(SearchChunk).where(SearchChunk.search_document_id.in_(ids)))
        session.execute(delete(SearchDocument).where(SearchDocument.id.in_(ids)))
    return len(ids)


def remove_document(session: Session, document_id: uuid.UUID) -> bool:
    """Take one document out of the index; ``False`` if it was not indexed."""
    return remove_documents(session, [document_id]) > 0
