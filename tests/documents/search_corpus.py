"""A labelled evaluation set for symptom search: short synthetic clinical documents (letters, notes,
discharge summaries) and typed queries with graded relevance (2 = about it, 1 = partly about it).

It is built to be hard in the ways that matter: relevant documents that share no word with the query
(synonyms, lay terms, abbreviations, American spellings), distractors that mention the symptom only to
deny it, and queries in words outside the lexicon ("breathing problems when lying down"). Unlabelled
documents are not relevant. Everything is invented; any resemblance to a real patient is accidental.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from caresync.documents.search.index import SearchableDocument

# One document per block: "key | category | title", then its text on indented lines (joined by spaces).
_DOCUMENTS = """
c01 | note | ED note
    Presents with central chest pain radiating to the left arm for two hours. Sweaty and nauseated. ECG
    shows ST elevation; treated as STEMI and referred for primary PCI.

c02 | discharge | Discharge summary
    Admitted with an NSTEMI. Troponin rise on day one. Coronary angiography showed a tight LAD stenosis
    which was stented. Discharged on aspirin, clopidogrel and atorvastatin.

c03 | letter | Cardiology letter
    Thank you for referring this 58 year old man with exertional chest tightness relieved by rest. Exercise
    tolerance is two hundred yards. The history is typical of stable angina and I have started bisoprolol
    and GTN spray.

c04 | note | GP consultation
    Heart attack three years ago. Currently well with no chest pain. Continue secondary prevention and
    annual review.

c05 | note | Telephone triage
    Denies chest pain, palpitations or shortness of breath. Calling about a repeat prescription of ramipril
    only.

c06 | discharge | Discharge summary
    Admitted with decompensated heart failure. Breathless on minimal exertion, orthopnoea with four pillows
    and paroxysmal nocturnal dyspnoea. Bilateral pitting oedema to the knees. Diuresed with intravenous
    furosemide.

c07 | letter | Heart failure clinic
    She reports that she wakes at night gasping for air and has to sit on the edge of the bed. Ankles are
    swollen by the evening. Echo shows an ejection fraction of 30 percent.

c08 | note | GP consultation
    Episodes of a racing heart lasting minutes, with light-headedness. Pulse irregularly irregular. ECG
    confirms atrial fibrillation; started apixaban after discussing stroke risk.

c09 | note | Practice nurse review
    Blood pressure 168/96 on three readings. Home readings also high. Diagnosed with hypertension and
    started amlodipine. Lifestyle advice given.

c10 | note | Medication review
    HTN well controlled on lisinopril, BP 128/78. No headaches, no dizziness. Renal function stable.

c11 | note | Pre-operative assessment
    Fit and well. No history of MI, angina or stroke. Exercise tolerance unlimited. No cardiac symptoms
    reported.

c12 | note | ED note
    Woke at 3 am short of breath and with a heavy feeling in the chest. Could not lie flat. Crackles at both
    bases; chest X-ray shows pulmonary oedema.

c13 | note | Out of hours
    Fainted while standing in a queue, brief loss of consciousness, no jerking. Recovered fully within a
    minute. Lying and standing blood pressure shows a postural drop.

c14 | letter | Falls clinic
    Recurrent falls at home over the last three months, the last one in the bathroom at night. No head
    injury. Gait is unsteady and she uses a stick.

r01 | note | GP consultation
    Three days of fever and a productive cough with green sputum. Crackles at the right base. Clinical
    diagnosis of community acquired pneumonia; amoxicillin started.

r02 | note | GP consultation
    Dry cough for two weeks after a cold. Apyrexial. Chest clear. Likely post viral cough, reassured.

r03 | note | Asthma review
    Wheezy at night and on cold mornings, using salbutamol daily. Peak flow variable. Stepped up to a
    steroid inhaler.

r04 | discharge | Discharge summary
    Acute exacerbation of COPD with increased dyspnoea and purulent sputum. Treated with prednisolone,
    doxycycline and nebulisers. Oxygen saturations 90 percent on air at discharge.

