"""Course mode end to end: assign a class, students execute their own notebooks, the grader verifies them.

The course uses 2 epochs on the first 1,000 training images so the whole class runs in a few minutes;
the real 5-epoch lab is the notebook's own nbval run. Forged records are built from honest ones the way
a student would forge them: by editing the notebook file.
"""

import csv
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from vae_lab.course import grade as grading
from vae_lab.course.assign import ANSWER_TAG, assign_command, read_assignments
from vae_lab.course.parallel import reference_runs
from vae_lab.course.prose import notebook_sections

ROOT = Path(__file__).resolve().parents[1]
PROSE = ROOT / "tests" / "data" / "prose"
STUDENTS = [f"s{number:02d}" for number in range(1, 7)]
OTHER_SETTINGS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}


def borrowed_prose(number):
    """An independently written Observation from the prose corpus, its numbers removed."""
    text = notebook_sections({"cells": [{"cell_type": "markdown",
                                          "source": (PROSE / f"student_{number:02d}.md").read_text()}]})["Observation"]
    return re.sub(r"\d+(?:[.,]\d+)?", "", text)


def write_answers(notebook, observation, result):
    answers = [cell for cell in notebook.cells if ANSWER_TAG in cell.metadata.get("tags", [])]
    answers[0].source, answers[1].source = observation, result


def own_result(number, metrics):
    return (borrowed_prose(number) + f"\n\nOn the test set my model reached a negative ELBO of "
            f"{metrics['test_neg_elbo']:.2f} nats and an importance-weighted NLL of {metrics['test_nll_iw']:.2f} nats.")


def execute(path, run_dir, environment=None):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.update({"VAE_LAB_RUN_DIR": str(run_dir), **(environment or {})})
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return notebook


@pytest.fixture(scope="module")
def course(tmp_path_factory, mnist_dir):
    root = tmp_path_factory.mktemp("course")
    roster = root / "roster.csv"
    roster.write_text("student_id,name\n" + "".join(f"{s},Student {s}\n" for s in STUDENTS))
    assert assign_command(roster, root / "handout", key_path=root / "course.key", epochs=2, train_images=1000) == 0
    assignments = read_assignments(root / "handout" / "assignments.csv")
    handed_in = root / "handed-in"
    for index, student in enumerate(STUDENTS):
        environment = OTHER_SETTINGS if student == "s04" else None  # an honest run on "another machine"
        notebook = execute(root / "handout" / f"{student}.ipynb", root / "runs" / student, environment)
        metrics = json.loads((root / "runs" / student / "metrics.json").read_text())
        # s06's Observation is replaced below by a copy of s05's
        write_answers(notebook, borrowed_prose(index + 1), own_result(index + 7, metrics))
        (handed_in / student).mkdir(parents=True)
        nbformat.write(notebook, handed_in / student / f"{student}.ipynb")
    s05 = nbformat.read(handed_in / "s05" / "s05.ipynb", as_version=4)
    s06 = nbformat.read(handed_in / "s06" / "s06.ipynb", as_version=4)
    write_answers(s06, notebook_sections(s05)["Observation"], notebook_sections(s06)["Result"])
    nbformat.write(s06, handed_in / "s06" / "s06.ipynb")
    cache = root / "cache"

    def verify(to_verify):
        return reference_runs(to_verify, cache_dir=cache)

    return {"root": root, "assignments": assignments, "handed_in": handed_in, "verify": verify}


def grade(course, *paths):
    submissions, pairs = grading.grade_submissions(paths, assignments=course["assignments"], verify=course["verify"])
    return {s.student_id or s.path.name: s for s in submissions}, pairs


def forged(course, student, name, change):
    notebook = nbformat.read(course["handed_in"] / student / f"{student}.ipynb", as_version=4)
    change(notebook)
    folder = course["root"] / "forged" / name / student
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{student}.ipynb")
    return folder / f"{student}.ipynb"


