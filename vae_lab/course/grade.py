"""Grade a class's hand-ins: PASS, FAIL (with the reason) or REVIEW (a person should look), with marks.

Without assignments this is the student's self-check before handing in. With `assignments.csv` each
record is checked against the grader's own reference run of that student's assignment, and the batch
against itself for copies. Hand-ins come as notebooks, folders or the LMS's zips (`lms.py`); nothing a
student wrote is executed, and no single hand-in can stop the batch: reading and every check are isolated
(`checks.run`), and every text the outputs show is made inert (`exports.spreadsheet_safe`, `console_safe`).
"""

import csv
import io
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabError
from . import checks as checks_module
from .checks import CHECK_NAMES, Course, student_file_stems
from .verdicts import FAIL, MISSING, PASS, REVIEW, GradedHandIn, combine, failed, passed, review


class GradingError(LabError, ValueError):
    """Grading can't start; the message says what to do."""


@dataclass
class GradingOptions:
    """Everything `vae-lab grade` is told; every field is one flag."""

    submissions: tuple = ()
    assignments: Path = None
    key: Path = None  # default: course.key beside the assignments file
    csv: Path = None
    report: Path = None
    feedback: Path = None
    cache: Path = None  # default: reference.default_cache_dir()
    data: str = None
    jobs: int = 1
    scheduler: str = None
    timeout: float = 1800
    rubric: Path = None
    decisions: Path = None
    exports: tuple = ()  # ((kind, path), ...): canvas, moodle-worksheet, moodle, csv
    assignment_title: str = "VAE lab"


@dataclass
class Grading:
    """A graded batch, with what the outputs need besides the hand-ins."""

    batch: list
    course: Course
    refusals: list = field(default_factory=list)  # (label, reason) of files that were not read
    not_graded: list = field(default_factory=list)  # (label, reason): older resubmissions
    rubric: object = None
    roster: object = None
    notes: list = field(default_factory=list)  # what the instructor should know about the grading itself
    not_notebooks: dict = field(default_factory=dict)  # student_id -> file names they handed in, none a notebook
    mistake_runs: dict = None  # tests: epoch-1 runs with each catalogued mistake, {student\x1fmistake: entry}


# --- the reference notebook ----------------------------------------------------------------------------------

def reference_course(assignments=None):
    """Course facts from the reference notebook: its prose and numbers, and the phrases every student may borrow
    (the lab's own wording outside the prose sections, and the guiding questions)."""
    from ..data import DATASETS
    from ..lab_notebook import lab_notebook_path
    from . import prose
    from .assign import questions
    from .record import Unreadable, read_record_file

    common = set()
    for dataset in DATASETS:
        for title in ("Observation", "Result"):
            common |= prose.shingles("\n".join(questions(title, dataset)))
    from .code_similarity import solution_sources

    course = Course(assignments=assignments, common_phrases=frozenset(common), exercise_solutions=solution_sources())
    try:
        path = lab_notebook_path()
        record = read_record_file(path)
        common |= prose.lab_phrases(str(path))
    except (Unreadable, OSError, ValueError, LabError):
        return course
    course.reference_prose, course.reference_values = record.sections, record.own_values()
    course.common_phrases = frozenset(common)
    return course


# --- one hand-in -------------------------------------------------------------------------------------------------

def read_hand_in(hand_in):
    """A GradedHandIn with its record, or FAIL on 'readable' with the reason; never raises."""
    from .record import read_record

    graded = GradedHandIn(label=hand_in.label, file_name=hand_in.file_name, hand_in=hand_in, late=hand_in.late)
    try:
        data = hand_in.read()
        graded.content_hash = hand_in.sha256
        graded.record = read_record(data, label=hand_in.label)
    except LabError as error:
        graded.checks["readable"] = failed(str(error))
        return graded
    except Exception as error:  # the reader's own bug must not stop the batch either
        graded.checks["readable"] = review(f"the grader could not read it: {type(error).__name__}")
        return graded
    graded.checks["readable"] = passed()
    graded.claimed_id = graded.record.student_id
    return graded


