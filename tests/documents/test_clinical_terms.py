"""Clinical terms: lexicon, mentions, synonyms and NegEx-style negation on real-looking sentences."""

from __future__ import annotations

import pytest

from caresync.analytics.rules import CONDITIONS as ANALYTICS_CONDITIONS
from caresync.documents.clinical_lexicon import CONCEPTS
from caresync.documents.clinical_terms import concept, expand, find_mentions, is_negated, lookup

pytestmark = pytest.mark.no_db

# (sentence, [(concept, negated), ...] in order). "+" = affirmed, "-" = negated.
CASES: list[tuple[str, list[tuple[str, str]]]] = [
    ("Chest pain and short of breath at night.", [("chest pain", "+"), ("shortness of breath", "+")]),
    ("Denies chest pain.", [("chest pain", "-")]),
    # a line wrapped by a letter's layout goes on; a new line that starts a list item or sentence ends it
    (
        "Exertional chest pain and shortness of \nbreath at night.",
        [("chest pain", "+"), ("shortness of breath", "+")],
    ),
    ("- no fever\n- cough", [("fever", "-"), ("cough", "+")]),
    ("No fever\nCough for a week.", [("fever", "-"), ("cough", "+")]),
    ("No fever but cough for three days.", [("fever", "-"), ("cough", "+")]),
    (
        "Denies chest pain, shortness of breath, palpitations, nausea or vomiting.",
        [(c, "-") for c in ("chest pain", "shortness of breath", "palpitations", "nausea", "vomiting")],
    ),
    ("Without nausea; reports diarrhoea.", [("nausea", "-"), ("diarrhoea", "+")]),
    ("No fever, reports a productive cough.", [("fever", "-"), ("cough", "+")]),
    ("No chest pain. Dyspnoea on exertion.", [("chest pain", "-"), ("shortness of breath", "+")]),
    ("Negative for haematuria and dysuria.", [("haematuria", "-"), ("dysuria", "-")]),
    ("He is not short of breath.", [("shortness of breath", "-")]),
    ("She does not have diabetes.", [("diabetes", "-")]),
    ("Free of headache since Tuesday.", [("headache", "-")]),
    ("No evidence of pneumonia on the chest X-ray.", [("pneumonia", "-")]),
    ("No history of MI or stroke.", [("myocardial infarction", "-"), ("stroke", "-")]),
    ("Nil vomiting, nil diarrhoea.", [("vomiting", "-"), ("diarrhoea", "-")]),
    # post-negation triggers
    ("MI ruled out by serial troponins.", [("myocardial infarction", "-")]),
    ("Pulmonary embolism was excluded.", [("pulmonary embolism", "-")]),
    ("Chest pain: denied.", [("chest pain", "-")]),
    ("COVID negative.", [("covid 19", "-")]),
    # pseudo-negations: the trigger word does not negate the concept
    ("No increase in pain since Monday.", [("pain", "+")]),
    ("No change in the ankle swelling.", [("ankle swelling", "+")]),
    ("No worsening of her asthma.", [("asthma", "+")]),
    ("PE cannot be ruled out.", [("pulmonary embolism", "+")]),
    ("Appendicitis not excluded, surgeons to review.", [("appendicitis", "+")]),
    ("Not only headache but also vomiting.", [("headache", "+"), ("vomiting", "+")]),
    # a trigger inside a concept is part of the concept, not a negation of what follows
    ("No sense of smell and a fever.", [("loss of smell", "+"), ("fever", "+")]),
    # scope ends at the sentence, a semicolon and contrastive words
    ("No rash; itchy eyes.", [("rash", "-"), ("itching", "+")]),
    ("No vomiting, however has diarrhoea.", [("vomiting", "-"), ("diarrhoea", "+")]),
    ("Denies fever although feels feverish at night.", [("fever", "-"), ("fever", "+")]),
    # the scope is limited to twelve units
    (
        "No fever when she came back from the holiday in Spain two weeks ago with a cough.",
        [("fever", "-"), ("cough", "+")],
    ),
    # synonyms, spellings, plurals, possessives
    (
        "History of heart attacks and type II diabetes.",
        [("myocardial infarction", "+"), ("type 2 diabetes", "+")],
    ),
    ("Dyspnea and edema.", [("shortness of breath", "+"), ("oedema", "+")]),
    ("Parkinson\u2019s disease and Alzheimer's.", [("Parkinson's disease", "+"), ("dementia", "+")]),
    ("Anemia with hemoptysis.", [("anaemia", "+"), ("haemoptysis", "+")]),
    ("Takes metformin and ramipril for HTN.", [("metformin", "+"), ("ramipril", "+"), ("hypertension", "+")]),
    ("Tummy ache and loose stools.", [("abdominal pain", "+"), ("diarrhoea", "+")]),
    # everyday phrasings: a possessive reads as "the", a subject pronoun as "I"
    ("I've been getting this pain in my chest.", [("chest pain", "+")]),
    ("Pains in her chest and pain in your back.", [("chest pain", "+"), ("back pain", "+")]),
    ("Denies pain in his chest.", [("chest pain", "-")]),
    ("I've had burning when I pass urine.", [("dysuria", "+")]),
    ("Does it burn when you pass urine?", [("dysuria", "+")]),
    ("Stings when she passes urine.", [("dysuria", "+")]),
    ("No blood in your urine.", [("haematuria", "-")]),
    ("Give her paracetamol.", [("paracetamol", "+")]),  # an object pronoun alone is nothing
    # a measured temperature is not a fever; having "a temperature" is
    ("Your temperature is 37.6 degrees.", []),
    ("Temperature normal, pulse 80.", []),
    ("She has had a temperature since Monday.", [("fever", "+")]),
    ("Running a temperature; high temperatures at night.", [("fever", "+"), ("fever", "+")]),
    ("He hasn't had a temperature.", [("fever", "-")]),
    # longest phrase wins; words that only look like terms are not mentions
    ("Low back pain radiating to the leg.", [("low back pain", "+")]),
    ("Fit and well, no past medical history.", []),
    ("Ms Smith was seen in clinic.", []),
]


