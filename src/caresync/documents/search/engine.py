"""Searching the index: full text with synonym expansion (SQLite FTS5 / PostgreSQL tsvector), fused with
embedding similarity, ordered by affirmed and negated concepts (see :mod:`.ranking`).

The caller decides what may be seen: ``patient_ids`` and/or ``organisation_id`` (the scope) and
``categories`` (what consent allows) are required filters, applied inside every query.

Two strategies, by the size of the scope:

* at most ``SEMANTIC_POOL`` passages (a patient's record, a small clinic): on SQLite the full-text index
  itself is restricted to the scope (each passage carries its patient's and organisation's tokens), and
  every passage in scope is compared with the query embedding, so documents that share no word with the
  query are found too;
* larger scopes: on SQLite the full-text candidates are the ``RECENT_POOL`` newest matching passages, ranked
  by BM25 with document frequencies from that pool (:func:`.ranking.pool_bm25`), and only their documents'
  passages are compared with the query (re-ranked, not retrieved).

The query's embedding is computed on a worker thread while the database is queried, and remembered
(:func:`.embeddings.query_vector`).
  PostgreSQL ranks every match with ``ts_rank_cd`` in both cases.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    column,
    func,
    literal_column,
    select,
    table,
    text,
    type_coerce,
)
from sqlalchemy.orm import Session

from caresync.core.errors import ValidationFailed
from caresync.documents.search.embeddings import Embedder, from_bytes, query_vector
from caresync.documents.search.index import parse_concept_summary
from caresync.documents.search.models import (
    FTS_TABLE,
    SearchChunk,
    SearchDocument,
    organisation_token,
    patient_token,
)
from caresync.documents.search.query import QueryPlan, plan_query
from caresync.documents.search.ranking import MARK_CLOSE, MARK_OPEN, Fusion, fuse, order, pool_bm25
from caresync.documents.search.snippets import snippet

_DOCUMENT_FIELDS = select(
    SearchDocument.id,
    SearchDocument.document_id,
    SearchDocument.patient_id,
    SearchDocument.category,
    SearchDocument.title,
    SearchDocument.created_at,
    SearchDocument.concepts,
)
LEXICAL_POOL = 200  # full-text passages considered
RECENT_POOL = 1000  # large scopes on SQLite: the newest matching passages ranked
SEMANTIC_POOL = 4000  # passages in scope up to which every one is compared with the query
SEMANTIC_MIN = 0.35  # cosine below which a document found by embeddings alone is not a hit
MAX_LIMIT = 100


@dataclass(frozen=True)
class SearchOptions:
    """Which parts of the ranking run (all on by default; the others exist to measure each part)."""

    expand_synonyms: bool = True
    semantic: bool = True
    negation: bool = True
    fusion: Fusion = Fusion.RRF


@dataclass(frozen=True)
class Hit:
    """One found document."""

    document_id: uuid.UUID
    patient_id: uuid.UUID
    category: str
    title: str
    created_at: datetime
    score: float
    snippet: str  # HTML: escaped text with <mark> highlights
    concepts: tuple[str, ...]  # query concepts the document mentions (affirmed or negated)
    negated: bool  # every query concept it mentions is mentioned only negated


@dataclass
class _Passages:
    """Per document (``SearchDocument.id``): its full-text score, cosine, and best passages."""

    lexical: dict[uuid.UUID, float] = field(default_factory=dict)
    semantic: dict[uuid.UUID, float] = field(default_factory=dict)
    best_lexical: dict[uuid.UUID, int] = field(default_factory=dict)
    best_semantic: dict[uuid.UUID, int] = field(default_factory=dict)


_Scoped = Select[int, uuid.UUID]  # (chunk id, document key)
_Scored = tuple[int, uuid.UUID, float]  # (chunk id, document key, score)
Vector = np.ndarray[Any, Any]


def _scope(
    stmt: _Scoped,
    patient_ids: Collection[uuid.UUID] | None,
    organisation_id: uuid.UUID | None,
    categories: Collection[str],
) -> _Scoped:
    if patient_ids is not None:
        stmt = stmt.where(SearchDocument.patient_id.in_(list(patient_ids)))
    if organisation_id is not None:
        stmt = stmt.where(SearchDocument.organisation_id == organisation_id)
    return stmt.where(SearchDocument.category.in_(list(categories)))


def _chunks() -> _Scoped:
    return select(SearchChunk.id, SearchChunk.search_document_id).join(
        SearchDocument, SearchDocument.id == SearchChunk.search_document_id
    )


def _restriction(patient_ids: Collection[uuid.UUID] | None, organisation_id: uuid.UUID | None) -> str:
    """An FTS5 filter on the ``scope`` column matching the scope's passages (a superset, made exact by the
    SQL filters: the patients' tokens, else the organisation's)."""
    if patient_ids is not None:
        tokens = [patient_token(p) for p in patient_ids]
    else:
        assert organisation_id is not None  # search() requires a scope
        tokens = [organisation_token(organisation_id)]
    return "scope : (" + " OR ".join(f'"{t}"' for t in tokens) + ")"


@dataclass(frozen=True)
class _Scope:
    patient_ids: Collection[uuid.UUID] | None
    organisation_id: uuid.UUID | None
    categories: Collection[str]


def _recent_matches(session: Session, match: str, scope: _Scope) -> list[_Scored]:
    """``(chunk id, document key, score)`` of the scope's passages among the ``RECENT_POOL`` newest full-text
    matches, best first, at most ``LEXICAL_POOL`` (SQLite, large scopes), scored by :func:`.pool_bm25`.

    One statement: the matches (by rowid, newest first, their matches marked) joined with their passages'
    documents by primary key; the scope is checked here (with it in SQL, SQLite walks the organisation's
    whole index instead). Patient, organisation and document keys are compared as stored (32 hex digits),
    sparing a UUID object per candidate: only the kept documents' keys are converted."""
    fts = table(FTS_TABLE, column("rowid"))
    marked = func.highlight(literal_column(FTS_TABLE), 0, MARK_OPEN, MARK_CLOSE)
    newest = (
        select(fts.c.rowid, marked.label("marked"))
        .where(text(f"{FTS_TABLE} MATCH :fts_query").bindparams(fts_query=match))
        .order_by(fts.c.rowid.desc())
        .limit(RECENT_POOL)
        .subquery()
    )
    keys = (SearchDocument.id, SearchDocument.patient_id, SearchDocument.organisation_id)
    rows = session.execute(
        select(
            newest.c.rowid, newest.c.marked, *(type_coerce(k, String) for k in keys), SearchDocument.category
        )
        .join(SearchChunk, SearchChunk.id == newest.c.rowid)
        .join(SearchDocument, SearchDocument.id == SearchChunk.search_document_id)
    ).all()
    patients = {p.hex for p in scope.patient_ids} if scope.patient_ids is not None else None
    organisation = scope.organisation_id.hex if scope.organisation_id else None
    allowed = [
        r
        for r in rows
        if (patients is None or r[3] in patients)
        and (organisation is None or r[4] == organisation)
        and r[5] in scope.categories
    ]
    scored = sorted(
        zip(allowed, pool_bm25([r[1] for r in allowed]), strict=True), key=lambda a: (-a[1], -a[0][0])
    )
    documents: dict[str, uuid.UUID] = {}
    return [(r[0], documents.setdefault(r[2], uuid.UUID(r[2])), score) for r, score in scored[:LEXICAL_POOL]]


