"""The instructor's decisions.csv: each decision stays with the hand-in and the question it answered (found in a
code review, 2026-12-06: decisions keyed by student and check crossed between a student's two hand-ins, a stale
PASS overruled a later FAIL, and a file saved by a spreadsheet lost its decisions).

Reference runs are injected, so each grading takes well under a second.
"""

import csv
import os

import nbformat

import records
from vae_lab.course import grade
from vae_lab.course.decisions import read_decisions
from vae_lab.course.rubric import DEFAULT_RUBRIC_TOML


def grader(tmp_path, references, **options):
    """A function that grades TMP_PATH/hand-ins with decisions.csv and returns {file name: CSV row}."""
    course_dir = tmp_path / "course"

    def run():
        original = grade.grade
        grade.grade = lambda options, **kwargs: original(options, references=references)
        try:
            grade.grade_command(grade.GradingOptions(
                submissions=(tmp_path / "hand-ins",), assignments=course_dir / "assignments.csv",
                decisions=tmp_path / "decisions.csv", csv=tmp_path / "grades.csv", **options))
        finally:
            grade.grade = original
        return {row["file"].split("/")[-1]: row for row in csv.DictReader((tmp_path / "grades.csv").open())}
    return run


def decide(tmp_path, choose, delimiter=",", encoding="utf-8", rewrite=None):
    """Fill in decisions.csv as an instructor does: CHOOSE(row) gives (decision, note) or None."""
    rows = list(csv.DictReader((tmp_path / "decisions.csv").open(encoding="utf-8-sig")))
    for row in rows:
        row["decision"], row["note"] = choose(row) or (row["decision"], row["note"])
        if rewrite:
            rewrite(row)
    with open(tmp_path / "decisions.csv", "w", newline="", encoding=encoding) as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_two_hand_ins_of_one_student_keep_their_own_decisions(tmp_path, capsys):
    _, assignments = records.course(tmp_path, ["s01", "s02"])
    first, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    second = records.notebook("s01", assignments["s01"]["seed"], prose_number=3,
                              history_values=records.history(assignments["s01"]["seed"]))
    records.write(tmp_path / "hand-ins", first, "s01.ipynb")
    records.write(tmp_path / "hand-ins", second, "s01 (1).ipynb")
    run = grader(tmp_path, {"s01": reference})
    rows = run()
    assert rows["s01.ipynb"]["copies"] == "PASS"  # a student's own two files are no copy of each other
    decide(tmp_path, lambda row: ("FAIL", "older upload") if row["file"].endswith("/s01.ipynb") else ("PASS", "this one"))
    rows = run()
    assert rows["s01.ipynb"]["hand-ins"] == "FAIL" and rows["s01 (1).ipynb"]["hand-ins"] == "PASS"
    assert "re-opened" not in rows["s01 (1).ipynb"]["reasons"]
    kept = {row["file"].split("/")[-1]: (row["decision"], row["note"]) for row in read_decisions(tmp_path / "decisions.csv")}
    assert kept == {"s01.ipynb": ("FAIL", "older upload"), "s01 (1).ipynb": ("PASS", "this one")}


def test_a_decision_is_not_applied_once_the_check_decides_by_itself(tmp_path, capsys):
    _, assignments = records.course(tmp_path, ["s01"])
    notebook, _ = records.honest("s01", assignments["s01"]["seed"], 1)
    records.write(tmp_path / "hand-ins", notebook, "s01.ipynb")
    crashed = {"s01": {"error": "reference run killed its worker 2 times (out of memory?)"}}
    assert grader(tmp_path, crashed)()["s01.ipynb"]["verified numbers"] == "REVIEW"
    decide(tmp_path, lambda row: ("PASS", "the worker ran out of memory; the record looks fine"))
    other_seed = records.history(12345)
    rows = grader(tmp_path, {"s01": records.reference(other_seed, records.metrics(other_seed, 12345))})()
    assert rows["s01.ipynb"]["verified numbers"] == "FAIL" and rows["s01.ipynb"]["total"] == "8"
    assert "decision PASS on verified numbers is not applied" in capsys.readouterr().out
    assert read_decisions(tmp_path / "decisions.csv")[0]["decision"] == "PASS"  # the note is not lost


