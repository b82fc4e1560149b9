"""The data of the imaging condition catalog: the tasks (model heads) and the conditions each one covers.

Every task's label order is the order of the public dataset it mirrors, so a model trained on that
dataset's files needs no relabelling. The MedMNIST v2 label orders come from ``medmnist.INFO``; the
names are written out in plain clinical English (``aliases`` maps the datasets' own folder names and
codes, e.g. HAM10000's ``mel``, to them). ICD-10 codes are ICD-10-CM.

The blood-cell, kidney-cell and abdominal-organ tasks classify cell types and anatomy, not diseases: they
are kept as tasks (a MedMNIST file for them can be trained and served) but cover no condition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One model head: what images it accepts (its contract) and what it outputs."""

    key: str
    title: str
    specialty: str
    modalities: tuple[str, ...]  # DICOM modality codes accepted; PNG/JPEG (no modality) fit by channels
    body_parts: tuple[str, ...]  # DICOM BodyPartExamined values accepted (empty: any)
    channels: int  # 1 grey, 3 colour: the model's input contract
    multilabel: bool
    labels: tuple[str, ...]  # output order == the public dataset's label order
    dataset: str
    normal_label: str | None  # the label meaning "no finding", if any
    medmnist: str | None = None  # the MedMNIST v2 flag of the matching .npz file, if any
    aliases: tuple[tuple[str, str], ...] = ()  # (dataset folder name or code, label)


@dataclass(frozen=True)
class Condition:
    """A condition a task can point to: one label of one task."""

    code: str  # catalog identifier, unique
    name: str
    specialty: str
    modality: str
    icd10: str
    task: str
    label: str


CHEST = "Chest radiography"
DERMATOLOGY = "Dermatology"
OPHTHALMOLOGY = "Ophthalmology"
PATHOLOGY = "Pathology"
BREAST = "Breast imaging"
MSK = "Musculoskeletal"
NEURO = "Neuroradiology"
ABDOMEN = "Abdominal radiology"

_ORGANS = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)
_TORSO = ("ABDOMEN", "ABDOMENPELVIS", "CHESTABDOMEN", "CHESTABDPELVIS", "PELVIS", "CHEST")


def _organ_task(plane: str, flag: str) -> Task:
    return Task(
        key=f"abdominal_organs_{plane}",
        title=f"Abdominal organs on CT ({plane} slices)",
        specialty=ABDOMEN,
        modalities=("CT",),
        body_parts=_TORSO,
        channels=1,
        multilabel=False,
        labels=_ORGANS,
        dataset=f"MedMNIST v2 {flag[:-6].capitalize()}MNIST (LiTS abdominal CT, {plane})",
        normal_label=None,
        medmnist=flag,
    )