r05 | note | Respiratory clinic
    Progressive breathlessness on exertion over a year, now limited to one flight of stairs. Ex-smoker,
    forty pack years. Spirometry confirms obstruction.

r06 | note | Walk-in centre
    Coryzal symptoms and a sore throat for four days. No shortness of breath. Temperature normal. Self care
    advice.

r07 | note | ED note
    Sudden onset pleuritic chest pain and dyspnea after a long-haul flight. Heart rate 118, saturations 91
    percent. CT pulmonary angiogram confirms pulmonary embolism.

r08 | note | GP consultation
    Flu-like illness with fevers, rigors and aching muscles since yesterday. Influenza is circulating
    locally; oseltamivir prescribed.

r09 | note | Sleep clinic
    Loud snoring with witnessed apnoeas and daytime sleepiness. Sleep study shows moderate obstructive sleep
    apnoea; CPAP trial arranged.

r10 | note | Respiratory clinic
    Coughing up blood-streaked sputum for a month with unintentional weight loss of six kilograms and night
    sweats. Urgent chest X-ray and referral on the suspected lung cancer pathway.

r11 | note | Telephone triage
    Child with a barking cough and a temperature of 38.5. No stridor at rest, no difficulty breathing.
    Advised fluids and paracetamol.

r12 | note | GP consultation
    Hay fever with sneezing, itchy eyes and a blocked nose every spring. Cetirizine and a steroid nasal
    spray.

g01 | note | GP consultation
    Diarrhoea and vomiting since a takeaway meal two days ago. Tolerating fluids. Likely gastroenteritis;
    oral rehydration advised.

g02 | note | Paediatric note
    Tummy ache and loose stools for three days, several children at nursery affected. Mildly dehydrated.

g03 | note | ED note
    Pain started around the umbilicus and moved to the right iliac fossa. Anorexia and low grade fever.
    Tender with guarding at McBurney's point; surgical review for appendicitis.

g04 | discharge | Discharge summary
    Laparoscopic appendicectomy for acute appendicitis. Uneventful recovery, eating and drinking, wound
    clean.

g05 | note | GP consultation
    Burning pain behind the breastbone after meals and when lying down, worse with coffee. Consistent with
    acid reflux; omeprazole trial.

g06 | note | Gastroenterology letter
    Bright red blood per rectum with a change in bowel habit for six weeks. No weight loss. Colonoscopy
    booked.

g07 | note | GP consultation
    Constipation for a month with bloating. Diet low in fibre. No rectal bleeding, no weight loss. Laxatives
    advised.

g08 | note | Out of hours
    Vomited blood twice this evening after heavy drinking. Coffee ground material reported. Sent to the
    emergency department.

g09 | note | GP consultation
    Yellowing of the skin and eyes noticed by her husband, with dark urine and itching. Liver function tests
    requested urgently.

g10 | note | Surgical clinic
    Colicky right upper quadrant pain after fatty meals. Ultrasound shows gallstones. Listed for
    cholecystectomy.

g11 | note | Annual review
    No abdominal pain, no vomiting, no change in bowel habit. Weight stable. Coeliac disease well controlled
    on a gluten free diet.

u01 | note | GP consultation
    Stinging when passing urine and going every hour for two days. Dipstick positive for nitrites. Urine
    infection treated with nitrofurantoin.

u02 | note | Telephone triage
    Recurrent water infections, three this year. Requesting a urology opinion.

u03 | letter | Urology letter
    Visible haematuria on two occasions, painless. Smoker. Flexible cystoscopy and CT urogram arranged.

u04 | note | ED note
    Loin to groin pain, writhing, with microscopic blood in the urine. CT KUB shows a 4 mm stone at the
    vesicoureteric junction; renal colic.

u05 | discharge | Discharge summary
    Acute kidney injury on a background of chronic kidney disease stage 3 after diarrhoea while taking
    ramipril. Creatinine peaked at 280 and recovered with fluids.

u06 | note | Renal clinic
    eGFR has fallen from 48 to 35 over a year. Renal function declining; referred to the nephrologist and
    medication doses reviewed.

