"""Personal lab notebooks for a class: one seed per student, derived from an instructor's secret key.

The seed is HMAC-SHA256(key, student id), so the instructor can regenerate any assignment, and a
student cannot choose another student's seed without the key. Each notebook is generated from the
reference notebook (one source for the lab's cells), with the worked prose replaced by questions.
"""

import copy
import csv
import hashlib
import hmac
import io
import os
import re
import secrets
from pathlib import Path

from ..config import TrainConfig
from ..data import DATASETS
from ..run_directory import atomic_write_text

ASSIGNMENTS = "assignments.csv"
ASSIGNMENT_COLUMNS = ("student_id", "seed", "dataset", "epochs", "train_images", "vae_lab_version")
PARAMETER_NAMES = ("STUDENT_ID", "SEED", "DATASET", "EPOCHS", "TRAIN_IMAGES")
ANSWER_TAG = "answer"  # the reference notebook's Observation and Result cells
PARAMETERS_TAG = "parameters"  # papermill's convention for the cell that holds a notebook's inputs
ANSWER_PLACEHOLDER = "*Write your answer here, about your own run.*"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def reference_notebook_path():
    """The lab notebook of a source checkout (the editable install the README sets up)."""
    return Path(__file__).resolve().parents[2] / "notebooks" / "vae_mnist.ipynb"


def read_roster(path):
    """Rows of ROSTER.csv as dicts; raise one ValueError naming every bad row."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text: save the roster as CSV (UTF-8)") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "student_id" not in rows[0]:
        raise ValueError(f"{path} needs a header row with a student_id column and one row per student")
    problems, seen = [], {}
    for line, row in enumerate(rows, start=2):
        student = (row.get("student_id") or "").strip()
        row["student_id"] = student
        if not student:
            problems.append(f"line {line}: empty student_id")
        elif not _SAFE_ID.fullmatch(student) or student.lower() == "assignments":
            problems.append(f"line {line}: student_id {student!r} is not safe as a file name "
                            "(letters, digits, '.', '_' and '-', at most 64, not starting with '.' or '-')")
        elif student in seen:
            problems.append(f"line {line}: student_id {student!r} repeats line {seen[student]}")
        else:
            seen[student] = line
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
    return rows


def load_or_create_key(path):
    """The instructor's key (32 random bytes, hex): read it, or create it readable by its owner only."""
    path = Path(path)
    if path.exists():
        text = path.read_text(encoding="ascii", errors="replace").strip()
        if not re.fullmatch(r"[0-9a-f]{64}", text):
            raise ValueError(f"{path} is not a vae-lab course key (64 hex digits)")
        return bytes.fromhex(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.hex() + "\n")
    return key


def student_seed(key, student_id, attempt=0):
    """A seed in [0, 2**31) from the key and the id (and a counter, to step past a clash)."""
    message = f"vae-lab seed\0{student_id}\0{attempt}".encode()
    return int.from_bytes(hmac.new(key, message, hashlib.sha256).digest()[:4], "big") % 2**31


def make_assignments(rows, key, *, dataset="mnist", epochs=TrainConfig.epochs, train_images=None):
    """One assignment per roster row: student_id, seed, dataset, epochs, train_images, vae_lab_version.

    Seeds never repeat within a roster (a clash moves the later student to the next counter), and
    'both' alternates MNIST and Fashion-MNIST down the roster.
    """
    from .. import __version__

    datasets = ["mnist", "fashion_mnist"] if dataset == "both" else [dataset]
    if any(name not in DATASETS for name in datasets):
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)} or 'both', not {dataset!r}")
    assignments, used = [], set()
    for index, row in enumerate(rows):
        attempt, seed = 0, student_seed(key, row["student_id"])
        while seed in used:
            attempt += 1
            seed = student_seed(key, row["student_id"], attempt)
        used.add(seed)
        assignment = {**{k: v for k, v in row.items() if k not in ASSIGNMENT_COLUMNS},
                      "student_id": row["student_id"], "seed": seed, "dataset": datasets[index % len(datasets)],
                      "epochs": int(epochs), "train_images": train_images or "", "vae_lab_version": __version__}
        assignments.append(assignment)
    return assignments