def attribute(graded, roster):
    """Whose hand-in it is: the LMS's identity matched to the roster, else the file's or folder's name, else
    the id it claims (which the identity check then questions)."""
    from .lms import match_student, names_a_person, unmatched_name

    student_ids = set(roster.student_ids()) if roster is not None else set()
    if roster is not None and graded.hand_in is not None:
        matched, note = match_student(graded.hand_in, roster)
        if matched or names_a_person(graded.hand_in, roster):
            graded.student_id, graded.attribution = matched, ("lms", note)
            return
        graded.lms_unmatched = unmatched_name(graded.hand_in, roster) or ""
    names = student_file_stems(graded.file_name)  # the roster's own id first: 'jsmith-2' before 'jsmith'
    container = Path(graded.label.split(": ")[-1]).parent.name
    names.append(container)
    for name in names:
        if name in student_ids:
            graded.student_id, graded.attribution = name, ("file name", name)
            return
    if graded.claimed_id in student_ids:
        graded.student_id, graded.attribution = graded.claimed_id, ("claim", "")


def _newest_only(batch):
    """Several hand-ins the LMS says are one student's: the newest is graded, the others listed."""
    from .lms import newest_per_student

    by_lms = [(graded.student_id, graded.hand_in) for graded in batch
              if graded.attribution and graded.attribution[0] == "lms"]
    newest, superseded = newest_per_student(by_lms)
    dropped = {id(hand_in): why for _, hand_in, why in superseded}
    kept = [graded for graded in batch if id(graded.hand_in) not in dropped]
    for graded in kept:
        graded.notes += [f"also handed in: {hand_in.label} (not graded: {why})"
                         for student, hand_in, why in superseded if student == graded.student_id]
    older = [(graded.label, f"{graded.student_id}'s: {dropped[id(graded.hand_in)]}") for graded in batch
             if id(graded.hand_in) in dropped]
    return kept, older


# --- the batch -----------------------------------------------------------------------------------------------

def grade(options, *, progress=None, references=None, mistake_runs=None):
    """Grade the hand-ins OPTIONS names; return a Grading. `references` and `mistake_runs`, if given, are used
    in place of running reference runs (tests): {student_id: entry} and {student_id\x1fmistake: entry}."""
    from .assign import load_or_create_key, read_assignments
    from .lms import collect

    assignments = roster = key = None
    if options.assignments is not None:
        assignments, roster = read_assignments(options.assignments)
        key_path = Path(options.key) if options.key else Path(options.assignments).with_name("course.key")
        if not key_path.exists():
            raise GradingError(f"the course key {key_path} is missing: pass the key vae-lab assign used (--key); "
                               "it checks the seeds and authenticates the reference runs")
        key = load_or_create_key(key_path)
        from .assign import check_seeds

        check_seeds(assignments, key)
    hand_ins, refusals = collect(options.submissions)
    if not hand_ins and all(refusal.ignored for refusal in refusals):
        raise GradingError(f"no notebook among {', '.join(map(str, options.submissions))}")
    course = reference_course(assignments)
    if assignments is not None and any(assignment.get("exercises") for assignment in assignments.values()):
        from .assign import HANDOUT
        from .exercise_code import handout_code_in

        course.handout_code = handout_code_in(Path(options.assignments).parent / HANDOUT)  # what students got
    batch = [read_hand_in(hand_in) for hand_in in hand_ins]
    for graded in batch:
        if assignments is not None:
            attribute(graded, roster)
    not_graded = []
    if assignments is not None:
        batch, not_graded = _newest_only(batch)
    with_assignments = assignments is not None
    for graded in batch:
        if graded.record is not None:
            checks_module.run_record_checks(graded, course, with_assignments=with_assignments, reference_stage=False)
    checks_module.run_batch_checks(batch, course)
    grading = Grading(batch=batch, course=course, refusals=[(r.label, r.reason) for r in refusals if not r.ignored],
                      not_graded=not_graded, roster=roster, mistake_runs=mistake_runs)
    if roster is not None:
        _say_what_came_instead(grading, refusals)
    if assignments is not None:
        _verify(grading, options, key, progress, references)
    _order_checks(batch)
    return grading


