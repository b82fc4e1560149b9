"""The clinical catalogue the demo records are drawn from: lab analytes and panels with reference ranges,
conditions with their ICD-10-CM codes, medications and lab trends, allergies, hospital admissions and the
Portuguese vaccination programme."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Analyte:
    """A lab test: name, unit, reference range (``None``: no bound) and decimals; men's range if different."""

    name: str
    unit: str
    low: float | None
    high: float | None
    decimals: int = 0
    male: tuple[float | None, float | None] | None = None

    def reference(self, sex: str) -> tuple[float | None, float | None]:
        """The reference range for ``sex`` (``male`` or ``female``)."""
        return self.male if sex == "male" and self.male else (self.low, self.high)


ANALYTES: dict[str, Analyte] = {
    "hb": Analyte("Haemoglobin", "g/dL", 12.0, 15.5, 1, (13.5, 17.5)),
    "wbc": Analyte("White cell count", "x10^9/L", 4.0, 11.0, 1),
    "plt": Analyte("Platelets", "x10^9/L", 150, 400),
    "mcv": Analyte("Mean cell volume", "fL", 80, 100),
    "creatinine": Analyte("Creatinine", "mg/dL", 0.50, 1.10, 2, (0.70, 1.30)),
    "egfr": Analyte("eGFR (CKD-EPI 2021)", "mL/min/1.73m2", 60, None),
    "urea": Analyte("Urea", "mg/dL", 17, 43),
    "sodium": Analyte("Sodium", "mmol/L", 135, 145),
    "potassium": Analyte("Potassium", "mmol/L", 3.5, 5.1, 1),
    "chol": Analyte("Total cholesterol", "mg/dL", None, 190),
    "ldl": Analyte("LDL cholesterol", "mg/dL", None, 116),
    "hdl": Analyte("HDL cholesterol", "mg/dL", 45, None, 0, (40, None)),
    "tg": Analyte("Triglycerides", "mg/dL", None, 150),
    "hba1c": Analyte("Haemoglobin A1c", "%", 4.0, 5.6, 1),
    "glucose": Analyte("Fasting glucose", "mg/dL", 70, 100),
    "tsh": Analyte("TSH", "mIU/L", 0.40, 4.00, 2),
    "ft4": Analyte("Free T4", "ng/dL", 0.80, 1.80, 2),
    "alt": Analyte("ALT", "U/L", None, 33, 0, (None, 41)),
    "ast": Analyte("AST", "U/L", None, 32, 0, (None, 40)),
    "ggt": Analyte("GGT", "U/L", None, 40, 0, (None, 60)),
    "ferritin": Analyte("Ferritin", "ng/mL", 15, 150, 0, (30, 400)),
    "iron": Analyte("Serum iron", "µg/dL", 50, 170),
    "tsat": Analyte("Transferrin saturation", "%", 20, 45),
    "crp": Analyte("C-reactive protein", "mg/L", None, 5.0, 1),
}
PANELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fbc": ("Full blood count", ("hb", "wbc", "plt", "mcv")),
    "renal": ("Renal function and electrolytes", ("creatinine", "egfr", "urea", "sodium", "potassium")),
    "hba1c": ("Glycaemic control", ("hba1c", "glucose")),
    "lipids": ("Lipid profile", ("chol", "ldl", "hdl", "tg")),
    "liver": ("Liver function", ("alt", "ast", "ggt")),
    "thyroid": ("Thyroid function", ("tsh", "ft4")),
    "iron": ("Iron studies", ("ferritin", "iron", "tsat")),
    "crp": ("Inflammatory markers", ("crp",)),
}


@dataclass(frozen=True)
class Medication:
    """A medicine and how to take it."""

    name: str
    dose: str


