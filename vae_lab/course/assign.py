"""Personal lab notebooks for a class: one seed per student, derived from an instructor's secret key.

The seed is HMAC-SHA256(key, student id), so the instructor can regenerate any assignment, and a
student cannot choose another student's seed without the key. Each notebook is generated from the
reference notebook (one source for the lab's cells), with the worked prose replaced by questions and, in
exercise mode, the three functions of the model left for the student to write.

What `vae-lab assign ROSTER --out COURSE` writes:

    COURSE/handout/<student_id>.ipynb   one per student: the only files that go to students
    COURSE/assignments.csv              seeds and roster columns: the instructor's, for grading
    COURSE/course.key                   the key (unless --key names another place): never hand it out
"""

import copy
import csv
import hashlib
import hmac
import io
import json
import os
import re
import secrets
from pathlib import Path

from ..config import TrainConfig
from ..data import DATASETS
from ..errors import LabError

ASSIGNMENTS = "assignments.csv"
HANDOUT = "handout"
KEY = "course.key"
CANVAS_ASSIGNMENTS = "canvas-assignments.json"  # {"VAE lab (4711)": "10.00"}: the gradebook's Points Possible row
ASSIGNMENT_COLUMNS = ("student_id", "seed", "dataset", "epochs", "train_images", "exercises", "vae_lab_version",
                      "roster_kind", "roster_id_column")
PARAMETERS_TAG = "parameters"  # papermill's convention for the cell that holds a notebook's inputs
ANSWER_TAG = "answer"  # the reference notebook's Observation and Result cells
QUESTIONS_TAG = "questions"  # a student notebook's guiding questions (never the student's prose)
FUNCTIONS_TAG = "functions"  # the reference notebook's cell that chooses the model's three functions
EXERCISE_TAG = "exercise"  # a student's function to write, in exercise mode
REFERENCE_ONLY_TAG = "reference-only"  # a cell about the worked example, left out of student notebooks
PROGRAM_TAG = "program"  # the cell that prints the package's model.py (without the solutions, in exercise mode)
ANSWER_PLACEHOLDER = "*Write your answer here, about your own run.*"


class AssignError(LabError, ValueError):
    """Assignments can't be written as asked; the message says what to change."""


def load_or_create_key(path):
    """The instructor's key (32 random bytes, hex): read it, or create it readable by its owner only."""
    path = Path(path)
    if path.exists():
        text = path.read_text(encoding="ascii", errors="replace").strip()
        if not re.fullmatch(r"[0-9a-f]{64}", text):
            raise AssignError(f"{path} is not a vae-lab course key (64 hex digits)")
        return bytes.fromhex(text)
    return write_new_key(path, secrets.token_bytes(32))


