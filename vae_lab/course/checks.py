"""The grader's checks, as one table: each entry names a check, the function that gives its verdicts, and
what it needs. The batch, the console table, the CSV, the rubric and the pages all read CHECKS, so adding a
check is one function and one entry.

A check function takes (graded, course) — one hand-in, or with `scope="batch"` the list of all of them —
and returns Verdicts; it never writes anything and never raises on purpose. `run` turns an exception inside
a check into that check's REVIEW, so one crafted hand-in never ends the batch.
"""

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..data import DATASETS
from ..record_format import REQUIRED_FIGURES, figure_label
from . import exercise_code
from . import figures as figure_facts
from . import prose
from .assign import ANSWER_PLACEHOLDER, questions
from .code_similarity import quiet_parse
from ..exercises import EXERCISE_NAMES
from .verdicts import FAIL, combine, failed, passed, review


@dataclass
class Course:
    """What the checks compare a hand-in with: the assignments, and the reference notebook's prose and numbers."""

    assignments: dict = None  # student_id -> assignment (None: the student's self-check)
    reference_prose: dict = field(default_factory=dict)  # Observation/Result of the reference notebook
    reference_values: list = field(default_factory=list)  # numbers the reference notebook printed
    common_phrases: frozenset = frozenset()  # prose every student may borrow (the lab's wording, the questions)
    exercise_solutions: dict = field(default_factory=dict)  # name -> the package's own solution's source
    similar_pairs: list = field(default_factory=list)  # (graded, graded, section, score): filled by check_copies
    similar_code: list = field(default_factory=list)  # (graded, graded, score): filled by check_copies
    handout_code: frozenset = None  # the exercise handout's code cells, trusted (None: the package's own)


@dataclass(frozen=True)
class Check:
    name: str
    function: object  # (graded, course) -> Verdict or list of Verdicts; None: set while reading
    about: str  # what it checks, for pages
    scope: str = "record"  # "record": one hand-in at a time; "batch": all hand-ins together
    needs_assignments: bool = False
    needs_reference: bool = False
    exercises_only: bool = False


# --- one hand-in ---------------------------------------------------------------------------------------------

# Names tools give an executed copy of NAME.ipynb: nbconvert's --execute (NAME.nbconvert.ipynb), a browser's
# second download (NAME (1).ipynb), papermill users' habits, Canvas's resubmissions (NAME-1.ipynb).
_TOOL_SUFFIX = re.compile(r"(?:\.nbconvert|[ _-]?\(\d{1,3}\)|[-_.](?:output|out|executed|run|result|papermill)"
                          r"|-\d{1,3}|[ _-]copy)$", re.IGNORECASE)


def student_file_stems(file_name):
    """The stems a student's notebook may have had before a tool renamed it, longest first: ['s01.nbconvert',
    's01'] for 's01.nbconvert.ipynb', so an id that ends like a tool's suffix ('jsmith-2') is still its own."""
    stem = Path(file_name).name
    stems = [stem[:-len(".ipynb")] if stem.lower().endswith(".ipynb") else Path(stem).stem]
    for _ in range(3):  # 's01-output (1)' carries two suffixes
        shorter = _TOOL_SUFFIX.sub("", stems[-1])
        if shorter == stems[-1] or not shorter:
            break
        stems.append(shorter)
    return stems


def student_file_stem(file_name):
    """The stem a student's notebook had before a tool renamed it: 's01' for 's01.nbconvert.ipynb'."""
    return student_file_stems(file_name)[-1]


