"""Document search for people: who may search what, the audit trail, and keeping the index in step with
the patients' records.

Searching
    :func:`search` finds a patient's documents (``patient_id``) or those of every patient the clinician may
    access ("my patients": care team, consent, break-glass). What each patient's documents may show is the
    records consent rule (:func:`caresync.records.consent.read_scope`); in the "my patients" scope it is
    computed for all patients at once (:func:`patient_scopes`, the same rule in bulk) and the patients are
    grouped by the categories they open, one engine search per group, the results merged by the engine's
    score (which is monotonic in its order). A patient searches their own record.

    The audit keeps one ``document.search`` entry per search (the query's length, never its text: symptoms
    typed about one patient are health data) and one ``document.search.read`` entry per patient whose
    documents were shown, flagged under break-glass.

Viewing
    :func:`open_document` gives a found record's text with the query's terms highlighted (audited as
    ``document.search.open``); :func:`highlighted_file` gives its file for the viewer's frame, a PDF with
    the same terms highlighted in the PDF itself (:mod:`.pdf_highlight`, built per request, never stored;
    audited as ``document.search.view``), opened at the first highlight's page.

Indexing
    The index holds the current version of every record whose file has text: text files, PDFs with a text
    layer (the OCR's searchable PDFs among them). :func:`index_later` (called by the records upload)
    drops the version a correction supersedes at once and submits the ``document.index`` job
    (:mod:`.jobs`) that embeds the new one; :func:`index_scan` indexes a scan's OCR text inline (the OCR
    job is a job already); :func:`reindex` rebuilds the index of existing records.
"""

from __future__ import annotations

import html
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from caresync.core import audit, storage
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.rbac import (
    Access,
    Perm,
    active_consents,
    break_glass_patient_ids,
    cared_for_patient_ids,
    require,
)
from caresync.documents.models import DocumentScan
from caresync.documents.search import engine
from caresync.documents.search.embeddings import Embedder
from caresync.documents.search.index import SearchableDocument, index_documents, remove_document
from caresync.documents.search.models import SearchDocument
from caresync.documents.search.pdf_highlight import Highlight, UnreadablePdf, find_highlights, highlight_pdf
from caresync.documents.search.query import plan_query
from caresync.documents.search.snippets import highlight_spans
from caresync.identity.models import Patient, User
from caresync.records import service as records
from caresync.records.consent import ALL_CATEGORIES, ReadScope, care_team_policy, read_scope
from caresync.records.models import HealthRecord
from caresync.records.rules import care_team_categories

SEARCH_ACTION = "document.search"
SHOWN_ACTION = "document.search.read"
OPEN_ACTION = "document.search.open"
VIEW_ACTION = "document.search.view"  # the viewer's highlighted copy of a found PDF
PDF = "application/pdf"
INDEXED_TYPES = ("text/plain", PDF)
MAX_RESULTS = engine.MAX_LIMIT  # offset + limit: refine the search rather than page further
REINDEX_BATCH = 64


@dataclass(frozen=True)
class SearchResults:
    """One page of hits, in which scope, and whether more follow."""

    hits: list[engine.Hit]
    patient_id: uuid.UUID | None  # the one patient searched; None: "my patients"
    patients: int  # how many patients' documents were searched
    has_more: bool
    break_glass: set[uuid.UUID]  # patients of the hits read under break-glass


def patient_scopes(session: Session, principal: Principal) -> dict[uuid.UUID, ReadScope]:
    """What the clinician reads of each patient they may access (care team, consent, break-glass), by
    patient: :func:`~caresync.records.consent.read_scope`'s rule for all of them in four queries. Patients
    whose record opens no category are left out."""
    cared = set(session.scalars(cared_for_patient_ids(principal)))
    glass = set(session.scalars(break_glass_patient_ids(principal)))
    consented: dict[uuid.UUID, set[str]] = {}
    for consent in session.scalars(active_consents(principal)):
        consented.setdefault(consent.patient_id, set()).update(consent.categories)
    team = (
        care_team_categories(care_team_policy(session, principal.organisation_id)) if cared else frozenset()
    )
    scopes: dict[uuid.UUID, ReadScope] = {}
    for patient_id in cared | glass | consented.keys():
        if patient_id in glass:
            scopes[patient_id] = ReadScope(Access.BREAK_GLASS, ALL_CATEGORIES, break_glass=True)
        elif patient_id in cared:
            scopes[patient_id] = ReadScope(Access.CARE_TEAM, team | consented.get(patient_id, set()))
        else:
            scopes[patient_id] = ReadScope(Access.CONSENT, frozenset(consented[patient_id]))
    return {p: s for p, s in scopes.items() if s.categories}