TASK_LIST: tuple[Task, ...] = (
    Task(
        key="chest_xray",
        title="Chest X-ray findings (14 labels)",
        specialty=CHEST,
        modalities=("CR", "DX"),
        body_parts=("CHEST",),
        channels=1,
        multilabel=True,
        labels=(
            "atelectasis",
            "cardiomegaly",
            "effusion",
            "infiltration",
            "mass",
            "nodule",
            "pneumonia",
            "pneumothorax",
            "consolidation",
            "edema",
            "emphysema",
            "fibrosis",
            "pleural thickening",
            "hernia",
        ),
        dataset="NIH ChestX-ray14 (MedMNIST v2 ChestMNIST)",
        normal_label=None,
        medmnist="chestmnist",
        aliases=(("pleural", "pleural thickening"), ("oedema", "edema")),
    ),
    Task(
        key="pneumonia",
        title="Pneumonia on paediatric chest X-ray",
        specialty=CHEST,
        modalities=("CR", "DX"),
        body_parts=("CHEST",),
        channels=1,
        multilabel=False,
        labels=("normal", "pneumonia"),
        dataset="MedMNIST v2 PneumoniaMNIST (Kermany paediatric chest X-rays)",
        normal_label="normal",
        medmnist="pneumoniamnist",
    ),
    Task(
        key="dermatology",
        title="Pigmented skin lesions (dermatoscopy)",
        specialty=DERMATOLOGY,
        modalities=("XC",),
        body_parts=(),
        channels=3,
        multilabel=False,
        labels=(
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ),
        dataset="HAM10000 (MedMNIST v2 DermaMNIST)",
        normal_label=None,
        medmnist="dermamnist",
        aliases=(
            ("akiec", "actinic keratoses and intraepithelial carcinoma"),
            ("bcc", "basal cell carcinoma"),
            ("bkl", "benign keratosis-like lesions"),
            ("df", "dermatofibroma"),
            ("mel", "melanoma"),
            ("nv", "melanocytic nevi"),
            ("vasc", "vascular lesions"),
        ),
    ),
    Task(
        key="retina_oct",
        title="Retinal OCT",
        specialty=OPHTHALMOLOGY,
        modalities=("OPT",),
        body_parts=("EYE",),
        channels=1,
        multilabel=False,
        labels=("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
        dataset="MedMNIST v2 OCTMNIST (Kermany retinal OCT)",
        normal_label="normal",
        medmnist="octmnist",
        aliases=(
            ("cnv", "choroidal neovascularization"),
            ("dme", "diabetic macular edema"),
            ("diabetic macular oedema", "diabetic macular edema"),
            ("choroidal neovascularisation", "choroidal neovascularization"),
        ),
    ),
    Task(
        key="diabetic_retinopathy",
        title="Diabetic retinopathy grade (fundus photo)",
        specialty=OPHTHALMOLOGY,
        modalities=("OP",),
        body_parts=("EYE",),
        channels=3,
        multilabel=False,
        labels=(
            "no retinopathy",
            "mild non-proliferative",
            "moderate non-proliferative",
            "severe non-proliferative",
            "proliferative",
        ),
        dataset="DeepDRiD fundus grading (MedMNIST v2 RetinaMNIST)",
        normal_label="no retinopathy",
        medmnist="retinamnist",
        aliases=(
            ("0", "no retinopathy"),
            ("1", "mild non-proliferative"),
            ("2", "moderate non-proliferative"),
            ("3", "severe non-proliferative"),
            ("4", "proliferative"),
        ),
    ),
    Task(
        key="breast_ultrasound",
        title="Breast ultrasound: malignant or not",
        specialty=BREAST,
        modalities=("US",),
        body_parts=("BREAST",),
        channels=1,
        multilabel=False,
        labels=("malignant", "normal or benign"),
        dataset="MedMNIST v2 BreastMNIST (BUSI breast ultrasound, normal and benign merged)",
        normal_label="normal or benign",
        medmnist="breastmnist",
        aliases=(("normal, benign", "normal or benign"),),
    ),
    Task(
        key="breast_ultrasound_busi",
        title="Breast ultrasound: benign, malignant or normal",
        specialty=BREAST,
        modalities=("US",),
        body_parts=("BREAST",),
        channels=1,
        multilabel=False,
        labels=("benign", "malignant", "normal"),
        dataset="BUSI (Breast Ultrasound Images, Al-Dhabyani et al. 2020), its three folders",
        normal_label="normal",
    ),
    Task(
        key="pathology_colon",
        title="Colorectal histology tissue types (H&E)",
        specialty=PATHOLOGY,
        modalities=("SM",),
        body_parts=(),
        channels=3,
        multilabel=False,
        labels=(
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ),
        dataset="NCT-CRC-HE-100K (MedMNIST v2 PathMNIST)",
        normal_label="normal colon mucosa",
        medmnist="pathmnist",
        aliases=(
            ("adi", "adipose"),
            ("back", "background"),
            ("deb", "debris"),
            ("lym", "lymphocytes"),
            ("muc", "mucus"),
            ("mus", "smooth muscle"),
            ("norm", "normal colon mucosa"),
            ("str", "cancer-associated stroma"),
            ("tum", "colorectal adenocarcinoma epithelium"),
        ),
    ),
    Task(
        key="blood_cells",
        title="Blood cell types (peripheral smear)",
        specialty=PATHOLOGY,
        modalities=("SM",),
        body_parts=(),
        channels=3,
        multilabel=False,
        labels=(
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ),
        dataset="Acevedo et al. 2020 blood cell images (MedMNIST v2 BloodMNIST)",
        normal_label=None,
        medmnist="bloodmnist",
        aliases=(("ig", "immature granulocytes"),),
    ),
    Task(
        key="kidney_cells",
        title="Kidney cortex cell types (microscopy)",
        specialty=PATHOLOGY,
        modalities=("SM",),
        body_parts=(),
        channels=1,
        multilabel=False,
        labels=(
            "collecting duct, connecting tubule",
            "distal convoluted tubule",
            "glomerular endothelial cells",
            "interstitial endothelial cells",
            "leukocytes",
            "podocytes",
            "proximal tubule segments",
            "thick ascending limb",
        ),
        dataset="BBBC051 kidney cortex cells (MedMNIST v2 TissueMNIST)",
        normal_label=None,
        medmnist="tissuemnist",
    ),
    _organ_task("axial", "organamnist"),
    _organ_task("coronal", "organcmnist"),
    _organ_task("sagittal", "organsmnist"),
    Task(
        key="msk_radiograph",
        title="Upper-limb radiograph: normal or abnormal",
        specialty=MSK,
        modalities=("CR", "DX"),
        body_parts=("SHOULDER", "HUMERUS", "ARM", "ELBOW", "FOREARM", "WRIST", "HAND", "FINGER", "EXTREMITY"),
        channels=1,
        multilabel=False,
        labels=("normal", "abnormal"),
        dataset="MURA (Stanford musculoskeletal radiographs), negative/positive studies",
        normal_label="normal",
        aliases=(("negative", "normal"), ("positive", "abnormal")),
    ),
    Task(
        key="brain_tumour_mri",
        title="Brain tumour on MRI",
        specialty=NEURO,
        modalities=("MR",),
        body_parts=("BRAIN", "HEAD", "SKULL"),
        channels=1,
        multilabel=False,
        labels=("glioma", "meningioma", "no tumour", "pituitary tumour"),
        dataset="Brain Tumor MRI Dataset (Figshare + SARTAJ + Br35H, Kaggle), its four folders",
        normal_label="no tumour",
        aliases=(
            ("glioma_tumor", "glioma"),
            ("meningioma_tumor", "meningioma"),
            ("notumor", "no tumour"),
            ("no_tumor", "no tumour"),
            ("pituitary", "pituitary tumour"),
            ("pituitary_tumor", "pituitary tumour"),
        ),
    ),
)

_DERM_AKIEC = "actinic keratoses and intraepithelial carcinoma"
_PATH_TUMOUR = "colorectal adenocarcinoma epithelium"

# code, name, specialty, modality, ICD-10-CM, task, label
_CONDITION_ROWS: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("atelectasis", "Atelectasis", CHEST, "CR", "J98.11", "chest_xray", "atelectasis"),
    ("cardiomegaly", "Cardiomegaly", CHEST, "CR", "I51.7", "chest_xray", "cardiomegaly"),
    ("pleural_effusion", "Pleural effusion", CHEST, "CR", "J90", "chest_xray", "effusion"),
    ("pulmonary_infiltrate", "Pulmonary infiltrate", CHEST, "CR", "R91.8", "chest_xray", "infiltration"),
    ("lung_mass", "Lung mass", CHEST, "CR", "R91.8", "chest_xray", "mass"),
    ("pulmonary_nodule", "Solitary pulmonary nodule", CHEST, "CR", "R91.1", "chest_xray", "nodule"),
    ("pneumonia", "Pneumonia", CHEST, "CR", "J18.9", "chest_xray", "pneumonia"),
    ("pneumothorax", "Pneumothorax", CHEST, "CR", "J93.9", "chest_xray", "pneumothorax"),
    ("consolidation", "Lung consolidation", CHEST, "CR", "R91.8", "chest_xray", "consolidation"),
    ("pulmonary_oedema", "Acute pulmonary oedema", CHEST, "CR", "J81.0", "chest_xray", "edema"),
    ("emphysema", "Emphysema", CHEST, "CR", "J43.9", "chest_xray", "emphysema"),
    ("pulmonary_fibrosis", "Pulmonary fibrosis", CHEST, "CR", "J84.10", "chest_xray", "fibrosis"),
    ("pleural_thickening", "Pleural thickening", CHEST, "CR", "J92.9", "chest_xray", "pleural thickening"),
    ("hiatus_hernia", "Hiatus (diaphragmatic) hernia", CHEST, "CR", "K44.9", "chest_xray", "hernia"),
    ("paediatric_pneumonia", "Pneumonia (paediatric)", CHEST, "CR", "J18.9", "pneumonia", "pneumonia"),
    ("actinic_keratosis", "Actinic keratosis", DERMATOLOGY, "XC", "L57.0", "dermatology", _DERM_AKIEC),
    (
        "bowen_disease",
        "Bowen's disease (squamous cell carcinoma in situ)",
        DERMATOLOGY,
        "XC",
        "D04.9",
        "dermatology",
        _DERM_AKIEC,
    ),
    (
        "basal_cell_carcinoma",
        "Basal cell carcinoma",
        DERMATOLOGY,
        "XC",
        "C44.91",
        "dermatology",
        "basal cell carcinoma",
    ),
    (
        "seborrhoeic_keratosis",
        "Seborrhoeic keratosis",
        DERMATOLOGY,
        "XC",
        "L82.1",
        "dermatology",
        "benign keratosis-like lesions",
    ),
    (
        "solar_lentigo",
        "Solar lentigo",
        DERMATOLOGY,
        "XC",
        "L81.4",
        "dermatology",
        "benign keratosis-like lesions",
    ),
    ("dermatofibroma", "Dermatofibroma", DERMATOLOGY, "XC", "D23.9", "dermatology", "dermatofibroma"),
    ("melanoma", "Malignant melanoma of skin", DERMATOLOGY, "XC", "C43.9", "dermatology", "melanoma"),
    (
        "melanocytic_naevus",
        "Melanocytic naevus",
        DERMATOLOGY,
        "XC",
        "D22.9",
        "dermatology",
        "melanocytic nevi",
    ),
    ("haemangioma", "Haemangioma of skin", DERMATOLOGY, "XC", "D18.01", "dermatology", "vascular lesions"),
    (
        "pyogenic_granuloma",
        "Pyogenic granuloma",
        DERMATOLOGY,
        "XC",
        "L98.0",
        "dermatology",
        "vascular lesions",
    ),
    (
        "choroidal_neovascularisation",
        "Choroidal neovascularisation",
        OPHTHALMOLOGY,
        "OPT",
        "H35.05",
        "retina_oct",
        "choroidal neovascularization",
    ),
    (
        "wet_amd",
        "Exudative (wet) age-related macular degeneration",
        OPHTHALMOLOGY,
        "OPT",
        "H35.32",
        "retina_oct",
        "choroidal neovascularization",
    ),
    (
        "diabetic_macular_oedema",
        "Diabetic macular oedema",
        OPHTHALMOLOGY,
        "OPT",
        "E11.311",
        "retina_oct",
        "diabetic macular edema",
    ),
    ("macular_drusen", "Drusen of the macula", OPHTHALMOLOGY, "OPT", "H35.36", "retina_oct", "drusen"),
    (
        "dry_amd",
        "Non-exudative (dry) age-related macular degeneration",
        OPHTHALMOLOGY,
        "OPT",
        "H35.31",
        "retina_oct",
        "drusen",
    ),
    (
        "mild_npdr",
        "Mild non-proliferative diabetic retinopathy",
        OPHTHALMOLOGY,
        "OP",
        "E11.329",
        "diabetic_retinopathy",
        "mild non-proliferative",
    ),
    (
        "moderate_npdr",
        "Moderate non-proliferative diabetic retinopathy",
        OPHTHALMOLOGY,
        "OP",
        "E11.339",
        "diabetic_retinopathy",
        "moderate non-proliferative",
    ),
    (
        "severe_npdr",
        "Severe non-proliferative diabetic retinopathy",
        OPHTHALMOLOGY,
        "OP",
        "E11.349",
        "diabetic_retinopathy",
        "severe non-proliferative",
    ),
    (
        "proliferative_dr",
        "Proliferative diabetic retinopathy",
        OPHTHALMOLOGY,
        "OP",
        "E11.359",
        "diabetic_retinopathy",
        "proliferative",
    ),
    (
        "colon_adenocarcinoma",
        "Adenocarcinoma of the colon",
        PATHOLOGY,
        "SM",
        "C18.9",
        "pathology_colon",
        _PATH_TUMOUR,
    ),
    (
        "rectal_adenocarcinoma",
        "Adenocarcinoma of the rectum",
        PATHOLOGY,
        "SM",
        "C20",
        "pathology_colon",
        _PATH_TUMOUR,
    ),
    (
        "colorectal_tumour_stroma",
        "Colorectal cancer (tumour-associated stroma)",
        PATHOLOGY,
        "SM",
        "C18.9",
        "pathology_colon",
        "cancer-associated stroma",
    ),
    (
        "breast_cancer",
        "Malignant neoplasm of the breast",
        BREAST,
        "US",
        "C50.919",
        "breast_ultrasound",
        "malignant",
    ),
    (
        "breast_dcis",
        "Ductal carcinoma in situ of the breast",
        BREAST,
        "US",
        "D05.10",
        "breast_ultrasound",
        "malignant",
    ),
    (
        "breast_cancer_busi",
        "Malignant neoplasm of the breast",
        BREAST,
        "US",
        "C50.919",
        "breast_ultrasound_busi",
        "malignant",
    ),
    ("fibroadenoma", "Fibroadenoma of the breast", BREAST, "US", "D24.9", "breast_ultrasound_busi", "benign"),
    (
        "breast_cyst",
        "Solitary cyst of the breast",
        BREAST,
        "US",
        "N60.09",
        "breast_ultrasound_busi",
        "benign",
    ),
    ("forearm_fracture", "Fracture of the forearm", MSK, "CR", "S52.90XA", "msk_radiograph", "abnormal"),
    (
        "wrist_hand_fracture",
        "Fracture of the wrist or hand",
        MSK,
        "CR",
        "S62.90XA",
        "msk_radiograph",
        "abnormal",
    ),
    ("finger_fracture", "Fracture of a finger phalanx", MSK, "CR", "S62.609A", "msk_radiograph", "abnormal"),
    (
        "humerus_fracture",
        "Fracture of the shaft of the humerus",
        MSK,
        "CR",
        "S42.309A",
        "msk_radiograph",
        "abnormal",
    ),
    (
        "shoulder_dislocation",
        "Dislocation of the shoulder",
        MSK,
        "CR",
        "S43.006A",
        "msk_radiograph",
        "abnormal",
    ),
    (
        "shoulder_osteoarthritis",
        "Osteoarthritis of the shoulder",
        MSK,
        "CR",
        "M19.019",
        "msk_radiograph",
        "abnormal",
    ),
    (
        "orthopaedic_implant",
        "Orthopaedic joint implant in place",
        MSK,
        "CR",
        "Z96.60",
        "msk_radiograph",
        "abnormal",
    ),
    ("glioma", "Glioma (malignant neoplasm of brain)", NEURO, "MR", "C71.9", "brain_tumour_mri", "glioma"),
    ("meningioma", "Meningioma", NEURO, "MR", "D32.9", "brain_tumour_mri", "meningioma"),
    ("pituitary_adenoma", "Pituitary adenoma", NEURO, "MR", "D35.2", "brain_tumour_mri", "pituitary tumour"),
    ("craniopharyngioma", "Craniopharyngioma", NEURO, "MR", "D44.4", "brain_tumour_mri", "pituitary tumour"),
)

CONDITION_LIST: tuple[Condition, ...] = tuple(Condition(*row) for row in _CONDITION_ROWS)