def write_new_key(path, key):
    """Write KEY to PATH, which must not exist yet, readable by its owner only; return KEY."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.hex() + "\n")
    return key


def student_seed(key, student_id, attempt=0):
    """A seed in [0, 2**31) from the key and the id (and a counter, to step past a clash)."""
    message = f"vae-lab seed\0{student_id}\0{attempt}".encode()
    return int.from_bytes(hmac.new(key, message, hashlib.sha256).digest()[:4], "big") % 2**31


def make_assignments(roster, key, *, dataset="mnist", epochs=TrainConfig.epochs, train_images=None, exercises=False):
    """One assignment per roster row: the assignment columns, then the roster's identity columns.

    Seeds never repeat within a roster (a clash moves the later student to the next counter), and
    'both' alternates MNIST and Fashion-MNIST down the roster.
    """
    from .. import __version__

    datasets = ["mnist", "fashion_mnist"] if dataset == "both" else [dataset]
    if any(name not in DATASETS for name in datasets):
        raise AssignError(f"dataset must be one of {', '.join(DATASETS)} or 'both', not {dataset!r}")
    assignments, used = [], set()
    for index, row in enumerate(roster.rows):
        attempt, seed = 0, student_seed(key, row["student_id"])
        while seed in used:
            attempt += 1
            seed = student_seed(key, row["student_id"], attempt)
        used.add(seed)
        identity = {column: row.get(column, "") for column in roster.identity_columns if column != "student_id"}
        assignments.append({"student_id": row["student_id"], "seed": seed, "dataset": datasets[index % len(datasets)],
                            "epochs": int(epochs), "train_images": train_images or "",
                            "exercises": "yes" if exercises else "", "vae_lab_version": __version__,
                            "roster_kind": roster.kind, "roster_id_column": roster.id_column, **identity})
    return assignments


def read_assignments(path):
    """assignments.csv as ({student_id: assignment}, Roster of its identity columns), numbers as numbers."""
    from .roster import Roster, RosterError, read_roster

    try:
        table = read_roster(path, id_column="student_id")  # the id assign chose, whatever the LMS's columns
    except RosterError as error:
        raise AssignError(f"{path} is not an assignments file from vae-lab assign: {error}") from None
    missing = [column for column in ASSIGNMENT_COLUMNS if column not in table.header]
    if missing:
        raise AssignError(f"{path} is not an assignments file from vae-lab assign (missing {', '.join(missing)})")
    assignments, problems = {}, []
    for line, row in enumerate(table.rows, start=2):
        try:
            row = {**row, "seed": int(row["seed"]), "epochs": int(row["epochs"]),
                   "train_images": int(row["train_images"]) if row["train_images"] else None,
                   "exercises": row["exercises"] == "yes"}
        except ValueError:
            problems.append(f"line {line}: seed, epochs or train_images is not a whole number")
            continue
        if row["dataset"] not in DATASETS:
            problems.append(f"line {line}: dataset {row['dataset']!r}")
        assignments[row["student_id"]] = row
    if problems:
        raise AssignError(f"{path}: " + "; ".join(problems[:10]))
    kinds = {row["roster_kind"] for row in table.rows}
    kind = kinds.pop() if len(kinds) == 1 else "vae-lab"
    identity = tuple(column for column in table.header if column not in ASSIGNMENT_COLUMNS)
    roster = Roster(kind=kind, id_column="student_id", header=("student_id", *identity), rows=table.rows,
                    identity_columns=identity,
                    points_possible=_canvas_assignments(Path(path).with_name(CANVAS_ASSIGNMENTS)))
    return assignments, roster


def _canvas_assignments(path):
    """{column: points as the export wrote them} that assign kept from a Canvas gradebook, or None."""
    try:
        columns = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {str(name): str(points) for name, points in columns.items()} if isinstance(columns, dict) else None


def check_seeds(assignments, key):
    """Raise AssignError when assignments.csv holds seeds the instructor's key did not make (edited)."""
    wrong = []
    used = set()
    for student, assignment in assignments.items():  # in file order, as make_assignments stepped past clashes
        attempt, seed = 0, student_seed(key, student)
        while seed in used:
            attempt += 1
            seed = student_seed(key, student, attempt)
        used.add(seed)
        if seed != assignment["seed"]:
            wrong.append(student)
    if wrong:
        raise AssignError(f"the seeds of {', '.join(wrong[:5])} in the assignments file were not made with this "
                          "course key: the file was edited, or belongs to another key")


def parameters_source(assignment):
    """The parameters cell of one student's notebook."""
    return (f"# Your personal parameters, written by vae-lab assign: do not change them.\n"
            f"STUDENT_ID = {assignment['student_id']!r}\n"
            f"SEED = {int(assignment['seed'])}\n"
            f"DATASET = {assignment['dataset']!r}\n"
            f"EPOCHS = {int(assignment['epochs'])}\n"
            f"TRAIN_IMAGES = {assignment['train_images'] or None!r}  # None: all 60,000 training images\n")


def questions(section, dataset):
    """The guiding questions of a student's Observation or Result section, for their dataset."""
    info = DATASETS[dataset if dataset in DATASETS else "mnist"]
    if section == "Observation":
        return [f"Which {info.item} classes form regions of their own in your latent space, and which overlap? "
                f"Name them, and say why those might be confused.",
                f"How does your 10×10 grid change as you move along a row and down a column? "
                f"Which {info.item}s appear where?",
                "What do your reconstructions keep, and what do they lose?",
                "How did the two terms of the loss (reconstruction and KL) change over your epochs?"]
    return ["What did you build and train, on which data, with which seed and for how many epochs?",
            "Quote your own test negative ELBO, importance-weighted NLL and final validation loss (from "
            "your metrics output above), and say what the gap between the ELBO and the NLL means.",
            "Did your model meet the aim of the experiment? Say why, from your own figures."]


def _question_cell(section, dataset):
    lines = [f"## {section}", "", "*Answer in your own words, about your own run (the questions are a guide; "
             "write prose, not a list of answers):*", ""]
    lines += [f"- {question}" for question in questions(section, dataset)]
    return "\n".join(lines)


def _markdown(source, tags):
    import nbformat

    cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata["tags"] = tags
    return cell