def test_assignments_are_personal_and_reproducible(course, tmp_path):
    assignments = course["assignments"]
    assert len({a["seed"] for a in assignments.values()}) == len(STUDENTS)
    handout = course["root"] / "handout"
    assert not (handout / "course.key").exists()
    notebook = nbformat.read(handout / "s01.ipynb", as_version=4)
    assert all(cell.get("outputs", []) == [] for cell in notebook.cells if cell.cell_type == "code")
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert f"SEED = {assignments['s01']['seed']}" in parameters[0].source
    reference = nbformat.read(ROOT / "notebooks" / "vae_mnist.ipynb", as_version=4)
    reference_prose = notebook_sections(reference)
    assert reference_prose["Observation"][:80] not in "\n".join(cell.source for cell in notebook.cells)
    # the same key regenerates the same seeds; another key gives others
    roster = course["root"] / "roster.csv"
    assign_command(roster, tmp_path / "again", key_path=course["root"] / "course.key", epochs=2, train_images=1000)
    assert read_assignments(tmp_path / "again" / "assignments.csv")["s03"]["seed"] == assignments["s03"]["seed"]
    assign_command(roster, tmp_path / "other", key_path=tmp_path / "other.key", epochs=2, train_images=1000)
    assert read_assignments(tmp_path / "other" / "assignments.csv")["s03"]["seed"] != assignments["s03"]["seed"]


@pytest.mark.parametrize("roster, message", [
    ("name\nAnn\n", "student_id column"),
    ("student_id\ns1\ns1\n", "repeats"),
    ("student_id\n../evil\n", "not safe"),
    ("student_id\n\n,\n", "empty"),
])
def test_a_bad_roster_writes_nothing(tmp_path, roster, message):
    (tmp_path / "roster.csv").write_text(roster)
    with pytest.raises(ValueError, match=message):
        assign_command(tmp_path / "roster.csv", tmp_path / "out", key_path=tmp_path / "key")
    assert not (tmp_path / "out").exists() and not (tmp_path / "key").exists()


def test_honest_class_passes_and_shared_prose_is_flagged(course):
    graded, pairs = grade(course, course["handed_in"])
    verdicts = {student: submission.verdict for student, submission in graded.items()}
    assert verdicts == {"s01": "PASS", "s02": "PASS", "s03": "PASS", "s04": "PASS", "s05": "REVIEW", "s06": "REVIEW"}, \
        {s: submission.checks for s, submission in graded.items()}
    assert "s06" in graded["s05"].checks["copies"][1] and "s05" in graded["s06"].checks["copies"][1]
    assert any({a, b} == {"s05", "s06"} and title == "Observation" for a, b, title, _ in pairs)
    # s04 ran with one thread and oneDNN off: verified all the same
    assert graded["s04"].checks["verified numbers"][0] == "PASS"


def test_reference_notebook_handed_in_as_is_fails(course):
    graded, _ = grade(course, ROOT / "notebooks" / "vae_mnist.ipynb")
    submission = graded["reference"]
    assert submission.verdict == "FAIL"
    assert submission.checks["identity"][0] == "FAIL" and submission.checks["prose"][0] == "FAIL"


def test_hand_typed_metrics_fail(course):
    def typed(notebook):
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        metrics_cell = nbformat.v4.new_code_cell("display(metrics)", execution_count=2)
        metrics_cell.outputs = [nbformat.v4.new_output("display_data", data={"application/json": {
            "test_neg_elbo": 153.1, "test_reconstruction_loss": 147.3, "test_kl_loss": 5.8, "test_nll_iw": 151.2,
            "final_val_loss": 153.0, "dataset": "mnist", "epochs": 2}})]
        code[0].execution_count = 1
        notebook.cells = [code[0], metrics_cell] + [c for c in notebook.cells if c.cell_type == "markdown"]

    graded, _ = grade(course, forged(course, "s01", "typed", typed))
    checks = graded["s01"].checks
    assert graded["s01"].verdict == "FAIL"
    assert checks["numbers consistent"][0] == "FAIL" and checks["verified numbers"][0] == "FAIL"


def edit_printed(notebook, old, new):
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and old in output.get("text", ""):
                output["text"] = output["text"].replace(old, new)
                return
    raise AssertionError(f"{old!r} not printed")


def test_edited_history_number_fails(course):
    history = json.loads((course["root"] / "runs" / "s02" / "history.json").read_text())
    old_loss, old_reconstruction = history["loss"][1], history["reconstruction_loss"][1]

    def inconsistent(notebook):  # one number changed: loss is no longer reconstruction + KL
        edit_printed(notebook, f"loss {old_loss:.2f}", f"loss {old_loss - 20:.2f}")

    def consistent(notebook):  # both changed together: only the reference run can tell
        edit_printed(notebook, f"loss {old_loss:.2f}  reconstruction_loss {old_reconstruction:.2f}",
                     f"loss {old_loss - 20:.2f}  reconstruction_loss {old_reconstruction - 20:.2f}")

    graded, _ = grade(course, forged(course, "s02", "inconsistent", inconsistent))
    assert graded["s02"].checks["numbers consistent"][0] == "FAIL"
    graded, _ = grade(course, forged(course, "s02", "consistent", consistent))
    assert graded["s02"].checks["numbers consistent"][0] == "PASS"
    assert graded["s02"].checks["verified numbers"][0] == "FAIL" and graded["s02"].verdict == "FAIL"