def _say_what_came_instead(grading, refusals):
    """A roster student whose only hand-in is no notebook (the LMS names them): said, not silently MISSING."""
    from .lms import match_student

    graded_students = {graded.student_id for graded in grading.batch}
    for refusal in refusals:
        if refusal.ignored and refusal.hand_in is not None:
            student, _ = match_student(refusal.hand_in, grading.roster)
            if student and student not in graded_students:
                grading.not_notebooks.setdefault(student, []).append(refusal.hand_in.file_name)
                grading.refusals.append((refusal.label, f"{student}'s hand-in is not a notebook (.ipynb): "
                                                        "nothing of theirs to grade"))


def _worth_verifying(graded):
    """A record whose reference run can tell something: its identity holds and it printed numbers."""
    checks = graded.checks
    return (graded.record is not None and checks.get("identity", failed("")).status is not FAIL
            and graded.record.history and graded.record.metrics is not None and not graded.record.metric_problems)


def _verify(grading, options, key, progress, references):
    injected = references is not None
    from .parallel import reference_runs
    from .reference import default_cache_dir

    assignments = grading.course.assignments
    to_verify = {graded.claimed_id: assignments[graded.claimed_id] for graded in grading.batch
                 if _worth_verifying(graded)}
    if references is None and to_verify:
        cache_dir = Path(options.cache) if options.cache else default_cache_dir()
        _refuse_cache_among_submissions(cache_dir, options.submissions)
        references, rejected = reference_runs(to_verify, key=key, cache_dir=cache_dir, data_dir=options.data,
                                              jobs=options.jobs, scheduler=options.scheduler, timeout=options.timeout,
                                              progress=progress)
        grading.notes += [f"cache entry {path} failed authentication with the course key: recomputed"
                          for path in rejected]
    verified = checks_module.CHECKS[CHECK_NAMES.index("verified numbers")]
    for graded in grading.batch:
        if graded.record is None:
            continue
        if graded.claimed_id in to_verify and _worth_verifying(graded):
            graded.reference = (references or {}).get(graded.claimed_id)
            result = checks_module.run(verified, graded, grading.course)
            graded.checks["verified numbers"] = result if not isinstance(result, list) else result[0]
        elif graded.checks.get("identity") and graded.checks["identity"].status is FAIL:
            graded.checks["verified numbers"] = failed("not verified: the record's identity failed")
        else:
            graded.checks["verified numbers"] = failed(_nothing_to_verify(graded.record))
    if grading.mistake_runs is not None or not injected:
        _diagnose_exercises(grading, options, key)


def _nothing_to_verify(record):
    missing = [what for what, absent in (("the training history (the epoch lines)", not record.history),
                                         ("the metrics", record.metrics is None)) if absent]
    if missing:
        return f"nothing to verify: the record does not print {' or '.join(missing)}"
    return "nothing to verify: " + "; ".join(record.metric_problems)


