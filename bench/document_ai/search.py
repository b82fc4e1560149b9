"""Document search benchmark: retrieval quality on the labelled corpus, and search latency over 100,000
documents on SQLite.

Run as its own process: ``python bench/document_ai/search.py [--documents 100000] [--patients 5000]
[--blocks 1500] [--rounds 5] [--database PATH]``.

1. **Quality** (``tests/documents/search_corpus.py``: 90 documents, 30 queries with graded labels): nDCG@10
   and recall@10 of plain full text (no synonyms, no negation), full text with synonyms and negation, and
   the hybrid with each fusion (reciprocal rank fusion, the default, and a weighted sum); also the hybrid
   through the large-scope strategy (``hybrid_rrf_large_scope``: full-text candidates re-ranked, as a
   search over 100,000 documents runs), forced on the small corpus.
2. **Index**: documents are generated from templates: each is two to four paragraphs of three sentences
   (presentation, negated or extra findings, plan) drawn from ``--blocks`` distinct paragraphs, so a
   paragraph is one passage and its embedding is computed once (``CachingEmbedder``). Reported apart: the
   embedding throughput (passages per second) and what embedding 100,000 unique documents would take at
   that rate, and the rest of indexing (lexicon, passages, rows, full-text triggers) in documents per second.
3. **Search latency** in-process (``engine.search``, the query embedding included), over the whole index
   (one organisation holds every document: the largest scope), over ``--my-patients`` patients' documents
   (a clinician's "my patients") and over one patient's documents, for 20 symptom queries x ``--rounds``.
   Query vectors are remembered between searches: each scope starts with none remembered, and its first
   round (every query seen for the first time) is also reported alone (``first_round``). Target: p95 <
   100 ms over 100,000 documents.

Prints one JSON object on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the tests package (the labelled corpus)

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.documents import search_corpus

import caresync.models
from caresync.db import make_engine
from caresync.documents.search import engine as search_engine
from caresync.documents.search.embeddings import CachingEmbedder, default_embedder, forget_queries
from caresync.documents.search.engine import SearchOptions, search
from caresync.documents.search.evaluation import evaluate
from caresync.documents.search.index import SearchableDocument, index_documents
from caresync.documents.search.models import SearchChunk, SearchDocument
from caresync.documents.search.ranking import Fusion

TARGET_P95_MS = 100
QUERIES = (
    "chest pain", "short of breath at night", "heart attack", "dyspnoea", "fever and cough", "headache",
    "tummy ache", "blood in urine", "passing out", "swollen ankles", "low mood", "diarrhoea and vomiting",
    "wheeze", "palpitations", "weight loss and night sweats", "trouble sleeping", "itchy rash",
    "fell at home", "back pain", "dizzy spells when standing up",
)  # fmt: skip
CATEGORIES = ("note", "letter", "discharge", "lab", "mental-health")

_LEADS = (
    "Presents with",
    "Complains of",
    "Reports",
    "Seen today with",
    "Two week history of",
    "Referred with",
)
_SYMPTOMS = (
    "chest pain", "central chest tightness", "shortness of breath", "breathlessness on exertion",
    "a dry cough", "a productive cough", "fever", "headaches", "dizziness", "palpitations", "abdominal pain",
    "tummy ache",
    "diarrhoea", "vomiting", "nausea", "back pain", "low back pain", "joint pain", "swollen ankles",
    "a rash", "itching", "fatigue", "weight loss", "night sweats", "low mood", "poor sleep", "wheeze",
    "blood in the urine", "painful urination", "a fall at home", "blackouts", "confusion", "a sore throat",
    "earache", "leg swelling", "calf pain", "numbness in the feet", "blurred vision", "heartburn",
    "constipation",
)  # fmt: skip
_DURATIONS = ("two days", "a week", "three weeks", "a month", "several months", "since yesterday")
_FINDINGS = ("Denies", "No", "Without", "Also reports", "Now has", "Mild")
_PLANS = (
    "Bloods and an ECG requested", "Reviewed in clinic in two weeks",
    "Started on a short course of antibiotics", "Referred to the specialist team",
    "Safety-netting advice given", "Admitted for observation",
    "Discharged home with analgesia", "Chest X-ray arranged", "Medication reviewed and doses adjusted",
    "Urine sample sent for culture", "Follow up with the practice nurse", "Physiotherapy referral made",
)  # fmt: skip


def log(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    return sorted_values[max(1, math.ceil(pct / 100 * len(sorted_values))) - 1]


def latency(samples_ms: list[float]) -> dict[str, Any]:
    """Count, p50, p95 and max, and whether the p95 meets the target."""
    ordered = sorted(samples_ms)
    p95 = round(percentile(ordered, 95), 1)
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 1),
        "p95_ms": p95,
        "max_ms": round(ordered[-1], 1),
        "target_p95_ms": TARGET_P95_MS,
        "met": p95 < TARGET_P95_MS,
    }


def blocks(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct three-sentence paragraphs (each becomes one passage)."""
    out: set[str] = set()
    while len(out) < count:
        first = f"{rng.choice(_LEADS)} {rng.choice(_SYMPTOMS)} for {rng.choice(_DURATIONS)}."
        second = f"{rng.choice(_FINDINGS)} {rng.choice(_SYMPTOMS)}."
        out.add(f"{first} {second} {rng.choice(_PLANS)}.")
    return sorted(out)