def check_identity(graded, course):
    record, verdicts = graded.record, []
    if record.parameter_problems:
        verdicts.append(failed("the parameters cell is not the one assigned: " + "; ".join(record.parameter_problems)))
    claimed = record.student_id
    if claimed is None:
        return verdicts + [failed("no STUDENT_ID in a parameters cell: hand in the notebook vae-lab assign gave you")]
    assignment = course.assignments.get(claimed)
    if assignment is None:
        return verdicts + [failed("the STUDENT_ID in the parameters cell is not on the roster",
                                  f"STUDENT_ID {prose_safe(claimed)}")]
    expected = {"SEED": assignment["seed"], "DATASET": assignment["dataset"], "EPOCHS": assignment["epochs"],
                "TRAIN_IMAGES": assignment["train_images"]}
    changed = [name for name, value in expected.items()
               if name in record.parameters and record.parameters[name] != value]
    if changed:  # never quote the assigned seed: the reason goes back to the student
        verdicts.append(failed(f"parameters changed from the ones assigned to you: {', '.join(changed)}"))
    attribution = graded.attribution
    if graded.lms_unmatched and graded.student_id:
        verdicts.append(review(f"Moodle names this hand-in {prose_safe(graded.lms_unmatched)}, no one on the roster; "
                               f"it is graded as {graded.student_id}'s by its "
                               f"{'file name' if attribution and attribution[0] == 'file name' else 'STUDENT_ID'}",
                               "a team submission, a full name shown in another format, or someone not on the "
                               "roster: decide, or export the roster again and run assign with it"))
    if graded.unlisted:
        verdicts.append(review(f"the LMS's name for this hand-in is nobody on the roster, its STUDENT_ID says {claimed}",
                               f"{attribution[1]}: if the student joined after vae-lab assign, export the roster again "
                               "and run assign with it (assigned students keep their seeds)"))
    elif attribution and attribution[0] == "lms" and graded.student_id != claimed:
        verdicts.append(review(f"the LMS says this hand-in is {graded.student_id}'s, its STUDENT_ID says {claimed}",
                               attribution[1]))
    elif attribution and attribution[0] == "file name" and graded.student_id != claimed:
        verdicts.append(review(f"the file is named for {graded.student_id}, its STUDENT_ID says {claimed}",
                               f"file {graded.file_name}"))
    elif not attribution or attribution[0] == "claim":
        verdicts.append(review(f"the file {graded.file_name} is not named for {claimed} (and no LMS says whose it is)"))
    return verdicts + [passed(claimed)]


def check_execution(graded, course):
    code = [cell for cell in graded.record.cells if cell["type"] == "code" and not cell["blank"]]
    if not code:
        return failed("no code cells")
    counts = [cell["execution_count"] for cell in code]
    never = [index for index, count in enumerate(counts, 1) if count is None]
    if never:
        return failed(f"{len(never)} of the {len(code)} code cells were never run (code cells "
                      f"{_listing(never)}): use Restart & Run All")
    for cell in code:
        for output in cell["outputs"]:
            if output.get("output_type") == "execute_result" and output.get("execution_count") != cell["execution_count"]:
                return failed(f"the cell run as [{cell['execution_count']}] holds the result of another run: "
                              "execution counts edited")
    errors = [cell["execution_count"] for cell in code if any(o.get("output_type") == "error" for o in cell["outputs"])]
    if errors:
        return failed(f"error output in the cells run as {_listing(errors)}")
    by_count = sorted(code, key=lambda cell: cell["execution_count"])  # by count alone: two cells may share one
    times = [_time(cell["started"]) for cell in by_count]
    if all(times) and any(later < earlier for earlier, later in zip(times, times[1:])):
        return failed("the cells' recorded start times are not in execution-count order: execution counts edited")
    if all(b > a for a, b in zip(counts, counts[1:])):
        return passed(f"{len(code)} cells in order")
    again = [index for index, count in enumerate(counts) if any(count > later for later in counts[index + 1:])]
    rest = [count for index, count in enumerate(counts) if index not in again]
    if all(b > a for a, b in zip(rest, rest[1:])) and min(counts[i] for i in again) > max(rest):
        return review(f"code cells {_listing([i + 1 for i in again])} were run again after a full top-to-bottom run "
                      "(their counts jump past the last cell's); fine when every number verifies")
    return failed(f"execution counts go {_listing(counts)}: run out of order or after a restart "
                  "(use Restart & Run All)")


def _listing(numbers, shown=8):
    numbers = list(numbers)
    text = ", ".join(map(str, numbers[:shown]))
    return text + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")


