"""What an instructor gets wrong, and what a class hands over oddly: each gets one clear answer, said before any
work where it can be, and nothing a student sees names a classmate or the instructor's notes.

Records are built by hand (`records.py`) and the grader's reference runs are given, so each test grades a
class in seconds; the zips are built as Canvas names its files (see test_lms.py for the source).
"""

import csv
import zipfile

import nbformat
import pytest

import records
from vae_lab import cli
from vae_lab.course import grade, parallel
from vae_lab.course.assign import AssignError, assign_command, read_assignments
from vae_lab.errors import DataNotFound

# A Canvas gradebook export (Student, ID, SIS User ID, SIS Login ID, Section, the assignment as "title (id)").
GRADEBOOK = ("Student,ID,SIS User ID,SIS Login ID,Section,VAE lab (4711)\r\n"
             "    Points Possible,,,,,10.00\r\n"
             '"Lovelace, Ada",101,s01,alovelace,Section 1,\r\n'
             '"Turing, Alan",102,s02,aturing,Section 1,\r\n'
             '"Gödel, Kurt",105,s05,kgodel,Section 1,\r\n')


@pytest.fixture
def canvas_course(tmp_path):
    (tmp_path / "gradebook.csv").write_text(GRADEBOOK, encoding="utf-8")
    assign_command(tmp_path / "gradebook.csv", tmp_path / "course", epochs=2)
    assignments, _ = read_assignments(tmp_path / "course" / "assignments.csv")
    return tmp_path / "course", assignments


def graded_with(options, references):
    """grade_command on OPTIONS with the reference runs given (no training); returns its exit code."""
    original = grade.grade
    grade.grade = lambda options, **kwargs: original(options, references=references)
    try:
        return grade.grade_command(options)
    finally:
        grade.grade = original


def rows_of(path):
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_a_canvas_zip_zipped_again_a_non_notebook_and_a_student_missing_from_the_roster(canvas_course, tmp_path,
                                                                                        capsys):
    course, assignments = canvas_course
    ada, references = records.honest("s01", assignments["s01"]["seed"], 1)
    alan, alan_reference = records.honest("s02", assignments["s02"]["seed"], 5)
    references = {"s01": references, "s02": alan_reference}
    zip_path = tmp_path / "submissions.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:  # unzipped and zipped again: everything under one folder
        archive.writestr("submissions/lovelaceada_101_5001_s01.ipynb", nbformat.writes(ada))
        archive.writestr("submissions/godelkurt_105_5005_lab.py", "print('my lab')\n")
        # user 107 joined after assign; the notebook they hand in is Alan's
        archive.writestr("submissions/curiemarie_107_5007_lab.ipynb", nbformat.writes(alan))
    out = tmp_path / "out"
    cache = tmp_path / "cache"  # beside the zip: a zip is read in place, so no student's file is near it
    code = graded_with(grade.GradingOptions(submissions=(zip_path,), assignments=course / "assignments.csv",
                                            cache=cache, csv=out / "grades.csv", feedback=out / "feedback",
                                            report=out / "class.html"), references)
    assert code == 1
    rows = rows_of(out / "grades.csv")
    by_student = {row["student_id"]: row for row in rows}
    assert by_student["s01"]["verdict"] == "PASS" and by_student["s01"]["identity"] == "PASS"  # Canvas said who
    assert by_student["s02"]["verdict"] == "MISSING"  # Marie's hand-in is not Alan's
    assert by_student["s05"]["verdict"] == "MISSING" and "lab.py is not a notebook" in by_student["s05"]["reasons"]
    marie = next(row for row in rows if "curiemarie" in row["file"] and row["verdict"] != "not graded")
    assert marie["student_id"] == "" and marie["identity"] == "REVIEW"
    assert "nobody on the roster" in marie["reasons"] and "Canvas user id 107" in marie["reasons"]
    console = capsys.readouterr().out
    assert "godelkurt_105_5005_lab.py: s05's hand-in is not a notebook" in console
    assert (out / "class.html").exists()


def test_a_cache_is_refused_inside_a_folder_of_hand_ins_but_not_beside_a_zip(tmp_path):
    (tmp_path / "hand-ins").mkdir()
    (tmp_path / "hand-ins.zip").write_bytes(b"")
    grade._refuse_cache_among_submissions(tmp_path / "cache", [tmp_path / "hand-ins.zip"])
    with pytest.raises(grade.GradingError, match="inside the hand-ins' folder"):
        grade._refuse_cache_among_submissions(tmp_path / "hand-ins" / "cache", [tmp_path / "hand-ins"])