def _groups(scopes: dict[uuid.UUID, ReadScope]) -> dict[frozenset[str], list[uuid.UUID]]:
    """Patients grouped by the categories their scope opens (one engine search per group)."""
    groups: dict[frozenset[str], list[uuid.UUID]] = {}
    for patient_id, scope in scopes.items():
        groups.setdefault(scope.categories, []).append(patient_id)
    return groups


def search(
    session: Session,
    principal: Principal,
    query: str,
    *,
    patient_id: uuid.UUID | None = None,
    limit: int = 20,
    offset: int = 0,
    embedder: Embedder | None = None,
) -> SearchResults:
    """Documents matching ``query`` among one patient's (``patient_id``; a patient: their own by default)
    or the caller's patients', best first, each only if the caller may read its category. A clinician
    without ``patient_id`` searches every patient they may access. 403 for roles that read no patient
    data, 404 for a patient the caller may not access; at most ``MAX_RESULTS`` hits in all (offset +
    limit)."""
    require(session, principal, Perm.PATIENT_READ, SEARCH_ACTION)
    if limit < 1 or offset < 0 or offset + limit > MAX_RESULTS:
        raise ValidationFailed(
            f"Ask for the first {MAX_RESULTS} results at most: refine the search to see others.",
            extra={"field": "offset"},
        )
    plan_query(query)  # a blank or over-long query is refused before any access is recorded
    if patient_id is None and principal.role == "patient":
        patient_id = principal.patient_id
    if patient_id is not None:
        scopes = {patient_id: read_scope(session, principal, patient_id, SEARCH_ACTION)}
    else:
        scopes = patient_scopes(session, principal)
    wanted = offset + limit
    found: list[engine.Hit] = []
    for categories, patient_ids in _groups(scopes).items():
        found += engine.search(
            session,
            query,
            categories=categories,
            patient_ids=patient_ids,
            limit=min(wanted + 1, MAX_RESULTS),
            embedder=embedder,
        )
    found.sort(key=lambda h: (-h.score, -h.created_at.timestamp(), str(h.document_id)))
    hits = found[offset:wanted]
    shown = dict.fromkeys(h.patient_id for h in hits)
    glass = {p for p in shown if scopes[p].break_glass}
    audit.record(
        session,
        principal,
        SEARCH_ACTION,
        patient_id=patient_id,
        resource_type="DocumentReference",
        detail={
            "count": len(hits),
            "query_chars": len(query),
            "scope": "patient" if patient_id is not None else "my_patients",
            "patients": len(scopes),
        },
        flagged=patient_id is not None and scopes[patient_id].break_glass,
    )
    for shown_id in shown:
        audit.record(
            session,
            principal,
            SHOWN_ACTION,
            patient_id=shown_id,
            resource_type="DocumentReference",
            detail={
                "documents": [str(h.document_id) for h in hits if h.patient_id == shown_id],
                "access": scopes[shown_id].access.value,
            },
            flagged=shown_id in glass,
        )
    return SearchResults(hits, patient_id, len(scopes), len(found) > wanted, glass)


def patient_names(session: Session, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names of the hits' patients (the caller may see them: search keeps to their patients)."""
    ids = set(patient_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Patient.id, Patient.given_name, Patient.family_name).where(Patient.id.in_(ids))
    )
    return {pid: f"{given} {family}" for pid, given, family in rows}


def open_url(document_id: uuid.UUID, query: str) -> str:
    """Where a hit opens: the document viewer with the query's terms highlighted."""
    return f"/documents/search/open/{document_id}?" + urlencode({"q": query})


def file_url(record: HealthRecord, query: str, page: int | None = None) -> str:
    """What the viewer's frame shows: a PDF with the query's terms highlighted in it (opened at ``page``),
    any other file as stored."""
    if record.media_type != PDF:
        return f"/api/v1/records/{record.id}/file"
    url = f"/documents/search/open/{record.id}/file?" + urlencode({"q": query})
    return url + (f"#page={page}" if page else "")