def _time(text):
    """A recorded start time as a datetime (aware), or None when it is missing or not an ISO time."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def check_figures(graded, course):
    verdicts = []
    for name in REQUIRED_FIGURES:
        figure = graded.record.figures.get(name)
        if figure is None:
            verdicts.append(failed(f"no {figure_label(name)} figure"))
            continue
        facts = figure_facts.inspect(figure.png)
        figure.facts = facts
        if facts.problem:
            verdicts.append(failed(f"the {figure_label(name)} figure: {facts.problem}"))
    return verdicts or passed()


def check_numbers(graded, course):
    """The record's numbers against each other: printed history, the metrics output, the parameters."""
    record, verdicts = graded.record, []
    history, metrics = record.history, record.metrics
    if record.history_problem:
        verdicts.append(failed(record.history_problem))
    elif not history:
        verdicts.append(failed("no printed training history (run the training cell)"))
    if metrics is None:
        return verdicts + [failed("no metrics output (run the Result cell)")]
    if record.metric_problems:
        return verdicts + [failed("metrics not numbers of a run: " + "; ".join(record.metric_problems[:4]))]
    terms = metrics["test_reconstruction_loss"] + metrics["test_kl_loss"]
    if abs(metrics["test_neg_elbo"] - terms) > 1e-3 * max(1.0, abs(terms)) or metrics["test_kl_loss"] <= 0:
        verdicts.append(failed("the metrics' negative ELBO is not reconstruction + KL (edited?)"))
    if metrics["test_nll_iw"] > metrics["test_neg_elbo"] + 1e-6:
        verdicts.append(failed("the importance-weighted NLL lies above the negative ELBO"))
    for epoch in range(1, len(history.get("loss", [])) + 1):
        for prefix in ("", "val_"):
            total = history[prefix + "loss"][epoch - 1]
            parts = history[prefix + "reconstruction_loss"][epoch - 1] + history[prefix + "kl_loss"][epoch - 1]
            if not abs(total - parts) <= 0.0151:  # three numbers, each rounded to 2 decimals
                verdicts.append(failed(f"epoch {epoch}: printed {prefix}loss {total:.2f} is not {prefix}reconstruction "
                                       f"+ {prefix}KL ({parts:.2f}): edited?"))
    if history.get("val_loss") and not abs(history["val_loss"][-1] - metrics["final_val_loss"]) <= 0.0051:
        verdicts.append(failed(f"printed final val_loss {history['val_loss'][-1]:.2f} differs from the metrics' "
                               f"{metrics['final_val_loss']:.2f}"))
    parameters = record.parameters
    for key, name in (("seed", "SEED"), ("dataset", "DATASET"), ("epochs", "EPOCHS")):
        if name in parameters and metrics.get(key) != parameters[name]:
            verdicts.append(failed(f"the metrics were not made with this notebook's {name}"))
    if history and len(history.get("loss", [])) != metrics.get("epochs"):
        verdicts.append(failed(f"{len(history['loss'])} epochs printed, the metrics say {metrics.get('epochs')}"))
    dataset = metrics.get("dataset")
    verified_elsewhere = course is not None and course.assignments is not None and is_exercise_record(graded, course)
    if (dataset in DATASETS and not parameters.get("TRAIN_IMAGES") and metrics.get("epochs") == 5
            and not verified_elsewhere):  # an exercise record's range is the verification's to judge, once
        low, high = DATASETS[dataset].val_loss_range
        if not low <= metrics["final_val_loss"] <= high:
            verdicts.append(failed(f"final validation loss {metrics['final_val_loss']:.2f} is outside the {low:g}-"
                                   f"{high:g} nats of a correct 5-epoch {dataset} run"))
    return verdicts or passed()


def check_prose(graded, course):
    record, verdicts = graded.record, []
    dataset = record.parameters.get("DATASET", "mnist")
    for title in ("Observation", "Result"):
        text = record.sections.get(title, "")
        unanswered = prose.is_unanswered(text.replace(ANSWER_PLACEHOLDER, ""), questions(title, dataset))
        if unanswered:
            verdicts.append(failed(f"{title} {unanswered}"))
            continue
        reference = course.reference_prose.get(title, "")
        copied = prose.similarity(text, reference, course.common_phrases) if reference else 0.0
        if copied >= prose.COPY_THRESHOLD:
            verdicts.append(failed(f"{title} is a near-copy of the reference notebook's text (similarity {copied:.2f})"))
    result = record.sections.get("Result", "")
    own = record.own_values()
    if own:
        reference_quoted = set(prose.matching_numbers(result, course.reference_values))
        presented, cited = [], []
        mine = prose.number_matcher(own)
        for value, decimals, is_cited in prose.quoted_numbers_in_context(result):
            if mine(value, decimals) or value in reference_quoted:
                continue
            (cited if is_cited or not decimals else presented).append(value)
        if reference_quoted - set(prose.matching_numbers(result, own)):
            verdicts.append(review("the Result quotes the reference run's numbers, not its own",
                                   f"{sorted(reference_quoted)[:4]}"))
        if presented:
            verdicts.append(failed(f"the Result presents {_numbers(presented)} as this run's, but the record "
                                   "printed no such number"))
        if cited:
            verdicts.append(review(f"the Result quotes {_numbers(cited)}, which this record did not print "
                                   "(cited from elsewhere?)"))
    return verdicts or passed()


def _numbers(values):
    return ", ".join(f"{value:g}" for value in list(dict.fromkeys(values))[:4])