def _code(source, tags=()):
    import nbformat

    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def exercise_cells():
    """The cells that replace the reference notebook's `functions` cell in an exercise notebook: for each of
    the three functions an explanation, the scaffold to complete, and a check that runs in the student's
    own kernel; then the choice of the student's functions for training."""
    from ..exercises import EXERCISES

    cells = [_markdown("### Your three functions\n\n"
                       "Write the three functions below; the model trains with *your* functions, so your record's "
                       "numbers come from your code. Use `ops` (Keras's operations, imported below) or "
                       "TensorFlow: the functions run inside the compiled training step. After each function, "
                       "run its check: it tests your function on random inputs and edge cases and says "
                       "`correct`, or which mistake it found.", [])]
    cells.append(_code("import keras\nfrom keras import ops"))
    for exercise in EXERCISES.values():
        cells.append(_markdown(exercise.explanation, []))
        cells.append(_code(exercise.scaffold, [EXERCISE_TAG]))
        images = ", images=x_train" if exercise.name == "reconstruction_loss" else ""
        cells.append(_code(f"vae_lab.check_exercise({exercise.name}{images})"))
    cells.append(_code("# The model trains with your three functions.\n"
                       "functions = vae_lab.LossFunctions(reparameterize=reparameterize, kl_divergence=kl_divergence,"
                       "\n                                 reconstruction_loss=reconstruction_loss)", [FUNCTIONS_TAG]))
    return cells


def student_notebook(reference, assignment, exercises=False):
    """The reference notebook as one student's version: their parameters, no outputs, no worked prose, and in
    exercise mode their three functions to write."""
    notebook = copy.deepcopy(reference)
    cells, seen_parameters, seen_functions = [], False, False
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if PARAMETERS_TAG in tags and not seen_parameters:
                cell["source"], seen_parameters = parameters_source(assignment), True
            if FUNCTIONS_TAG in tags and exercises:
                cells += exercise_cells()
                seen_functions = True
                continue
        if REFERENCE_ONLY_TAG in tags:
            continue
        if PROGRAM_TAG in tags and exercises:
            cell["source"] = "display(Markdown(vae_lab.program_listing(exercises=True)))"
        if ANSWER_TAG in tags:
            section = "Observation" if "Observation" in "".join(cell["source"]) else "Result"
            cells.append(_markdown(_question_cell(section, assignment["dataset"]), [QUESTIONS_TAG]))
            cells.append(_markdown(ANSWER_PLACEHOLDER, [ANSWER_TAG]))
            continue
        cells.append(cell)
    if not seen_parameters:
        raise AssignError("the reference notebook has no code cell tagged 'parameters'")
    if exercises and not seen_functions:
        raise AssignError("the reference notebook has no code cell tagged 'functions' to turn into exercises")
    for index, cell in enumerate(cells):  # ids by position, not nbformat's random ones: assigning again
        cell["id"] = f"cell-{index:02d}"  # writes the very same bytes
    notebook["cells"] = cells
    notebook.setdefault("metadata", {})["vae_lab"] = {"student_id": assignment["student_id"],
                                                      "exercises": bool(exercises)}
    return notebook


EXAMPLE = {"student_id": "example", "seed": 0, "dataset": "mnist", "epochs": 1, "train_images": ""}


def exercise_example(reference=None):
    """The exercise notebook `assign --exercises` writes, filled with the package's own solution: the example
    CI runs under nbval (notebooks/vae_mnist_exercises.ipynb), so the exercise mode is tested as students see it."""
    import nbformat

    from ..lab_notebook import lab_notebook_path
    from .code_similarity import solution_sources

    reference = reference or nbformat.read(lab_notebook_path(), as_version=4)
    notebook = student_notebook(reference, EXAMPLE, exercises=True)
    solutions = solution_sources()
    for cell in notebook.cells:
        if EXERCISE_TAG in cell.metadata.get("tags", []):
            name = cell.source.split("(", 1)[0].removeprefix("def ").strip()
            cell.source = solutions[name]
    notebook.metadata["vae_lab"] = {"student_id": EXAMPLE["student_id"], "exercises": True, "example": True}
    return notebook


# A dry run that shows fewer training images than this (images x epochs) learns nothing the figures can show:
# every tile of the digit grid the same grey blur (benchmarks/bench_dry_run.py: 20,000 x 2 and 60,000 x 1
# pass for every seed measured, 10,000 x 2 and 20,000 x 1 do not).
DRY_RUN_MINIMUM_IMAGES = 40_000


def dry_run_warning(train_images, epochs):
    """A sentence when a dry run's sizes are too small for its figures to show anything, else None."""
    if not train_images or int(train_images) * int(epochs) >= DRY_RUN_MINIMUM_IMAGES:
        return None
    return (f"{train_images} images x {epochs} epochs is too little training for the figures to show anything "
            "(every tile of the digit grid the same grey blur), so the questions can't be answered: use "
            "--train-images 20000 --epochs 2 or more, or all images with --epochs 1")