@dataclass(frozen=True)
class OpenedDocument:
    """A found document as the viewer shows it: the record, its patient's name, its indexed text as HTML
    (escaped, the query's concepts and words in ``<mark>``), and the file to show beside it (``file_url``;
    a PDF with ``pdf_marks`` highlights in it, opened at the first one's page, ``pdf_first_page``)."""

    record: HealthRecord
    patient_name: str
    text_html: str
    marks: int
    indexed: bool
    file_url: str
    pdf_marks: int
    pdf_first_page: int | None


def _query_terms(query: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The concepts and other words a query highlights (none for a blank one)."""
    if not query.strip():
        return (), ()
    plan = plan_query(query)
    return plan.concepts, plan.words


def _pdf_highlights(record: HealthRecord, concepts: Sequence[str], words: Sequence[str]) -> list[Highlight]:
    """Where the terms are in a PDF record (none for a damaged file: the viewer's frame reports it)."""
    if record.media_type != PDF or not (concepts or words):
        return []
    try:
        return find_highlights(records.stored_file(record), concepts, words)
    except (Conflict, UnreadablePdf):
        return []


def open_document(session: Session, principal: Principal, record_id: uuid.UUID, query: str) -> OpenedDocument:
    """A record's text with the query's terms highlighted, if the caller may read the record (the records
    consent rule, audited as ``document.search.open``; 404 otherwise), and where its PDF's first highlight
    is. A blank query highlights nothing; an unusable one is refused (ValidationFailed)."""
    concepts, words = _query_terms(query)
    record = records.get(session, principal, record_id, OPEN_ACTION)
    indexed = session.execute(
        select(SearchDocument.text).where(SearchDocument.document_id == record_id)
    ).scalar_one_or_none()
    text = indexed if indexed is not None else record_text(record)
    spans = highlight_spans(text, concepts, words) if concepts or words else []
    parts, cursor = [], 0
    for start, end in spans:
        parts += [html.escape(text[cursor:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        cursor = end
    parts.append(html.escape(text[cursor:]))
    name = patient_names(session, [record.patient_id]).get(record.patient_id, "")
    in_pdf = _pdf_highlights(record, concepts, words)
    first_page = in_pdf[0].page + 1 if in_pdf else None
    return OpenedDocument(
        record,
        name,
        "".join(parts),
        len(spans),
        indexed is not None,
        file_url(record, query, first_page),
        len(in_pdf),
        first_page,
    )


def highlighted_file(
    session: Session, principal: Principal, record_id: uuid.UUID, query: str
) -> tuple[HealthRecord, bytes]:
    """The file the viewer shows beside a found document: for a PDF, a copy with the query's terms
    highlighted in it, built in memory for this request (the stored, signed file is never changed; a PDF
    that cannot be read is shown as stored); any other file as stored. The same consent rule as the
    viewer, audited as ``document.search.view``; 404 otherwise, 409 for a damaged stored copy. A blank
    query highlights nothing; an unusable one is refused (ValidationFailed)."""
    concepts, words = _query_terms(query)
    record = records.get(session, principal, record_id, VIEW_ACTION)
    data = records.stored_file(record)
    if record.media_type != PDF:
        return record, data
    return record, highlight_pdf(data, concepts, words, source=f"record {record.id}").data


# --- indexing -----------------------------------------------------------------------------------------------


def record_text(record: HealthRecord) -> str:
    """The searchable text of a record's file: a text file's content, a PDF's text layer (pages separated
    by a blank line); "" for images, damaged files and PDFs without text."""
    if record.media_type not in INDEXED_TYPES:
        return ""
    try:
        data = storage.get(record.file_sha256)
    except (ValueError, NotFound):
        return ""
    if record.media_type == "text/plain":
        return data.decode("utf-8", errors="replace").strip()
    return pdf_text(data)


def pdf_text(data: bytes) -> str:
    """A PDF's text layer, read as the OCR reads an already-searchable PDF ("" if it cannot be read)."""
    import pypdfium2

    from caresync.documents.ocr.inputs import page_texts

    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        try:
            pages = page_texts(Path(handle.name))
        except pypdfium2.PdfiumError:
            return ""
    return "\n\n".join(p.strip() for p in pages if p.strip())


def _document(session: Session, record: HealthRecord, text: str) -> SearchableDocument:
    organisation_id = session.execute(
        select(User.organisation_id).where(User.id == record.uploaded_by)
    ).scalar_one_or_none()
    return SearchableDocument(
        document_id=record.id,
        patient_id=record.patient_id,
        organisation_id=organisation_id,
        category=record.category,
        title=record.title,
        created_at=datetime.combine(record.recorded_on, time(), UTC),
        text=text,
    )


def _superseded(session: Session, record_id: uuid.UUID) -> bool:
    newer = aliased(HealthRecord)
    return bool(session.execute(select(exists().where(newer.supersedes_id == record_id))).scalar())


def index_record(
    session: Session, record: HealthRecord, text: str, *, embedder: Embedder | None = None
) -> bool:
    """Index ``text`` as the content of ``record`` (replacing an earlier entry) and take the version it
    corrects out of the index. Nothing is indexed for a blank text or a version already superseded;
    returns whether the record was indexed."""
    if record.supersedes_id is not None:
        remove_document(session, record.supersedes_id)
    if not text.strip() or _superseded(session, record.id):
        remove_document(session, record.id)
        return False
    index_documents(session, [_document(session, record, text)], embedder=embedder)
    return True


def index_scan(session: Session, scan: DocumentScan, *, embedder: Embedder | None = None) -> bool:
    """Index a scan's recognised text as the content of the record it was filed as (the OCR job calls
    this once the searchable PDF is filed)."""
    if scan.record_id is None:
        return False
    record = session.get(HealthRecord, scan.record_id)
    assert record is not None  # the scan's foreign key
    text = "\n\n".join(p.text.strip() for p in scan.pages if p.text.strip())
    return index_record(session, record, text, embedder=embedder)


DEFER_INDEXING = "caresync.search.defer"
"""``session.info`` key: a bulk load (the demo) that sets it submits no indexing job per upload and calls
:func:`reindex` for what it wants searchable once it is done."""


def index_later(session: Session, principal: Principal, record: HealthRecord) -> None:
    """After an upload: drop the superseded version from the index now and, when the file can hold text,
    submit the ``document.index`` job that indexes the record once the upload commits."""
    from caresync.core import jobs
    from caresync.documents.search.jobs import index_job

    if record.supersedes_id is not None:
        remove_document(session, record.supersedes_id)
    if record.media_type in INDEXED_TYPES and not session.info.get(DEFER_INDEXING):
        jobs.submit(session, principal, index_job, record_id=str(record.id))


def index_pending(session: Session, record_id: uuid.UUID, *, embedder: Embedder | None = None) -> bool:
    """Job body: index a record unless it is already indexed (a scan's OCR indexes its record itself),
    superseded or gone. Returns whether it was indexed now."""
    record = session.get(HealthRecord, record_id)
    if record is None or _indexed(session, record_id):
        return False
    return index_record(session, record, record_text(record), embedder=embedder)


def _indexed(session: Session, record_id: uuid.UUID) -> bool:
    return (
        session.execute(select(SearchDocument.id).where(SearchDocument.document_id == record_id)).first()
        is not None
    )


def reindex(
    session: Session,
    *,
    patient_ids: Sequence[uuid.UUID] | None = None,
    embedder: Embedder | None = None,
) -> int:
    """Rebuild the index of the current (not superseded) records with text, of some patients or of all,
    embedding ``REINDEX_BATCH`` records at a time; superseded versions are taken out. Returns how many
    records were indexed. For a ``caresync index`` command and after a demo load."""
    newer = aliased(HealthRecord)
    query = select(HealthRecord).where(HealthRecord.media_type.in_(INDEXED_TYPES))
    if patient_ids is not None:
        query = query.where(HealthRecord.patient_id.in_(list(patient_ids)))
    stale = query.where(exists().where(newer.supersedes_id == HealthRecord.id)).with_only_columns(
        HealthRecord.id
    )
    for old_id in list(session.scalars(stale)):
        remove_document(session, old_id)
    current = query.where(~exists().where(newer.supersedes_id == HealthRecord.id))
    ids = list(session.scalars(current.with_only_columns(HealthRecord.id).order_by(HealthRecord.id)))
    count = 0
    for batch in _batches(ids, REINDEX_BATCH):
        records = session.scalars(select(HealthRecord).where(HealthRecord.id.in_(batch))).all()
        documents = [_document(session, r, t) for r in records if (t := record_text(r))]
        index_documents(session, documents, embedder=embedder)
        count += len(documents)
    return count


def _batches(ids: Sequence[uuid.UUID], size: int) -> Iterable[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
