"""The built-in formulary: some forty-five common clinical drugs a doctor can prescribe, each with its code,
strength, dose form, default route, the allergy classes it belongs to (for the allergy check) and its
therapeutic class (for the duplicate-therapy check). No I/O.

Codes are RxNorm RXCUIs of the semantic clinical drug (SCD) as far as we know them. They were written from
memory, not checked against a current RxNorm release: treat them as RxNorm-style identifiers. Rows marked
``# code: placeholder`` have no exact US clinical drug (e.g. paracetamol 1 g tablets, granules sold in
Europe) or a code we could not recall; they carry plausible numeric codes in the same style. A deployment
that needs the real terminology replaces this table with an RxNorm import; nothing else depends on the
codes' meaning, only on their being unique.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from caresync.prescriptions.rules import ROUTES


@dataclass(frozen=True)
class Drug:
    """One clinical drug: an ingredient (or combination) at a strength in a dose form."""

    code: str
    name: str  # ingredient(s), e.g. "Amoxicillin/clavulanate"
    strength: str  # e.g. "500 mg"
    form: str  # e.g. "capsule"
    route: str  # default route, a key of rules.ROUTES
    therapeutic_class: str  # two drugs of one class at once is duplicate therapy
    allergy_classes: frozenset[str] = frozenset()  # e.g. {"penicillin", "beta-lactam"}
    unit: str = ""  # what one dose is counted in, e.g. "tablet" (defaults to the form)

    @property
    def label(self) -> str:
        """How the drug is shown: "Amoxicillin 500 mg capsule"."""
        return f"{self.name} {self.strength} {self.form}"

    @property
    def dose_unit(self) -> str:
        """The unit a dose of this drug is counted in."""
        return self.unit or self.form

    @property
    def allergy_terms(self) -> frozenset[str]:
        """Lower-case words a recorded allergy may name this drug by: its ingredients and classes."""
        ingredients = {part.strip().lower() for part in self.name.split("/")}
        return frozenset(ingredients | self.allergy_classes)


_PENICILLIN = frozenset({"penicillin", "beta-lactam"})
_CEPHALOSPORIN = frozenset({"cephalosporin", "beta-lactam"})
_NSAID = frozenset({"nsaid", "anti-inflammatory"})
_SULFONAMIDE = frozenset({"sulfonamide", "sulfa", "sulphonamide"})


def _drug(
    code: str,
    name: str,
    strength: str,
    form: str,
    route: str,
    therapeutic_class: str,
    allergy_classes: frozenset[str] = frozenset(),
    unit: str = "",
) -> Drug:
    return Drug(code, name, strength, form, route, therapeutic_class, allergy_classes, unit)


DRUGS: tuple[Drug, ...] = (
    # cardiovascular
    _drug("197361", "Amlodipine", "5 mg", "tablet", "oral", "calcium channel blocker"),
    _drug("198189", "Ramipril", "5 mg", "capsule", "oral", "ACE inhibitor", frozenset({"ace inhibitor"})),
    _drug("314076", "Lisinopril", "10 mg", "tablet", "oral", "ACE inhibitor", frozenset({"ace inhibitor"})),
    _drug("979485", "Losartan", "50 mg", "tablet", "oral", "angiotensin receptor blocker"),
    _drug("854905", "Bisoprolol", "2.5 mg", "tablet", "oral", "beta blocker", frozenset({"beta blocker"})),
    _drug(
        "866924",
        "Metoprolol tartrate",
        "25 mg",
        "tablet",
        "oral",
        "beta blocker",
        frozenset({"beta blocker"}),
    ),
    _drug("313988", "Furosemide", "40 mg", "tablet", "oral", "loop diuretic", _SULFONAMIDE),
    _drug("617310", "Atorvastatin", "20 mg", "tablet", "oral", "statin", frozenset({"statin"})),
    _drug("198211", "Simvastatin", "40 mg", "tablet", "oral", "statin", frozenset({"statin"})),
    _drug("1364445", "Apixaban", "5 mg", "tablet", "oral", "anticoagulant"),
    _drug("855332", "Warfarin", "5 mg", "tablet", "oral", "anticoagulant"),
    _drug(
        "854235",  # code: placeholder
        "Enoxaparin",
        "40 mg/0.4 mL",
        "prefilled syringe",
        "subcutaneous",
        "anticoagulant",
        frozenset({"heparin"}),
        unit="injection",
    ),
    _drug("309362", "Clopidogrel", "75 mg", "tablet", "oral", "antiplatelet"),
    # diabetes and endocrine
    _drug("861004", "Metformin", "1000 mg", "tablet", "oral", "biguanide"),
    _drug("1545658", "Empagliflozin", "10 mg", "tablet", "oral", "SGLT2 inhibitor"),  # code: placeholder
    _drug(
        "311041",
        "Insulin glargine",
        "100 units/mL",
        "pen injector",
        "subcutaneous",
        "long-acting insulin",
        frozenset({"insulin"}),
        unit="units",
    ),
    _drug("966222", "Levothyroxine", "75 mcg", "tablet", "oral", "thyroid hormone"),
    _drug(
        "312617",
        "Prednisolone",
        "5 mg",
        "tablet",
        "oral",
        "systemic corticosteroid",
        frozenset({"corticosteroid"}),
    ),
    # respiratory
    _drug(
        "485032",  # code: placeholder
        "Tiotropium",
        "18 mcg",
        "inhalation capsule",
        "inhalation",
        "long-acting muscarinic antagonist",
        unit="capsule",
    ),
    _drug(
        "745679",
        "Salbutamol",
        "100 mcg/dose",
        "inhaler",
        "inhalation",
        "short-acting beta agonist",
        frozenset({"albuterol"}),
        unit="puff",
    ),
    _drug(
        "896188",  # code: placeholder
        "Budesonide/formoterol",
        "160/4.5 mcg/dose",
        "inhaler",
        "inhalation",
        "inhaled corticosteroid/LABA",
        frozenset({"corticosteroid"}),
        unit="puff",
    ),
    _drug("200224", "Montelukast", "10 mg", "tablet", "oral", "leukotriene receptor antagonist"),
    _drug("1014676", "Cetirizine", "10 mg", "tablet", "oral", "antihistamine", frozenset({"antihistamine"})),
    # pain and inflammation
    _drug(
        "1000001", "Paracetamol", "1 g", "tablet", "oral", "paracetamol", frozenset({"acetaminophen"})
    ),  # code: placeholder
    _drug("197806", "Ibuprofen", "400 mg", "tablet", "oral", "NSAID", _NSAID),
    _drug("198014", "Naproxen", "500 mg", "tablet", "oral", "NSAID", _NSAID),
    _drug("835603", "Tramadol", "50 mg", "capsule", "oral", "opioid analgesic", frozenset({"opioid"})),
    _drug("313164", "Sumatriptan", "50 mg", "tablet", "oral", "triptan"),
    # gastrointestinal and blood
    _drug("402014", "Omeprazole", "20 mg", "capsule", "oral", "proton pump inhibitor", frozenset({"ppi"})),
    _drug("310325", "Ferrous sulfate", "325 mg", "tablet", "oral", "iron supplement"),
    # mental health and neurology
    _drug("312941", "Sertraline", "50 mg", "tablet", "oral", "SSRI", frozenset({"ssri"})),
    _drug("349332", "Escitalopram", "10 mg", "tablet", "oral", "SSRI", frozenset({"ssri"})),
    _drug("310431", "Gabapentin", "300 mg", "capsule", "oral", "gabapentinoid"),
    # skin
    _drug(
        "106258",
        "Hydrocortisone",
        "1%",
        "cream",
        "topical",
        "topical corticosteroid",
        frozenset({"corticosteroid"}),
        unit="application",
    ),
    # antibiotics
    _drug("308191", "Amoxicillin", "500 mg", "capsule", "oral", "penicillin antibiotic", _PENICILLIN),
    _drug(
        "308182",
        "Amoxicillin",
        "250 mg/5 mL",
        "oral suspension",
        "oral",
        "penicillin antibiotic",
        _PENICILLIN,
        unit="mL",
    ),
    _drug(
        "562508",
        "Amoxicillin/clavulanate",
        "875/125 mg",
        "tablet",
        "oral",
        "penicillin antibiotic",
        _PENICILLIN,
    ),
    _drug(
        "105134",  # code: placeholder
        "Phenoxymethylpenicillin",
        "250 mg",
        "tablet",
        "oral",
        "penicillin antibiotic",
        _PENICILLIN | {"penicillin v"},
    ),
    _drug(
        "309114",
        "Cefalexin",
        "500 mg",
        "capsule",
        "oral",
        "cephalosporin antibiotic",
        _CEPHALOSPORIN | {"cephalexin"},
    ),
    _drug(
        "308460", "Azithromycin", "250 mg", "tablet", "oral", "macrolide antibiotic", frozenset({"macrolide"})
    ),
    _drug(
        "197511",
        "Ciprofloxacin",
        "500 mg",
        "tablet",
        "oral",
        "fluoroquinolone antibiotic",
        frozenset({"fluoroquinolone", "quinolone"}),
    ),
    _drug(
        "1649988",
        "Doxycycline",
        "100 mg",
        "capsule",
        "oral",
        "tetracycline antibiotic",
        frozenset({"tetracycline"}),
    ),  # code: placeholder
    _drug(
        "1648755", "Nitrofurantoin", "100 mg", "capsule", "oral", "urinary antibacterial"
    ),  # code: placeholder
    _drug(
        "198335",
        "Sulfamethoxazole/trimethoprim",
        "800/160 mg",
        "tablet",
        "oral",
        "sulfonamide antibiotic",
        _SULFONAMIDE | {"co-trimoxazole"},
    ),
    _drug(
        "1000002",  # code: placeholder
        "Fosfomycin",
        "3 g",
        "granules for oral solution",
        "oral",
        "urinary antibacterial",
        unit="sachet",
    ),
)

_BY_CODE: dict[str, Drug] = {drug.code: drug for drug in DRUGS}
assert len(_BY_CODE) == len(DRUGS), "formulary codes must be unique"
assert all(drug.route in ROUTES for drug in DRUGS), "every default route must be a known route"
MAX_RESULTS = 50


def get(code: str) -> Drug | None:
    """The drug with this code, or ``None``."""
    return _BY_CODE.get(code.strip())


def search(query: str, limit: int = 20) -> list[Drug]:
    """Drugs matching ``query`` (case-insensitive), best first: exact code, code prefix, name prefix, a
    word of the name starting with the query, then the query anywhere in the drug's label. Ties are in
    alphabetical order. An empty query lists the formulary alphabetically."""
    limit = max(1, min(limit, MAX_RESULTS))
    needle = " ".join(query.lower().split())
    ranked: list[tuple[int, str, Drug]] = []
    for drug in DRUGS:
        rank = _rank(drug, needle)
        if rank is not None:
            ranked.append((rank, drug.label.lower(), drug))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [drug for _rank_, _label, drug in ranked[:limit]]


def _rank(drug: Drug, needle: str) -> int | None:
    if not needle:
        return 0
    name = drug.name.lower()
    if drug.code == needle:
        return 0
    if drug.code.startswith(needle):
        return 1
    if name.startswith(needle):
        return 2
    if any(word.startswith(needle) for word in re.split(r"[\s/-]+", name)):
        return 3
    if needle in drug.label.lower():
        return 4
    return None
