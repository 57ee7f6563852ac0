"""Grade handed-in lab notebooks: PASS, FAIL (with the reason) or REVIEW (a person should look).

Without assignments this is the student's self-check before handing in. With `assignments.csv` each
record is checked against the grader's own reference run of that student's assignment, and the batch
against itself for copies. Submitted code is never executed: records are read as data (`record.py`).
"""

import csv
import io
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..data import DATASETS
from ..run_directory import HISTORY_KEYS, METRIC_KEYS
from . import prose
from .assign import ANSWER_PLACEHOLDER, questions, reference_notebook_path
from .record import Unreadable, read_record

PASS, REVIEW, FAIL = "PASS", "REVIEW", "FAIL"
_RANK = {PASS: 0, REVIEW: 1, FAIL: 2}
CHECKS = ("readable", "identity", "executed", "figures", "numbers consistent", "verified numbers", "prose",
          "copies")

# Tolerances of the verification, in nats, from the same-seed drift and the seed spread measured by
# benchmarks/bench_drift.py (README, "How records are verified"). Epoch 1 tells seeds apart: each value's
# tolerance sits above its largest same-seed drift and below the closest pair of seeds. From epoch 2 on the
# two overlap, so later values only catch edits: PASS within the largest drift, REVIEW up to BAND_FACTOR
# times it, FAIL beyond.
PRINTED = 0.0051  # the history is printed with 2 decimals
EPOCH1_MATCH = {"loss": 0.08, "reconstruction_loss": 0.08, "kl_loss": 0.02,
                "val_loss": 0.40, "val_reconstruction_loss": 0.40, "val_kl_loss": 0.12}
LATER_DRIFT = {"loss-like": (0.42, 0.99, 1.49, 1.49), "kl": (0.07, 0.13, 0.13, 0.20)}  # epochs 2, 3, 4, 5 and on
METRIC_DRIFT = {"test_neg_elbo": 0.97, "test_reconstruction_loss": 0.97, "test_kl_loss": 0.20,
                "test_nll_iw": 0.97, "final_val_loss": 1.49}
EPOCH1_REVIEW_FACTOR = 2.0  # epoch 1 up to this many tolerances away: can't tell drift from a near seed
BAND_FACTOR = 2.5


def _later_drift(key, epoch):
    kind = "kl" if key.endswith("kl_loss") else "loss-like"
    return LATER_DRIFT[kind][min(epoch, 5) - 2]


@dataclass
class Submission:
    path: Path
    student_id: str = None
    record: object = None
    checks: dict = field(default_factory=dict)  # name -> (verdict, reason)
    reference: dict = None  # the grader's own run of this student's assignment

    def add(self, name, verdict, reason=""):
        old = self.checks.get(name)
        if old is None or _RANK[verdict] > _RANK[old[0]]:
            self.checks[name] = (verdict, reason)
        elif verdict == old[0] and reason and reason not in old[1]:
            self.checks[name] = (verdict, f"{old[1]}; {reason}" if old[1] else reason)

    @property
    def verdict(self):
        return max((verdict for verdict, _ in self.checks.values()), key=_RANK.get, default=FAIL)

    def reasons(self):
        return "; ".join(f"{name}: {reason}" for name, (verdict, reason) in self.checks.items() if verdict != PASS)


# --- checks of one record ----------------------------------------------------------------------------------