def check_exercises(graded, course):
    """The student's three functions, read as text: written, their own (not the package's imported, pasted in
    or reached some other way), what training used, and what their check cells said. Whether they are right,
    the verified numbers decide."""
    import ast

    verdicts = []
    record = graded.record
    exercises = record.exercises
    for name in EXERCISE_NAMES:
        source = exercises.get(name)
        if source is None:
            verdicts.append(failed(f"no exercise cell defines {name}"))
            continue
        try:
            tree = quiet_parse(exercise_code.exercise_source(source))
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            verdicts.append(failed(f"{name}: the cell is not valid Python"))
            continue
        borrowed = exercise_code.package_use(tree)
        if borrowed:
            verdicts.append(failed(f"{name}'s cell uses the package's own {borrowed} instead of the student's code"))
            continue
        function = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name), None)
        if function is None:
            verdicts.append(failed(f"{name}'s cell binds {name} to something other than a function written there"))
            continue
        body = [node for node in function.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        if not body or all(isinstance(node, ast.Raise) or isinstance(node, ast.Pass) for node in body):
            verdicts.append(failed(f"{name} is not written (its body still raises NotImplementedError)"))
            continue
        pasted = exercise_code.pasted_line(source, course.exercise_solutions.get(name, ""))
        if pasted:
            verdicts.append(failed(f"{name} is the package's own function pasted in", f"line {pasted!r}"))
    handout = course.handout_code if course.handout_code is not None else exercise_code.handout_code()
    verdicts += exercise_code.read_training(record.code_cells, handout)
    # A check cell's verdict other than `correct` counts against the record whatever the grading: a student
    # gains nothing by printing a mistake, while `correct` can be typed, so only the verified numbers pass one.
    verdicts += [failed(f"{name}: its check cell says {prose_safe(verdict, 200)}: fix it, then Restart & Run All")
                 for name, verdict in record.exercise_checks.items() if verdict != "correct" and name in exercises]
    return verdicts or passed(", ".join(EXERCISE_NAMES) + " written")


def check_verified(graded, course):
    from .verification import verify

    reference = graded.reference
    if reference is None:
        return review("no reference run")
    if "error" in reference:
        return review(reference["error"], reference.get("evidence", ""))
    return verify(graded.record.history, graded.record.metrics, reference, exercise=is_exercise_record(graded, course))


# --- the batch -----------------------------------------------------------------------------------------------

def check_claims(batch, course):
    """Two hand-ins that claim, or are attributed to, one student: REVIEW for both, naming the files."""
    found = {}
    by_student = {}
    for graded in batch:
        students = {graded.student_id, graded.claimed_id} - {None}
        identity = graded.checks.get("identity")
        attributed_elsewhere = graded.unlisted or (graded.attribution and graded.attribution[0] in ("lms", "file name"))
        if attributed_elsewhere and identity is not None and identity.status is FAIL:
            # a hand-in the LMS or its file name gives to someone else (or to no one on the roster) whose claim
            # already FAILed identity: that FAIL is the finding, and the student it names keeps her total
            students = {graded.student_id} - {None}
        for student in students:
            by_student.setdefault(student, []).append(graded)
    for student, group in by_student.items():
        if len(group) < 2:
            continue
        for graded in group:
            others = ", ".join(other.label for other in group if other is not graded)
            found.setdefault(id(graded), []).append(
                review(f"another hand-in is also {student}'s", f"{others}"))
    return found


def check_copies(batch, course):
    """REVIEW both hand-ins of a pair that share numbers, a figure, the parameters cell, prose or exercise code."""
    readable = [graded for graded in batch if graded.record is not None]
    found = {}
    course.similar_pairs, course.similar_code = [], []

    # who the other hand-in is stays in the evidence: the instructor's outputs name it, a student's feedback never
    def flag(group, what):
        for graded in group:
            others = ", ".join(other.who for other in group if not _one_students(graded, other))
            if others:
                found.setdefault(id(graded), []).append(review(f"{what} as another hand-in", others))

    signatures = {"the same printed history": lambda r: repr(r.history) if r.history else None,
                  "the same parameters cell": lambda r: r.parameters_source.strip() or None}
    for name in REQUIRED_FIGURES:
        signatures[f"the same {figure_label(name)} figure"] = (
            lambda r, name=name: getattr(getattr(r.figures.get(name), "facts", None), "pixel_hash", None) or None)
    for what, signature in signatures.items():
        groups = {}
        for graded in readable:
            key = signature(graded.record)
            if key is not None:
                groups.setdefault(key, []).append(graded)
        for group in groups.values():
            if len(group) > 1:
                flag(group, what)
    codes = {index: "\n\n".join(graded.record.exercises.values()) for index, graded in enumerate(readable)
             if graded.record.exercises}
    if len(codes) > 1:
        from . import code_similarity

        for first, second, score in code_similarity.similar_pairs(codes):
            a, b = readable[first], readable[second]
            if _one_students(a, b):
                continue
            course.similar_code.append((a, b, score))
            found.setdefault(id(a), []).append(review(f"exercise code like another hand-in's (similarity {score:.2f})",
                                                      b.who))
            found.setdefault(id(b), []).append(review(f"exercise code like another hand-in's (similarity {score:.2f})",
                                                      a.who))
    for title in ("Observation", "Result"):
        texts = {index: graded.record.sections.get(title, "") for index, graded in enumerate(readable)}
        for first, second, score in prose.similar_pairs(texts, common=course.common_phrases):
            a, b = readable[first], readable[second]
            if _one_students(a, b):
                continue
            course.similar_pairs.append((a, b, title, score))
            found.setdefault(id(a), []).append(review(f"{title} similar to another hand-in's ({score:.2f})",
                                                      b.who))
            found.setdefault(id(b), []).append(review(f"{title} similar to another hand-in's ({score:.2f})",
                                                      a.who))
    return found


def _one_students(first, second):
    """Whether two hand-ins are one student's (or one hand-in): a student's own two files share everything,
    and the hand-ins check, not copies, asks which counts."""
    return first is second or (first.student_id is not None and first.student_id == second.student_id)


def prose_safe(text, limit=40):
    """A short quotation of text from a hand-in (the pages and the console escape it again)."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


CHECKS = (
    Check("readable", None, "the file is a notebook the grader can read"),
    Check("identity", check_identity, "the parameters cell names a roster student with that student's "
          "assignment, and the hand-in is that student's", needs_assignments=True),
    Check("hand-ins", check_claims, "no other hand-in is the same student's", scope="batch", needs_assignments=True),
    Check("executed", check_execution, "every code cell run, in order, without errors"),
    Check("figures", check_figures, "the latent scatter and the digit grid are real figures"),
    Check("numbers consistent", check_numbers, "the printed history, the metrics and the parameters agree"),
    Check("exercises", check_exercises, "the three functions written by the student, not the package's",
          exercises_only=True),
    Check("verified numbers", check_verified, "the numbers match the grader's own run of the assignment",
          needs_assignments=True, needs_reference=True),
    Check("prose", check_prose, "Observation and Result written, in the student's words, about this run"),
    Check("copies", check_copies, "nothing shared with another hand-in", scope="batch", needs_assignments=True),
)
CHECK_NAMES = tuple(check.name for check in CHECKS)


def run(check, subject, course):
    """The check's verdict(s) for SUBJECT; an exception inside the check becomes its REVIEW, never the batch's end."""
    try:
        return check.function(subject, course)
    except Exception as error:  # a crafted hand-in must not stop the class's grading
        first_line = (str(error).splitlines() or [""])[0][:200]
        return review(f"the grader could not check {check.name}: {type(error).__name__}: {first_line}")


def run_record_checks(graded, course, *, with_assignments, reference_stage):
    """Apply every record-scope check that applies to GRADED at this stage, isolated from each other."""
    for check in CHECKS:
        if (check.function is None or check.scope != "record" or check.needs_reference != reference_stage
                or (check.needs_assignments and not with_assignments)
                or (check.exercises_only and not is_exercise_record(graded, course))):
            continue
        result = run(check, graded, course)
        graded.checks[check.name] = combine(result if isinstance(result, list) else [result])


def is_exercise_record(graded, course):
    """Whether GRADED is an exercise record: as assigned where the student has an assignment (cells tagged
    'exercise' in a course without exercises would only widen its bands), else holding exercise cells."""
    assignment = (course.assignments or {}).get(graded.claimed_id)
    if assignment is not None:
        return bool(assignment.get("exercises"))
    return bool(graded.record and graded.record.exercises)


def run_batch_checks(batch, course):
    for check in CHECKS:
        if check.scope != "batch" or (check.needs_assignments and course.assignments is None):
            continue
        try:
            found = check.function(batch, course)
        except Exception as error:
            found = {id(graded): [review(f"the grader could not check {check.name}: {type(error).__name__}")]
                     for graded in batch}
        for graded in batch:
            if graded.record is not None:
                graded.checks[check.name] = combine(found.get(id(graded), []) or [passed()])