def _diagnose_exercises(grading, options, key):
    """For each exercise record whose numbers failed verification, train epoch 1 of its seed with the catalogued
    mistakes (cached like reference runs), one mistake after another, and name the first whose numbers match
    the record's within the epoch-1 tolerance; the mistakes lie far apart (benchmarks/bench_exercises.py)."""
    from ..exercises import MISTAKES
    from .parallel import reference_runs
    from .reference import default_cache_dir
    from .verification import epoch_one_ratio

    assignments = grading.course.assignments
    failing = [graded for graded in grading.batch if graded.record is not None
               and graded.checks.get("verified numbers") and graded.checks["verified numbers"].status is FAIL
               and graded.claimed_id in assignments and assignments[graded.claimed_id].get("exercises")
               and graded.record.history and graded.reference and "error" not in graded.reference
               # epoch 1 as the grader's correct run has it: the functions are right, and the failure is elsewhere
               # (a run stopped early, numbers edited later); no mistake would match, and naming none misleads
               and not epoch_one_ratio(graded.record.history, graded.reference["history"])[0] <= 1]
    cache_dir = Path(options.cache) if options.cache else default_cache_dir()
    trainable = [name for name, mistake in MISTAKES.items() if mistake.trainable]
    for graded in failing:
        match = None
        for name in trainable:
            run_name = f"{graded.claimed_id}\x1f{name}"
            if grading.mistake_runs is not None:
                entry = grading.mistake_runs.get(run_name)
            else:
                found, _ = reference_runs({run_name: {**assignments[graded.claimed_id], "mistake": name}}, key=key,
                                          cache_dir=cache_dir, data_dir=options.data, jobs=1, timeout=options.timeout)
                entry = found[run_name]
            if entry and "error" not in entry and epoch_one_ratio(graded.record.history, entry["history"])[0] <= 1:
                match = name
                break
        verdict = graded.checks["verified numbers"]
        if match is not None:
            sentence = MISTAKES[match].sentence
            graded.diagnoses[MISTAKES[match].exercise] = sentence
            graded.checks["verified numbers"] = failed(f"{MISTAKES[match].exercise}: {sentence} (epoch 1 matches the "
                                                       "grader's run of your assignment with that mistake)",
                                                       verdict.evidence)
            # the function is wrong whatever its check cell printed: the exercises check says which, as the
            # self-check does from the check cell
            said = graded.checks.get("exercises")
            if not (said and said.status is FAIL and f"{MISTAKES[match].exercise}: its check cell says" in said.reason):
                graded.checks["exercises"] = combine([said, failed(f"{MISTAKES[match].exercise}: {sentence}")])
        else:
            graded.checks["verified numbers"] = failed(f"{verdict.reason}; its numbers match none of the known "
                                                       "mistakes", verdict.evidence)


def _refuse_cache_among_submissions(cache_dir, submissions):
    cache = Path(cache_dir).resolve()
    for submission in map(Path, submissions):
        folder = submission.resolve()
        if not folder.is_dir():
            continue  # a zip or a notebook is read in place: a cache beside it is among no student's files
        if cache == folder or folder in cache.parents:
            raise GradingError(f"the reference cache {cache_dir} lies inside the hand-ins' folder {submission}, "
                               "where students' files are: choose another --cache")


def _order_checks(batch):
    for graded in batch:
        graded.checks = {name: graded.checks[name] for name in CHECK_NAMES if name in graded.checks}


def self_check(path):
    """The student's self-check of one notebook: (GradedHandIn, table text)."""
    grading = grade(GradingOptions(submissions=(Path(path),)))
    buffer = io.StringIO()
    print_table(grading, stream=buffer)
    return grading.batch[0] if grading.batch else None, buffer.getvalue()


# --- outputs -------------------------------------------------------------------------------------------------

def console_safe(text):
    """TEXT with every control or invisible formatting character shown as an escape (\\x1b, \\u202e), so a
    hand-in can't rewrite the terminal; NUL never passes through."""
    out = []
    for char in str(text):
        if char in "\t" or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def print_table(grading, stream=None):
    stream = stream or sys.stdout
    verified = grading.course.assignments is not None
    for graded in grading.batch:
        print(console_safe(f"{graded.who}: {graded.status}  ({graded.label})"), file=stream)
        for name, verdict in graded.checks.items():
            reason = verdict.reason + (f" ({verdict.evidence})" if verdict.evidence else "")
            print(console_safe(f"  {verdict.status.value:<6} {name:<20} {reason}"), file=stream)
        for note in graded.notes:
            print(console_safe(f"  note   {note}"), file=stream)
    for label, reason in grading.refusals + grading.not_graded:
        print(console_safe(f"not graded: {label}: {reason}"), file=stream)
    for note in grading.notes:
        print(console_safe(f"note: {note}"), file=stream)
    if not verified and grading.batch:
        print("Numbers NOT verified: this is the self-check. The instructor's grading re-computes your run.",
              file=stream)