def documents(
    rng: random.Random, n: int, paragraphs: list[str], organisation: uuid.UUID, patients: list[uuid.UUID]
) -> list[SearchableDocument]:
    """``n`` documents of two to four paragraphs."""
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return [
        SearchableDocument(
            document_id=uuid.uuid4(),
            patient_id=rng.choice(patients),
            organisation_id=organisation,
            category=rng.choice(CATEGORIES),
            title=f"Document {i}",
            created_at=start + timedelta(minutes=i),
            text="\n".join(rng.sample(paragraphs, rng.randint(2, 4))),
        )
        for i in range(n)
    ]


def quality(session: Session, embedder: CachingEmbedder) -> dict[str, Any]:
    """nDCG@10 and recall@10 of each configuration on the labelled corpus (indexed in its own org)."""
    organisation, patients = uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
    index_documents(session, search_corpus.searchable_documents(organisation, patients), embedder=embedder)
    small = search_engine.SEMANTIC_POOL
    configurations = {  # the options, and the scope size above which the large-scope strategy runs
        "full_text_plain": (SearchOptions(expand_synonyms=False, semantic=False, negation=False), small),
        "full_text": (SearchOptions(semantic=False), small),
        "hybrid_rrf": (SearchOptions(), small),
        "hybrid_weighted": (SearchOptions(fusion=Fusion.WEIGHTED), small),
        "hybrid_rrf_without_negation": (SearchOptions(negation=False), small),
        "hybrid_rrf_large_scope": (SearchOptions(), 0),
    }
    out = {}
    for name, (options, pool) in configurations.items():
        search_engine.SEMANTIC_POOL = pool

        def run(query: str, options: SearchOptions = options) -> list[str]:
            hits = search(
                session, query, organisation_id=organisation, categories=search_corpus.CATEGORIES,
                options=options, embedder=embedder,
            )  # fmt: skip
            return [search_corpus.key_of(h.document_id) for h in hits]

        result = evaluate(run, search_corpus.QUERIES)
        out[name] = {"ndcg_at_10": round(result.ndcg, 3), "recall_at_10": round(result.recall, 3)}
        log(f"quality {name}: {out[name]}")
    search_engine.SEMANTIC_POOL = small
    session.rollback()
    return out


def timed_ms(call: Callable[[], object]) -> float:
    """Wall-clock milliseconds of one call."""
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def build_index(session: Session, docs: list[SearchableDocument], embedder: CachingEmbedder) -> float:
    """Index in batches of 1,000; seconds."""
    started = time.perf_counter()
    for i in range(0, len(docs), 1000):
        index_documents(session, docs[i : i + 1000], embedder=embedder)
        session.commit()
        if i % 10000 == 0:
            log(f"indexed {i + 1000} documents")
    return time.perf_counter() - started