def test_a_changed_reason_reopens_and_a_decided_reopening_settles(tmp_path, capsys):
    _, assignments = records.course(tmp_path, ["s01"])
    notebook, _ = records.honest("s01", assignments["s01"]["seed"], 1)
    records.write(tmp_path / "hand-ins", notebook, "s01.ipynb")
    grader(tmp_path, {"s01": {"error": "reference run killed its worker 2 times (out of memory?)"}})()
    decide(tmp_path, lambda row: ("PASS", "fine"))
    rows = grader(tmp_path, {"s01": {"error": "reference run timed out after 600 s"}})()
    assert rows["s01.ipynb"]["verified numbers"] == "REVIEW" and "its reason changed" in rows["s01.ipynb"]["reasons"]
    decide(tmp_path, lambda row: ("PASS", "fine again"))
    rows = grader(tmp_path, {"s01": {"error": "reference run timed out after 600 s"}})()
    assert rows["s01.ipynb"]["verified numbers"] == "PASS" and "re-opened" not in rows["s01.ipynb"]["reasons"]


def test_a_spreadsheet_saved_decisions_file_is_read(tmp_path):
    """Semicolons, a byte-order mark, CRLF, ' pass ', an id that lost its leading zeros, a row cut short."""
    _, assignments = records.course(tmp_path, ["0012", "0034"])
    notebook, reference = records.honest("0034", assignments["0034"]["seed"], 5)
    records.write(tmp_path / "hand-ins", notebook, "renamed.ipynb")  # identity REVIEW
    run = grader(tmp_path, {"0034": reference})
    assert run()["renamed.ipynb"]["identity"] == "REVIEW"
    decide(tmp_path, lambda row: (" pass ", "browser renamed it"), delimiter=";", encoding="utf-8-sig",
           rewrite=lambda row: row.update(student_id=str(int(row["student_id"]))))
    rows = run()
    assert rows["renamed.ipynb"]["identity"] == "PASS" and rows["renamed.ipynb"]["total"] == "10"
    assert len(read_decisions(tmp_path / "decisions.csv")) == 1
    lines = (tmp_path / "decisions.csv").read_text().splitlines()
    (tmp_path / "decisions.csv").write_text("\n".join([lines[0], lines[1].split(",pass")[0].split(",PASS")[0]]) + "\n")
    assert run()["renamed.ipynb"]["identity"] == "REVIEW"  # the decision cut off: asked again, no traceback


def test_a_hand_in_without_an_id_keeps_its_decision(tmp_path):
    _, assignments = records.course(tmp_path, ["s01"])
    notebook, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    notebook.cells[0].source = "\n".join(line for line in notebook.cells[0].source.splitlines()
                                         if not line.startswith("STUDENT_ID"))
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    code[1].execution_count = len(code) + 1  # run again after the full run: executed is REVIEW
    code[1].metadata["execution"]["iopub.execute_input"] = "2026-12-01T11:00:00Z"
    records.write(tmp_path / "hand-ins", notebook, "lab.ipynb")
    run = grader(tmp_path, {"s01": reference})
    before = run()["lab.ipynb"]
    open_checks = [row["check"] for row in read_decisions(tmp_path / "decisions.csv")]
    assert open_checks == ["executed"] and before["executed"] == "REVIEW"
    decide(tmp_path, lambda row: ("PASS", "ran one cell again to look at it"))
    assert run()["lab.ipynb"]["executed"] == "PASS"
    assert [row["decision"] for row in read_decisions(tmp_path / "decisions.csv")] == ["PASS"]


def test_two_students_handing_in_the_same_bytes_are_decided_apart(tmp_path):
    _, assignments = records.course(tmp_path, ["s01", "s02"])
    notebook, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    records.write(tmp_path / "hand-ins", notebook, "s01.ipynb")
    records.write(tmp_path / "hand-ins", notebook, "s02.ipynb")  # s02 handed in s01's very file
    run = grader(tmp_path, {"s01": reference, "s02": reference})
    run()
    decide(tmp_path, lambda row: ("PASS", "the original") if row["student_id"] == "s01" and row["check"] == "copies"
           else ("FAIL", "copied s01"))
    rows = run()
    assert rows["s01.ipynb"]["copies"] == "PASS" and rows["s02.ipynb"]["copies"] == "FAIL"


def moodle_course(tmp_path, *students):
    """A course assigned from a Moodle grades export of STUDENTS ("First,Last,ID number,Email"); its assignments."""
    from vae_lab.course.assign import assign_command, read_assignments

    (tmp_path / "moodle.csv").write_text("First name,Last name,ID number,Email address\n" + "\n".join(students) + "\n")
    assign_command(tmp_path / "moodle.csv", tmp_path / "course", epochs=2)
    return read_assignments(tmp_path / "course" / "assignments.csv")[0]