def check_execution(submission):
    record = submission.record
    code = [cell for cell in record.cells if cell["type"] == "code" and cell["source"].strip()]
    counts = [cell["execution_count"] for cell in code]
    if not code or None in counts:
        missing = [index for index, count in enumerate(counts, 1) if count is None]
        return submission.add("executed", FAIL, f"code cells {missing[:5]} were never run" if code else "no code")
    for cell in code:
        for output in cell["outputs"]:
            if output.get("output_type") == "execute_result" and output.get("execution_count") != cell["execution_count"]:
                return submission.add("executed", FAIL, f"cell run as [{cell['execution_count']}] holds the result of "
                                                        f"[{output.get('execution_count')}]: execution counts edited")
    if any(b <= a for a, b in zip(counts, counts[1:])):
        return submission.add("executed", FAIL, f"execution counts go {counts[:12]}: run out of order or after a "
                                                "restart (use Restart & Run All)")
    errors = [cell["execution_count"] for cell in code if any(o.get("output_type") == "error" for o in cell["outputs"])]
    if errors:
        return submission.add("executed", FAIL, f"error output in the cells run as {errors[:5]}")
    started = [cell["timing"].get("iopub.execute_input") for cell in code]
    if all(isinstance(time, str) for time in started) and started != sorted(started):
        return submission.add("executed", FAIL, "the cells' recorded start times are not in execution-count order: "
                                                "execution counts edited")
    submission.add("executed", PASS, f"{len(code)} cells in order")


def check_figures(submission):
    missing = [name for name in ("latent scatter", "digit grid") if name not in submission.record.figures]
    submission.add("figures", FAIL if missing else PASS, f"no {' or '.join(missing)} figure" if missing else "")


def check_numbers(submission):
    """The record's numbers against each other: printed history, the metrics output, the parameters."""
    record, add = submission.record, submission.add
    history, metrics = record.history, record.metrics
    if not history:
        add("numbers consistent", FAIL, "no printed training history (run the training cell)")
    if not metrics:
        return add("numbers consistent", FAIL, "no metrics output (run the Result cell)")
    values = {key: metrics.get(key) for key in METRIC_KEYS}
    bad = [key for key, value in values.items()
           if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)]
    if bad:
        return add("numbers consistent", FAIL, f"metrics missing or not finite: {bad}")
    terms = values["test_reconstruction_loss"] + values["test_kl_loss"]
    if abs(values["test_neg_elbo"] - terms) > 1e-3 * abs(terms) or values["test_kl_loss"] <= 0:
        add("numbers consistent", FAIL, "the metrics' negative ELBO is not reconstruction + KL (edited?)")
    if values["test_nll_iw"] > values["test_neg_elbo"] + 1e-6:
        add("numbers consistent", FAIL, "the importance-weighted NLL lies above the negative ELBO")
    for epoch in range(1, len(history.get("loss", [])) + 1):
        for prefix in ("", "val_"):
            total, parts = (history[prefix + "loss"][epoch - 1],
                            history[prefix + "reconstruction_loss"][epoch - 1] + history[prefix + "kl_loss"][epoch - 1])
            if not abs(total - parts) <= 3 * PRINTED:  # three numbers, each rounded to 2 decimals
                add("numbers consistent", FAIL, f"epoch {epoch}: printed {prefix}loss {total:.2f} is not "
                                                f"{prefix}reconstruction + {prefix}KL ({parts:.2f}): edited?")
    if history.get("val_loss") and not abs(history["val_loss"][-1] - values["final_val_loss"]) <= PRINTED:
        add("numbers consistent", FAIL, f"printed final val_loss {history['val_loss'][-1]:.2f} differs from the "
                                        f"metrics' {values['final_val_loss']:.2f}")
    parameters = record.parameters
    for key, name in (("seed", "SEED"), ("dataset", "DATASET"), ("epochs", "EPOCHS")):
        if name in parameters and metrics.get(key) != parameters[name]:
            add("numbers consistent", FAIL, f"metrics were made with {key} {metrics.get(key)!r}, "
                                            f"the parameters say {parameters[name]!r}")
    if history and len(history.get("loss", [])) != metrics.get("epochs"):
        add("numbers consistent", FAIL, f"{len(history['loss'])} epochs printed, metrics say {metrics.get('epochs')}")
    dataset = metrics.get("dataset")
    full_run = not parameters.get("TRAIN_IMAGES") and metrics.get("epochs") == 5
    if dataset in DATASETS and full_run:
        low, high = DATASETS[dataset].val_loss_range
        if not low <= values["final_val_loss"] <= high:
            add("numbers consistent", FAIL, f"final validation loss {values['final_val_loss']:.2f} is outside the "
                                            f"{low:g}-{high:g} nats of a correct 5-epoch {dataset} run")
    add("numbers consistent", PASS, "")