def table_rows(grading):
    """One row per roster student in roster order (MISSING where nothing came), then hand-ins of nobody on
    the roster, then files not graded; the header first. Cells are plain text (the CSV writer neutralises)."""
    rubric = grading.rubric
    mark_columns = list(rubric.marks) if rubric else []
    header = ["student_id", "verdict", *CHECK_NAMES, *(f"marks: {name}" for name in mark_columns),
              "total", "points_possible", "late", "reasons", "file", "sha256", "notes"]
    rows = [header]

    def row(student, graded):
        marks = [graded.marks.get(name) for name in mark_columns]
        total = graded.marks.get("total") if rubric else None
        return [student, graded.status.value, *(graded.checks[name].status.value if name in graded.checks else ""
                                                for name in CHECK_NAMES),
                *("" if value is None else f"{value:g}" for value in marks),
                "" if total is None else f"{total:g}", f"{rubric.points_possible:g}" if rubric else "",
                {True: "late", False: "", None: ""}[graded.late], graded.reasons(), graded.label, graded.content_hash,
                "; ".join(graded.notes)]

    by_student = {}
    for graded in grading.batch:
        by_student.setdefault(graded.student_id, []).append(graded)
    for student in grading.course.assignments or {}:
        found = by_student.pop(student, [])
        if not found:
            missing = [student, MISSING, *([""] * (len(header) - 2))]
            wrong = grading.not_notebooks.get(student)
            missing[header.index("reasons")] = (f"no notebook handed in: {', '.join(wrong)} is not a notebook (.ipynb)"
                                                if wrong else "no hand-in")
            rows.append(missing)
        rows += [row(student, graded) for graded in found]
    for student, found in by_student.items():  # nobody on the roster: the id it claims, unless an LMS said who
        rows += [row(student or ("" if graded.unlisted else graded.claimed_id) or "", graded) for graded in found]
    for label, reason in grading.refusals + grading.not_graded:
        unread = ["", "not graded", *([""] * (len(header) - 2))]
        unread[header.index("reasons")], unread[header.index("file")] = reason, label
        rows.append(unread)
    return rows


def write_csv(rows, path):
    from ..atomic import atomic_write_text
    from .exports import spreadsheet_safe

    buffer = io.StringIO()
    csv.writer(buffer).writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return atomic_write_text(path, buffer.getvalue())


def grade_command(options):
    """`vae-lab grade`: print the verdicts; with --assignments verify against reference runs, mark, and write
    the decisions, CSV, pages and LMS exports asked for. Exit 0 when every hand-in passed."""
    from ..progress import Progress
    from .checks import CHECK_NAMES as names
    from .rubric import load_rubric, mark

    rubric = None
    if options.assignments is not None or options.rubric is not None:
        rubric = load_rubric(options.rubric, names)  # a broken rubric file fails here, before hours of work
    decisions = None
    if options.decisions is not None:
        from .decisions import read_decisions

        decisions = read_decisions(options.decisions)  # a broken file fails here, before hours of work
    _check_outputs(options)  # and so does an output that could not be written
    grading = grade(options, progress=Progress("reference runs"))
    assignments = grading.course.assignments or {}
    if rubric is not None and any(entry.get("exercises") for entry in assignments.values()):
        rubric = load_rubric(options.rubric, names, exercises=True)  # the student's code earns marks of its own
    grading.rubric = rubric
    if decisions is not None:
        from .decisions import apply_decisions, write_decisions
        from .exports import spreadsheet_safe

        rows = apply_decisions(grading.batch, decisions, cell=spreadsheet_safe)
        write_decisions(options.decisions, rows, cell=spreadsheet_safe)
        grading.notes.append(f"decisions: {options.decisions} "
                             f"({sum(1 for row in rows if not row.get('decision'))} open)")
    if rubric is not None:
        for graded in grading.batch:
            earned, total = mark(graded.checks, rubric)
            graded.marks = {**earned, "total": total}
    print_table(grading)
    rows = table_rows(grading)
    try:
        _write_outputs(grading, rows, options)
    except OSError as error:  # checked before grading, but a disk can fill or a path be denied at the end
        raise GradingError(f"could not write {error.filename or 'an output'}: {error.strerror or error}. The "
                           "grading itself is done and its reference runs are cached: the same command with a "
                           "path that can be written takes seconds") from None
    counts = {status: sum(graded.status is status for graded in grading.batch) for status in (PASS, REVIEW, FAIL)}
    missing = sum(row[1] == MISSING for row in rows[1:])
    unread = len(grading.refusals)
    print(f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[REVIEW]} to review"
          + (f", {missing} missing" if missing else "") + (f", {unread} not read" if unread else ""))
    return 0 if counts[PASS] == len(grading.batch) and not unread else 1