def test_a_student_twice_once_without_metrics_still_gets_a_class_page(tmp_path):
    course, assignments = records.course(tmp_path, ["s01", "s02"])
    first, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    hand_ins = tmp_path / "hand-ins"
    records.write(hand_ins, first, "s01.ipynb")
    records.write(hand_ins, records.notebook("s01", assignments["s01"]["seed"], metrics_values={},
                                                   result=records.prose(4)), "s01 (1).ipynb")
    out = tmp_path / "out"
    graded_with(grade.GradingOptions(submissions=(hand_ins,), assignments=course / "assignments.csv",
                                     report=out / "class.html", feedback=out / "feedback", csv=out / "grades.csv"),
                {"s01": reference})
    assert (out / "class.html").exists() and len(list((out / "feedback").iterdir())) == 2
    reasons = " ".join(row["reasons"] for row in rows_of(out / "grades.csv"))
    assert "nothing to verify: the record does not print the metrics" in reasons


def test_feedback_names_no_classmate_and_keeps_the_instructors_note(tmp_path):
    course, assignments = records.course(tmp_path, ["s01", "s02"])
    first, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    copied = records.notebook("s02", assignments["s02"]["seed"], history_values=records.history(
        assignments["s01"]["seed"]), prose_number=5)  # s01's printed history under s02's parameters
    hand_ins = tmp_path / "hand-ins"
    records.write(hand_ins, first, "s01.ipynb")
    records.write(hand_ins, copied, "s02.ipynb")
    out = tmp_path / "out"
    options = grade.GradingOptions(submissions=(hand_ins,), assignments=course / "assignments.csv",
                                   decisions=out / "decisions.csv", feedback=out / "feedback",
                                   report=out / "class.html", csv=out / "grades.csv")
    graded_with(options, {"s01": reference})
    page = (out / "feedback" / "s01.html").read_text(encoding="utf-8")
    assert "the same printed history as another hand-in" in page and "s02" not in page
    assert "s02" in rows_of(out / "grades.csv")[0]["reasons"]  # the instructor's outputs say who
    decisions = rows_of(out / "decisions.csv")
    for row in decisions:
        if row["student_id"] == "s01" and row["check"] == "copies":
            row["decision"], row["note"] = "PASS", "s01 is the original; s02 copied"
    with open(out / "decisions.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(decisions[0]))
        writer.writeheader()
        writer.writerows(decisions)
    graded_with(options, {"s01": reference})
    page = (out / "feedback" / "s01.html").read_text(encoding="utf-8")
    assert "decided by the instructor" in page and "copied" not in page and "s02" not in page
    assert any(row["note"] == "s01 is the original; s02 copied" for row in rows_of(out / "decisions.csv"))


@pytest.mark.parametrize("change, message", [
    (lambda options, tmp_path: {"feedback": tmp_path / "grades.txt"}, "--feedback .* is a file"),
    (lambda options, tmp_path: {"csv": tmp_path / "grades.txt" / "grades.csv"}, "can't be written"),
    (lambda options, tmp_path: {"exports": (("canvas", tmp_path / "canvas.csv"),)}, "needs the course assigned from a Canvas"),
    (lambda options, tmp_path: {"exports": (("moodle", tmp_path / "moodle.csv"),)}, "needs a roster column Moodle"),
])
def test_outputs_that_cannot_be_written_are_said_before_any_grading(tmp_path, change, message):
    import dataclasses

    course, _ = records.course(tmp_path, ["s01"])
    (tmp_path / "grades.txt").write_text("an earlier file")
    options = grade.GradingOptions(submissions=(tmp_path,), assignments=course / "assignments.csv")
    options = dataclasses.replace(options, **change(options, tmp_path))
    original = grade.grade
    grade.grade = lambda *args, **kwargs: pytest.fail("graded before the outputs were checked")
    try:
        with pytest.raises(grade.GradingError, match=message):
            grade.grade_command(options)
    finally:
        grade.grade = original


def test_a_wrong_data_folder_is_one_error_before_any_reference_run(tmp_path, monkeypatch):
    course, assignments = records.course(tmp_path, ["s01"])
    monkeypatch.setattr(parallel, "run_one", lambda *args: pytest.fail("a reference run started"))
    with pytest.raises(DataNotFound, match="does not exist"):
        parallel.reference_runs({"s01": assignments["s01"]}, key=b"k" * 32, cache_dir=tmp_path / "cache",
                                data_dir=tmp_path / "no-such-folder")


def test_assigning_again_adds_students_but_never_changes_what_one_has(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id\ns01\ns02\n")
    assign_command(roster, tmp_path / "course", epochs=2)
    before = (tmp_path / "course" / "assignments.csv").read_bytes()
    roster.write_text("student_id\ns01\ns02\ns03\n")  # a late joiner
    with pytest.raises(AssignError, match="epochs: s01 2 -> 3"):
        assign_command(roster, tmp_path / "course", epochs=3)
    assert (tmp_path / "course" / "assignments.csv").read_bytes() == before
    assert not (tmp_path / "course" / "handout" / "s03.ipynb").exists()
    handout = (tmp_path / "course" / "handout" / "s01.ipynb").read_bytes()
    assign_command(roster, tmp_path / "course", epochs=2)  # the course's own settings: s03 added
    assert (tmp_path / "course" / "handout" / "s01.ipynb").read_bytes() == handout  # s01's file as handed out
    assignments, _ = read_assignments(tmp_path / "course" / "assignments.csv")
    assert list(assignments) == ["s01", "s02", "s03"] and (tmp_path / "course" / "handout" / "s03.ipynb").exists()


def test_a_file_named_on_its_own_that_is_no_notebook_is_said(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("my notes")
    assert cli.main(["grade", str(tmp_path / "notes.txt")]) == 1
    assert "notes.txt: is not a notebook (.ipynb) or a zip of them" in capsys.readouterr().out
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("my notes")
    assert cli.main(["grade", str(tmp_path / "folder")]) == 1
    assert "no notebook among" in capsys.readouterr().err


def test_ctrl_c_is_one_line_that_says_what_is_kept(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "grade", interrupted)
    assert cli.main(["grade", "anything.zip"]) == 130
    error = capsys.readouterr().err
    assert error.strip().splitlines() == ["vae-lab grade: interrupted. The reference runs already finished are in "
                                          "the cache: the same command goes on from there."]


def test_canvas_grades_go_to_the_assignment_column_the_gradebook_names(tmp_path, capsys):
    (tmp_path / "gradebook.csv").write_text(GRADEBOOK, encoding="utf-8")
    assign_command(tmp_path / "gradebook.csv", tmp_path / "course", epochs=2)
    assert "Canvas assignments in this export: 'VAE lab (4711)'" in capsys.readouterr().out
    assignments, _ = read_assignments(tmp_path / "course" / "assignments.csv")
    ada, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    zip_path = tmp_path / "submissions.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("lovelaceada_101_5001_s01.ipynb", nbformat.writes(ada))
    # the gradebook's own title finds its column (assign kept the export's assignments); another title is said
    for title, noted, column in (("Experiment II", True, "Experiment II"), ("VAE lab", False, "VAE lab (4711)"),
                                 ("VAE lab (4711)", False, "VAE lab (4711)")):
        graded_with(grade.GradingOptions(submissions=(zip_path,), assignments=tmp_path / "course" / "assignments.csv",
                                         exports=(("canvas", tmp_path / "canvas.csv"),), assignment_title=title),
                    {"s01": reference})
        assert ("has no Canvas assignment id" in capsys.readouterr().out) is noted
        assert (tmp_path / "canvas.csv").read_text(encoding="utf-8").splitlines()[0].endswith(f",\"{column}\"")


def test_a_zip_inside_a_folder_is_said_as_such(tmp_path):
    from vae_lab.course.lms import collect

    (tmp_path / "hand-ins").mkdir()
    with zipfile.ZipFile(tmp_path / "hand-ins" / "submissions.zip", "w") as archive:
        archive.writestr("s01.ipynb", "{}")
    _, refusals = collect([tmp_path / "hand-ins"])
    assert [refusal.reason for refusal in refusals] == [
        "is a zip inside the folder, not opened: pass it on its own (vae-lab grade FOLDER/NAME.zip)"]


def test_the_feedback_page_of_a_hand_in_nobody_on_the_roster_made_is_not_headed_by_the_id_it_claims(
        canvas_course, tmp_path):
    course, assignments = canvas_course
    alan, reference = records.honest("s02", assignments["s02"]["seed"], 5)
    zip_path = tmp_path / "submissions.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("curiemarie_107_5007_lab.ipynb", nbformat.writes(alan))
    out = tmp_path / "out"
    graded_with(grade.GradingOptions(submissions=(zip_path,), assignments=course / "assignments.csv",
                                     feedback=out / "feedback"), {"s02": reference})
    (page,) = list((out / "feedback").rglob("*.html"))
    assert "VAE lab feedback: curiemarie_107_5007_lab.ipynb" in page.read_text(encoding="utf-8")


def test_a_file_named_for_one_student_that_claims_another_is_review(tmp_path):
    course, assignments = records.course(tmp_path, ["s01", "s02"])
    first, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    records.write(tmp_path / "hand-ins", first, "s02.ipynb")  # s01's record, renamed for a classmate
    grading = grade.grade(grade.GradingOptions(submissions=(tmp_path / "hand-ins",),
                                               assignments=course / "assignments.csv"), references={"s01": reference})
    (graded,) = grading.batch
    assert graded.checks["identity"].status.value == "REVIEW"
    assert "named for s02, its STUDENT_ID says s01" in graded.checks["identity"].reason


def test_a_folder_inside_a_hand_in_never_speaks_for_another_student(tmp_path):
    """nbgrader's tree: s01 puts submitted/s02/lab/ inside their own hand-in, with a newer timestamp."""
    from vae_lab.course.lms import collect

    own = tmp_path / "submitted" / "s01" / "lab"
    (own / "submitted" / "s02" / "lab").mkdir(parents=True)
    (own / "lab.ipynb").write_text("{}")
    (own / "submitted" / "s02" / "lab" / "lab.ipynb").write_text("{}")
    (own / "submitted" / "s02" / "lab" / "timestamp.txt").write_text("2099-01-01 00:00:00.000000 UTC")
    (tmp_path / "submitted" / "s02" / "lab").mkdir(parents=True)
    (tmp_path / "submitted" / "s02" / "lab" / "lab.ipynb").write_text("{}")
    hand_ins, _ = collect([tmp_path / "submitted"])
    students = {hand_in.label.split("submitted/", 1)[1]: hand_in.identity["nbgrader_student"] for hand_in in hand_ins}
    assert students == {"s01/lab/lab.ipynb": "s01", "s01/lab/submitted/s02/lab/lab.ipynb": "s01",
                        "s02/lab/lab.ipynb": "s02"}


MOODLE_GRADES = ("First name,Last name,ID number,Email address\n"
                 "Ada,Lovelace,1001,ada@uni.example\nAlan,Turing,1002,alan@uni.example\n"
                 "Kurt,Gödel,1005,kurt@uni.example\n")


def test_a_moodle_name_that_matches_no_one_is_graded_by_its_file_and_questioned(tmp_path, capsys):
    """Moodle's folders carry a name, not a user id: a team, a full name in another format, or blind marking on a
    German site ('Teilnehmerin') must not leave every student MISSING (LMS source review, 2026-12-06)."""
    (tmp_path / "grades.csv").write_text(MOODLE_GRADES, encoding="utf-8")
    assign_command(tmp_path / "grades.csv", tmp_path / "course", epochs=2)
    assignments, _ = read_assignments(tmp_path / "course" / "assignments.csv")
    notebooks, references = {}, {}
    for number, student in enumerate(("1001", "1002", "1005")):
        notebooks[student], references[student] = records.honest(student, assignments[student]["seed"], 1 + 4 * number)
    zip_path = tmp_path / "submissions.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("Ada Lovelace_201_assignsubmission_file/1001.ipynb", nbformat.writes(notebooks["1001"]))
        archive.writestr("Lovelace Ada Augusta_202_assignsubmission_file/lab.ipynb", nbformat.writes(notebooks["1002"]))
        archive.writestr("Teilnehmerin_203_assignsubmission_file/1005.ipynb", nbformat.writes(notebooks["1005"]))
    code = graded_with(grade.GradingOptions(submissions=(zip_path,), assignments=tmp_path / "course" / "assignments.csv",
                                            csv=tmp_path / "grades-out.csv"), references)
    rows = {row["student_id"]: row for row in rows_of(tmp_path / "grades-out.csv")}
    assert code == 1 and rows["1001"]["verdict"] == "PASS" and rows["1005"]["verdict"] == "PASS"  # blind: by file
    assert rows["1002"]["verdict"] == "REVIEW" and rows["1002"]["identity"] == "REVIEW"  # not MISSING
    assert "Moodle names this hand-in 'Lovelace Ada Augusta', no one on the roster" in rows["1002"]["reasons"]


def moodle_worksheet_reads(text):
    """Moodle's assignfeedback_offline_grade_importer (init and next), transcribed: columns found by their English
    names, the participant id after 'Participant ', a row per id; {participant id: (grade, modified, feedback)}."""
    from datetime import datetime

    rows = list(csv.reader(text.splitlines()))
    columns = rows[0]
    grade_at, id_at, modified_at = (columns.index("Grade"), columns.index("Identifier"),
                                    columns.index("Last modified (grade)"))
    feedback_at = columns.index("Feedback comments")
    return {row[id_at][len("Participant "):]: (row[grade_at], datetime.fromisoformat(row[modified_at]),
                                                row[feedback_at]) for row in rows[1:]}


def test_a_moodle_worksheet_for_the_assignments_own_upload(tmp_path, capsys):
    (tmp_path / "grades.csv").write_text(MOODLE_GRADES, encoding="utf-8")
    assign_command(tmp_path / "grades.csv", tmp_path / "course", epochs=2)
    assignments, _ = read_assignments(tmp_path / "course" / "assignments.csv")
    ada, ada_reference = records.honest("1001", assignments["1001"]["seed"], 1)
    alan, _ = records.honest("1002", assignments["1002"]["seed"], 5)
    zip_path = tmp_path / "submissions.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:  # blind marking: the worksheet needs no names
        archive.writestr("Participant_201_assignsubmission_file/1001.ipynb", nbformat.writes(ada))
        archive.writestr("Participant_202_assignsubmission_file/1002.ipynb", nbformat.writes(alan))
    references = {"1001": ada_reference, "1002": {"error": "reference run killed its worker (out of memory?)"}}
    graded_with(grade.GradingOptions(submissions=(zip_path,), assignments=tmp_path / "course" / "assignments.csv",
                                     exports=(("moodle-worksheet", tmp_path / "worksheet.csv"),)), references)
    worksheet = moodle_worksheet_reads((tmp_path / "worksheet.csv").read_text(encoding="utf-8"))
    assert set(worksheet) == {"201"}  # Alan's REVIEW withholds his mark: no row, so Moodle keeps what it has
    grade_text, modified, feedback = worksheet["201"]
    assert grade_text == "10" and modified.tzinfo is not None and feedback == "All checks passed."


@pytest.mark.parametrize("points, warned", [("10.00", False), ("100.00", True)])
def test_the_canvas_export_names_the_labs_column_and_checks_its_points(tmp_path, capsys, points, warned):
    """assign keeps the gradebook's assignments and points: grading with --assignment-title "VAE lab" fills the
    column "VAE lab (4711)", and says when Canvas's points are not the rubric's (an import keeps Canvas's own)."""
    (tmp_path / "gradebook.csv").write_text(GRADEBOOK.replace("10.00", points), encoding="utf-8")
    assign_command(tmp_path / "gradebook.csv", tmp_path / "course", epochs=2)
    assignments, _ = read_assignments(tmp_path / "course" / "assignments.csv")
    ada, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    records.write(tmp_path / "hand-ins", ada, "s01.ipynb")
    graded_with(grade.GradingOptions(submissions=(tmp_path / "hand-ins",), assignment_title="VAE lab",
                                     assignments=tmp_path / "course" / "assignments.csv",
                                     exports=(("canvas", tmp_path / "canvas.csv"),)), {"s01": reference})
    header = next(csv.reader((tmp_path / "canvas.csv").open(encoding="utf-8")))
    assert header[-1] == "VAE lab (4711)"
    console = capsys.readouterr().out
    assert ("out of 100 points and the rubric out of 10" in console) is warned and "has no Canvas assignment id" not in console