@dataclass(frozen=True)
class Condition:
    """A condition a demo patient may have, and how it shows in their record."""

    code: str  # ICD-10-CM
    name: str
    ages: tuple[int, int]
    chance: float  # for an eligible patient under 65
    chance_over_65: float | None = None
    female_factor: float = 1.0
    male_factor: float = 1.0
    sex: str = ""  # only patients of this sex have it
    acute: bool = False  # an episode (diagnosed once, then resolved) rather than a long-term problem
    panels: tuple[str, ...] = ()
    medications: tuple[Medication, ...] = ()  # the first at diagnosis, the next added at a later review
    penicillin_free: Medication | None = None  # instead of the first medication for penicillin allergy
    labs: tuple[tuple[str, float, float], ...] = ()  # analyte: untreated value, value once treated
    vitals: tuple[tuple[str, float, float], ...] = ()  # vital sign: offset untreated, offset treated
    presentation: str = ""
    review: str = ""
    plan: str = ""
    mental_health: bool = False
    flu_vaccine: bool = False  # yearly influenza vaccine whatever the age

    def chance_for(self, age: int, sex: str) -> float:
        """How likely a patient of ``age`` and ``sex`` has it."""
        if not self.ages[0] <= age <= self.ages[1] or (self.sex and sex != self.sex):
            return 0.0
        base = self.chance_over_65 if age >= 65 and self.chance_over_65 is not None else self.chance
        return base * (self.female_factor if sex == "female" else self.male_factor if sex == "male" else 1)

    @property
    def label(self) -> str:
        """Code and name, as written in records."""
        return f"{self.code} {self.name}"


