"""Grounded extractive summaries: SOAP section accuracy on labelled consultations (with roles, without roles,
re-cut segments), grounding of every sentence and fact, key facts (symptoms with negation, medications
with dose and frequency, vitals, follow-ups), the rules behind them, validation, rendering and speed."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence

import pytest

from caresync.core.errors import ValidationFailed
from caresync.documents.summaries import Segment, Summary, render_markdown, render_text, summarise
from caresync.documents.summaries.dialogue import utterances
from caresync.documents.summaries.facts import follow_ups
from caresync.documents.summaries.medications import find as find_drugs
from caresync.documents.summaries.numbers import digitise
from caresync.documents.summaries.soap import Section
from caresync.documents.summaries.transcript import normalise, sentences
from caresync.documents.summaries.vitals import readings
from tests.documents.consultations import ALL, DEVELOPMENT, HELD_OUT, Consultation, long_consultation

pytestmark = pytest.mark.no_db

_LETTER = {Section.SUBJECTIVE: "S", Section.OBJECTIVE: "O", Section.ASSESSMENT: "A", Section.PLAN: "P"}
# Floors below the measured figures (1.00 with roles on both sets, 0.98 without roles, 1.00 re-cut): the
# fixtures are small, so a floor protects against a regression, not against unseen phrasing.
ACCURACY_FLOOR = 0.95
UNKNOWN_ROLES_FLOOR = 0.9


def _accuracy(cases: Sequence[tuple[Consultation, Sequence[Segment]]]) -> float:
    right = total = 0
    for consultation, segments in cases:
        note = summarise(segments).note
        for needle, expected in consultation.labels:
            placed = [_LETTER[s.section] for s in note.sentences if needle.lower() in s.text.lower()]
            right += (placed[0] if placed else "-") == expected
            total += 1
    return right / total


def _unknown_roles(segments: Sequence[Segment]) -> list[Segment]:
    return [dataclasses.replace(segment, speaker="unknown") for segment in segments]


def _recut(consultation: Consultation, words: int = 6) -> list[Segment]:
    """The consultation as a recogniser might cut it: segments of ``words`` words, across sentences."""
    segments: list[Segment] = []
    for speaker, text in consultation.turns:
        tokens = text.split()
        for first in range(0, len(tokens), words):
            start = 2.0 * len(segments)
            segments.append(
                Segment(len(segments), start, start + 1.9, speaker, " ".join(tokens[first : first + words]))
            )
    return segments


@pytest.mark.parametrize(("cases", "floor"), [(DEVELOPMENT, ACCURACY_FLOOR), (HELD_OUT, ACCURACY_FLOOR)])
def test_section_accuracy_with_speaker_roles(cases: Sequence[Consultation], floor: float) -> None:
    assert _accuracy([(c, c.segments()) for c in cases]) >= floor


def test_section_accuracy_without_speaker_roles() -> None:
    assert _accuracy([(c, _unknown_roles(c.segments())) for c in ALL]) >= UNKNOWN_ROLES_FLOOR


def test_section_accuracy_with_segments_cut_across_sentences() -> None:
    assert _accuracy([(c, _recut(c)) for c in ALL]) >= ACCURACY_FLOOR


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    remaining = iter(haystack)
    return all(word in remaining for word in needle)


def _variants() -> list[tuple[str, Sequence[Segment]]]:
    cases: list[tuple[str, Sequence[Segment]]] = []
    for c in ALL:
        cases += [(c.name, c.segments()), (f"{c.name}, no roles", _unknown_roles(c.segments()))]
        cases.append((f"{c.name}, re-cut", _recut(c)))
    return cases


@pytest.mark.parametrize(
    ("name", "segments"), _variants(), ids=lambda value: value if isinstance(value, str) else ""
)
def test_every_sentence_and_fact_is_grounded_in_its_segments(name: str, segments: Sequence[Segment]) -> None:
    """Each note sentence's words appear, in order, in the words of the segments it cites, and its time
    span is theirs; each fact cites segments whose text holds what the fact says."""
    by_index = {segment.index: segment for segment in segments}
    summary = summarise(segments)
    assert summary.note.sentences, name
    for sentence in summary.note.sentences:
        cited = [by_index[index] for index in sentence.segments]
        assert cited, sentence
        source = _words(" ".join(segment.text for segment in cited))
        assert _is_subsequence(_words(sentence.text), source), (sentence.text, source)
        assert (sentence.start, sentence.end) == (cited[0].start, cited[-1].end)
    facts = summary.facts
    for symptom in facts.symptoms:
        said = " ".join(by_index[i].text for i in symptom.segments).lower()
        assert all(words.lower() in said for words in symptom.said), symptom
    for medication in facts.medications:
        said = " ".join(by_index[i].text for i in medication.segments).lower()
        assert medication.name.split("/")[0].lower() in said or "calpol" in said, medication
    for vital in facts.vitals:
        said = digitise(" ".join(by_index[i].text for i in vital.segments))
        assert all(part in said for part in vital.value.split("/")), vital
    for action in facts.follow_ups:
        assert action.text in {s.text for s in summary.note.plan}, action


@pytest.mark.parametrize("consultation", ALL, ids=lambda c: c.name)
def test_key_facts_of_each_consultation(consultation: Consultation) -> None:
    facts = summarise(consultation.segments()).facts
    for word, negated in consultation.symptoms:
        matching = [f for f in facts.symptoms if word in f.concept or any(word in s.lower() for s in f.said)]
        assert matching, (word, facts.symptoms)
        assert matching[0].negated is negated, matching[0]
    assert [(m.name, m.dose, m.frequency) for m in facts.medications] == list(consultation.medications)
    assert {(v.kind, v.value) for v in facts.vitals} >= set(consultation.vitals)
    for kind, word in consultation.follow_ups:
        assert any(
            f.kind == kind and (word.lower() in f.text.lower() or word == f.when) for f in facts.follow_ups
        ), (kind, word, facts.follow_ups)


def test_a_drug_asked_about_takes_the_answer() -> None:
    facts = summarise(
        _say(
            ("doctor", "Are you taking any ibuprofen?"),
            ("patient", "No."),
            ("doctor", "Do you use a salbutamol inhaler?"),
            ("patient", "Yes, most days."),
            ("doctor", "Any paracetamol?"),
            ("patient", "Just aspirin."),
        )
    ).facts
    assert [(m.name, m.negated) for m in facts.medications] == [
        ("Ibuprofen", True),
        ("Salbutamol", False),
        ("Paracetamol", False),  # undecided: mentioned, not denied
    ]


def test_facts_carry_codes_units_and_who_said_them() -> None:
    facts = summarise(ALL[0].segments()).facts  # chest pain
    amlodipine, atorvastatin = facts.medications
    assert (amlodipine.code, amlodipine.frequency_label, amlodipine.in_plan) == (
        "197361",
        "Once a day",
        False,
    )
    assert (atorvastatin.code, atorvastatin.frequency_label, atorvastatin.in_plan) == (
        "617310",
        "At bedtime",
        True,
    )
    assert {(v.kind, v.unit) for v in facts.vitals} == {
        ("blood pressure", "mmHg"),
        ("pulse", "beats/min"),
        ("oxygen saturation", "%"),
    }
    sweating = next(f for f in facts.symptoms if f.concept == "sweating")
    assert (sweating.negated, sweating.code, sweating.segments) == (True, "R61", (9, 10))


def _say(*turns: tuple[str, str]) -> list[Segment]:
    return [Segment(i, 2.0 * i, 2.0 * i + 1.5, speaker, text) for i, (speaker, text) in enumerate(turns)]


def _symptoms(summary: Summary) -> dict[str, bool]:
    return {fact.concept: fact.negated for fact in summary.facts.symptoms}


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        # negation said by the patient ("no fever" -> fever negated)
        ((("patient", "I have a cough but no fever."),), {"cough": False, "fever": True}),
        # a bare "No." denies everything asked; a "Yes" affirms it
        ((("doctor", "Any nausea or vomiting?"), ("patient", "No.")), {"nausea": True, "vomiting": True}),
        ((("doctor", "Any headache?"), ("patient", "Yes, most mornings.")), {"headache": False}),
        # an answer that says something else decides only what it names: fever stays undecided
        (
            (("doctor", "Any back pain or fever?"), ("patient", "No back pain, but I felt hot.")),
            {"back pain": True},
        ),
        # an unanswered question and a plan's "if you get a fever" are nobody's symptoms
        ((("doctor", "Any dizziness?"), ("doctor", "If you get a fever, come back.")), {}),
        # affirmed once and denied once: present
        (
            (("patient", "I've had a headache."), ("patient", "No headache today though.")),
            {"headache": False},
        ),
    ],
)
def test_symptom_negation_and_question_answers(
    turns: tuple[tuple[str, str], ...], expected: dict[str, bool]
) -> None:
    assert _symptoms(summarise(_say(*turns))) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Um, I've been, you know, getting this pain.", "I've been getting this pain."),
        ("So, okay, it started on Monday.", "It started on Monday."),
        ("I I think it feels like pressure.", "I think it feels like pressure."),  # "like" kept: it means
    ],
)
def test_normalise_removes_only_fillers(text: str, expected: str) -> None:
    assert normalise(text) == expected
    assert not re.search(r"\w", normalise("Uh, erm, hmm."))


def test_sentences_rejoin_a_sentence_cut_across_segments_and_drop_filler_only_ones() -> None:
    segments = _say(
        ("doctor", "I'm going to start you on"),
        ("doctor", "atorvastatin 20 mg. Come back"),
        ("doctor", "in two weeks."),
        ("patient", "Um, uh."),
    )
    split = sentences(segments)
    assert [(s.clean, s.segments, s.speaker) for s in split] == [
        ("I'm going to start you on atorvastatin 20 mg.", (0, 1), "doctor"),
        ("Come back in two weeks.", (1, 2), "doctor"),
    ]
    assert (split[0].start, split[0].end) == (0.0, 3.5)


def test_an_unpunctuated_run_is_cut_where_its_segments_meet() -> None:
    run = " ".join(["and then the pain came back"] * 4)  # 24 words a segment, no full stop
    split = sentences(_say(("patient", run), ("patient", run), ("patient", run)))
    assert [s.segments for s in split] == [(0,), (1,), (2,)]
    assert sentences(_say(("patient", run), ("patient", run)))[0].segments == (0, 1)  # 48 words: one


def test_question_answer_pairing_rules() -> None:
    units = utterances(
        sentences(
            _say(
                ("doctor", "This is your diabetes review, isn't it?"),
                ("patient", "Yes, that's right."),
                ("doctor", "What brings you in?"),
                ("patient", "I have had a dry cough for three weeks and it keeps me awake at night."),
                ("doctor", "Any fever?"),
                ("patient", "No."),
            )
        )
    )
    assert [(u.text, u.question != "", u.polarity) for u in units] == [
        ("This is your diabetes review, isn't it?", False, None),  # a tag question only confirms
        ("Yes, that's right.", False, None),
        ("What brings you in?", False, None),  # the long answer stands on its own
        ("I have had a dry cough for three weeks and it keeps me awake at night.", False, None),
        ("Any fever? No.", True, "no"),
    ]
    assert units[-1].segments == (4, 5)


def test_courtesy_greetings_and_examination_announcements_are_left_out() -> None:
    note = summarise(
        _say(
            ("doctor", "Good morning, come in and have a seat."),
            ("patient", "Thanks, doctor."),
            ("doctor", "Let me examine you."),
            ("doctor", "Your chest is clear."),
            ("patient", "Okay, thank you so much."),
        )
    ).note
    assert [(s.section, s.text) for s in note.sentences] == [(Section.OBJECTIVE, "Your chest is clear.")]


def test_near_duplicate_sentences_are_kept_once() -> None:
    note = summarise(
        _say(
            ("doctor", "I'll refer you to physiotherapy."),
            ("patient", "Okay."),
            ("doctor", "So I'll refer you to physiotherapy then."),
            ("doctor", "I'll refer you to the pain clinic."),
        )
    ).note
    assert [(s.text, s.segments) for s in note.plan] == [
        ("I'll refer you to physiotherapy.", (0,)),
        ("I'll refer you to the pain clinic.", (3,)),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one hundred and fifty over ninety-five", "150 over 95"),
        ("thirty-eight point five degrees", "38.5 degrees"),
        ("between five and ten", "between 5 and 10"),
        ("one thousand two hundred", "1200"),
    ],
)
def test_digitise(text: str, expected: str) -> None:
    assert digitise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Your blood pressure is one hundred and forty over ninety.", [("blood pressure", "140/90", "mmHg")]),
        ("BP 128/80, pulse 76.", [("blood pressure", "128/80", "mmHg"), ("pulse", "76", "beats/min")]),
        ("Her temperature is 38.4 degrees.", [("temperature", "38.4", "°C")]),
        ("Temp 101.2 F.", [("temperature", "101.2", "°F")]),
        ("Sats are ninety-six percent on air.", [("oxygen saturation", "96", "%")]),
        ("Your HbA1c came back at 64 millimoles per mole.", [("hba1c", "64", "mmol/mol")]),
        ("HbA1c is 7.5 percent.", [("hba1c", "7.5", "%")]),
        ("Your weight is 92 kilos and your BMI is 31.", [("weight", "92", "kg"), ("bmi", "31", "kg/m²")]),
        ("Her temperature has been high for 3 days.", []),  # a duration is not a reading
        ("I lost weight over 6 months.", []),
        ("I take it for my blood pressure.", []),
    ],
)
def test_vital_readings(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert [(r.kind, r.value, r.unit) for r in readings(text)] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Amoxicillin 500 milligrams three times a day.",
            [("Amoxicillin", "308191", "500 mg", "TID", False)],
        ),
        (
            "Amoxicillin 250 mg.",
            [("Amoxicillin", None, "250 mg", None, False)],
        ),  # two products, neither 250 mg
        (
            "A budesonide and formoterol inhaler, two puffs twice a day.",
            [("Budesonide/formoterol", "896188", "2 puffs", "BID", False)],
        ),
        ("Use the albuterol inhaler as needed.", [("Salbutamol", "745679", None, "PRN", False)]),
        ("Metoprolol 25 mg every twelve hours.", [("Metoprolol tartrate", "866924", "25 mg", "Q12H", False)]),
        ("Atorvastatin 20 mg once a day at night.", [("Atorvastatin", "617310", "20 mg", "QHS", False)]),
        ("I'm not taking ibuprofen any more.", [("Ibuprofen", "197806", None, None, True)]),
        (
            "Paracetamol 1 g four times a day or ibuprofen 400 mg.",
            [("Paracetamol", "1000001", "1 g", "QID", False), ("Ibuprofen", "197806", "400 mg", None, False)],
        ),
        ("Take care and drink plenty of water.", []),
    ],
)
def test_medications_from_the_formulary(text: str, expected: list[tuple[object, ...]]) -> None:
    assert [(d.name, d.code, d.dose, d.frequency, d.negated) for d in find_drugs(text)] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Come back in two weeks.", [("review", "in two weeks")]),
        ("Let's book a review in three months.", [("review", "in three months")]),
        ("I'll refer you to physiotherapy.", [("referral", None)]),
        ("We'll do a blood test next week.", [("test", "next week")]),
        ("I don't think you need an X-ray at this stage.", []),
        ("We need to rule out a heart problem, so I'll do an ECG today.", [("test", "today")]),
        ("If you get chest pain at rest, call an ambulance.", [("safety-net", None)]),
        ("If it hasn't settled in 48 hours, come back and see us.", [("review", "in 48 hours")]),
        ("If it gets worse in 2 days, go to A&E.", [("safety-net", "in 2 days")]),
        ("Drink plenty of water.", []),
    ],
)
def test_follow_up_actions(text: str, expected: list[tuple[str, str | None]]) -> None:
    (unit,) = utterances(sentences(_say(("doctor", text))))
    assert [(f.kind, f.when) for f in follow_ups(unit)] == expected


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([], "no speech"),
        (_say(("doctor", "  ")), "no speech"),
        (_say(("nurse", "Hello.")), "unknown speaker role"),
        ([Segment(0, 5.0, 4.0, "doctor", "Hello.")], "ends before it starts"),
        ([Segment(0, float("nan"), 4.0, "doctor", "Hello.")], "ends before it starts"),
        ([Segment(1, 0.0, 1.0, "doctor", "Hi."), Segment(1, 1.0, 2.0, "patient", "Hi.")], "in order"),
    ],
)
def test_unusable_transcripts_are_refused(segments: list[Segment], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        summarise(segments)


def test_markdown_and_text_rendering() -> None:
    summary = summarise(ALL[0].segments())
    markdown = render_markdown(summary)
    for heading in (
        "## Subjective",
        "## Objective",
        "## Assessment",
        "## Plan",
        "## Key facts",
        "### Symptoms",
    ):
        assert heading in markdown
    assert "- Your blood pressure is 150 over 95. [16]" in markdown
    assert "- sweating: absent [9, 10]" in markdown
    assert "- Atorvastatin 20 mg at bedtime (plan) [24, 25]" in markdown
    assert "- review (in two weeks): Come back in two weeks to go over the results. [28]" in markdown
    text = render_text(summary)
    assert text.startswith("SUBJECTIVE\n* I've been getting this pain in my chest when I walk up hills. [3]")
    assert "Vitals:\n* blood pressure: 150/95 mmHg [16]" in text


def test_markdown_escapes_what_was_said_and_marks_empty_sections() -> None:
    markdown = render_markdown(summarise(_say(("patient", "My *rash* is <b>itchy</b> [really]."))))
    assert r"- My \*rash\* is \<b\>itchy\</b\> \[really\]. [0]" in markdown
    assert "## Plan\n- (nothing recorded)" in markdown


def test_summaries_are_deterministic() -> None:
    segments = long_consultation(5)
    assert summarise(segments) == summarise(segments)


def test_a_fifteen_minute_transcript_is_summarised_quickly() -> None:
    """The brief's target is < 100 ms without the embedding model; the clinical-terms lexicon matcher
    (another module) costs about as much again, so the test allows 500 ms of CPU (best of three) and
    bench/document_ai/summaries.py reports the split."""
    segments = long_consultation(15)
    summarise(segments)
    best = min(_cpu_seconds(lambda: summarise(segments)) for _ in range(3))
    assert best < 0.5


def _cpu_seconds(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start