def read_assignments(path):
    """assignments.csv as {student_id: assignment}, with seed, epochs and train_images as numbers."""
    rows = read_roster(path)
    for row in rows:
        missing = [column for column in ASSIGNMENT_COLUMNS if column not in row]
        if missing:
            raise ValueError(f"{path} is not an assignments file from vae-lab assign (missing {missing})")
        row["seed"], row["epochs"] = int(row["seed"]), int(row["epochs"])
        row["train_images"] = int(row["train_images"]) if row["train_images"] else None
    return {row["student_id"]: row for row in rows}


def check_seeds(assignments, key_path):
    """Raise ValueError when assignments.csv holds seeds the instructor's key did not make (edited)."""
    if key_path is None or not Path(key_path).exists():
        return
    key = load_or_create_key(key_path)
    expected = make_assignments(list(assignments.values()), key)
    wrong = [row["student_id"] for row in expected if row["seed"] != assignments[row["student_id"]]["seed"]]
    if wrong:
        raise ValueError(f"the seeds of {', '.join(wrong[:5])} in the assignments file were not made with the key "
                         f"{key_path}: the file was edited, or belongs to another key")


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
    info = DATASETS[dataset]
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


def student_notebook(reference, assignment):
    """The reference notebook as one student's version: their parameters, no outputs, no worked prose."""
    notebook = copy.deepcopy(reference)
    cells, seen_parameters = [], False
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if PARAMETERS_TAG in tags and not seen_parameters:
                cell["source"], seen_parameters = parameters_source(assignment), True
        if ANSWER_TAG in tags:
            section = "Observation" if "Observation" in "".join(cell["source"]) else "Result"
            cells.append(_markdown(_question_cell(section, assignment["dataset"]), ["questions"]))
            cells.append(_markdown(ANSWER_PLACEHOLDER, [ANSWER_TAG]))
            continue
        cells.append(cell)
    if not seen_parameters:
        raise ValueError("the reference notebook has no code cell tagged 'parameters'")
    notebook["cells"] = cells
    notebook.setdefault("metadata", {})["vae_lab"] = {"student_id": assignment["student_id"]}
    return notebook


def _markdown(source, tags):
    import nbformat

    cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata["tags"] = tags
    return cell


def assign_command(roster, out_dir, *, key_path, dataset="mnist", epochs=TrainConfig.epochs, notebook=None,
                   train_images=None):
    """`vae-lab assign`: DIR/<student_id>.ipynb for each student, and DIR/assignments.csv."""
    import nbformat

    out_dir, key_path = Path(out_dir), Path(key_path)
    if out_dir.resolve() in key_path.resolve().parents:
        raise ValueError(f"the key {key_path} must not be inside {out_dir}, which goes to the students")
    rows = read_roster(roster)  # a bad roster fails here, before anything is written
    reference = nbformat.read(notebook or reference_notebook_path(), as_version=4)
    key = load_or_create_key(key_path)
    assignments = make_assignments(rows, key, dataset=dataset, epochs=epochs, train_images=train_images)
    out_dir.mkdir(parents=True, exist_ok=True)
    for assignment in assignments:
        atomic_write_text(out_dir / f"{assignment['student_id']}.ipynb",
                      nbformat.writes(student_notebook(reference, assignment)))
    columns = list(ASSIGNMENT_COLUMNS) + [c for c in assignments[0] if c not in ASSIGNMENT_COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(assignments)
    atomic_write_text(out_dir / ASSIGNMENTS, buffer.getvalue())
    print(f"{len(assignments)} notebooks and {ASSIGNMENTS} in {out_dir}; key: {key_path} (keep it, never hand it out)")
    return 0