def test_edited_execution_count_fails(course):
    def edited(notebook):
        cell = next(c for c in notebook.cells if c.cell_type == "code" and any(
            o.get("output_type") == "execute_result" for o in c.outputs))
        cell.execution_count += 1  # its result still says when it really ran

    graded, _ = grade(course, forged(course, "s03", "count", edited))
    assert graded["s03"].checks["executed"][0] == "FAIL" and "edited" in graded["s03"].checks["executed"][1]


def test_another_students_notebook_with_the_id_changed_fails(course):
    other = course["assignments"]["s03"]

    def renamed(notebook):
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        cell.source = cell.source.replace("'s02'", "'s03'")

    def renamed_and_reseeded(notebook):
        renamed(notebook)
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        cell.source = re.sub(r"SEED = \d+", f"SEED = {other['seed']}", cell.source)
        for c in notebook.cells:  # and the metrics output, to match
            for output in c.get("outputs", []):
                if "application/json" in output.get("data", {}):
                    output["data"]["application/json"]["seed"] = other["seed"]

    def place(change, name):
        path = forged(course, "s02", name, change)
        target = path.parent.parent / "s03"
        path.parent.rename(target)
        (target / "s02.ipynb").rename(target / "s03.ipynb")
        return target / "s03.ipynb"

    graded, _ = grade(course, place(renamed, "renamed"))
    assert graded["s03"].verdict == "FAIL" and graded["s03"].checks["identity"][0] == "FAIL"
    graded, _ = grade(course, place(renamed_and_reseeded, "reseeded"))
    assert graded["s03"].checks["identity"][0] == "PASS"
    assert graded["s03"].checks["verified numbers"][0] == "FAIL"


def test_result_quoting_the_reference_numbers_is_review(course):
    reference = grading.read_record(ROOT / "notebooks" / "vae_mnist.ipynb").metrics
    assert reference, "the committed notebook must hold its executed outputs"

    def quoting(notebook):
        observation = notebook_sections(notebook)["Observation"]
        write_answers(notebook, observation, borrowed_prose(12) + "\n\nThe test negative ELBO was "
                      f"{reference['test_neg_elbo']:.2f} nats and the NLL {reference['test_nll_iw']:.2f} nats.")

    graded, _ = grade(course, forged(course, "s01", "quoting", quoting))
    assert graded["s01"].verdict == "REVIEW" and "reference" in graded["s01"].checks["prose"][1]


def test_class_outputs(course, tmp_path, capsys):
    code = grading.grade_command([course["handed_in"]], assignments=course["root"] / "handout" / "assignments.csv",
                                 key_path=course["root"] / "course.key", csv_path=tmp_path / "grades.csv",
                                 report_path=tmp_path / "class.html", feedback_dir=tmp_path / "feedback",
                                 cache_dir=course["root"] / "cache")
    output = capsys.readouterr().out
    print(output)
    assert code == 1 and "4 passed, 0 failed, 2 to review" in output
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert [row["student_id"] for row in rows] == STUDENTS
    assert (tmp_path / "class.html").exists() and len(list((tmp_path / "feedback").glob("*.html"))) == 6


def test_two_dask_workers_give_the_serial_verdicts(course, tmp_path):
    """The class graded with --jobs 2 (a LocalCluster of two worker processes, a fresh cache): same verdicts."""
    pytest.importorskip("distributed")
    serial, _ = grade(course, course["handed_in"])

    def on_dask(to_verify):
        return reference_runs(to_verify, cache_dir=tmp_path / "cache", jobs=2)

    submissions, _ = grading.grade_submissions([course["handed_in"]], assignments=course["assignments"], verify=on_dask)
    parallel = {s.student_id: s for s in submissions}
    assert {s: p.verdict for s, p in parallel.items()} == {s: p.verdict for s, p in serial.items()}
    assert {s: p.checks["verified numbers"] for s, p in parallel.items()} == \
        {s: p.checks["verified numbers"] for s, p in serial.items()}