AMOXICILLIN = "amoxicillin/clavulanic acid"
CONDITIONS: tuple[Condition, ...] = (
    Condition(
        "I10",
        "Essential (primary) hypertension",
        (35, 120),
        0.22,
        0.5,
        medications=(
            Medication("Amlodipine 5 mg tablets", "one tablet once daily"),
            Medication("Ramipril 5 mg capsules", "one capsule once daily"),
        ),
        panels=("renal",),
        vitals=(("systolic", 34, 9), ("diastolic", 15, 5)),
        presentation="Raised blood pressure on three readings at the family health unit; occasional "
        "morning headaches; no chest pain or breathlessness.",
        review="Home blood pressure readings mostly below 140/90; no ankle swelling or dizziness.",
        plan="Continue antihypertensives; salt below 5 g a day; renal function and potassium yearly.",
    ),
    Condition(
        "E11.9",
        "Type 2 diabetes mellitus without complications",
        (40, 120),
        0.09,
        0.2,
        medications=(
            Medication("Metformin 1000 mg tablets", "one tablet twice daily with meals"),
            Medication("Empagliflozin 10 mg tablets", "one tablet each morning"),
        ),
        panels=("hba1c", "renal", "lipids"),
        labs=(("hba1c", 8.6, 6.8), ("glucose", 172, 118)),
        vitals=(("weight", 3.5, 0),),
        presentation="Thirst and passing urine more often for two months; fasting glucose of 162 mg/dL "
        "at the family health unit.",
        review="No hypoglycaemia; walking 30 minutes most days; checks feet daily.",
        plan="Continue diabetes treatment; HbA1c every 3-6 months (target below 7%); yearly foot, eye "
        "and urine albumin checks.",
        flu_vaccine=True,
    ),
    Condition(
        "E78.00",
        "Pure hypercholesterolemia, unspecified",
        (35, 120),
        0.16,
        0.3,
        medications=(Medication("Atorvastatin 20 mg tablets", "one tablet at night"),),
        panels=("lipids", "liver"),
        labs=(("ldl", 178, 94),),
        presentation="LDL cholesterol 178 mg/dL on a routine lipid profile; father had a heart attack at 58.",
        review="No muscle aches on atorvastatin.",
        plan="Continue statin; lipid profile yearly (target LDL below 100 mg/dL).",
    ),
    Condition(
        "E03.9",
        "Hypothyroidism, unspecified",
        (20, 120),
        0.03,
        female_factor=3.5,
        medications=(
            Medication(
                "Levothyroxine 75 micrograms tablets", "one tablet each morning, 30 minutes before breakfast"
            ),
        ),
        panels=("thyroid",),
        labs=(("tsh", 9.4, 2.1), ("ft4", 0.68, 1.21)),
        presentation="Tiredness, feeling cold and weight gain over six months.",
        review="Energy back to normal; no palpitations.",
        plan="Continue levothyroxine; TSH in 6-12 months.",
    ),
    Condition(
        "J45.909",
        "Unspecified asthma, uncomplicated",
        (5, 70),
        0.07,
        medications=(
            Medication(
                "Budesonide/formoterol 160/4.5 micrograms inhaler",
                "one inhalation twice daily and one as needed for symptoms",
            ),
        ),
        presentation="Wheeze and night-time cough, worse with colds and exercise.",
        review="Reliever needed less than twice a week; no night waking; inhaler technique checked.",
        plan="Continue maintenance and reliever therapy; written asthma action plan reviewed.",
        flu_vaccine=True,
    ),
    Condition(
        "J44.9",
        "Chronic obstructive pulmonary disease, unspecified",
        (55, 120),
        0.05,
        0.09,
        male_factor=1.4,
        medications=(
            Medication("Tiotropium 18 micrograms inhalation capsules", "inhale one capsule once daily"),
            Medication("Salbutamol 100 micrograms inhaler", "two puffs when breathless"),
        ),
        vitals=(("spo2", -5, -3), ("respiratory_rate", 4, 2)),
        presentation="Breathless on one flight of stairs and a morning cough; former smoker, 35 pack-years.",
        review="Breathless on hills only; no exacerbations since the last visit.",
        plan="Continue inhalers; pulmonary rehabilitation; yearly influenza and pneumococcal vaccines.",
        flu_vaccine=True,
    ),
    Condition(
        "I48.91",
        "Unspecified atrial fibrillation",
        (65, 120),
        0.0,
        0.12,
        medications=(
            Medication("Apixaban 5 mg tablets", "one tablet twice daily"),
            Medication("Bisoprolol 2.5 mg tablets", "one tablet once daily"),
        ),
        panels=("renal", "fbc"),
        vitals=(("heart_rate", 32, 6),),
        presentation="Palpitations and an irregular pulse found at a routine visit; CHA2DS2-VASc score 3.",
        review="No bleeding on apixaban; palpitations rare.",
        plan="Continue anticoagulation (CHA2DS2-VASc 3) and rate control; renal function and blood "
        "count every 6 months.",
    ),
    Condition(
        "N18.30",
        "Chronic kidney disease, stage 3 unspecified",
        (60, 120),
        0.04,
        0.1,
        panels=("renal", "fbc"),
        labs=(("creatinine", 1.55, 1.5), ("hb", 11.4, 11.9)),
        presentation="eGFR below 60 on two tests three months apart; urine albumin/creatinine 45 mg/g.",
        review="No ankle swelling; avoids anti-inflammatories.",
        plan="Avoid NSAIDs; renal function every 6 months; blood pressure target below 130/80.",
    ),
    Condition(
        "M17.11",
        "Unilateral primary osteoarthritis, right knee",
        (55, 120),
        0.08,
        0.16,
        female_factor=1.3,
        medications=(
            Medication("Paracetamol 1 g tablets", "one tablet up to three times daily when needed"),
        ),
        presentation="Right knee pain on walking and stairs for a year; morning stiffness under 30 minutes.",
        review="Knee pain on longer walks; using paracetamol a few times a week.",
        plan="Physiotherapy and weight management; analgesia as needed.",
    ),
    Condition(
        "K21.9",
        "Gastro-esophageal reflux disease without esophagitis",
        (25, 120),
        0.07,
        medications=(Medication("Omeprazole 20 mg capsules", "one capsule 30 minutes before breakfast"),),
        presentation="Heartburn after meals and at night for three months; no weight loss or dysphagia.",
        review="Heartburn controlled.",
        plan="Continue omeprazole at the lowest effective dose; avoid late meals.",
    ),
    Condition(
        "D50.9",
        "Iron deficiency anemia, unspecified",
        (18, 50),
        0.12,
        sex="female",
        medications=(Medication("Ferrous sulfate 329.7 mg tablets", "one tablet daily on an empty stomach"),),
        panels=("fbc", "iron"),
        labs=(("hb", 10.1, 12.9), ("mcv", 74, 86), ("ferritin", 6, 52), ("iron", 31, 84), ("tsat", 8, 26)),
        presentation="Tiredness and breathlessness on exertion; heavy periods.",
        review="Less tired; tolerating iron.",
        plan="Continue iron for 3 months after haemoglobin normalises; gynaecology review of heavy periods.",
    ),
    Condition(
        "G43.909",
        "Migraine, unspecified, not intractable, without status migrainosus",
        (15, 60),
        0.04,
        female_factor=3.0,
        medications=(
            Medication(
                "Sumatriptan 50 mg tablets",
                "one tablet at the start of a migraine; a second after 2 hours if needed (at most 200 mg a "
                "day)",
            ),
        ),
        presentation="Recurrent one-sided throbbing headaches with nausea and light sensitivity, two a "
        "month; normal neurological examination.",
        review="Two migraines a month, settling with sumatriptan; headache diary kept.",
        plan="Continue sumatriptan; consider prophylaxis if more than four attacks a month.",
    ),
    Condition(
        "F32.1",
        "Major depressive disorder, single episode, moderate",
        (18, 90),
        0.06,
        female_factor=1.5,
        medications=(Medication("Sertraline 50 mg tablets", "one tablet once daily in the morning"),),
        mental_health=True,
    ),
    Condition(
        "F41.1",
        "Generalized anxiety disorder",
        (18, 80),
        0.05,
        female_factor=1.5,
        medications=(Medication("Escitalopram 10 mg tablets", "one tablet once daily"),),
        mental_health=True,
    ),
    Condition(
        "L20.9",
        "Atopic dermatitis, unspecified",
        (0, 15),
        0.15,
        medications=(
            Medication(
                "Emollient cream (paraffin-based)", "apply to the whole body twice daily and after baths"
            ),
            Medication("Hydrocortisone 1% cream", "a thin layer on flares once daily for up to 7 days"),
        ),
        presentation="Itchy dry patches in the elbow and knee creases.",
        review="Skin much better with daily emollients; occasional flares.",
        plan="Daily emollients; hydrocortisone for flares; avoid soap and wool.",
    ),
    Condition(
        "H66.90",
        "Otitis media, unspecified, unspecified ear",
        (0, 10),
        0.4,
        acute=True,
        medications=(
            Medication("Amoxicillin 250 mg/5 mL oral suspension", "80 mg/kg/day in two doses for 7 days"),
        ),
        penicillin_free=Medication(
            "Azithromycin 200 mg/5 mL oral suspension", "10 mg/kg once daily for 3 days"
        ),
        vitals=(("temperature", 1.6, 1.6),),
        presentation="Ear pain and fever (38.6 °C) for two days; red, bulging tympanic membrane.",
    ),
    Condition(
        "J06.9",
        "Acute upper respiratory infection, unspecified",
        (0, 120),
        0.3,
        acute=True,
        vitals=(("temperature", 1.2, 1.2),),
        presentation="Sore throat, runny nose and cough for three days; chest clear.",
    ),
    Condition(
        "N39.0",
        "Urinary tract infection, site not specified",
        (18, 120),
        0.15,
        sex="female",
        acute=True,
        medications=(Medication("Fosfomycin 3 g granules", "one sachet as a single dose"),),
        presentation="Burning on passing urine and frequency for two days; urine dipstick nitrites positive.",
    ),
)
ADULT_CHECK_UP = "Z00.00 Encounter for general adult medical examination without abnormal findings"
CHILD_CHECK_UP = "Z00.129 Encounter for routine child health examination without abnormal findings"