def test_the_export_sends_the_hand_in_that_counts_or_none(tmp_path, capsys):
    """A good notebook and an empty first upload of one student: no 0 reaches the gradebook from the empty one;
    once the instructor decides which counts, its mark goes."""
    assignments = moodle_course(tmp_path, "Ada,Lovelace,1001,ada@uni.example", "Alan,Turing,1002,alan@uni.example")
    notebook, reference = records.honest("1001", assignments["1001"]["seed"], 1)
    records.write(tmp_path / "hand-ins", notebook, "1001 (1).ipynb")
    (tmp_path / "hand-ins" / "1001.ipynb").write_text("")  # the upload that failed
    run = grader(tmp_path, {"1001": reference}, exports=(("moodle", tmp_path / "moodle-import.csv"),))
    rows = run()
    assert rows["1001.ipynb"]["total"] == "0" and rows["1001 (1).ipynb"]["total"] == ""
    assert "1001" not in (tmp_path / "moodle-import.csv").read_text()
    decide(tmp_path, lambda row: ("PASS", "the second upload is the notebook") if row["check"] == "hand-ins" else None)
    run()
    assert '"1001","10"' in (tmp_path / "moodle-import.csv").read_text()


def test_two_readable_hand_ins_with_different_marks_export_none_until_decided(tmp_path, capsys):
    assignments = moodle_course(tmp_path, "Ada,Lovelace,1001,ada@uni.example")
    good, reference = records.honest("1001", assignments["1001"]["seed"], 1)
    records.write(tmp_path / "hand-ins", good, "1001.ipynb")
    records.write(tmp_path / "hand-ins", records.notebook("1001", assignments["1001"]["seed"], metrics_values={},
                                                          result=records.prose(4)), "1001 (1).ipynb")
    run = grader(tmp_path, {"1001": reference}, exports=(("moodle", tmp_path / "moodle-import.csv"),),
                 rubric=tmp_path / "rubric.toml")
    (tmp_path / "rubric.toml").write_text(DEFAULT_RUBRIC_TOML.replace('review = "withhold"', "review = 1.0"))
    rows = run()
    assert rows["1001.ipynb"]["total"] != rows["1001 (1).ipynb"]["total"]
    assert "1001" not in (tmp_path / "moodle-import.csv").read_text()
    assert "different marks" in capsys.readouterr().out
    decide(tmp_path, lambda row: (("PASS", "") if row["file"].endswith("/1001.ipynb") else ("FAIL", "older"))
           if row["check"] == "hand-ins" else None)
    run()
    assert f'"1001","{rows["1001.ipynb"]["total"]}"' in (tmp_path / "moodle-import.csv").read_text()


def test_a_fail_decided_on_a_copy_stands_when_the_original_changes(tmp_path, capsys):
    """A second review (2026-12-06): a FAIL on copies must not fall away once the copied classmate re-submits."""
    _, assignments = records.course(tmp_path, ["s01", "s02"])
    original, first = records.honest("s01", assignments["s01"]["seed"], 1)
    copy, second = records.honest("s02", assignments["s02"]["seed"], 1)  # s02's prose is s01's
    records.write(tmp_path / "hand-ins", original, "s01.ipynb")
    records.write(tmp_path / "hand-ins", copy, "s02.ipynb")
    run = grader(tmp_path, {"s01": first, "s02": second})
    assert run()["s02.ipynb"]["copies"] == "REVIEW"
    decide(tmp_path, lambda row: ("PASS", "the original") if row["student_id"] == "s01" else ("FAIL", "copied s01"))
    reworded, _ = records.honest("s01", assignments["s01"]["seed"], 7)
    records.write(tmp_path / "hand-ins", reworded, "s01.ipynb")  # s01 re-submits; s02's bytes unchanged
    rows = run()
    assert rows["s02.ipynb"]["copies"] == "FAIL" and rows["s02.ipynb"]["total"] == "0"


def test_a_classmates_decision_never_applies_to_the_same_bytes_handed_in_alone(tmp_path):
    _, assignments = records.course(tmp_path, ["s01", "s02"])
    notebook, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    code[1].execution_count = len(code) + 1  # run again after the full run: executed is REVIEW
    code[1].metadata["execution"]["iopub.execute_input"] = "2026-12-01T11:00:00Z"
    records.write(tmp_path / "hand-ins", notebook, "s01.ipynb")
    run = grader(tmp_path, {"s01": reference, "s02": reference})
    run()
    decide(tmp_path, lambda row: ("PASS", "s01 showed me the re-run in office hours") if row["check"] == "executed" else None)
    (tmp_path / "hand-ins" / "s01.ipynb").rename(tmp_path / "hand-ins" / "s02.ipynb")  # the same bytes, from s02
    rows = run()
    assert rows["s02.ipynb"]["executed"] == "REVIEW"
    assert {row["student_id"] for row in read_decisions(tmp_path / "decisions.csv") if row["decision"]} == {"s01"}