def _lexical(
    session: Session, plan: QueryPlan, scoped: _Scoped, restriction: str | None, scope: _Scope | None
) -> list[_Scored]:
    """``(chunk id, document key, score)`` of the best full-text passages, best first.

    SQLite: with a ``restriction`` (a small scope) the full-text index itself keeps to the scope's
    passages; with ``scope`` instead (a large one) the candidates are the scope's passages among the
    ``RECENT_POOL`` newest matches (ranking every match of a common symptom in 100,000 documents takes too
    long), see :func:`_recent_matches`."""
    if not plan.phrases:
        return []
    if session.get_bind().dialect.name == "postgresql":
        tsv: ColumnElement[Any] = literal_column("search_chunks.tsv")
        english: ColumnElement[Any] = literal_column("'english'::regconfig")
        phrases: list[ColumnElement[Any]] = [func.phraseto_tsquery(english, p) for p in plan.phrases]
        tsq = reduce(lambda a, b: a.op("||")(b), phrases)
        score: ColumnElement[Any] = func.ts_rank_cd(tsv, tsq)
        stmt = scoped.add_columns(score.label("score")).where(tsv.op("@@")(tsq))
    else:
        match = f"text : ({plan.fts5()})" + (f" AND {restriction}" if restriction else "")
        if scope is not None:  # the newest matches, then the scope's among them
            return _recent_matches(session, match, scope)
        fts = table(FTS_TABLE, column("rowid"))
        found = (
            select(fts.c.rowid, (-literal_column(f"bm25({FTS_TABLE}, 1.0, 0.0)")).label("score"))
            .where(text(f"{FTS_TABLE} MATCH :fts_query").bindparams(fts_query=match))
            .subquery()
        )
        score = found.c.score
        stmt = scoped.add_columns(score).join(found, found.c.rowid == SearchChunk.id)
    rows = session.execute(stmt.order_by(score.desc(), SearchChunk.id).limit(LEXICAL_POOL)).all()
    return [(r[0], r[1], float(r[2])) for r in rows]


