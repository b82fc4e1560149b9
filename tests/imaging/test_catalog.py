"""The condition catalog: enough conditions in every specialty, well-formed and known ICD-10 codes, every
condition pointing at a real label of its task, task label sets matching their public datasets, and which
tasks an image's contract fits."""

from __future__ import annotations

import re

import pytest

from caresync.core.errors import ValidationFailed
from caresync.imaging import catalog_data
from caresync.imaging.catalog import CONDITIONS, TASKS, conditions_of, get_task, label_of, tasks_for

pytestmark = pytest.mark.no_db

ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$")
SPECIALTIES = {
    "Chest radiography",
    "Dermatology",
    "Ophthalmology",
    "Pathology",
    "Breast imaging",
    "Musculoskeletal",
    "Neuroradiology",
}
ORGANS = {"abdominal_organs_axial", "abdominal_organs_coronal", "abdominal_organs_sagittal"}


def test_at_least_50_conditions_with_unique_codes() -> None:
    assert len(CONDITIONS) >= 50
    codes = [condition.code for condition in CONDITIONS]
    assert len(codes) == len(set(codes))


def test_every_specialty_has_conditions() -> None:
    assert {condition.specialty for condition in CONDITIONS} == SPECIALTIES
    ophthalmology_modalities = {c.modality for c in CONDITIONS if c.specialty == "Ophthalmology"}
    assert ophthalmology_modalities == {"OP", "OPT"}  # fundus and OCT


@pytest.mark.parametrize("condition", CONDITIONS, ids=lambda c: c.code)
def test_condition_is_consistent(condition: catalog_data.Condition) -> None:
    assert ICD10.match(condition.icd10), condition.icd10
    task = get_task(condition.task)
    assert condition.label in task.labels
    assert condition.label != task.normal_label
    assert condition.modality in task.modalities
    assert condition.specialty == task.specialty
    assert condition.name


@pytest.mark.parametrize(
    ("code", "icd10"),
    [
        ("pneumonia", "J18.9"),
        ("cardiomegaly", "I51.7"),
        ("pleural_effusion", "J90"),
        ("pneumothorax", "J93.9"),
        ("emphysema", "J43.9"),
        ("pulmonary_nodule", "R91.1"),
        ("atelectasis", "J98.11"),
        ("melanoma", "C43.9"),
        ("basal_cell_carcinoma", "C44.91"),
        ("melanocytic_naevus", "D22.9"),
        ("actinic_keratosis", "L57.0"),
        ("choroidal_neovascularisation", "H35.05"),
        ("diabetic_macular_oedema", "E11.311"),
        ("proliferative_dr", "E11.359"),
        ("colon_adenocarcinoma", "C18.9"),
        ("rectal_adenocarcinoma", "C20"),
        ("breast_cancer", "C50.919"),
        ("fibroadenoma", "D24.9"),
        ("forearm_fracture", "S52.90XA"),
        ("glioma", "C71.9"),
        ("meningioma", "D32.9"),
        ("pituitary_adenoma", "D35.2"),
    ],
)
def test_known_icd10_codes(code: str, icd10: str) -> None:
    assert next(c for c in CONDITIONS if c.code == code).icd10 == icd10


@pytest.mark.parametrize("bad", ["j18.9", "U07", "J1", "J18.", "18.9", "J18.12345"])
def test_icd10_pattern_rejects_malformed_codes(bad: str) -> None:
    assert not ICD10.match(bad)


@pytest.mark.parametrize(
    ("key", "medmnist", "n_labels", "channels", "multilabel", "first", "last"),
    [
        ("chest_xray", "chestmnist", 14, 1, True, "atelectasis", "hernia"),
        ("pneumonia", "pneumoniamnist", 2, 1, False, "normal", "pneumonia"),
        (
            "dermatology",
            "dermamnist",
            7,
            3,
            False,
            "actinic keratoses and intraepithelial carcinoma",
            "vascular lesions",
        ),
        ("retina_oct", "octmnist", 4, 1, False, "choroidal neovascularization", "normal"),
        ("diabetic_retinopathy", "retinamnist", 5, 3, False, "no retinopathy", "proliferative"),
        ("breast_ultrasound", "breastmnist", 2, 1, False, "malignant", "normal or benign"),
        ("pathology_colon", "pathmnist", 9, 3, False, "adipose", "colorectal adenocarcinoma epithelium"),
        ("blood_cells", "bloodmnist", 8, 3, False, "basophil", "platelet"),
        (
            "kidney_cells",
            "tissuemnist",
            8,
            1,
            False,
            "collecting duct, connecting tubule",
            "thick ascending limb",
        ),
        ("abdominal_organs_axial", "organamnist", 11, 1, False, "bladder", "spleen"),
        ("abdominal_organs_coronal", "organcmnist", 11, 1, False, "bladder", "spleen"),
        ("abdominal_organs_sagittal", "organsmnist", 11, 1, False, "bladder", "spleen"),
        ("breast_ultrasound_busi", None, 3, 1, False, "benign", "normal"),
        ("msk_radiograph", None, 2, 1, False, "normal", "abnormal"),
        ("brain_tumour_mri", None, 4, 1, False, "glioma", "pituitary tumour"),
    ],
)
def test_task_label_sets_match_their_datasets(
    key: str, medmnist: str | None, n_labels: int, channels: int, multilabel: bool, first: str, last: str
) -> None:
    task = TASKS[key]
    assert task.medmnist == medmnist
    assert len(task.labels) == len(set(task.labels)) == n_labels
    assert (task.channels, task.multilabel) == (channels, multilabel)
    assert (task.labels[0], task.labels[-1]) == (first, last)
    assert task.normal_label is None or task.normal_label in task.labels
    assert all(label in task.labels for _, label in task.aliases)


