"""Grade executed lab notebooks without re-running them (or, with `rerun`, by re-running them)."""

import csv
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

METRIC_KEYS = ("test_neg_elbo", "test_reconstruction_loss", "test_kl_loss", "test_nll_iw", "final_val_loss")
# Highest acceptable final validation loss after the default 5 epochs, per dataset (README: ~153.5
# for MNIST and ~265.7 for Fashion-MNIST were measured; the bound leaves room for other machines).
DEFAULT_MAX_VAL_LOSS = {"mnist": 170.0, "fashion_mnist": 290.0}
RERUN_TOLERANCE_NATS = 3.0
PLACEHOLDERS = re.compile(r"\b(todo|tbd|fixme|write (your|here)|to be written|lorem ipsum)\b|<your|\.\.\.\s*$",
                          re.IGNORECASE | re.MULTILINE)
MIN_SECTION_WORDS = 20


@dataclass
class Grade:
    """The verdict on one submission: an ordered list of (check, passed, reason)."""

    submission: str
    checks: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    def add(self, name, passed, reason=""):
        self.checks.append((name, bool(passed), reason))

    @property
    def passed(self):
        return bool(self.checks) and all(passed for _, passed, _ in self.checks)


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]


def _has_image(cell):
    return any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def find_metrics(notebook):
    """The last application/json output that holds the metrics, or None."""
    found = None
    for cell in _code_cells(notebook):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("application/json")
            if isinstance(data, dict) and "test_neg_elbo" in data:
                found = data
    return found


def _section_text(notebook, title):
    """Text of the markdown under a heading named `title`, up to the next heading of any level."""
    text, inside = [], False
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            heading = re.match(r"^\s*#+\s*(.*?)\s*:?\s*$", line)
            if heading:
                inside = heading.group(1).lower().startswith(title.lower())
            elif inside:
                text.append(line)
    return "\n".join(text).strip()


def _check_execution(notebook, grade):
    cells = _code_cells(notebook)
    missing = [index for index, cell in enumerate(cells, 1) if cell.get("execution_count") is None]
    grade.add("all code cells executed", not missing,
              f"code cells {missing[:5]} were never run" if missing else f"{len(cells)} cells")
    counts = [cell.execution_count for cell in cells if cell.get("execution_count") is not None]
    ordered = all(b > a for a, b in zip(counts, counts[1:]))
    grade.add("run in order in one kernel session", ordered and bool(counts),
              "" if ordered else f"execution counts go {counts}: cells run out of order or after a restart")
    errors = [cell.execution_count for cell in cells
              if any(output.get("output_type") == "error" for output in cell.get("outputs", []))]
    grade.add("no error outputs", not errors, f"error output in the cells run as {errors}" if errors else "")


def _check_figures(notebook, grade):
    for name, call in (("latent scatter figure", "plot_latent_scatter"), ("digit grid figure", "plot_digit_grid")):
        cells = [cell for cell in _code_cells(notebook) if call in cell.source]
        grade.add(name, any(_has_image(cell) for cell in cells),
                  "" if cells else f"no cell calls {call}")


def _check_metrics(notebook, grade, max_val_loss):
    metrics = find_metrics(notebook)
    if metrics is None:
        grade.add("metrics output", False, "no application/json output with test_neg_elbo (run the Result cell)")
        return
    grade.metrics = metrics
    values = {key: metrics.get(key) for key in METRIC_KEYS}
    bad = [key for key, value in values.items() if not isinstance(value, (int, float)) or not math.isfinite(value)]
    grade.add("metrics finite", not bad, f"missing or not finite: {bad}" if bad else "")
    if bad:
        return
    bound = max_val_loss or DEFAULT_MAX_VAL_LOSS.get(metrics.get("dataset"), DEFAULT_MAX_VAL_LOSS["mnist"])
    grade.add("final validation loss within bound", values["final_val_loss"] <= bound,
              f"{values['final_val_loss']:.2f} vs at most {bound:g} nats")
    sane = values["test_kl_loss"] > 0 and values["test_nll_iw"] <= values["test_neg_elbo"] + 1e-6
    grade.add("metrics consistent", sane, "" if sane else "needs KL > 0 and nll_iw <= neg_elbo")