def test_a_reason_whose_figures_drift_keeps_its_decision():
    """A worker's address (evidence now) or a similarity another hand-in moves (0.98 -> 0.99) is no new question."""
    from types import SimpleNamespace

    from vae_lab.course import parallel
    from vae_lab.course.decisions import _plain

    first, second = (parallel._killed_reason(SimpleNamespace(last_worker=f"tcp://127.0.0.1:{port}", allowed_failures=1))
                     for port in (41873, 39211))
    assert first["error"] == second["error"] and first["evidence"] != second["evidence"]
    assert _plain("exercise code like another hand-in's (similarity 0.98)") == \
        _plain("exercise code like another hand-in's (similarity 0.99) (re-opened: its reason changed)")
    assert _plain("the LMS says this hand-in is s01's") != _plain("the LMS says this hand-in is s03's")


def test_a_file_name_that_is_not_utf8_is_graded_and_written_like_any_other(tmp_path):
    # a Latin-1 'bob-été.ipynb' came from os.listdir with surrogate escapes: the CSV, the export and the
    # decisions file all stopped with UnicodeEncodeError, for the whole class (hunt, 2026-12-06)
    _, assignments = records.course(tmp_path, ["s01", "s02"])
    honest, reference = records.honest("s01", assignments["s01"]["seed"], 1)
    records.write(tmp_path / "hand-ins", honest, "s01.ipynb")
    other, second = records.honest("s02", assignments["s02"]["seed"], 2)
    folder = os.fsencode(tmp_path / "hand-ins")
    with open(os.path.join(folder, b"bob-\xe9t\xe9.ipynb"), "wb") as file:
        file.write(nbformat.writes(other).encode())
    rows = grader(tmp_path, {"s01": reference, "s02": second}, exports=(("csv", tmp_path / "export.csv"),))()
    assert rows["s01.ipynb"]["verdict"] == "PASS"
    assert rows["bob-été.ipynb"]["student_id"] == "s02" and rows["bob-été.ipynb"]["identity"] == "REVIEW"
    assert "bob-été" in (tmp_path / "decisions.csv").read_text(encoding="utf-8-sig")
    from vae_lab.course.lms import readable_name

    assert readable_name("café-\udce9") == "café-é"  # the UTF-8 part of a mixed name stays as it was


def test_a_claim_that_failed_identity_leaves_the_named_students_hand_in_alone(tmp_path):
    # dave handed in his own run with STUDENT_ID = 'alice': his identity FAILs, and alice's genuine hand-in
    # was put to REVIEW ("another hand-in is also alice's"), her total withheld (hunt, 2026-12-06)
    _, assignments = records.course(tmp_path, ["alice", "dave"])
    alice, first = records.honest("alice", assignments["alice"]["seed"], 1)
    dave, _ = records.honest("alice", assignments["dave"]["seed"], 2)
    records.write(tmp_path / "hand-ins", alice, "alice.ipynb")
    records.write(tmp_path / "hand-ins", dave, "dave.ipynb")
    rows = grader(tmp_path, {"alice": first})()
    assert rows["dave.ipynb"]["identity"] == "FAIL" and rows["dave.ipynb"]["total"] == "0"
    assert rows["alice.ipynb"]["hand-ins"] == "PASS" and rows["alice.ipynb"]["total"] == "10"


def test_a_failed_claim_by_someone_the_lms_names_off_the_roster_leaves_the_named_student_alone():
    # the reviewer's case: the LMS names a non-roster user, whose notebook claims alice and fails identity
    from vae_lab.course.checks import Course, check_claims
    from vae_lab.course.verdicts import GradedHandIn, failed, passed

    alice = GradedHandIn("alice.ipynb", student_id="alice", claimed_id="alice", attribution=("lms", "Alice"))
    stranger = GradedHandIn("x.ipynb", student_id=None, claimed_id="alice", attribution=("lms", "Mallory"))
    alice.checks["identity"], stranger.checks["identity"] = passed("alice"), failed("parameters changed")
    found = check_claims([alice, stranger], Course(assignments={}))
    assert id(alice) not in found and id(stranger) not in found
    stranger.checks["identity"] = passed("alice")  # a claim that holds stays a question for the instructor
    assert id(alice) in check_claims([alice, stranger], Course(assignments={}))