@pytest.mark.parametrize(("sentence", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_mentions_and_negation(sentence: str, expected: list[tuple[str, str]]) -> None:
    found = [(m.concept, "-" if m.negated else "+") for m in find_mentions(sentence)]
    assert found == expected


def test_mention_offsets_and_fields() -> None:
    text = "Pt c/o SOB; denies chest pain."
    sob, cp = find_mentions(text)
    assert (sob.text, text[sob.start : sob.end], sob.kind, sob.code) == ("SOB", "SOB", "symptom", "R06.0")
    assert (cp.text, cp.negated, cp.code) == ("chest pain", True, "R07.4")


def test_abbreviations_need_capitals_in_documents_but_not_in_queries() -> None:
    assert find_mentions("she began to sob") == []
    assert [m.concept for m in find_mentions("sob at night", strict_abbreviations=False)] == [
        "shortness of breath"
    ]


@pytest.mark.parametrize(
    ("text", "phrase", "negated"),
    [
        ("Patient denies any chest pain today.", "chest pain", True),
        ("Patient denies any chest pain but is breathless.", "breathless", False),
        ("No increase in pain.", "pain", False),
        ("Troponin was negative.", "Troponin", True),
        ("The knee is swollen.", "knee", False),
    ],
)
def test_is_negated_on_any_span(text: str, phrase: str, negated: bool) -> None:
    start = text.index(phrase)
    assert is_negated(text, start, start + len(phrase)) is negated


def test_is_negated_agrees_with_find_mentions() -> None:
    text = "No fever, cough or rash but complains of headache. Denies vomiting; MI ruled out."
    for m in find_mentions(text):
        assert is_negated(text, m.start, m.end) is m.negated


def test_a_long_document_reads_like_its_sentences() -> None:
    """A whole document (too long to keep in the reading cache) gives what its sentences give apart."""
    sentences = [sentence for sentence, _ in CASES if sentence.endswith(".")]
    text, expected = "", []
    while len(text) < 5000:
        for sentence in sentences:
            expected += [(m.concept, m.negated, len(text) + m.start) for m in find_mentions(sentence)]
            text += sentence + " "
    mentions = find_mentions(text)
    assert [(m.concept, m.negated, m.start) for m in mentions] == expected
    assert all(is_negated(text, m.start, m.end) is m.negated for m in mentions[-10:])


@pytest.mark.parametrize(
    ("term", "includes"),
    [
        ("dyspnoea", {"dyspnea", "shortness of breath", "short of breath", "SOB", "breathlessness"}),
        ("short of breath", {"dyspnoea", "dyspnea", "shortness of breath"}),
        ("MI", {"heart attack", "myocardial infarction"}),
        ("heart attacks", {"MI", "myocardial infarction"}),
        ("Oedema", {"oedema", "edema", "fluid retention"}),
        ("high blood pressure", {"hypertension", "HTN"}),
        ("diarrhea", {"diarrhoea", "loose stools"}),
        ("blood in your urine", {"haematuria", "blood in urine"}),
        ("pain in my chest", {"chest pain", "chest discomfort"}),
    ],
)
def test_expand_synonyms(term: str, includes: set[str]) -> None:
    assert includes <= expand(term)


def test_expand_unknown_term_is_itself() -> None:
    assert expand("  bunion ") == frozenset({"bunion"})


def test_lexicon_is_consistent() -> None:
    names = [c.name for c in CONCEPTS]
    assert len(names) == len(set(names))
    assert {c.kind for c in CONCEPTS} == {"symptom", "condition", "medication"}
    assert sum(c.kind != "medication" for c in CONCEPTS) >= 120
    for c in CONCEPTS:
        assert lookup(c.name) == c, c.name  # no synonym of another concept shadows a canonical name
    assert concept("hypertension").code == "I10"


def test_every_analytics_condition_code_has_a_concept() -> None:
    codes = {c.code for c in CONCEPTS}
    assert {c.code for c in ANALYTICS_CONDITIONS} <= codes