def _write_outputs(grading, rows, options):
    if options.csv:
        write_csv(rows, options.csv)
    for kind, path in options.exports:
        _export(grading, kind, path, options, rows)
    if options.report or options.feedback:
        from .class_report import write_class_report, write_feedback

        if options.report:
            print(f"class page: {write_class_report(grading, rows, options.report)}")
        if options.feedback:
            directory, others = write_feedback(grading, options.feedback)
            print(f"feedback pages: {directory}")
            if others:  # a bulk upload of the folder would send these too
                print(console_safe(f"note: {directory} also holds {len(others)} page(s) this grading did not write "
                                   f"(an earlier grading's?): {', '.join(map(str, others[:5]))}"
                                   f"{' ...' if len(others) > 5 else ''}; remove any that are stale before "
                                   "uploading the folder"))


def _check_outputs(options):
    """Every output OPTIONS asks for can be written, and every export has what it needs: else one message now."""
    files = [("--csv", options.csv), ("--report", options.report), ("--decisions", options.decisions),
             *((f"--export {kind}=", path) for kind, path in options.exports)]
    for flag, path in files:
        if path is not None:
            _check_writable(flag, Path(path), folder=False)
    if options.feedback is not None:
        _check_writable("--feedback", Path(options.feedback), folder=True)
    kinds = {kind for kind, _ in options.exports} - {"csv"}
    if kinds and options.assignments is None:
        raise GradingError(f"--export {sorted(kinds)[0]}=… needs --assignments (the roster's LMS columns)")
    if kinds:
        from .assign import read_assignments
        from .exports import MOODLE_IDENTIFIERS

        _, roster = read_assignments(options.assignments)
    for kind in kinds:
        if kind == "canvas" and roster.kind != "canvas":
            raise GradingError("--export canvas=… needs the course assigned from a Canvas gradebook export (its "
                               "student columns go back to Canvas): use --export csv=FILE, or assign from that export")
        if kind == "moodle" and not any(name.strip().casefold() in MOODLE_IDENTIFIERS for name in roster.header):
            raise GradingError("--export moodle=… needs a roster column Moodle can match (ID number, Email address "
                               "or Username): assign the course from Moodle's grades export")


def _the_hand_in_that_counts(batch):
    """{student: the graded hand-in whose mark goes to the LMS, or None}. Of a student's several hand-ins, those
    decided FAIL on 'hand-ins' and unreadable ones beside a readable one don't count; if the rest disagree on
    the mark, none does (the instructor decides which counts, on 'hand-ins'), so no arbitrary one is sent."""
    per_student = {}
    for graded in batch:
        if graded.student_id:
            per_student.setdefault(graded.student_id, []).append(graded)
    counted = {}
    for student, hand_ins in per_student.items():
        left = [graded for graded in hand_ins
                if getattr(graded.checks.get("hand-ins"), "status", PASS) is not FAIL] or hand_ins
        left = [graded for graded in left if graded.record is not None] or left
        totals = {graded.marks.get("total") for graded in left}
        counted[student] = left[0] if len(totals) == 1 else None
        if len(totals) > 1:
            print(f"note: {student} has {len(left)} hand-ins with different marks; none is exported until you "
                  f"decide which counts (PASS it and FAIL the others on 'hand-ins' in the decisions file)")
    return counted


