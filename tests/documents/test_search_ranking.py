"""Search, the pure parts: passages, query plans (and their escaping), fusion, ordering, snippets, metrics."""

from __future__ import annotations

import uuid

import pytest

from caresync.core.errors import ValidationFailed
from caresync.documents.search.evaluation import evaluate, ndcg_at_k, recall_at_k
from caresync.documents.search.index import concept_summary, parse_concept_summary
from caresync.documents.search.passages import passages, sentences
from caresync.documents.search.query import plan_query
from caresync.documents.search.ranking import MARK_CLOSE, MARK_OPEN, Fusion, fuse, order, pool_bm25
from caresync.documents.search.snippets import MAX_SNIPPET_CHARS, highlight_spans, snippet

pytestmark = pytest.mark.no_db

A, B, C = (uuid.UUID(int=i) for i in (1, 2, 3))


def test_sentences_keep_offsets_and_decimal_points() -> None:
    text = "Dear Dr Smith,\n\nTemp 37.5 today? No fever.\nPlan: ECG.   Review in 2 weeks..."
    assert [text[a:b] for a, b in sentences(text)] == [
        "Dear Dr Smith,",
        "Temp 37.5 today?",
        "No fever.",
        "Plan: ECG.",
        "Review in 2 weeks...",
    ]


def test_passages_group_up_to_three_sentences() -> None:
    text = "One. Two. Three. Four. " + "Long " * 100 + "sentence."
    parts = passages(text)
    assert [p.text for p in parts[:2]] == ["One. Two. Three.", "Four."]
    assert all(text[p.start : p.end] == p.text for p in parts)
    assert len(parts) == 3
    assert parts[2].text.startswith("Long")
    assert passages("   \n ") == []


def test_query_plan_concepts_words_and_expansion() -> None:
    plan = plan_query("Chest pain, sob at night")
    assert plan.concepts == ("chest pain", "shortness of breath")
    assert plan.words == ("night",)
    assert {"chest pain", "dyspnoea", "dyspnea", "short of breath", "night"} <= set(plan.phrases)
    assert plan_query("sob at night", expand_synonyms=False).phrases == ("sob", "night")


@pytest.mark.parametrize(
    "query",
    [
        'chest "pain',
        "pain OR",
        "NEAR(pain fever)",
        "pain*",
        "^fever",
        "fever:cough",
        "-cough",
        "(((pain",
        "a' OR 1=1",
    ],
)
def test_full_text_query_has_only_quoted_words(query: str) -> None:
    expression = plan_query(query).fts5()
    for phrase in expression.split(" OR "):
        assert phrase.startswith('"')
        assert phrase.endswith('"')
        assert phrase[1:-1].replace(" ", "").isalnum()


@pytest.mark.parametrize("query", ["", "   ", "?!", "x" * 501])
def test_unusable_queries_are_refused(query: str) -> None:
    with pytest.raises(ValidationFailed):
        plan_query(query)


def test_rrf_and_weighted_fusion() -> None:
    lexical, semantic = {A: 9.0, B: 3.0}, {B: 0.8, C: 0.6}
    rrf = fuse(lexical, semantic, Fusion.RRF)
    assert rrf[B] > rrf[A] > rrf[C]
    assert all(0 <= v < 1 for v in rrf.values())
    weighted = fuse(lexical, semantic, Fusion.WEIGHTED)
    assert weighted[A] == pytest.approx(0.999 * 0.5)
    assert weighted[B] == pytest.approx(0.999 * (0.5 * 3 / 9 + 0.5 * 0.8))
    assert fuse({A: 2.0}, {}, Fusion.WEIGHTED)[A] == pytest.approx(0.999)
    assert fuse({}, {}, Fusion.RRF) == {}


def _marked(text: str) -> str:
    return text.replace("[", MARK_OPEN).replace("]", MARK_CLOSE)


def test_pool_bm25_weighs_rare_terms_repeats_and_length() -> None:
    common = "[Chest pain] at rest."
    pool = [common] * 8 + ["Sudden [palpitations] at rest.", "[chest pain], [palpitations]."]
    scores = pool_bm25([_marked(p) for p in pool])
    assert scores[8] > scores[0] > 0  # a term few of the pool's passages have weighs more
    assert scores[9] > scores[8]  # both terms beat either; case does not matter
    repeated = pool_bm25([_marked(p) for p in ("[cough] now", "[cough] [cough]", "no match")])
    assert 2 * repeated[0] > repeated[1] > repeated[0] > repeated[2] == 0.0  # more occurrences, saturating
    short, long = pool_bm25([_marked(p) for p in ("[fever] now", "[fever] " + "and so on " * 20)])
    assert short > long  # the same match in a longer passage counts less
    assert pool_bm25([]) == []


def test_negated_only_documents_rank_below_affirming_ones() -> None:
    fused = {A: 0.9, B: 0.2, C: 0.5}
    statuses = {A: {"chest pain": False}, B: {"chest pain": True}, C: {}}
    ranked = order(fused, ["chest pain"], statuses)
    assert [r.key for r in ranked] == [B, C, A]
    assert ranked[2].negated == ("chest pain",)
    assert ranked[0].affirmed == ("chest pain",)
    assert [r.key for r in order(fused, ["chest pain"], statuses, negation=False)] == [A, B, C]


def test_more_affirmed_concepts_first_then_fewer_negated() -> None:
    fused = {A: 0.1, B: 0.9, C: 0.5}
    statuses = {
        A: {"chest pain": True, "fever": True},
        B: {"chest pain": True, "fever": False},
        C: {"chest pain": True},
    }
    assert [r.key for r in order(fused, ["chest pain", "fever"], statuses)] == [A, C, B]


def test_concept_summary_round_trip() -> None:
    summary = concept_summary("Denies chest pain. Fever for two days, no cough. Chest pain on exertion.")
    assert parse_concept_summary(summary) == {"chest pain": True, "fever": True, "cough": False}
    assert parse_concept_summary("") == {}


def test_snippet_escapes_html_and_marks_concepts_and_words() -> None:
    text = "Pt <b>unwell</b> & breathless at night; no fever."
    html = snippet(text, ["shortness of breath", "fever"], ["night"])
    expected = "Pt &lt;b&gt;unwell&lt;/b&gt; &amp; <mark>breathless</mark> at <mark>night</mark>; no "
    assert html == expected + "<mark>fever</mark>."


def test_snippet_cuts_long_passages_around_the_first_highlight() -> None:
    text = "Filler words here. " * 30 + "Sudden chest pain today. " + "More filler text. " * 30
    html = snippet(text, ["chest pain"], [])
    assert html.startswith("\u2026")
    assert html.endswith("\u2026")
    assert "<mark>chest pain</mark>" in html
    assert len(html) <= MAX_SNIPPET_CHARS + 40


def test_highlight_spans_merge_overlaps() -> None:
    assert highlight_spans("chest pain", ["chest pain"], ["chest"]) == [(0, 10)]


def test_metrics() -> None:
    grades = {"a": 2, "b": 1, "c": 0}
    assert ndcg_at_k(["a", "b"], grades) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a"], grades) < 1.0
    assert ndcg_at_k(["x"], {}) == 0.0
    assert recall_at_k(["a", "x"], grades) == 0.5
    quality = evaluate(lambda q: ["a", "b"] if q == "good" else ["x"], {"good": grades, "bad": grades})
    assert quality.ndcg == pytest.approx(0.5)
    assert quality.recall == pytest.approx(0.5)
    assert quality.per_query == {"good": pytest.approx(1.0), "bad": 0.0}