u07 | note | Medication review
    No dysuria or frequency. No blood in urine. Prostate symptoms stable on tamsulosin.

n01 | note | ED note
    Sudden right sided weakness and slurred speech at 9 am, facial droop on the right. CT head shows no
    bleed; thrombolysed for acute ischaemic stroke.

n02 | letter | TIA clinic
    Ten minutes of left arm numbness and word-finding difficulty that resolved completely. Carotid doppler
    booked. Diagnosis transient ischaemic attack.

n03 | note | GP consultation
    Headaches every morning for a month, worse on bending, with blurred vision. Papilloedema on fundoscopy;
    urgent same-day referral.

n04 | note | GP consultation
    Throbbing one-sided headache with nausea and sensitivity to light, preceded by zigzag lines. Typical
    migraine with aura. Sumatriptan prescribed.

n05 | note | Head injury review
    Bumped head on a cupboard. No headache, no vomiting, no loss of consciousness. GCS 15. Head injury
    advice given.

n06 | note | Epilepsy review
    Two generalised seizures this year, both when missing doses. Driving advice given and adherence
    discussed.

n07 | letter | Memory clinic
    Gradual forgetfulness over two years, repeating questions and getting lost in familiar places.
    Assessment consistent with Alzheimer's disease.

n08 | note | GP consultation
    Dizzy spells with the room spinning when turning over in bed. Dix-Hallpike positive; benign positional
    vertigo. Epley manoeuvre performed.

n09 | note | Neurology letter
    Pins and needles and numbness in both feet, worse at night. Long-standing type 2 diabetes; peripheral
    neuropathy likely.

n10 | note | ED note
    Worst headache of his life, sudden onset during exercise, with neck stiffness and vomiting. CT shows
    subarachnoid haemorrhage.

e01 | note | Diabetes review
    Type 2 diabetes, HbA1c 74. Complains of thirst and passing lots of urine. Metformin increased and
    gliclazide added.

e02 | note | Diabetes review
    T2DM well controlled, HbA1c 48. Feet checked, sensation intact. Eye screening up to date.

e03 | note | Ambulance handover
    Found confused and sweaty at home, capillary glucose 2.1. Type 1 diabetic on insulin. Given glucagon
    with good recovery; hypo likely from a missed meal.

e04 | note | GP consultation
    Tiredness, weight gain and feeling cold all the time. TSH raised; hypothyroidism, started levothyroxine.

e05 | note | GP consultation
    Weight loss despite a good appetite, tremor, heat intolerance and palpitations. Suppressed TSH;
    overactive thyroid.

e06 | note | Practice nurse
    Sugar levels dropping below four in the afternoons since the insulin dose went up. Shaky and sweaty when
    it happens. Dose reduced.

m01 | mental-health | Mental health review
    Low mood for three months, poor sleep with early waking, loss of interest in hobbies. PHQ-9 of 18.
    Started sertraline and referred for talking therapy.

m02 | mental-health | Mental health review
    Feels on edge most of the day, constant worry and tension. Generalised anxiety disorder; CBT offered.

m03 | mental-health | Crisis team note
    Sudden episodes of pounding heart, feeling of doom and tingling fingers in supermarkets. Panic attacks;
    breathing techniques taught.

m04 | note | GP consultation
    Struggling to fall asleep for months, lying awake until 3 am. Sleep hygiene advice. No low mood.

m05 | note | Annual review
    Mood good, sleeping well. No anxiety or depression. Enjoying retirement.

k01 | note | Fracture clinic
    Fell on an outstretched hand on the ice. Dinner-fork deformity; X-ray shows a Colles fracture.
    Manipulated under a haematoma block and placed in a cast.

k02 | note | ED note
    Wrist pain after a fall from a bike. X-ray shows no fracture. Likely sprain; splint and analgesia.

k03 | discharge | Discharge summary
    Fractured neck of femur after a fall at home. Hemiarthroplasty on day one. Mobilising with a frame.