def _check_writable(flag, path, folder):
    if path.exists() and path.is_dir() != folder:
        raise GradingError(f"{flag} {path} is {'a file' if folder else 'a folder'}: give "
                           f"{'a folder' if folder else 'a file name'}")
    existing = next(parent for parent in ((path,) if folder else ()) + tuple(path.parents) if parent.exists())
    try:  # a real file, at once removed: permissions alone pass for root where nothing can be written (/proc)
        if not existing.is_dir():
            raise NotADirectoryError
        tempfile.TemporaryFile(dir=existing).close()
    except OSError:
        raise GradingError(f"{flag} {path} can't be written: {existing} is not a folder you may write in") from None


def _export(grading, kind, path, options, rows):
    from ..atomic import atomic_write_text
    from . import exports

    if kind == "csv":
        return write_csv(rows, path)
    counted = _the_hand_in_that_counts(grading.batch)
    marks = {student: graded.marks.get("total") if graded else None for student, graded in counted.items()}
    if kind == "canvas":  # _check_outputs made sure, before grading, that the roster suits each export
        text = exports.canvas_gradebook_csv(grading.roster, marks, assignment_title=options.assignment_title,
                                            points_possible=grading.rubric.points_possible)
        unmarked = sum(marks.get(student) is None for student in grading.roster.student_ids())
        if unmarked:
            print(f"note: {unmarked} student{'s' if unmarked > 1 else ''} without a mark (to review or missing) "
                  f"left out of {path}, so Canvas keeps what it has for them")
        column = exports.canvas_column(grading.roster, options.assignment_title)
        points = exports.canvas_points(grading.roster, column)
        if points is not None and points != grading.rubric.points_possible:
            print(f"warning: Canvas's {column!r} is out of {points:g} points and the rubric out of "
                  f"{grading.rubric.points_possible:g}; Canvas keeps an assignment's own points, so a mark of "
                  f"{grading.rubric.points_possible:g} would read as {grading.rubric.points_possible:g} of "
                  f"{points:g}: give the rubric points_possible = {points:g} (its marks to match), or change the "
                  f"assignment's points in Canvas (then export the gradebook again and run assign with it, which "
                  f"keeps every seed)")
        if not exports.names_a_canvas_assignment(column):
            print(f"note: the column {options.assignment_title!r} has no Canvas assignment id, so Canvas may make a "
                  "new assignment of it: to fill in the existing one, pass --assignment-title as the gradebook "
                  "export names it, e.g. \"VAE lab (4711)\"")
    elif kind == "moodle-worksheet":
        from datetime import datetime, timezone

        entries, elsewhere = [], []
        for student, graded in sorted(counted.items()):
            hand_in = graded.hand_in if graded else None
            if hand_in is not None and hand_in.lms == "moodle":
                entries.append((hand_in.identity["moodle_participant_id"], hand_in.identity["moodle_full_name"],
                                graded.marks.get("total"), graded.reasons(for_student=True) or "All checks passed."))
            elif graded and graded.marks.get("total") is not None:
                elsewhere.append(student)
        text = exports.moodle_worksheet_csv(entries, datetime.now(timezone.utc))
        if elsewhere:
            print(f"note: {len(elsewhere)} marked student{'s' if len(elsewhere) > 1 else ''} handed in outside "
                  f"Moodle's download ({', '.join(elsewhere[:5])}{', …' if len(elsewhere) > 5 else ''}), so the "
                  f"worksheet, which names Moodle's participant ids, leaves them out")
    elif kind == "moodle":
        feedback = {student: graded.reasons(for_student=True) or "All checks passed."
                    for student, graded in counted.items() if graded}
        text = exports.moodle_grades_csv(grading.roster, marks, feedback, grade_title=options.assignment_title)
    else:
        raise GradingError(f"--export {kind}: choose canvas, moodle, moodle-worksheet or csv")
    atomic_write_text(path, text)
    print(f"{kind} export: {path}")