def _check_sections(notebook, grade):
    for title in ("Observation", "Result"):
        text = _section_text(notebook, title)
        words = len(re.findall(r"\w+", text))
        if not text:
            grade.add(f"{title} section", False, f"no '{title}' heading with text under it")
        elif PLACEHOLDERS.search(text) or words < MIN_SECTION_WORDS:
            grade.add(f"{title} section", False, f"looks like a placeholder ({words} words)")
        else:
            grade.add(f"{title} section", True, f"{words} words")


def grade_notebook(path, *, max_val_loss=None):
    """Check one executed notebook; never raises for a malformed file (it fails instead)."""
    grade = Grade(str(path))
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # any unreadable file is a failing submission, not a crash
        grade.add("readable notebook", False, f"{error.__class__.__name__}: {str(error)[:120]}")
        return grade
    grade.add("readable notebook", True)
    for check in (_check_execution, _check_figures, _check_sections):
        try:
            check(notebook, grade)
        except Exception as error:
            grade.add(check.__name__.strip("_").replace("_", " "), False, f"malformed: {error}")
    try:
        _check_metrics(notebook, grade, max_val_loss)
    except Exception as error:
        grade.add("metrics output", False, f"malformed: {error}")
    return grade


def rerun_notebook(path, grade, *, timeout=1200, tolerance=RERUN_TOLERANCE_NATS):
    """Execute the submission afresh (nbclient) and compare its metrics with the submitted ones."""
    from nbclient import NotebookClient

    try:
        notebook = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as run_dir:
            previous = os.environ.get("VAE_LAB_RUN_DIR")
            os.environ["VAE_LAB_RUN_DIR"] = run_dir  # never overwrite the student's run directory
            try:
                NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                               resources={"metadata": {"path": str(Path(path).resolve().parent)}}).execute()
            finally:
                if previous is None:
                    os.environ.pop("VAE_LAB_RUN_DIR", None)
                else:
                    os.environ["VAE_LAB_RUN_DIR"] = previous
    except Exception as error:
        grade.add("re-run", False, f"{error.__class__.__name__}: {str(error).strip().splitlines()[-1][:160]}")
        return
    fresh = find_metrics(notebook) or {}
    differences = {key: abs(fresh[key] - grade.metrics[key]) for key in METRIC_KEYS
                   if key in fresh and key in grade.metrics}
    worst = max(differences.values(), default=math.inf)
    grade.add("re-run reproduces metrics", worst <= tolerance,
              f"largest difference {worst:.3f} nats (tolerance {tolerance:g})" if differences
              else "re-run produced no metrics to compare")


def write_csv(grades, path):
    names = list(dict.fromkeys(name for grade in grades for name, _, _ in grade.checks))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission", "verdict", *names, *METRIC_KEYS, "reasons"])
        for grade in grades:
            results = {name: ("PASS" if passed else "FAIL") for name, passed, _ in grade.checks}
            reasons = "; ".join(f"{name}: {reason}" for name, passed, reason in grade.checks if not passed)
            writer.writerow([grade.submission, "PASS" if grade.passed else "FAIL",
                             *(results.get(name, "") for name in names),
                             *(grade.metrics.get(key, "") for key in METRIC_KEYS), reasons])


def print_table(grades, stream=None):
    stream = stream or sys.stdout
    for grade in grades:
        print(f"{grade.submission}: {'PASS' if grade.passed else 'FAIL'}", file=stream)
        for name, passed, reason in grade.checks:
            print(f"  {'PASS' if passed else 'FAIL'}  {name:<36} {reason}", file=stream)


def grade_command(paths, *, csv_path=None, max_val_loss=None, rerun=False):
    """`vae-lab grade`: print the table, optionally write the CSV; 0 only when every submission passes."""
    grades = []
    for path in paths:
        grade = grade_notebook(path, max_val_loss=max_val_loss)
        if rerun and grade.metrics:
            rerun_notebook(path, grade)
        grades.append(grade)
    print_table(grades)
    if csv_path:
        write_csv(grades, csv_path)
    passed = sum(grade.passed for grade in grades)
    print(f"{passed} passed, {len(grades) - passed} failed")
    return 0 if passed == len(grades) else 1