# Profile allergies: what they are recorded as.
ALLERGY_DETAILS: dict[str, tuple[str, str, str]] = {
    "penicillin": ("Z88.0 Allergy status to penicillin", "generalised urticaria within an hour of oral "
                   "amoxicillin", "moderate; avoid all penicillins, use cephalosporins with caution"),
    "peanuts": ("Z91.010 Allergy to peanuts", "lip swelling and wheeze after peanut butter",
                "severe; carries an adrenaline auto-injector"),
    "latex": ("Z91.040 Latex allergy status", "contact dermatitis from latex gloves",
              "mild; use latex-free gloves and equipment"),
    "shellfish": ("Z91.013 Allergy to seafood", "urticaria and vomiting after prawns",
                  "moderate; avoid shellfish"),
    "sulfonamides": ("Z88.2 Allergy status to sulfonamides", "widespread rash with co-trimoxazole",
                     "moderate; avoid sulfonamide antibiotics"),
    "ibuprofen": ("Z88.6 Allergy status to analgesic agent", "bronchospasm after ibuprofen",
                  "severe; avoid all NSAIDs"),
    "pollen": ("J30.1 Allergic rhinitis due to pollen", "seasonal sneezing, itchy eyes from April to June",
               "mild; antihistamine in season"),
    "eggs": ("Z91.012 Allergy to eggs", "hives and vomiting after scrambled egg",
             "moderate; egg-free diet; influenza vaccine may be given as usual"),
}  # fmt: skip


