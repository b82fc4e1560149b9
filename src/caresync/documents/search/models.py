"""The search index tables: one row per searchable document, its passages (chunks) with embeddings, and the
full-text index over the passages.

Full text is not expressible as portable SQLAlchemy, so it is raw DDL, kept here in one place
(``FULLTEXT_DDL`` / ``FULLTEXT_DROP``) and run after ``create_all`` (and before ``drop_all``) by DDL events;
a migration executes the same statements:

* SQLite: an FTS5 virtual table ``search_chunks_fts`` with external content (``search_chunks``, no second
  copy of the text), Porter stemming, kept in sync by three triggers.
* PostgreSQL: a stored generated ``tsvector`` column ``search_chunks.tsv`` (``english`` configuration) with a
  GIN index.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DDL, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from caresync.db import Base, IdMixin, UTCDateTime, utcnow


class SearchDocument(IdMixin, Base):
    """One searchable document: the text of a record or scan, with what the permission filter needs."""

    __tablename__ = "search_documents"
    __table_args__ = (Index("ix_search_documents_patient_category", "patient_id", "category"),)

    document_id: Mapped[uuid.UUID] = mapped_column(unique=True)  # the source record or scan (no FK yet)
    patient_id: Mapped[uuid.UUID] = mapped_column(index=True)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    category: Mapped[str] = mapped_column(String(20))  # a records category, for the consent filter
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the document was written
    text: Mapped[str] = mapped_column(Text)
    # The lexicon concepts the text mentions, "+name" affirmed / "-name" only negated, "|"-separated.
    concepts: Mapped[str] = mapped_column(Text, default="")
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SearchChunk(Base):
    """A passage of one to three sentences of a document, with its offsets and its embedding."""

    __tablename__ = "search_chunks"

    # An integer key: the full-text index refers to passages by rowid (an alias of it on SQLite).
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    search_document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("search_documents.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # 0, 1, ... in the document
    start: Mapped[int] = mapped_column(Integer)  # character offsets in the document's text
    end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    # Full-text tokens of the document's patient and organisation ("p<hex> o<hex>", see ``scope_tokens``):
    # they let SQLite's full-text index itself narrow a search to a small scope.
    scope: Mapped[str] = mapped_column(String(80), default="")
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # 384 little-endian float32, unit length


FTS_TABLE = "search_chunks_fts"


def patient_token(patient_id: uuid.UUID) -> str:
    """The full-text token standing for a patient in ``SearchChunk.scope``."""
    return f"p{patient_id.hex}"


def organisation_token(organisation_id: uuid.UUID) -> str:
    """The full-text token standing for an organisation in ``SearchChunk.scope``."""
    return f"o{organisation_id.hex}"


def scope_tokens(patient_id: uuid.UUID, organisation_id: uuid.UUID | None) -> str:
    """``SearchChunk.scope`` of a document's passages."""
    return " ".join(
        [patient_token(patient_id), *([organisation_token(organisation_id)] if organisation_id else [])]
    )


FULLTEXT_DDL: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE VIRTUAL TABLE search_chunks_fts USING fts5(text, scope, content='search_chunks', "
        "content_rowid='id', tokenize='porter unicode61')",
        "CREATE TRIGGER search_chunks_ai AFTER INSERT ON search_chunks BEGIN "
        "INSERT INTO search_chunks_fts(rowid, text, scope) VALUES (new.id, new.text, new.scope); END",
        "CREATE TRIGGER search_chunks_ad AFTER DELETE ON search_chunks BEGIN "
        "INSERT INTO search_chunks_fts(search_chunks_fts, rowid, text, scope) "
        "VALUES ('delete', old.id, old.text, old.scope); END",
        "CREATE TRIGGER search_chunks_au AFTER UPDATE ON search_chunks BEGIN "
        "INSERT INTO search_chunks_fts(search_chunks_fts, rowid, text, scope) "
        "VALUES ('delete', old.id, old.text, old.scope); "
        "INSERT INTO search_chunks_fts(rowid, text, scope) VALUES (new.id, new.text, new.scope); END",
    ),
    "postgresql": (
        "ALTER TABLE search_chunks ADD COLUMN tsv tsvector "
        "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
        "CREATE INDEX ix_search_chunks_tsv ON search_chunks USING GIN (tsv)",
    ),
}
# Run before the chunks table is dropped (the triggers, column and index go with the table itself).
FULLTEXT_DROP: dict[str, tuple[str, ...]] = {
    "sqlite": (f"DROP TABLE IF EXISTS {FTS_TABLE}",),
    "postgresql": (),
}

for _dialect, _statements in FULLTEXT_DDL.items():
    for _statement in _statements:
        event.listen(SearchChunk.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))
for _dialect, _statements in FULLTEXT_DROP.items():
    for _statement in _statements:
        event.listen(SearchChunk.__table__, "before_drop", DDL(_statement).execute_if(dialect=_dialect))