def check_prose(submission, reference_prose, reference_values, common=frozenset()):
    record, add = submission.record, submission.add
    dataset = record.parameters.get("DATASET", "mnist")
    dataset = dataset if dataset in DATASETS else "mnist"
    for title in ("Observation", "Result"):
        text = record.sections.get(title, "")
        unanswered = prose.is_unanswered(text.replace(ANSWER_PLACEHOLDER, ""), questions(title, dataset))
        if unanswered:
            add("prose", FAIL, f"{title} {unanswered}")
            continue
        copied = prose.similarity(text, reference_prose.get(title, ""), common) if reference_prose.get(title) else 0.0
        if copied >= prose.COPY_THRESHOLD:
            add("prose", FAIL, f"{title} is a near-copy of the reference notebook's text (similarity {copied:.2f})")
    result = record.sections.get("Result", "")
    own = record.own_values()
    if own:
        quoted_reference = [n for n in prose.matching_numbers(result, reference_values)
                            if n in prose.foreign_numbers(result, own)]
        foreign = [n for n in prose.foreign_numbers(result, own) if n not in quoted_reference]
        if quoted_reference:
            add("prose", REVIEW, f"the Result quotes the reference run's numbers {quoted_reference[:4]}, not its own")
        if foreign:
            add("prose", FAIL, f"the Result quotes {foreign[:4]}, which are not this record's numbers")
    add("prose", PASS, "")


def check_identity(submission, assignments):
    record, add = submission.record, submission.add
    student = record.student_id
    if student is None:
        return add("identity", FAIL, "no STUDENT_ID in a parameters cell: hand in the notebook vae-lab assign gave you")
    assignment = assignments.get(student)
    if assignment is None:
        return add("identity", FAIL, f"STUDENT_ID {student!r} is not on the roster")
    expected = {"SEED": assignment["seed"], "DATASET": assignment["dataset"], "EPOCHS": assignment["epochs"],
                "TRAIN_IMAGES": assignment["train_images"]}
    changed = [f"{name} {record.parameters.get(name)!r} (assigned {value!r})" for name, value in expected.items()
               if record.parameters.get(name) != value]
    if changed:
        return add("identity", FAIL, "parameters changed: " + ", ".join(changed))
    path = submission.path
    if student not in (path.stem, path.parent.name):
        return add("identity", REVIEW, f"the file {path.name} in {path.parent.name}/ is not named for {student}")
    add("identity", PASS, student)


def check_verified(submission, reference):
    """The record's printed history and metrics against the grader's own run of the assignment."""
    add, record = submission.add, submission.record
    if reference is None or "error" in reference:
        return add("verified numbers", REVIEW, (reference or {}).get("error", "no reference run"))
    if not record.history or not record.metrics:
        return add("verified numbers", FAIL, "nothing to verify: no printed history or metrics")
    expected_history = reference["history"]
    if len(record.history.get("loss", [])) != len(expected_history["loss"]):
        return add("verified numbers", FAIL, f"{len(record.history.get('loss', []))} epochs printed, "
                                             f"{len(expected_history['loss'])} assigned")
    def gap(printed, expected, allowance=PRINTED):
        return max(0.0, abs(printed - expected) - allowance) if math.isfinite(printed) else math.inf

    first, first_where = max((gap(record.history[key][0], expected_history[key][0]) / tolerance,
                              f"epoch 1 {key} {record.history[key][0]:.2f} vs {expected_history[key][0]:.2f}")
                             for key, tolerance in EPOCH1_MATCH.items())
    if first > EPOCH1_REVIEW_FACTOR:
        return add("verified numbers", FAIL, f"{first_where} (reference): not a run of this seed")
    worst, where = 0.0, ""
    for key in HISTORY_KEYS:
        for epoch, (printed, expected) in enumerate(zip(record.history[key][1:], expected_history[key][1:]), start=2):
            ratio = gap(printed, expected) / _later_drift(key, epoch)
            if ratio > worst:
                worst, where = ratio, f"epoch {epoch} {key} {printed:.2f} vs {expected:.2f}"
    for key, drift in METRIC_DRIFT.items():
        ratio = gap(record.metrics[key], reference["metrics"][key], allowance=1e-6) / drift
        if ratio > worst:
            worst, where = ratio, f"{key} {record.metrics[key]:.2f} vs {reference['metrics'][key]:.2f}"
    if worst > BAND_FACTOR:
        return add("verified numbers", FAIL, f"{where} (reference): {worst:.1f} times the largest drift measured "
                                             "between machines (edited?)")
    if first > 1:
        return add("verified numbers", REVIEW, f"{first_where} (reference): further than one seed drifts between "
                                               "machines, nearer than most other seeds")
    if worst > 1:
        return add("verified numbers", REVIEW, f"{where} (reference): further than measured drift between machines")
    exact = first == 0 and worst == 0
    add("verified numbers", PASS, "reproduced exactly" if exact else "within the drift measured between machines")


