"""The course's shared settings (kdlab.recipes.COURSE) and the notebooks' parameter cells.

The notebooks' `parameters` cells stay literal `name = value` lines (papermill injects its
values under them), so they repeat the course's teacher and student settings. The cached
teacher and students are shared between notebooks only while those repeats agree, so every
shared setting a notebook declares must equal COURSE's value.
"""

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from kdlab import recipes
from kdlab.runtime.notebook import notebook_defaults
from kdlab.recipes import COURSE

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# {notebook parameter: COURSE field}, per notebook. A parameter that is not listed is the
# notebook's own (06's student_images: the shortcut students' 1,200 images, not the course
# students' 2,000; 05 and 06's alpha: the e²KD comparisons', label-free).
TEACHER = {name: name for name in ("dataset", "n_train", "n_test", "teacher_arch", "teacher_epochs")}
COURSE_STUDENTS = {name: name for name in ("teacher_batch_size", "student_arch", "student_images", "student_epochs",
                                           "lr", "batch_size", "temperature", "alpha")}
E2KD_STUDENTS = {"student_arch": "student_arch", "batch_size": "batch_size", "lr": "lr",
                 "temperature": "temperature", "alpha": "e2kd_alpha", "lam": "lam"}
SHARED = {
    "00_tour": {"design": "design"},
    "01_knowledge_distillation": TEACHER | COURSE_STUDENTS,
    "02_kd_vs_label_smoothing": TEACHER | COURSE_STUDENTS | {"epsilon": "epsilon", "soft_mass": "soft_mass"},
    "03_network_dissection": TEACHER | {"lr": "lr", "teacher_batch_size": "teacher_batch_size"},
    "04_kd_interpretability": TEACHER | COURSE_STUDENTS | {"epsilon": "epsilon", "soft_mass": "soft_mass"},
    "05_e2kd": TEACHER | E2KD_STUDENTS,
    "06_right_features": TEACHER | E2KD_STUDENTS,
}


def disagreements(path, shared: dict[str, str]) -> list[str]:
    """One line per shared setting whose value in the notebook's parameters cell is not COURSE's
    (or that the notebook no longer declares)."""
    declared = notebook_defaults(path)
    problems = []
    for parameter, field in shared.items():
        if parameter not in declared:
            problems.append(f"{Path(path).stem}: declares no {parameter} (COURSE.{field})")
        elif declared[parameter] != getattr(COURSE, field):
            problems.append(f"{Path(path).stem}: {parameter} = {declared[parameter]!r}, "
                            f"but COURSE.{field} = {getattr(COURSE, field)!r}")
    return problems


def test_every_notebook_is_mapped():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SHARED)
    fields = {f.name for f in dataclasses.fields(COURSE)}
    assert {field for shared in SHARED.values() for field in shared.values()} <= fields


@pytest.mark.parametrize("notebook", sorted(SHARED))
def test_notebook_parameters_agree_with_the_course(notebook):
    assert disagreements(NOTEBOOKS / f"{notebook}.ipynb", SHARED[notebook]) == []


def test_one_notebook_changed_alone_is_caught(tmp_path):
    nb = json.loads((NOTEBOOKS / "03_network_dissection.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = [line.replace("teacher_epochs = 15", "teacher_epochs = 16") for line in cell["source"]]
    changed = tmp_path / "03_network_dissection.ipynb"
    changed.write_text(json.dumps(nb))
    assert disagreements(changed, SHARED["03_network_dissection"]) == [
        "03_network_dissection: teacher_epochs = 16, but COURSE.teacher_epochs = 15"]


@pytest.mark.parametrize("function,defaults", [
    (recipes.course_data, {"dataset": "dataset", "n_train": "n_train", "n_test": "n_test"}),
    (recipes.train_teacher, {"arch": "teacher_arch", "epochs": "teacher_epochs", "lr": "lr",
                             "batch_size": "teacher_batch_size"}),
    (recipes.train_student, {"arch": "student_arch", "n_images": "student_images", "epochs": "student_epochs",
                             "lr": "lr", "batch_size": "batch_size", "temperature": "temperature",
                             "alpha": "alpha", "epsilon": "epsilon"}),
    (recipes.train_students, {"arch": "student_arch", "n_images": "student_images", "epochs": "student_epochs",
                              "lr": "lr", "batch_size": "batch_size", "temperature": "temperature",
                              "alpha": "alpha", "epsilon": "epsilon"}),
])
def test_recipes_take_their_defaults_from_the_course(function, defaults):
    parameters = inspect.signature(function).parameters
    assert {name: parameters[name].default for name in defaults} == \
        {name: getattr(COURSE, field) for name, field in defaults.items()}