def _semantic(
    session: Session, scoped: _Scoped, large: bool, lexical_docs: Collection[uuid.UUID], vector: Vector
) -> list[_Scored]:
    """``(chunk id, document key, cosine)`` of every passage in scope (small scopes) or of the full-text
    candidates' passages (large ones)."""
    if large:  # the candidates are in scope already: their passages by document, no scope join
        columns = select(SearchChunk.id, SearchChunk.search_document_id, SearchChunk.embedding)
        stmt = columns.where(SearchChunk.search_document_id.in_(list(lexical_docs)))
    else:
        stmt = scoped.add_columns(SearchChunk.embedding)
    rows = session.execute(stmt).all() if lexical_docs or not large else []
    if not rows:
        return []
    cosines = from_bytes([r[2] for r in rows]) @ vector
    return [(r[0], r[1], float(c)) for r, c in zip(rows, cosines, strict=True)]


def _collect(lexical: list[_Scored], semantic: list[_Scored]) -> _Passages:
    found = _Passages()
    for chunk_id, key, score in lexical:  # best first: keep each document's first
        if key not in found.lexical:
            found.lexical[key], found.best_lexical[key] = score, chunk_id
    for chunk_id, key, cosine in semantic:
        if cosine > found.semantic.get(key, -1.0):
            found.semantic[key], found.best_semantic[key] = cosine, chunk_id
    found.semantic = {k: v for k, v in found.semantic.items() if k in found.lexical or v >= SEMANTIC_MIN}
    return found


def search(
    session: Session,
    query: str,
    *,
    categories: Collection[str],
    patient_ids: Collection[uuid.UUID] | None = None,
    organisation_id: uuid.UUID | None = None,
    limit: int = 20,
    offset: int = 0,
    options: SearchOptions = SearchOptions(),
    embedder: Embedder | None = None,
) -> list[Hit]:
    """Documents in scope matching ``query``, best first, with highlighted snippets.

    ``patient_ids`` and/or ``organisation_id`` bound the scope (at least one is required) and ``categories``
    lists the record categories the caller may read; an empty collection finds nothing."""
    if patient_ids is None and organisation_id is None:
        raise ValueError("search needs a scope: patient_ids and/or organisation_id")
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise ValidationFailed(f"Ask for 1 to {MAX_LIMIT} results from a non-negative offset.")
    plan = plan_query(query, expand_synonyms=options.expand_synonyms)
    if (patient_ids is not None and not patient_ids) or not categories:
        return []
    vector = query_vector(plan.text, embedder) if options.semantic else None  # computed meanwhile
    scoped = _scope(_chunks(), patient_ids, organisation_id, categories)
    large = session.execute(scoped.order_by(None).offset(SEMANTIC_POOL).limit(1)).first() is not None
    if large:
        lexical = _lexical(session, plan, scoped, None, _Scope(patient_ids, organisation_id, categories))
    else:
        lexical = _lexical(session, plan, scoped, _restriction(patient_ids, organisation_id), None)
    semantic: list[_Scored] = []
    if vector is not None:
        semantic = _semantic(session, scoped, large, {key for _, key, _ in lexical}, vector.result())
    found = _collect(lexical, semantic)
    fused = fuse(found.lexical, found.semantic, options.fusion)
    if not fused:
        return []
    docs = {d.id: d for d in session.execute(_DOCUMENT_FIELDS.where(SearchDocument.id.in_(list(fused))))}
    statuses = {key: parse_concept_summary(d.concepts) for key, d in docs.items()}
    newest = sorted(docs, key=lambda k: (-docs[k].created_at.timestamp(), str(docs[k].document_id)))
    ranked = order(fused, plan.concepts, statuses, preference=newest, negation=options.negation)
    page = ranked[offset : offset + limit]
    best = {r.key: found.best_lexical.get(r.key) or found.best_semantic[r.key] for r in page}
    texts = dict(
        session.execute(
            select(SearchChunk.id, SearchChunk.text).where(SearchChunk.id.in_(best.values()))
        ).all()
    )
    hits = []
    for r in page:
        d = docs[r.key]
        mentioned = tuple(c for c in plan.concepts if c in r.affirmed or c in r.negated)
        hits.append(
            Hit(
                document_id=d.document_id,
                patient_id=d.patient_id,
                category=d.category,
                title=d.title,
                created_at=d.created_at,
                score=round(r.score, 6),
                snippet=snippet(texts.get(best[r.key], ""), plan.concepts, plan.words),
                concepts=mentioned,
                negated=bool(r.negated) and not r.affirmed,
            )
        )
    return hits