k04 | note | GP consultation
    Lower back pain after lifting boxes, no leg symptoms, no bladder or bowel change. Simple mechanical back
    pain; keep active.

k05 | note | GP consultation
    Hot, red, swollen big toe joint overnight, exquisitely tender. Gout; naproxen prescribed.

k06 | note | Rheumatology letter
    Painful swollen small joints of both hands with morning stiffness for two hours. Rheumatoid arthritis;
    methotrexate started.

k07 | note | GP consultation
    Itchy raised red weals all over the body after a new washing powder. Urticaria; antihistamines.

k08 | note | GP consultation
    Red, hot, spreading swelling of the left shin with fever. Cellulitis; flucloxacillin.

k09 | note | Dermatology letter
    Dry, intensely itchy patches in the elbow creases since childhood. Atopic eczema; emollients and a
    topical steroid.

k10 | note | GP consultation
    Painful blistering rash in a band on the left side of the chest. Shingles; aciclovir.

k11 | note | GP consultation
    Calf pain and a swollen, tender left calf after knee surgery. Ultrasound confirms a deep vein
    thrombosis; rivaroxaban started.

k12 | note | Pre-operative assessment
    No history of DVT or pulmonary embolism. No bleeding disorder. Suitable for day surgery.

k13 | note | GP consultation
    Swollen ankles since starting amlodipine, no breathlessness. Switched to another antihypertensive.

x01 | note | GP consultation
    Fever, headache and a new rash that does not fade under a glass. Given benzylpenicillin and sent in with
    suspected meningitis.

x02 | discharge | Discharge summary
    Urosepsis with rigors and hypotension, treated with intravenous antibiotics. Blood cultures grew E.
    coli.

x03 | note | Travel clinic
    Routine vaccinations before travel. Well, no fever, no cough, no rash.

x04 | note | Antenatal note
    Thirty six weeks. Headache and visual disturbance with BP 158/104 and protein in the urine.
    Pre-eclampsia; admitted to the labour ward.

x05 | discharge | Discharge summary
    Normal vaginal delivery of a healthy baby girl. Mother and baby well.

x06 | note | GP consultation
    Tired all the time, pale, short of breath climbing stairs. Haemoglobin 84, iron deficiency anaemia.
    Ferrous sulphate started.

x07 | note | ED note
    Swollen lips and tongue, wheeze and a widespread rash minutes after eating peanuts. Anaphylaxis;
    intramuscular adrenaline given.

x08 | note | Allergy review
    Penicillin allergy documented. No reaction to the cephalosporin given today.

x09 | letter | Elderly care letter
    Acute confusion over two days with a low grade temperature. Urine dipstick positive. Delirium secondary
    to urinary tract infection.

x10 | note | GP consultation
    Earache and a temperature in a three year old. Red bulging ear drum. Otitis media; paracetamol and
    review.

x11 | note | Ophthalmology note
    Sticky red eye with crusting in the morning. Bacterial conjunctivitis; chloramphenicol drops.

x12 | note | Admin note
    Appointment moved to Thursday at the patient's request. No clinical content.