def _refuse_changed_assignments(path, assignments):
    """Assigning again into a course adds students; it never changes what a student already has, since their
    notebook and the grading both follow assignments.csv."""
    before, _ = read_assignments(path)
    changed = {}
    for assignment in assignments:
        old = before.get(assignment["student_id"])
        if old is None:
            continue
        new = {"seed": assignment["seed"], "dataset": assignment["dataset"], "epochs": assignment["epochs"],
               "train_images": assignment["train_images"] or None, "exercises": assignment["exercises"] == "yes"}
        for name, value in new.items():
            if old[name] != value:
                changed.setdefault(name, []).append(f"{assignment['student_id']} {old[name]} -> {value}")
    if changed:
        details = "; ".join(f"{name}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                            for name, items in changed.items())
        raise AssignError(f"{path} already assigns these students other settings ({details}). Assigning again adds "
                          "students with the course's own settings: repeat the --dataset, --epochs, --train-images "
                          "and --exercises first used (with --dataset both, add new students at the end of the "
                          "roster); for a different assignment, choose a new --out")


def assign_command(roster_path, out_dir, *, key_path=None, dataset="mnist", epochs=TrainConfig.epochs,
                   notebook=None, train_images=None, exercises=False, id_column=None):
    """`vae-lab assign`: COURSE/handout/<student_id>.ipynb for each student, COURSE/assignments.csv, the key.

    Everything is checked and built in memory first: a bad roster, notebook or option writes nothing.
    """
    import nbformat

    from ..lab_notebook import lab_notebook_path
    from .roster import read_roster

    out_dir = Path(out_dir)
    handout = out_dir / HANDOUT
    key_path = Path(key_path) if key_path else out_dir / KEY
    if handout.resolve() == key_path.resolve().parent or handout.resolve() in key_path.resolve().parents:
        raise AssignError(f"the key {key_path} must not be inside {handout}, which goes to the students")
    roster = read_roster(roster_path, id_column=id_column)  # every roster problem, before anything is written
    source = Path(notebook) if notebook else lab_notebook_path()
    try:
        reference = nbformat.read(source, as_version=4)
    except (OSError, ValueError) as error:
        raise AssignError(f"cannot read the reference notebook {source}: {error}") from None
    existing = sorted(path.name for path in handout.glob("*.ipynb")) if handout.is_dir() else []
    key = load_or_create_key(key_path) if key_path.exists() else secrets.token_bytes(32)
    assignments = make_assignments(roster, key, dataset=dataset, epochs=epochs, train_images=train_images,
                                   exercises=exercises)
    notebooks = {f"{a['student_id']}.ipynb": nbformat.writes(student_notebook(reference, a, exercises))
                 for a in assignments}
    stale = [name for name in existing if name not in notebooks]
    if stale:
        raise AssignError(f"{handout} holds notebooks of students not on this roster ({', '.join(stale[:5])}): "
                          "choose a new --out, or remove them")
    if (out_dir / ASSIGNMENTS).exists():
        _refuse_changed_assignments(out_dir / ASSIGNMENTS, assignments)
    columns = list(ASSIGNMENT_COLUMNS) + [c for c in assignments[0] if c not in ASSIGNMENT_COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(assignments)
    # Everything is built: now write, the key first (the seeds above were made with it).
    from ..atomic import atomic_write_text

    if not key_path.exists():
        write_new_key(key_path, key)
    handout.mkdir(parents=True, exist_ok=True)
    for name, text in notebooks.items():
        atomic_write_text(handout / name, text)
    atomic_write_text(out_dir / ASSIGNMENTS, buffer.getvalue())
    if roster.kind == "canvas":
        from .exports import names_a_canvas_assignment

        titles = [name for name in roster.header if names_a_canvas_assignment(name)]
        # the gradebook's assignments and their points, so grading can name the lab's column with its id and
        # say when its points are not the rubric's (Canvas keeps an existing assignment's own points)
        atomic_write_text(out_dir / CANVAS_ASSIGNMENTS, json.dumps(
            {title: (roster.points_possible or {}).get(title, "") for title in titles}, indent=1) + "\n")
        if titles:
            print(f"Canvas assignments in this export: {', '.join(map(repr, titles[:5]))}: when grading, pass the "
                  "lab's as --assignment-title so its marks fill that column")
    warning = dry_run_warning(train_images, epochs)
    if warning:
        print(f"warning: {warning}")
    added = [name for name in notebooks if name not in existing]
    if existing and len(added) < len(notebooks):  # assigning again for late students: only theirs are news
        handed = (f"{len(notebooks)} notebooks in {handout}{' with exercises' if exercises else ''}; new since the "
                  f"last assign: {', '.join(added[:10]) + (f' and {len(added) - 10} more' if len(added) > 10 else '') if added else 'none'}"
                  f"{' (hand these out; the others are unchanged)' if added else ''}")
    else:
        handed = f"{len(assignments)} notebooks in {handout} (hand these out){' with exercises' if exercises else ''}"
    print(f"{handed}\n"
          f"{out_dir / ASSIGNMENTS}: seeds and roster columns, for grading (keep it)\n"
          f"{key_path}: the course key (keep it, never hand it out)")
    return 0
