"""The clinical lexicon: the data :mod:`caresync.documents.clinical_terms` matches with.

* **Concepts**: common symptoms, conditions and medications, each with a canonical name, an ICD-10 code where
  one fits and its synonyms. British spellings are written here; the American ones are derived
  (:func:`american`). Abbreviations written in capitals (SOB, MI, HTN) only match capitalised text in
  documents. A synonym says how people say it, written once: possessive determiners are spelled "the" ("pain
  in the chest" also reads "pain in my chest") and subject pronouns "I" ("burning when I pass urine" also
  reads "... when you pass urine"), see :data:`WORD_CLASSES`.
* **Negation phrases** (NegEx, Chapman et al., 2001): pre-triggers, post-triggers, pseudo-triggers (which
  cancel a trigger) and scope terminators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SYMPTOM, CONDITION, MEDICATION = "symptom", "condition", "medication"

_AMERICAN = ((re.compile(r"ae"), "e"), (re.compile(r"oe"), "e"), (re.compile(r"our\b"), "or"))


def american(term: str) -> str:
    """The American spelling of a British term (ae/oe -> e, -our -> -or); other terms unchanged."""
    out = term
    for pattern, repl in _AMERICAN:
        out = pattern.sub(repl, out)
    return out


@dataclass(frozen=True)
class Concept:
    """One lexicon entry: a canonical name, its kind, an ICD-10 code where one fits, and its synonyms."""

    name: str
    kind: str
    code: str | None
    synonyms: tuple[str, ...]

    @property
    def terms(self) -> frozenset[str]:
        """Every surface form: the name, the synonyms and their American spellings."""
        forms = {self.name, *self.synonyms}
        return frozenset(forms | {american(f) for f in forms})


def _c(name: str, kind: str, code: str | None, synonyms: str = "") -> Concept:
    return Concept(name, kind, code, tuple(s.strip() for s in synonyms.split("|") if s.strip()))


def _s(name: str, code: str | None, synonyms: str = "") -> Concept:
    return _c(name, SYMPTOM, code, synonyms)


def _d(name: str, code: str | None, synonyms: str = "") -> Concept:
    return _c(name, CONDITION, code, synonyms)


def _m(name: str, synonyms: str = "") -> Concept:
    return _c(name, MEDICATION, None, synonyms)


SYMPTOMS: tuple[Concept, ...] = (
    _s(
        "chest pain",
        "R07.4",
        "chest pains|chest discomfort|chest tightness|tight chest|pain in the chest|tightness in the chest|"
        "pain in chest|thoracic pain|central chest pain|chest hurts",
    ),
    _s(
        "shortness of breath",
        "R06.0",
        "short of breath|dyspnoea|breathlessness|breathless|difficulty breathing|"
        "difficulty in breathing|trouble breathing|breathing difficulty|breathing difficulties|out of breath|"
        "SOB|SOBOE|DIB|exertional dyspnoea|dyspnoea on exertion|breathless on exertion",
    ),
    _s("orthopnoea", "R06.0", "breathless lying flat|short of breath lying flat|breathless when lying flat"),
    _s(
        "paroxysmal nocturnal dyspnoea",
        "R06.0",
        "PND|nocturnal dyspnoea|waking up breathless|wakes up breathless|woken by breathlessness",
    ),
    _s("cough", "R05", "coughing|dry cough|productive cough|non productive cough|chesty cough|tickly cough"),
    _s("haemoptysis", "R04.2", "coughing up blood|coughing blood|blood in sputum|blood stained sputum"),
    _s("sputum", "R09.3", "phlegm|sputum production"),
    _s("wheeze", "R06.2", "wheezing|wheezy"),
    # "temperature" alone is a measurement ("your temperature is 37.6"), not a fever; "a temperature" is.
    _s(
        "fever",
        "R50.9",
        "pyrexia|febrile|high temperature|raised temperature|feverish|pyrexial|a temperature|"
        "low grade temperature|spiking temperature",
    ),
    _s("chills", "R68.8", "rigors|shivering|shivers|shaking chills"),
    _s("night sweats", "R61", "sweating at night|nocturnal sweats|drenching sweats"),
    _s("sweating", "R61", "diaphoresis|sweaty|clammy|diaphoretic"),
    _s("fatigue", "R53", "tiredness|tired|exhaustion|exhausted|lethargy|lethargic|malaise|low energy"),
    _s("weakness", "R53", "generalised weakness|feeling weak"),
    _s(
        "limb weakness",
        "R29.8",
        "arm weakness|leg weakness|weak arm|weak leg|weakness in the arm|"
        "weakness in the leg|weakness of the arm|weakness of the leg",
    ),
    _s("hemiparesis", "G81.9", "one sided weakness|weakness down one side|hemiplegia"),
    _s("weight loss", "R63.4", "losing weight|lost weight|unintentional weight loss|unexplained weight loss"),
    _s("loss of appetite", "R63.0", "poor appetite|reduced appetite|decreased appetite|anorexia"),
    _s("headache", "R51", "cephalgia|head pain|sore head|head ache"),
    _s("migraine", "G43.9", "migraine headache"),
    _s("dizziness", "R42", "dizzy|lightheaded|light headed|light headedness|lightheadedness|giddiness|giddy"),
    _s("vertigo", "R42", "room spinning|spinning sensation"),
    _s(
        "syncope",
        "R55",
        "fainting|faint|fainted|passed out|passing out|blackout|blackouts|collapse|collapsed|"
        "loss of consciousness|LOC",
    ),
    _s(
        "palpitations",
        "R00.2",
        "heart racing|racing heart|pounding heart|heart pounding|fluttering in the chest|"
        "heart fluttering|skipped beats",
    ),
    _s("tachycardia", "R00.0", "fast heart rate|rapid heart rate|racing pulse|rapid pulse"),
    _s("bradycardia", "R00.1", "slow heart rate|slow pulse"),
    _s("hypotension", "I95.9", "low blood pressure|low BP"),
    _s(
        "hypoxia",
        "R09.0",
        "hypoxaemia|low oxygen|low oxygen saturation|low oxygen saturations|desaturation|desaturating",
    ),
    _s("cyanosis", "R23.0", "blue lips|bluish skin|cyanosed"),
    _s("nausea", "R11", "nauseous|nauseated|feeling sick|queasy|N/V|N&V"),
    _s("vomiting", "R11", "vomit|vomited|being sick|emesis|throwing up|threw up"),
    _s("diarrhoea", "R19.7", "loose stools|watery stools|runny stools|loose bowel motions"),
    _s("constipation", "K59.0", "constipated"),
    _s(
        "abdominal pain",
        "R10.4",
        "abdo pain|tummy ache|tummy pain|stomach ache|stomachache|stomach pain|"
        "belly pain|pain in the abdomen|pain in the stomach|pain in the tummy|pain in the belly|"
        "abdominal cramps|abdominal cramping|epigastric pain|RIF pain|right iliac fossa pain|"
        "abdominal tenderness",
    ),
    _s("pelvic pain", "R10.2", "pain in the pelvis"),
    _s("heartburn", "R12", "indigestion|dyspepsia|acid indigestion"),
    _s("dysphagia", "R13", "difficulty swallowing|trouble swallowing|swallowing difficulty"),
    _s(
        "rectal bleeding",
        "K62.5",
        "blood in stool|blood in the stool|bloody stools|bright red blood per rectum|"
        "PR bleeding|BRBPR|melaena|black stools|tarry stools",
    ),
    _s(
        "haematemesis",
        "K92.0",
        "vomiting blood|vomited blood|blood in vomit|coffee ground vomit|coffee ground vomitus",
    ),
    _s(
        "haematuria",
        "R31",
        "blood in urine|blood in the urine|bloody urine|blood in the pee|blood in the wee",
    ),
    _s(
        "dysuria",
        "R30.0",
        "painful urination|burning on urination|pain on passing urine|"
        "burning when passing urine|stinging when passing urine|burning when I pass urine|"
        "burns when I pass urine|stings when I pass urine|hurts when I pass urine|pain when I pass urine|"
        "burning when I pass water|burns when I pass water|burning when passing water|burning when I pee|"
        "burning when I wee",
    ),
    _s("urinary frequency", "R35", "frequent urination|urinating frequently|passing urine frequently"),
    _s("polyuria", "R35", "excessive urination|passing lots of urine"),
    _s("excessive thirst", "R63.1", "polydipsia|increased thirst|very thirsty"),
    _s("urinary incontinence", "R32", "incontinence|leaking urine"),
    _s("back pain", "M54.9", "backache|back ache|sore back|pain in the back"),
    _s("low back pain", "M54.5", "lower back pain|lumbago|LBP|lumbar pain"),
    _s("neck pain", "M54.2", "cervicalgia|sore neck|pain in the neck"),
    _s("neck stiffness", "R29.8", "stiff neck|nuchal rigidity"),
    _s("joint pain", "M25.5", "arthralgia|painful joints|sore joints|pain in the joints"),
    _s("muscle pain", "M79.1", "myalgia|muscle aches|aching muscles|body aches|muscle ache"),
    _s("leg pain", "M79.6", "pain in the leg|painful leg|calf pain|calf tenderness|painful calf"),
    _s(
        "ankle swelling",
        "R60.0",
        "swollen ankles|swollen legs|leg swelling|peripheral oedema|pedal oedema|"
        "ankle oedema|leg oedema|swollen feet",
    ),
    _s("oedema", "R60.9", "fluid retention"),
    _s("swelling", "R22.9", "swollen|lump|mass"),
    _s("rash", "R21", "skin rash|skin eruption"),
    _s("itching", "L29.9", "itch|itchy|pruritus|itchiness"),
    _s("sore throat", "J02.9", "throat pain|painful throat|pharyngitis|pain in the throat"),
    _s("runny nose", None, "rhinorrhoea|nasal discharge"),
    _s("nasal congestion", None, "blocked nose|stuffy nose|congested nose|nasal blockage"),
    _s("sneezing", "R06.7", "sneeze"),
    _s("hoarse voice", "R49.0", "hoarseness|hoarse"),
    _s("nosebleed", "R04.0", "epistaxis|nose bleed|bleeding from the nose"),
    _s("earache", "H92.0", "ear pain|otalgia|sore ear|pain in the ear"),
    _s("hearing loss", "H91.9", "deafness|hard of hearing|reduced hearing"),
    _s("blurred vision", "H53.8", "blurry vision|blurring of vision|visual blurring"),
    _s("double vision", "H53.2", "diplopia|seeing double"),
    _s("eye pain", "H57.1", "painful eye|sore eye|pain in the eye"),
    _s("loss of smell", "R43.0", "anosmia|lost sense of smell|no sense of smell"),
    _s("loss of taste", "R43.2", "ageusia|lost sense of taste|no sense of taste"),
    _s("confusion", "R41.0", "confused|disorientation|disoriented|disorientated|acute confusion|delirium"),
    _s("memory loss", "R41.3", "forgetfulness|forgetful|poor memory|amnesia"),
    _s("seizure", "R56.8", "convulsion|fitting|had a fit"),
    _s("numbness", "R20.0", "numb|loss of sensation|reduced sensation"),
    _s("pins and needles", "R20.2", "paraesthesia|tingling"),
    _s("tremor", "R25.1", "shaking|shakes|trembling"),
    _s("slurred speech", "R47.8", "slurring of speech|dysarthria|speech disturbance"),
    _s("facial droop", "R29.8", "facial drooping|drooping face|face drooping"),
    _s(
        "insomnia",
        "G47.0",
        "difficulty sleeping|trouble sleeping|poor sleep|can't sleep|sleeplessness|unable to sleep",
    ),
    _s("snoring", "R06.5", "snores"),
    _s("suicidal thoughts", "R45.8", "suicidal ideation|thoughts of suicide"),
    _s("jaundice", "R17", "yellow skin|yellowing of the skin|icterus|jaundiced|yellow eyes"),
    _s("bruising", "R23.3", "easy bruising|bruises|bruised"),
    _s("bleeding", "R58", "haemorrhage|bleed"),
    _s("swollen glands", "R59.9", "lymphadenopathy|enlarged lymph nodes|swollen lymph nodes"),
    _s("falls", "R29.6", "fall|fell|recurrent falls|had a fall"),
    _s("vaginal bleeding", "N93.9", "abnormal vaginal bleeding|PV bleeding|bleeding per vagina"),
    _s("breast lump", "N63", "lump in the breast|breast mass"),
    _s("toothache", "K08.8", "dental pain|tooth pain"),
    _s("pain", "R52", "ache|aching|soreness|sore|painful"),
)

CONDITIONS: tuple[Concept, ...] = (
    _d(
        "myocardial infarction",
        "I21.9",
        "heart attack|MI|acute myocardial infarction|AMI|STEMI|NSTEMI|myocardial infarct",
    ),
    _d("acute coronary syndrome", "I24.9", "ACS"),
    _d("angina", "I20.9", "angina pectoris|stable angina|unstable angina|anginal"),
    _d(
        "coronary artery disease",
        "I25.1",
        "CAD|coronary heart disease|CHD|ischaemic heart disease|IHD|atherosclerotic heart disease",
    ),
    _d(
        "heart failure",
        "I50.9",
        "cardiac failure|CHF|congestive heart failure|congestive cardiac failure|CCF|"
        "HF|LVF|left ventricular failure|HFrEF",
    ),
    _d("atrial fibrillation", "I48.9", "AF|AFib|a fib"),
    _d(
        "hypertension",
        "I10",
        "high blood pressure|HTN|raised blood pressure|essential hypertension|high BP|"
        "elevated blood pressure|hypertensive",
    ),
    _d("stroke", "I63.9", "CVA|cerebrovascular accident|cerebral infarction|ischaemic stroke"),
    _d("transient ischaemic attack", "G45.9", "TIA|mini stroke"),
    _d("deep vein thrombosis", "I80.2", "DVT|deep venous thrombosis|blood clot in the leg|clot in the leg"),
    _d("pulmonary embolism", "I26.9", "PE|pulmonary embolus|blood clot in the lung|clot on the lung"),
    _d(
        "type 2 diabetes",
        "E11.9",
        "T2DM|type 2 diabetes mellitus|type II diabetes|diabetes type 2|NIDDM|"
        "non insulin dependent diabetes|diabetes mellitus type 2",
    ),
    _d(
        "type 1 diabetes",
        "E10.9",
        "T1DM|type 1 diabetes mellitus|type I diabetes|IDDM|insulin dependent diabetes",
    ),
    _d("diabetes", "E14.9", "diabetes mellitus|DM|diabetic"),
    _d("hypoglycaemia", "E16.2", "hypo|low blood sugar|low blood glucose"),
    _d("hyperglycaemia", "R73.9", "high blood sugar|raised blood sugar|high blood glucose"),
    _d("asthma", "J45.9", "asthmatic|asthma attack|exacerbation of asthma"),
    _d(
        "chronic obstructive pulmonary disease",
        "J44.9",
        "COPD|chronic obstructive airways disease|COAD|emphysema|chronic bronchitis",
    ),
    _d(
        "pneumonia",
        "J18.9",
        "chest infection|LRTI|lower respiratory tract infection|community acquired pneumonia|CAP",
    ),
    _d("acute bronchitis", "J20.9", "bronchitis"),
    _d("influenza", "J11", "flu|influenza like illness|ILI"),
    _d("upper respiratory tract infection", "J06.9", "URTI|URI|common cold|head cold|a cold|coryza"),
    _d("covid 19", "U07.1", "covid|coronavirus|SARS CoV 2"),
    _d("allergic rhinitis", "J30.1", "hay fever|hayfever|seasonal allergies|pollen allergy"),
    _d("urinary tract infection", "N39.0", "UTI|bladder infection|cystitis|urine infection|water infection"),
    _d("pyelonephritis", "N10", "kidney infection"),
    _d("gastroenteritis", "A09", "stomach bug|tummy bug|infectious gastroenteritis|viral gastroenteritis"),
    _d("food poisoning", "A05.9"),
    _d("appendicitis", "K35.8", "acute appendicitis"),
    _d("gastro oesophageal reflux disease", "K21.9", "GORD|GERD|acid reflux|reflux|reflux oesophagitis"),
    _d("peptic ulcer", "K27.9", "stomach ulcer|gastric ulcer|duodenal ulcer|PUD"),
    _d("irritable bowel syndrome", "K58.9", "IBS"),
    _d("gallstones", "K80.2", "cholelithiasis|biliary colic|gall stones"),
    _d("kidney stones", "N20.0", "renal colic|nephrolithiasis|renal stones|kidney stone"),
    _d("chronic kidney disease", "N18.9", "CKD|chronic renal failure|chronic renal impairment"),
    _d("acute kidney injury", "N17.9", "AKI|acute renal failure"),
    _d("anaemia", "D64.9", "low haemoglobin|low Hb|iron deficiency anaemia"),
    _d("hypothyroidism", "E03.9", "underactive thyroid|low thyroid"),
    _d("hyperthyroidism", "E05.9", "overactive thyroid|thyrotoxicosis"),
    _d("osteoarthritis", "M19.9", "OA|degenerative joint disease|wear and tear arthritis"),
    _d("rheumatoid arthritis", "M06.9", "RA"),
    _d("arthritis", "M13.9"),
    _d("gout", "M10.9", "gouty arthritis"),
    _d("osteoporosis", "M81.9", "osteoporotic"),
    _d("fracture", "T14.2", "broken bone|fractured"),
    _d(
        "wrist fracture",
        "S52.5",
        "distal radius fracture|fracture of lower end of radius|Colles fracture|"
        "broken wrist|fractured wrist|fracture of the wrist",
    ),
    _d(
        "hip fracture",
        "S72.0",
        "fractured neck of femur|NOF fracture|broken hip|fractured hip|neck of femur fracture",
    ),
    _d("sprain", "T14.3", "sprained ankle|ankle sprain|sprained"),
    _d("cellulitis", "L03.9", "skin infection"),
    _d("urticaria", "L50.9", "hives|nettle rash"),
    _d("eczema", "L30.9", "atopic dermatitis|dermatitis"),
    _d("psoriasis", "L40.9"),
    _d("heatstroke", "T67.0", "heat stroke|sunstroke|heat exhaustion"),
    _d("dehydration", "E86", "dehydrated"),
    _d("sepsis", "A41.9", "septicaemia|blood poisoning|septic"),
    _d("meningitis", "G03.9"),
    _d("epilepsy", "G40.9", "epileptic"),
    _d("dementia", "F03", "Alzheimer's disease|Alzheimer's|Alzheimer disease"),
    _d("Parkinson's disease", "G20", "Parkinson's|parkinsonism|Parkinson disease"),
    _d("multiple sclerosis", "G35", "MS"),
    _d("depression", "F32.9", "depressed|depressive episode|low mood|feeling low|feeling down"),
    _d("anxiety", "F41.1", "anxious|generalised anxiety disorder|GAD"),
    _d("panic attacks", "F41.0", "panic attack|panic disorder"),
    _d("obesity", "E66.9", "obese|morbid obesity|overweight"),
    _d("hyperlipidaemia", "E78.5", "high cholesterol|hypercholesterolaemia|dyslipidaemia|raised cholesterol"),
    _d("obstructive sleep apnoea", "G47.3", "OSA|sleep apnoea"),
    _d("alcohol misuse", "F10.1", "alcohol abuse|alcohol dependence|alcoholism|excess alcohol"),
    _d(
        "normal delivery",
        "O80",
        "spontaneous vaginal delivery|SVD|normal vaginal delivery|single spontaneous delivery",
    ),
    _d("pre eclampsia", "O14.9", "preeclampsia"),
    _d("cancer", "C80.1", "malignancy|malignant|tumour|carcinoma|neoplasm"),
    _d("lung cancer", "C34.9", "lung carcinoma|bronchial carcinoma|lung tumour"),
    _d("breast cancer", "C50.9", "breast carcinoma"),
    _d("HIV", "B24", "HIV infection|human immunodeficiency virus"),
    _d("tuberculosis", "A16.9", "TB"),
    _d("cirrhosis", "K74.6", "liver cirrhosis|cirrhotic"),
    _d("pancreatitis", "K85.9"),
    _d("anaphylaxis", "T78.2", "anaphylactic reaction|anaphylactic shock"),
    _d("allergy", "T78.4", "allergic reaction|allergic"),
    _d("otitis media", "H66.9", "ear infection|middle ear infection"),
    _d("tonsillitis", "J03.9"),
    _d("sinusitis", "J32.9", "sinus infection"),
    _d("conjunctivitis", "H10.9", "pink eye|sticky eye"),
    _d("shingles", "B02.9", "herpes zoster"),
    _d("chickenpox", "B01.9", "varicella|chicken pox"),
)

MEDICATIONS: tuple[Concept, ...] = (
    _m("aspirin", "acetylsalicylic acid"),
    _m("paracetamol", "acetaminophen"),
    _m("ibuprofen", "Nurofen"),
    _m("naproxen"),
    _m("codeine", "co codamol"),
    _m("morphine", "oramorph"),
    _m("tramadol"),
    _m("amoxicillin"),
    _m("co amoxiclav", "Augmentin"),
    _m("clarithromycin"),
    _m("doxycycline"),
    _m("nitrofurantoin"),
    _m("trimethoprim"),
    _m("metformin"),
    _m("insulin"),
    _m("gliclazide"),
    _m("atorvastatin"),
    _m("simvastatin"),
    _m("ramipril"),
    _m("lisinopril"),
    _m("amlodipine"),
    _m("bisoprolol"),
    _m("furosemide", "frusemide"),
    _m("bendroflumethiazide"),
    _m("warfarin"),
    _m("apixaban"),
    _m("rivaroxaban"),
    _m("clopidogrel"),
    _m("glyceryl trinitrate", "GTN|nitroglycerin"),
    _m("salbutamol", "albuterol|Ventolin"),
    _m("beclometasone", "beclomethasone"),
    _m("prednisolone"),
    _m("omeprazole"),
    _m("lansoprazole"),
    _m("levothyroxine", "thyroxine"),
    _m("sertraline"),
    _m("citalopram"),
    _m("fluoxetine"),
    _m("amitriptyline"),
    _m("gabapentin"),
    _m("diazepam"),
    _m("cetirizine"),
    _m("loratadine"),
    _m("ondansetron"),
    _m("metoclopramide"),
    _m("oseltamivir", "Tamiflu"),
    _m("adrenaline", "epinephrine|EpiPen"),
)

CONCEPTS: tuple[Concept, ...] = SYMPTOMS + CONDITIONS + MEDICATIONS

# Words that stand for one another inside a concept phrase (not in negation phrases): the first word of a
# class is how the lexicon writes it. ("our" is left out: spelling normalisation reads it as "or".)
WORD_CLASSES: tuple[tuple[str, ...], ...] = (
    ("the", "my", "your", "his", "her", "their"),
    ("i", "you", "he", "she", "we", "they"),
)

# --- negation phrases (NegEx) -------------------------------------------------------------------------------


def _phrases(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split("|"))


PRE_NEGATION = _phrases(
    "no|not|denies|denied|deny|denying|without|never|nor|nil|negative for|free of|absence of|no evidence of|"
    "no signs of|no sign of|ruled out|rules out|doesn't|does not|didn't|did not|hasn't|has not|isn't|"
    "is not|wasn't|was not|don't|do not|none"
)
POST_NEGATION = _phrases("ruled out|excluded|absent|denied|not present|not seen|negative")
PSEUDO_NEGATION = _phrases(
    "no increase|no change|no significant change|no further|no worsening|not only|not necessarily|"
    "not ruled out|not been ruled out|cannot be ruled out|cannot rule out|can't rule out|can't be ruled out|"
    "not excluded|not been excluded|cannot be excluded|can't be excluded|whether or not|gram negative"
)
SCOPE_TERMINATORS = _phrases(
    "but|however|although|though|except|yet|still|apart from|aside from|which|who|whereas|"
    "reports|reported|reporting|complains|complained|complaining|presents|presented|presenting|"
    "describes|described|admits|endorses|positive for|secondary to|because|due to|cause of|source of"
)