def build(
    session: Session,
    rng: random.Random,
    args: argparse.Namespace,
    embedder: CachingEmbedder,
    result: dict[str, Any],
) -> tuple[uuid.UUID, uuid.UUID]:
    """Generate and index the documents; the organisation and one patient."""
    paragraphs = blocks(rng, args.blocks)
    embed_s = timed_ms(lambda: embedder.embed(paragraphs)) / 1000
    per_second = len(paragraphs) / embed_s
    organisation, patients = uuid.uuid4(), [uuid.uuid4() for _ in range(args.patients)]
    docs = documents(rng, args.documents, paragraphs, organisation, patients)
    log(f"embedded {len(paragraphs)} paragraphs in {embed_s:.1f}s; indexing {len(docs)} documents")
    index_s = build_index(session, docs, embedder)
    passages = session.scalar(select(func.count()).select_from(SearchChunk)) or 0
    result["index"] = {
        "documents": len(docs),
        "passages": passages,
        "distinct_passages_embedded": len(paragraphs),
        "embedding_passages_per_s": round(per_second, 1),
        "embedding_all_passages_estimate_s": round(passages / per_second),
        "index_without_embedding_s": round(index_s, 1),
        "index_documents_per_s": round(len(docs) / index_s),
    }
    log(f"index: {json.dumps(result['index'])}")
    return organisation, docs[0].patient_id


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--blocks", type=int, default=1500, help="distinct paragraphs the documents draw on")
    parser.add_argument("--rounds", type=int, default=5, help="times each query runs per scope")
    parser.add_argument("--my-patients", type=int, default=500, help='patients in the "my patients" scope')
    parser.add_argument("--database", help="SQLite file to build (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="search the --database built by an earlier run")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    rng = random.Random(9)
    path = Path(args.database or Path(tempfile.mkdtemp(prefix="caresync-search-bench-")) / "search.db")
    engine = make_engine(f"sqlite:///{path}")
    if not args.reuse:
        caresync.models.metadata.drop_all(engine)
        caresync.models.metadata.create_all(engine)
    embedder = CachingEmbedder(default_embedder())
    result: dict[str, Any] = {"benchmark": "documents_search", "cores": os.cpu_count()}
    result["load_average_at_start"] = os.getloadavg()
    with Session(engine) as session:
        embedder.embed(["warm up"])
        result["quality"] = quality(session, embedder)

        if args.reuse:
            organisation, patient = session.execute(
                select(SearchDocument.organisation_id, SearchDocument.patient_id)
                .order_by(SearchDocument.indexed_at.desc())
                .limit(1)
            ).one()
        else:
            organisation, patient = build(session, rng, args, embedder, result)
            result["index"]["database_mb"] = round(path.stat().st_size / 1e6)
        query_vectors: list[float] = []
        for query in QUERIES:  # the query embedding alone (the MiniLM model, one thread)
            query_vectors.append(timed_ms(partial(default_embedder().embed, [query])))
        mine = select(SearchDocument.patient_id).where(SearchDocument.organisation_id == organisation)
        my_patients = list(session.scalars(mine.distinct().limit(args.my_patients)))
        scopes: dict[str, dict[str, Any]] = {
            "organisation": {"organisation_id": organisation},
            "my_patients": {"patient_ids": my_patients},
            "patient": {"patient_ids": [patient]},
        }
        result["search"] = {"query_embedding": latency(query_vectors)}
        for name, scope in scopes.items():
            forget_queries()
            samples = []
            for _ in range(args.rounds):
                for query in QUERIES:
                    samples.append(timed_ms(partial(search, session, query, categories=CATEGORIES, **scope)))
            result["search"][name] = latency(samples) | {"first_round": latency(samples[: len(QUERIES)])}
            log(f"search over the {name} scope: {json.dumps(result['search'][name])}")
        session.rollback()
    result["search"]["my_patients"]["patients"] = len(my_patients)
    result["met"] = result["search"]["organisation"]["met"]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