"""


def _parse(raw: str) -> tuple[tuple[str, str, str, str], ...]:
    out = []
    for block in raw.strip().split("\n\n"):
        head, *lines = block.split("\n")
        key, category, title = (part.strip() for part in head.split("|"))
        out.append((key, category, title, " ".join(line.strip() for line in lines)))
    return tuple(out)


# (key, category, title, text)
DOCUMENTS: tuple[tuple[str, str, str, str], ...] = _parse(_DOCUMENTS)

# query -> {document key: grade}
QUERIES: dict[str, dict[str, int]] = {
    "chest pain": {"c01": 2, "c03": 2, "r07": 2, "c12": 1, "g05": 1},
    "shortness of breath": {"c06": 2, "c07": 1, "c12": 2, "r04": 2, "r05": 2, "r07": 2, "x06": 2},
    "dyspnea": {"c06": 2, "c07": 1, "c12": 2, "r04": 2, "r05": 2, "r07": 2, "x06": 2},
    "chest pain, short of breath at night": {
        "c12": 2,
        "r07": 2,
        "c06": 2,
        "c07": 2,
        "c01": 1,
        "c03": 1,
        "r05": 1,
    },
    "heart attack": {"c01": 2, "c02": 2, "c04": 1},
    "high blood pressure": {"c09": 2, "c10": 2, "x04": 1},
    "fever and cough": {"r01": 2, "r11": 2, "r08": 1, "r02": 1},
    "headache": {"n03": 2, "n04": 2, "n10": 2, "x01": 1, "x04": 1},
    "tummy ache": {"g02": 2, "g03": 2, "g10": 2, "u04": 1, "g05": 1},
    "blood in urine": {"u03": 2, "u04": 2},
    "passing out": {"c13": 2},
    "water infection": {"u01": 2, "u02": 2, "x09": 2, "x02": 1},
    "swollen ankles": {"c06": 2, "c07": 2, "k13": 2},
    "blood clot in the leg": {"k11": 2},
    "low mood": {"m01": 2},
    "diarrhoea and vomiting": {"g01": 2, "g02": 2, "u05": 1, "g08": 1, "n10": 1},
    "wheeze": {"r03": 2, "x07": 1},
    "palpitations": {"c08": 2, "e05": 2, "m03": 2},
    "weight loss and night sweats": {"r10": 2, "e05": 1},
    "stroke": {"n01": 2, "n02": 1},
    "low blood sugar": {"e03": 2, "e06": 2},
    "trouble sleeping": {"m04": 2, "m01": 1},
    "broken wrist": {"k01": 2},
    "itchy rash": {"k07": 2, "k09": 2, "k10": 1, "x07": 1, "x01": 1, "g09": 1},
    "breathing problems when lying down": {"c06": 2, "c07": 2, "c12": 2},
    "kidney function getting worse": {"u06": 2, "u05": 2},
    "feeling anxious and panicky": {"m02": 2, "m03": 2},
    "fell at home": {"c14": 2, "k03": 2, "k01": 1, "k02": 1},
    "vomiting blood": {"g08": 2},
    "yellow skin": {"g09": 2},
}

# Documents that mention a query's concept only to deny it: each must rank below every relevant document.
NEGATED_DISTRACTORS: dict[str, tuple[str, ...]] = {
    "chest pain": ("c04", "c05"),
    "heart attack": ("c11",),
    "stroke": ("c11",),
    "passing out": ("n05",),
    "fever and cough": ("x03",),
    "diarrhoea and vomiting": ("n05", "g11"),
    "palpitations": ("c05",),
    "weight loss and night sweats": ("g06", "g07"),
    "feeling anxious and panicky": ("m05",),
    "shortness of breath": ("c05", "r06", "r11", "k13"),
    "headache": ("c10", "n05"),
    "tummy ache": ("g11",),
    "blood in urine": ("u07",),
    "low mood": ("m04", "m05"),
    "blood clot in the leg": ("k12",),
}


def document_id(key: str) -> uuid.UUID:
    """The stable document id of a corpus key."""
    return uuid.uuid5(_NAMESPACE, key)


def key_of(document: uuid.UUID) -> str:
    """The corpus key of a document id."""
    return _KEYS[document]


def searchable_documents(
    organisation_id: uuid.UUID, patient_ids: Sequence[uuid.UUID]
) -> list[SearchableDocument]:
    """The corpus as index input, the documents dealt to the patients in turn, one day apart."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        SearchableDocument(
            document_id=document_id(key),
            patient_id=patient_ids[i % len(patient_ids)],
            organisation_id=organisation_id,
            category=category,
            title=title,
            created_at=start + timedelta(days=i),
            text=text,
        )
        for i, (key, category, title, text) in enumerate(DOCUMENTS)
    ]


CATEGORIES = frozenset(category for _, category, _, _ in DOCUMENTS)
_NAMESPACE = uuid.UUID("6f1d1a2e-5b0c-4c53-9a57-1f7f3f0d9c11")
_KEYS = {document_id(key): key for key, *_ in DOCUMENTS}
