"""Symptom-based document search: full text with medical synonyms, fused with embedding similarity.

* :mod:`.models` - the index tables and the full-text DDL (FTS5 / tsvector);
* :mod:`.index` - ``index_document(s)`` / ``remove_document(s)`` of a :class:`~.index.SearchableDocument`;
* :mod:`.engine` - ``search(session, query, categories=..., patient_ids=... | organisation_id=...)``;
* :mod:`.query`, :mod:`.ranking`, :mod:`.snippets`, :mod:`.passages` - the pure parts;
* :mod:`.embeddings` - MiniLM sentence embeddings; :mod:`.evaluation` - nDCG@k and recall@k.

The concepts, synonyms and negation come from :mod:`caresync.documents.clinical_terms`.
"""