@dataclass(frozen=True)
class Admission:
    """A hospital stay that ends with a discharge summary."""

    code: str
    name: str
    ages: tuple[int, int]
    stay: tuple[int, int]
    ward: str
    procedure: str
    course: str  # "{antibiotic}" is filled in (allergy aware)
    antibiotic: tuple[str, str]  # usual, for penicillin allergy
    investigations: tuple[str, ...]
    medications: tuple[Medication, ...]
    follow_up: str
    labs: tuple[tuple[str, float], ...] = ()  # admission bloods that the investigations mention
    child_medications: tuple[Medication, ...] = ()  # instead of ``medications`` under 16


ADMISSIONS: tuple[Admission, ...] = (
    Admission(
        "J18.9",
        "Pneumonia, unspecified organism",
        (60, 120),
        (4, 7),
        "Internal Medicine",
        "",
        "Admitted through the emergency department with three days of productive cough, fever of 38.9 °C "
        "and breathlessness; CURB-65 score 2. The chest X-ray showed right lower lobe consolidation. "
        "Treated with intravenous {antibiotic} and oxygen by nasal cannula at 2 L/min, switched to oral "
        "antibiotics on day 3. Off oxygen by day 4 and walking independently at discharge.",
        (AMOXICILLIN, "levofloxacin (penicillin allergy)"),
        (
            "Chest X-ray: right lower lobe consolidation, no effusion.",
            "C-reactive protein 186 mg/L on admission, 24 mg/L at discharge.",
            "Blood cultures: no growth after 5 days. Urinary pneumococcal antigen: positive.",
        ),
        (Medication("Oral antibiotic to complete 7 days", "as prescribed on the discharge prescription"),),
        "Family doctor review in one week; chest X-ray in 6 weeks to confirm resolution.",
        labs=(("wbc", 15.2), ("crp", 186)),
    ),
    Admission(
        "M17.11",
        "Unilateral primary osteoarthritis, right knee",
        (55, 120),
        (2, 4),
        "Orthopaedics",
        "Right total knee arthroplasty (cemented) under spinal anaesthesia",
        "Elective admission for right total knee arthroplasty for end-stage osteoarthritis, with pain "
        "limiting walking to 200 m despite analgesia and physiotherapy. Uncomplicated surgery with "
        "tranexamic acid and prophylactic {antibiotic}. Walking with a frame on day 1 and with crutches on "
        "day 2; knee flexion 85 degrees at discharge. Wound clean and dry.",
        ("cefazolin", "vancomycin (penicillin allergy)"),
        (
            "Post-operative X-ray: well-positioned cemented prosthesis.",
            "Haemoglobin 13.6 g/dL before and 11.2 g/dL after surgery.",
        ),
        (
            Medication("Enoxaparin 40 mg/0.4 mL injection", "one injection under the skin daily for 14 days"),
            Medication("Paracetamol 1 g tablets", "one tablet every 8 hours"),
            Medication(
                "Tramadol 50 mg capsules", "one capsule every 8 hours if pain is severe, up to 7 days"
            ),
        ),
        "Wound check and clip removal by the nurse at 12-14 days; outpatient physiotherapy; orthopaedic "
        "clinic in 6 weeks.",
        labs=(("hb", 13.6),),
    ),
    Admission(
        "K35.80",
        "Unspecified acute appendicitis",
        (6, 50),
        (1, 3),
        "General Surgery",
        "Laparoscopic appendicectomy under general anaesthesia",
        "Presented with 24 hours of central abdominal pain moving to the right iliac fossa, loss of "
        "appetite and a temperature of 38.1 °C; Alvarado score 8. Ultrasound showed a non-compressible "
        "9 mm appendix. Laparoscopic appendicectomy the same evening after a single dose of {antibiotic}: "
        "inflamed, non-perforated appendix. Eating normally with pain controlled by oral analgesia at "
        "discharge.",
        ("cefoxitin", "clindamycin with gentamicin (penicillin allergy)"),
        (
            "Ultrasound: non-compressible appendix, 9 mm, with surrounding fat stranding.",
            "White cell count 14.8 x10^9/L; C-reactive protein 46 mg/L.",
            "Histology: acute suppurative appendicitis.",
        ),
        (Medication("Paracetamol 1 g tablets", "one tablet every 8 hours for 5 days"),),
        "Wound check by the family health unit nurse at 7-10 days; no heavy lifting or sport for 2 weeks.",
        labs=(("wbc", 14.8), ("crp", 46)),
        child_medications=(
            Medication(
                "Paracetamol 160 mg/5 mL oral suspension", "15 mg/kg every 6 hours when needed, 5 days"
            ),
        ),
    ),
    Admission(
        "K80.00",
        "Calculus of gallbladder with acute cholecystitis without obstruction",
        (30, 80),
        (2, 4),
        "General Surgery",
        "Laparoscopic cholecystectomy",
        "Admitted with right upper quadrant pain, fever and a positive Murphy's sign. Ultrasound confirmed "
        "gallstones with a thickened gallbladder wall. Treated with intravenous fluids and {antibiotic}; "
        "early laparoscopic cholecystectomy on day 2 without complications. Eating a normal diet at "
        "discharge.",
        (AMOXICILLIN, "ciprofloxacin with metronidazole (penicillin allergy)"),
        (
            "Ultrasound: multiple gallstones, gallbladder wall 6 mm, common bile duct 4 mm.",
            "White cell count 13.2 x10^9/L; C-reactive protein 98 mg/L; liver tests normal.",
            "Histology: acute on chronic calculous cholecystitis.",
        ),
        (Medication("Paracetamol 1 g tablets", "one tablet every 8 hours when needed"),),
        "Wound check at 7-10 days; surgical clinic in 6 weeks.",
        labs=(("wbc", 13.2), ("crp", 98)),
    ),
)

