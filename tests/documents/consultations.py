"""Six realistic doctor-patient consultations as transcripts (the shape a recogniser produces: short
segments, fillers, a sentence now and then cut across two segments) with what a summary of each must hold.

Each consultation carries:

* ``labels``: key sentences (a substring that identifies the sentence) and the SOAP section a clinician
  would put them in: ``S``, ``O``, ``A``, ``P``, or ``-`` for talk that belongs in no section (greetings,
  "let me examine you"). The summariser's section accuracy is measured over these.
* ``symptoms``: (a word of the symptom's concept or of the words said, negated?) key facts, as the
  ``clinical_terms`` lexicon names them ("pain in my chest" is chest pain, "burning when I pass urine"
  dysuria, "blood in your urine" haematuria).
* ``medications``: (formulary name, spoken dose or None, frequency code of ``prescriptions.rules`` or None).
* ``vitals``: (vital kind, value as text).
* ``follow_ups``: (follow-up kind, a word of the action).

``DEVELOPMENT`` were written and used while writing the rules; ``HELD_OUT`` (child fever, back pain) were
written at the same time but not looked at while tuning, so their accuracy is the honest figure.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from caresync.documents.summaries.transcript import Segment

D, P = "doctor", "patient"


@dataclass(frozen=True)
class Consultation:
    """A fixture transcript and the labelled facts and sections expected from it."""

    name: str
    turns: tuple[tuple[str, str], ...]  # (speaker, segment text)
    labels: tuple[tuple[str, str], ...]
    symptoms: tuple[tuple[str, bool], ...]
    medications: tuple[tuple[str, str | None, str | None], ...]
    vitals: tuple[tuple[str, str], ...]
    follow_ups: tuple[tuple[str, str], ...]

    def segments(self, offset: float = 0.0, first_index: int = 0) -> tuple[Segment, ...]:
        """The turns as timed segments: 0.35 s a word and a 0.4 s pause between segments."""
        result = []
        clock = offset
        for number, (speaker, text) in enumerate(self.turns):
            duration = 0.35 * len(text.split())
            result.append(
                Segment(first_index + number, round(clock, 2), round(clock + duration, 2), speaker, text)
            )
            clock += duration + 0.4
        return tuple(result)


CHEST_PAIN = Consultation(
    name="chest pain",
    turns=(
        (D, "Good morning, come on in and have a seat."),
        (P, "Thanks, doctor."),
        (D, "What brings you in today?"),
        (P, "Um, I've been getting this pain in my chest, you know, when I walk up hills."),
        (P, "It started about three weeks ago and it goes away when I rest."),
        (D, "Does the pain spread anywhere, like your arm or your jaw?"),
        (P, "Sometimes it goes into my left arm."),
        (D, "Any shortness of breath?"),
        (P, "A little bit when it happens."),
        (D, "Any sweating or nausea?"),
        (P, "No."),
        (D, "Do you smoke?"),
        (P, "I smoked for twenty years but I stopped last year."),
        (D, "Are you taking any medicines at the moment?"),
        (P, "I take amlodipine 5 mg once a day for my blood pressure."),
        (D, "Okay, let me examine you."),
        (D, "Your blood pressure is 150 over 95."),
        (D, "Your pulse is 88 beats per minute and regular."),
        (D, "Your oxygen saturation is 97 percent."),
        (D, "Your chest sounds clear and your heart sounds are normal."),
        (D, "I think this is most likely angina, which means the heart is not getting enough blood"),
        (D, "when you exert yourself."),
        (D, "We need to rule out a heart problem, so I'm going to do an ECG today."),
        (D, "I'll also order blood tests for cholesterol and sugar."),
        (D, "I'm going to start you on atorvastatin"),
        (D, "20 mg once a day at night."),
        (D, "I'll refer you to the rapid access chest pain clinic."),
        (
            D,
            "If you get chest pain at rest that lasts more than fifteen minutes, "
            "call an ambulance straight away.",
        ),
        (D, "Come back in two weeks to go over the results."),
        (P, "Okay, thank you."),
        (D, "You're welcome, take care."),
    ),
    labels=(
        ("Good morning", "-"),
        ("pain in my chest", "S"),
        ("started about three weeks ago", "S"),
        ("goes into my left arm", "S"),
        ("shortness of breath", "S"),
        ("sweating or nausea", "S"),
        ("I smoked for twenty years", "S"),
        ("amlodipine", "S"),
        ("let me examine you", "-"),
        ("150 over 95", "O"),
        ("pulse is 88", "O"),
        ("oxygen saturation", "O"),
        ("chest sounds clear", "O"),
        ("most likely angina", "A"),
        ("ECG today", "P"),
        ("blood tests for cholesterol", "P"),
        ("atorvastatin", "P"),
        ("refer you", "P"),
        ("call an ambulance", "P"),
        ("two weeks", "P"),
        ("take care", "-"),
    ),
    symptoms=(("chest pain", False), ("breath", False), ("sweating", True), ("nausea", True)),
    medications=(("Amlodipine", "5 mg", "QD"), ("Atorvastatin", "20 mg", "QHS")),
    vitals=(("blood pressure", "150/95"), ("pulse", "88"), ("oxygen saturation", "97")),
    follow_ups=(
        ("test", "ECG"),
        ("test", "blood tests"),
        ("referral", "clinic"),
        ("safety-net", "ambulance"),
        ("review", "two weeks"),
    ),
)

ASTHMA = Consultation(
    name="asthma",
    turns=(
        (D, "Hello, how can I help you today?"),
        (P, "My asthma has been really bad for the last month."),
        (P, "I'm waking up at night coughing and wheezing, about three nights a week."),
        (D, "How often are you using your blue inhaler?"),
        (P, "Um, nearly every day, sometimes twice a day."),
        (D, "Are you using a preventer inhaler as well?"),
        (P, "No, I stopped the brown one because I didn't think it was doing anything."),
        (D, "Any fever or coloured phlegm?"),
        (P, "No fever, and the phlegm is clear."),
        (D, "Anything that triggers it?"),
        (P, "It gets worse when I'm around the cat at my sister's house."),
        (D, "Let me have a listen to your chest."),
        (D, "There is a mild wheeze on both sides."),
        (D, "Your peak flow is 320 litres per minute, and your best is usually about 450."),
        (D, "Your oxygen saturation is 96 percent and your respiratory rate is 18."),
        (D, "So this looks like your asthma is poorly controlled at the moment."),
        (D, "It's probably because you stopped the preventer."),
        (D, "I'm going to prescribe a budesonide formoterol inhaler, two puffs twice a day."),
        (D, "Keep using the salbutamol inhaler, 2 puffs as needed."),
        (D, "I'll also give you a short course of prednisolone 40 mg once a day for five days."),
        (D, "Try to avoid the cat as much as you can."),
        (
            D,
            "If you're using the blue inhaler more than every four hours or you can't finish sentences, "
            "go to A&E.",
        ),
        (D, "I'd like to see you again in four weeks to check how you're doing."),
        (P, "Thanks, that's really helpful."),
    ),
    labels=(
        ("how can I help", "-"),
        ("asthma has been really bad", "S"),
        ("waking up at night coughing", "S"),
        ("nearly every day", "S"),
        ("I stopped the brown one", "S"),
        ("No fever, and the phlegm is clear", "S"),
        ("around the cat", "S"),
        ("Let me have a listen", "-"),
        ("mild wheeze", "O"),
        ("peak flow is 320", "O"),
        ("respiratory rate is 18", "O"),
        ("poorly controlled", "A"),
        ("probably because you stopped", "A"),
        ("budesonide formoterol", "P"),
        ("salbutamol", "P"),
        ("prednisolone", "P"),
        ("avoid the cat", "P"),
        ("go to A&E", "P"),
        ("four weeks", "P"),
    ),
    symptoms=(("cough", False), ("wheez", False), ("fever", True)),
    medications=(
        ("Budesonide/formoterol", "2 puffs", "BID"),
        ("Salbutamol", "2 puffs", "PRN"),
        ("Prednisolone", "40 mg", "QD"),
    ),
    vitals=(("peak flow", "320"), ("oxygen saturation", "96"), ("respiratory rate", "18")),
    follow_ups=(("safety-net", "A&E"), ("review", "four weeks")),
)

DIABETES = Consultation(
    name="diabetes review",
    turns=(
        (D, "Hi, come in. This is your diabetes review, isn't it?"),
        (P, "Yes, that's right."),
        (D, "How have things been going?"),
        (P, "Not too bad, but I've been feeling more tired than usual."),
        (P, "I'm also passing water a lot at night, maybe three times."),
        (D, "Any problems with your feet, numbness or tingling?"),
        (P, "No, my feet are fine."),
        (D, "Are you taking the metformin regularly?"),
        (P, "Yes, I take metformin 1000 mg twice a day with meals."),
        (P, "Sometimes I forget the evening one, to be honest."),
        (D, "Your HbA1c came back at 64 millimoles per mole, which is higher than last time."),
        (D, "Your blood pressure today is 138 over 84 and your weight is 92 kilos."),
        (D, "Your feet look healthy and the pulses in your feet are good."),
        (D, "So your diabetes control has slipped a bit since your last review."),
        (D, "I think the tiredness is likely related to your sugar levels being high."),
        (D, "I'd like to add empagliflozin 10 mg once a day in the morning."),
        (D, "Drink plenty of water and let me know if you get any thrush or feel dizzy."),
        (D, "I'll refer you to the dietitian to look at your diet."),
        (D, "We'll check your kidney function and cholesterol with a blood test next week."),
        (D, "Let's book a review in three months with a repeat HbA1c."),
        (P, "Okay, I'll try to be better with the evening tablets."),
        (D, "That would be great."),
    ),
    labels=(
        ("diabetes review, isn't it", "-"),
        ("feeling more tired", "S"),
        ("passing water a lot", "S"),
        ("my feet are fine", "S"),
        ("metformin 1000 mg", "S"),
        ("forget the evening one", "S"),
        ("HbA1c came back", "O"),
        ("138 over 84", "O"),
        ("feet look healthy", "O"),
        ("control has slipped", "A"),
        ("likely related", "A"),
        ("empagliflozin", "P"),
        ("Drink plenty of water", "P"),
        ("dietitian", "P"),
        ("blood test next week", "P"),
        ("three months", "P"),
    ),
    symptoms=(("tired", False), ("numbness", True), ("tingling", True)),
    medications=(("Metformin", "1000 mg", "BID"), ("Empagliflozin", "10 mg", "QAM")),
    vitals=(("hba1c", "64"), ("blood pressure", "138/84"), ("weight", "92")),
    follow_ups=(("referral", "dietitian"), ("test", "blood test"), ("review", "three months")),
)

UTI = Consultation(
    name="urinary tract infection",
    turns=(
        (D, "Good afternoon, what seems to be the problem?"),
        (P, "I've had burning when I pass urine for the last three days."),
        (P, "And I keep needing to go, like, every half an hour."),
        (D, "Have you noticed any blood in your urine?"),
        (P, "No, no blood."),
        (D, "Any pain in your back or your sides, or any fever?"),
        (P, "No back pain, but I did feel a bit hot last night."),
        (D, "Any chance you could be pregnant?"),
        (P, "No, I'm not pregnant."),
        (D, "Any allergies to medicines?"),
        (P, "I'm allergic to penicillin, it gives me a rash."),
        (D, "Your temperature is 37.6 degrees."),
        (D, "Your urine dip shows leucocytes and nitrites."),
        (D, "Your tummy is soft, with a little tenderness just above the pubic bone."),
        (D, "This looks like a simple urinary tract infection."),
        (D, "I'll prescribe nitrofurantoin 100 mg twice a day for three days."),
        (D, "I'll also send your urine sample to the lab for culture."),
        (D, "You can take paracetamol for the discomfort."),
        (D, "If you develop a fever, pain in your back,"),
        (D, "or you feel sick, please come back or call us."),
        (D, "If it hasn't settled in 48 hours, come back and see us."),
        (P, "Thank you, doctor."),
    ),
    labels=(
        ("Good afternoon", "-"),
        ("burning when I pass urine", "S"),
        ("every half an hour", "S"),
        ("no blood", "S"),
        ("No back pain", "S"),
        ("not pregnant", "S"),
        ("allergic to penicillin", "S"),
        ("37.6", "O"),
        ("urine dip", "O"),
        ("tummy is soft", "O"),
        ("urinary tract infection", "A"),
        ("nitrofurantoin", "P"),
        ("culture", "P"),
        ("paracetamol", "P"),
        ("develop a fever", "P"),
        ("48 hours", "P"),
    ),
    symptoms=(("dysuria", False), ("haematuria", True), ("back pain", True)),
    medications=(("Nitrofurantoin", "100 mg", "BID"), ("Paracetamol", None, None)),
    vitals=(("temperature", "37.6"),),
    follow_ups=(("test", "culture"), ("safety-net", "fever"), ("review", "48 hours")),
)

CHILD_FEVER = Consultation(
    name="child fever",
    turns=(
        (D, "Hello, and hello to you too, little one. What's been happening?"),
        (P, "She's had a high temperature since yesterday morning."),
        (P, "It went up to 39.5 last night and she was really hot and grizzly."),
        (D, "Is she eating and drinking?"),
        (P, "She's not eating much, but she's drinking milk okay."),
        (D, "How many wet nappies has she had today?"),
        (P, "About four, which is normal for her."),
        (D, "Any rash, vomiting, or difficulty breathing?"),
        (P, "No rash and no vomiting. Her breathing seems fine."),
        (P, "She keeps pulling at her right ear though."),
        (D, "Has she had any medicine for the fever?"),
        (P, "I gave her Calpol at six o'clock this morning."),
        (D, "Let me have a look at her."),
        (D, "Her temperature is 38.4 degrees and her heart rate is 140."),
        (D, "Her right eardrum is red and bulging."),
        (D, "Her throat looks a bit red but her chest is clear, and there's no rash."),
        (D, "I think she has an ear infection, an otitis media."),
        (D, "It's most likely viral and usually gets better on its own."),
        (D, "You can give her paracetamol or ibuprofen for the pain and fever."),
        (D, "Keep giving her plenty of fluids."),
        (D, "If she's not better in three days, bring her back and we'll think about antibiotics."),
        (
            D,
            "If she becomes floppy, stops drinking, or gets a rash that doesn't fade under a glass, "
            "call 999 straight away.",
        ),
        (P, "Okay, thank you so much."),
    ),
    labels=(
        ("hello to you too", "-"),
        ("high temperature since yesterday", "S"),
        ("39.5 last night", "S"),
        ("not eating much", "S"),
        ("About four", "S"),
        ("No rash and no vomiting", "S"),
        ("pulling at her right ear", "S"),
        ("Calpol", "S"),
        ("Let me have a look", "-"),
        ("38.4", "O"),
        ("eardrum is red", "O"),
        ("chest is clear", "O"),
        ("ear infection", "A"),
        ("most likely viral", "A"),
        ("paracetamol or ibuprofen", "P"),
        ("plenty of fluids", "P"),
        ("three days", "P"),
        ("call 999", "P"),
    ),
    symptoms=(("temperature", False), ("rash", True), ("vomiting", True)),
    medications=(("Paracetamol", None, None), ("Ibuprofen", None, None)),
    vitals=(("temperature", "38.4"), ("pulse", "140")),
    follow_ups=(("review", "three days"), ("safety-net", "999")),
)

BACK_PAIN = Consultation(
    name="back pain",
    turns=(
        (D, "Morning, what can I do for you?"),
        (P, "I hurt my lower back lifting boxes at work last Tuesday."),
        (P, "The pain is mostly on the right side and it's worse when I bend forward."),
        (D, "Does the pain go down your leg?"),
        (P, "A bit, down the back of my right thigh, but not below the knee."),
        (D, "Any numbness around your bottom, or any problems with your bladder or bowels?"),
        (P, "No, nothing like that."),
        (D, "Any weakness in your legs?"),
        (P, "No."),
        (D, "What have you taken for it?"),
        (P, "Um, I've been taking ibuprofen 400 mg three times a day, and it helps a little."),
        (D, "On examination, you're tender over the right lower back muscles."),
        (D, "Straight leg raise is negative on both sides and power and reflexes are normal."),
        (D, "Your pulse is 76 and blood pressure is 128 over 80."),
        (D, "This is most likely a mechanical back strain, and there's nothing to suggest a trapped nerve."),
        (D, "I don't think you need an X-ray at this stage."),
        (D, "Keep taking the ibuprofen with food for another week."),
        (D, "It's important to stay active and keep moving, rather than resting in bed."),
        (D, "I'll refer you to physiotherapy."),
        (D, "If you get numbness around your bottom or trouble passing urine, go to A&E immediately."),
        (D, "Come back in four to six weeks if it's not improving."),
        (P, "Great, thanks."),
    ),
    labels=(
        ("what can I do for you", "-"),
        ("hurt my lower back", "S"),
        ("worse when I bend", "S"),
        ("back of my right thigh", "S"),
        ("nothing like that", "S"),
        ("weakness in your legs", "S"),
        ("ibuprofen 400 mg", "S"),
        ("tender over the right", "O"),
        ("Straight leg raise", "O"),
        ("pulse is 76", "O"),
        ("mechanical back strain", "A"),
        ("need an X-ray", "P"),
        ("Keep taking the ibuprofen", "P"),
        ("stay active", "P"),
        ("physiotherapy", "P"),
        ("go to A&E immediately", "P"),
        ("four to six weeks", "P"),
    ),
    symptoms=(("pain", False), ("numbness", True), ("weakness", True)),
    medications=(("Ibuprofen", "400 mg", "TID"),),
    vitals=(("pulse", "76"), ("blood pressure", "128/80")),
    follow_ups=(("referral", "physiotherapy"), ("safety-net", "A&E"), ("review", "four to six weeks")),
)

DEVELOPMENT = (CHEST_PAIN, ASTHMA, DIABETES, UTI)
HELD_OUT = (CHILD_FEVER, BACK_PAIN)
ALL = DEVELOPMENT + HELD_OUT


def long_consultation(minutes: float = 15.0) -> tuple[Segment, ...]:
    """A transcript of at least ``minutes`` of speech: the six consultations one after another, repeated."""
    segments: list[Segment] = []
    for consultation in itertools.cycle(ALL):
        offset = segments[-1].end + 0.4 if segments else 0.0
        segments.extend(consultation.segments(offset, len(segments)))
        if segments[-1].end >= minutes * 60:
            return tuple(segments)
    raise AssertionError("unreachable: the cycle never ends")