def check_copies(submissions, common=frozenset()):
    """REVIEW both records of a pair that share numbers, figures, parameters or prose."""
    readable = [s for s in submissions if s.record is not None]
    for name, signature in (("the same printed history", lambda r: repr(r.history) if r.history else None),
                            ("the same figure bytes", lambda r: tuple(sorted(r.figures.values())) or None),
                            ("the same parameters cell", lambda r: r.parameters_source.strip() or None)):
        groups = {}
        for submission in readable:
            key = signature(submission.record)
            if key is not None:
                groups.setdefault(key, []).append(submission)
        for group in groups.values():
            if len(group) > 1:
                for submission in group:
                    others = [other.student_id or other.path.name for other in group if other is not submission]
                    submission.add("copies", REVIEW, f"{name} as {', '.join(others)}")
    pairs = []
    for title in ("Observation", "Result"):
        texts = {index: s.record.sections.get(title, "") for index, s in enumerate(readable)}
        for first, second, score in prose.similar_pairs(texts, common=common):
            a, b = readable[first], readable[second]
            pairs.append((a.student_id or a.path.name, b.student_id or b.path.name, title, score))
            a.add("copies", REVIEW, f"{title} similar to {b.student_id or b.path.name}'s ({score:.2f})")
            b.add("copies", REVIEW, f"{title} similar to {a.student_id or a.path.name}'s ({score:.2f})")
    for submission in readable:
        submission.add("copies", PASS, "")
    return pairs


# --- the batch -----------------------------------------------------------------------------------------------

def _reference():
    """The reference notebook's prose and numbers, and the phrases every student may borrow: the lab's own
    wording outside the prose sections, and the guiding questions."""
    path = reference_notebook_path()
    common = set()
    for dataset in DATASETS:
        for title in ("Observation", "Result"):
            common |= prose.shingles("\n".join(questions(title, dataset)))
    try:
        record = read_record(path)
        common |= prose.lab_phrases(str(path))
    except (Unreadable, OSError, ValueError):
        return {}, [], frozenset(common)
    return record.sections, record.own_values(), frozenset(common)


def find_submissions(paths):
    found = []
    for path in map(Path, paths):
        found += sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
    return [path for path in found if ".ipynb_checkpoints" not in path.parts]