# The Portuguese national vaccination programme for children: (age in months, vaccine).
CHILD_VACCINES: tuple[tuple[int, str], ...] = (
    (0, "Hepatitis B vaccine (VHB), dose 1"),
    (2, "DTPa-Hib-IPV-HepB (hexavalent), dose 1"),
    (2, "Pneumococcal conjugate vaccine (Pn13), dose 1"),
    (2, "Meningococcal B vaccine (MenB), dose 1"),
    (4, "DTPa-Hib-IPV-HepB (hexavalent), dose 2"),
    (4, "Pneumococcal conjugate vaccine (Pn13), dose 2"),
    (4, "Meningococcal B vaccine (MenB), dose 2"),
    (6, "DTPa-Hib-IPV-HepB (hexavalent), dose 3"),
    (12, "Measles, mumps and rubella (MMR), dose 1"),
    (12, "Meningococcal C vaccine (MenC)"),
    (12, "Pneumococcal conjugate vaccine (Pn13), booster"),
    (12, "Meningococcal B vaccine (MenB), booster"),
    (18, "DTPa-Hib-IPV (pentavalent), booster"),
    (60, "DTPa-IPV (tetravalent), booster"),
    (60, "Measles, mumps and rubella (MMR), dose 2"),
    (120, "Human papillomavirus vaccine (HPV9), dose 1"),
    (126, "Human papillomavirus vaccine (HPV9), dose 2"),
    (120, "Tetanus and diphtheria (Td), booster"),
)
TD_BOOSTER_AGES = (25, 45, 65, 75, 85, 95)