def test_chest_labels_follow_chestx_ray14_order() -> None:
    assert TASKS["chest_xray"].labels[4:9] == ("mass", "nodule", "pneumonia", "pneumothorax", "consolidation")


def test_every_task_is_listed_and_anatomy_tasks_cover_no_conditions() -> None:
    assert len(TASKS) == 15  # the 12 MedMNIST v2 2-D tasks + BUSI, MURA, brain tumour MRI
    assert {c.task for c in CONDITIONS} == set(TASKS) - {"blood_cells", "kidney_cells", *ORGANS}
    assert conditions_of("abdominal_organs_axial") == ()
    assert [c.code for c in conditions_of("retina_oct")] == [
        "choroidal_neovascularisation",
        "wet_amd",
        "diabetic_macular_oedema",
        "macular_drusen",
        "dry_amd",
    ]


def test_unknown_task_names_the_known_ones() -> None:
    with pytest.raises(
        ValidationFailed, match=r"Unknown imaging task 'lungs'\. Known tasks: abdominal_organs"
    ):
        get_task("lungs")
    with pytest.raises(ValidationFailed, match="chest_xray"):
        conditions_of("lungs")


@pytest.mark.parametrize(
    ("modality", "body_part", "channels", "expected"),
    [
        ("CR", "CHEST", 1, {"chest_xray", "pneumonia"}),
        ("DX", "chest ", 1, {"chest_xray", "pneumonia"}),
        ("CR", None, 1, {"chest_xray", "pneumonia", "msk_radiograph"}),
        ("CR", "HAND", 1, {"msk_radiograph"}),
        ("CR", "CHEST", 3, set()),
        ("CT", None, 1, ORGANS),
        ("CT", "HEAD", 1, set()),
        ("MR", None, 1, {"brain_tumour_mri"}),
        ("MR", "BRAIN", 1, {"brain_tumour_mri"}),
        ("MR", "KNEE", 1, set()),
        ("US", "BREAST", 1, {"breast_ultrasound", "breast_ultrasound_busi"}),
        ("OPT", None, 1, {"retina_oct"}),
        ("OP", "EYE", 3, {"diabetic_retinopathy"}),
        ("XC", "ARM", 3, {"dermatology"}),
        ("SM", None, 3, {"pathology_colon", "blood_cells"}),
        ("SM", None, 1, {"kidney_cells"}),
        ("OT", None, 3, set()),
        (None, None, 3, {"dermatology", "diabetic_retinopathy", "pathology_colon", "blood_cells"}),
        (None, "CHEST", 1, {"chest_xray", "pneumonia", "kidney_cells", *ORGANS}),
    ],
)
def test_tasks_for(modality: str | None, body_part: str | None, channels: int, expected: set[str]) -> None:
    assert {task.key for task in tasks_for(modality, body_part, channels)} == expected


@pytest.mark.parametrize(
    ("key", "name", "label"),
    [
        ("dermatology", "mel", "melanoma"),
        ("dermatology", "Melanocytic_Nevi", "melanocytic nevi"),
        ("chest_xray", "Pleural_Thickening", "pleural thickening"),
        ("retina_oct", "CNV", "choroidal neovascularization"),
        ("retina_oct", "NORMAL", "normal"),
        ("brain_tumour_mri", "notumor", "no tumour"),
        ("brain_tumour_mri", "pituitary_tumor", "pituitary tumour"),
        ("breast_ultrasound", "normal, benign", "normal or benign"),
        ("diabetic_retinopathy", "3", "severe non-proliferative"),
        ("abdominal_organs_axial", "Femur_Left", "femur-left"),
        ("msk_radiograph", "positive", "abnormal"),
        ("dermatology", "tumour", None),
        ("pneumonia", "", None),
    ],
)
def test_label_of_folder_names(key: str, name: str, label: str | None) -> None:
    assert label_of(TASKS[key], name) == label