def grade_submissions(paths, *, assignments=None, references=None, verify=None):
    """Submissions with their checks. `verify(assignments_to_run) -> {student_id: reference}` runs the
    reference runs (serially or on Dask); it is called once, for the identified students."""
    reference_prose, reference_values, common = _reference()
    submissions = []
    for path in find_submissions(paths):
        submission = Submission(path)
        submissions.append(submission)
        try:
            submission.record = read_record(path)
        except Unreadable as error:
            submission.add("readable", FAIL, str(error))
            continue
        submission.add("readable", PASS)
        submission.student_id = submission.record.student_id
        check_execution(submission)
        check_figures(submission)
        check_numbers(submission)
        check_prose(submission, reference_prose, reference_values, common)
        if assignments is not None:
            check_identity(submission, assignments)
    pairs = check_copies(submissions, common) if assignments is not None else []
    if assignments is not None:
        to_verify = {s.student_id: assignments[s.student_id] for s in submissions
                     if s.checks.get("identity", (FAIL,))[0] != FAIL and s.student_id in assignments}
        references = verify(to_verify) if verify and to_verify else (references or {})
        for submission in submissions:
            if submission.record is not None and submission.student_id in to_verify:
                submission.reference = references.get(submission.student_id)
                check_verified(submission, submission.reference)
            elif submission.record is not None:
                submission.add("verified numbers", FAIL, "not verified: the record's identity failed")
    return submissions, pairs


def print_table(submissions, stream=None, verified=True):
    stream = stream or sys.stdout
    for submission in submissions:
        print(f"{submission.student_id or submission.path.name}: {submission.verdict}  ({submission.path})", file=stream)
        for name in CHECKS:
            if name in submission.checks:
                verdict, reason = submission.checks[name]
                print(f"  {verdict:<6} {name:<20} {reason}", file=stream)
    if not verified:
        print("Numbers NOT verified: this is the self-check. The instructor's grading re-computes your run.",
              file=stream)


def csv_rows(submissions, assignments=None):
    """One row per student in roster order (missing students included), then unknown submissions."""
    header = ["student_id", "verdict", *CHECKS, "reasons", "file"]
    rows, by_student = [header], {}
    for submission in submissions:
        by_student.setdefault(submission.student_id, []).append(submission)
    def row(student, submission):
        return [student, submission.verdict, *(submission.checks.get(name, ("", ""))[0] for name in CHECKS),
                submission.reasons(), str(submission.path)]
    for student in (assignments or {}):
        found = by_student.pop(student, [])
        if not found:
            rows.append([student, "MISSING", *([""] * len(CHECKS)), "no submission", ""])
        rows += [row(student, submission) for submission in found]
    for student, found in by_student.items():
        rows += [row(student or "", submission) for submission in found]
    return rows


def write_csv(rows, path):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    from ..run_directory import atomic_write_text

    atomic_write_text(path, buffer.getvalue())


def grade_command(paths, *, assignments=None, key_path=None, csv_path=None, report_path=None, feedback_dir=None,
                  cache_dir="runs/reference-cache", data_dir=None, jobs=1, scheduler=None, timeout=1800):
    """`vae-lab grade`: print the verdicts; with --assignments verify against reference runs."""
    from ..progress import Progress

    table = None
    if assignments is not None:
        from .assign import check_seeds, read_assignments

        table = read_assignments(assignments)
        check_seeds(table, key_path)
    def verify(to_verify):
        from .parallel import reference_runs

        return reference_runs(to_verify, cache_dir=cache_dir, data_dir=data_dir, jobs=jobs, scheduler=scheduler,
                              timeout=timeout, progress=Progress("reference runs"))

    if not find_submissions(paths):
        raise ValueError(f"no notebook among {', '.join(map(str, paths))}")
    submissions, pairs = grade_submissions(paths, assignments=table, verify=verify if table is not None else None)
    print_table(submissions, verified=table is not None)
    rows = csv_rows(submissions, table)
    if csv_path:
        write_csv(rows, csv_path)
    if report_path or feedback_dir:
        from .class_report import write_class_report, write_feedback

        if report_path:
            references = {s.student_id: s.reference for s in submissions if s.reference}
            print(f"class page: {write_class_report(submissions, rows, pairs, table, report_path, references)}")
        if feedback_dir:
            print(f"feedback pages: {write_feedback(submissions, feedback_dir)}")
    counts = {verdict: sum(s.verdict == verdict for s in submissions) for verdict in (PASS, REVIEW, FAIL)}
    missing = sum(row[1] == "MISSING" for row in rows[1:])
    print(f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[REVIEW]} to review"
          + (f", {missing} missing" if missing else ""))
    return 0 if counts[PASS] == len(submissions) else 1
