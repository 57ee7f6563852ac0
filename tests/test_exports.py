"""Grades back to Canvas and Moodle in the files their importers read, feedback files they place, safe cells."""

import csv
import dataclasses
import io
import re
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import pytest

from vae_lab.course.exports import (canvas_gradebook_csv, feedback_file_name, format_number, moodle_grades_csv,
                                    spreadsheet_safe)
from vae_lab.course.lms import collect
from vae_lab.course.roster import RosterError, read_roster

NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'

# A Canvas gradebook export as lib/gradebook_exporter.rb writes it (instructure/canvas-lms, commit
# 0140a2effa6366ea3b73aeefa4bbc384b943934f): see tests/test_roster.py for the column rules. One student's
# name starts with '@' and one with '=' (the exporter itself wraps '=' names as ="..."), to check that the
# way back neutralises formulas without touching the ids Canvas matches on.
CANVAS_EXPORT = (
    "Student,ID,SIS User ID,SIS Login ID,Section,VAE lab (4711),Homework 1 (4712),Current Score\r\n"
    "    Points Possible,,,,,10.00,5.00,(read only)\r\n"
    '"Doe, Jane",12345,S001,jdoe,Section 1,,4.00,80.00\r\n'
    '"Smith, John",12346,S002,jsmith,Section 2,,,\r\n'
    '"@Lee, Ann",12347,S003,alee,Section 1,,,\r\n'
    '"=""=Evil, Eve""",12348,S004,eevil,Section 1,,,\r\n'
    '"Student, Test",99999,,0123456789abcdef0123456789abcdef01234567,Section 1,,,\r\n')

# Moodle grade export (grade/export, default user fields; see tests/test_roster.py).
MOODLE_EXPORT = ("First name,Last name,ID number,Institution,Department,Email address,Username\n"
                 "Jane,Doe,m001,Uni,Physics,jane@example.edu,jdoe\n"
                 "John,Smith,m002,Uni,Physics,john@example.edu,jsmith\n"
                 "Ann,Lee,,Uni,Physics,+ann@example.edu,alee\n")


def parse(text):
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture
def canvas(tmp_path):
    path = tmp_path / "canvas-export.csv"
    path.write_text(CANVAS_EXPORT, encoding="utf-8")
    return read_roster(path)


@pytest.fixture
def moodle(tmp_path):
    path = tmp_path / "moodle-grades.csv"
    path.write_text(MOODLE_EXPORT, encoding="utf-8")
    return read_roster(path, id_column="Username")  # Ann has no ID number


# --- spreadsheet_safe: OWASP "CSV Injection", https://owasp.org/www-community/attacks/CSV_Injection
# (OWASP/www-community pages/attacks/CSV_Injection.md, commit 0e5e8f001bc2b6d5c8d09ca9b1700c4643296a82):
# no cell may begin with = + - @ tab CR LF; or: quote every cell, prepend a single quote, double the quotes.
@pytest.mark.parametrize("value, safe", [
    ("=1+2", "'=1+2"), ("+cmd", "'+cmd"), ("-2+3", "'-2+3"), ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("\n=1", "'\n=1"), ("-", "'-"),
    ("\uff1d1+2", "'\uff1d1+2"), ("\uff0bcmd", "'\uff0bcmd"), ("\uff20x", "'\uff20x"),  # full width: not in OWASP
    ("-1.5", "-1.5"), ("10", "10"), ("+3", "+3"), ("1e-07", "1e-07"), (".5", ".5"),
    ("a\x00b\x07c", "abc"), ("\x00=1", "'=1"), ("line\nbreak\tand tab", "line\nbreak\tand tab"),
    ("Doe, Jane", "Doe, Jane"), (None, ""), (-2.5, "-2.5"),
])
def test_spreadsheet_safe(value, safe):
    assert spreadsheet_safe(value) == safe


def test_owasp_examples_through_a_writer(moodle):
    # OWASP's two examples: `=1+2";=1+2` -> `"'=1+2"";=1+2"` and `=1+2'" ;,=1+2` -> `"'=1+2'"" ;,=1+2"`.
    text = moodle_grades_csv(moodle, {"jdoe": 1, "jsmith": 2}, {"jdoe": '=1+2";=1+2', "jsmith": "=1+2'\" ;,=1+2"},
                             identifier_column="ID number")
    lines = text.split("\r\n")
    assert lines[1].endswith(',"\'=1+2"";=1+2"') and lines[2].endswith(',"\'=1+2\'"" ;,=1+2"')


@pytest.mark.parametrize("value, text", [(9.5, "9.5"), (10.0, "10"), (10, "10"), (1e-7, "0.0000001"),
                                         (1e21, "1000000000000000000000"), (-0.0, "0"),
                                         (0.1 + 0.2, "0.30000000000000004")])
def test_format_number(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize("value", [True, float("nan"), float("inf"), "9.5"])
def test_format_number_refuses(value):
    with pytest.raises(ValueError):
        format_number(value)


# --- Canvas: app/models/gradebook_importer.rb (canvas-lms, as stored in the search index; commit not shown)
# row_has_student_headers?: row[0] includes "Student", row[1] includes "ID"; header?: the last student
# column includes "Section"; update_column_count: SIS User ID then SIS Login ID, then Integration ID, Root
# Account; check_for_non_student_row: a row whose first cell includes "Points Possible" sets points; parse_
# assignments: Assignment.title_and_id /\A(.*)\s\((\d+)\)\z/ finds the assignment by id, else by exact title,
# else creates it; NON_ASSIGNMENT_COLUMN_HEADERS are dropped wherever they appear in a title.
def test_canvas_csv_follows_the_importer_rules(canvas):
    text = canvas_gradebook_csv(canvas, {"S001": 9.5, "S002": 7.0, "S003": None}, assignment_title="VAE lab",
                                points_possible=10)
    rows = parse(text)
    header, points, students = rows[0], rows[1], rows[2:]
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "VAE lab (4711)"]
    assert "Student" in header[0] and "ID" in header[1] and "Section" in header[4]
    assert points == ["    Points Possible", "", "", "", "", "10"]
    # no test student, and no one without a mark: a blank cell would remove the grade Canvas has for them
    assert [row[1] for row in students] == ["12345", "12346"]
    assert [row[-1] for row in students] == ["9.5", "7"]
    assert text.endswith("\r\n") and text.startswith('"Student","ID"')  # every cell quoted (OWASP)


def test_canvas_new_assignment_title_and_explicit_id(canvas):
    header = parse(canvas_gradebook_csv(canvas, {}, assignment_title="Experiment II", points_possible=10))[0]
    assert header[-1] == "Experiment II"  # no "(id)": Canvas creates it (or takes the one of that exact title)
    header = parse(canvas_gradebook_csv(canvas, {}, assignment_title="Lab (99)", points_possible=10))[0]
    assert header[-1] == "Lab (99)"


@pytest.mark.parametrize("title", ["Final Grade of the lab", "Current Score", "Section", ""])
def test_canvas_titles_the_importer_would_misread(canvas, title):
    with pytest.raises(RosterError):
        canvas_gradebook_csv(canvas, {}, assignment_title=title, points_possible=10)


def test_canvas_points_possible_must_be_a_number_of_zero_or_more(canvas):
    for points in (-1, float("nan"), "10"):
        with pytest.raises(RosterError, match="points possible"):
            canvas_gradebook_csv(canvas, {}, assignment_title="VAE lab", points_possible=points)


def test_canvas_columns_in_the_importers_order_from_any_canvas_roster(canvas):
    # a roster rebuilt elsewhere (vae-lab's assignments file) with the Canvas columns shuffled and extra ones
    shuffled = dataclasses.replace(canvas, identity_columns=("Section", "roster_kind", "SIS User ID", "ID",
                                                             "Student"))
    header = parse(canvas_gradebook_csv(shuffled, {}, assignment_title="VAE lab", points_possible=1))[0]
    assert header == ["Student", "ID", "Section", "VAE lab (4711)"]  # SIS User ID needs SIS Login ID after it
    with pytest.raises(RosterError, match="lacks Canvas's student columns"):
        canvas_gradebook_csv(dataclasses.replace(canvas, identity_columns=("Student", "ID")), {},
                             assignment_title="VAE lab", points_possible=1)


def test_canvas_needs_a_canvas_roster(moodle):
    with pytest.raises(RosterError, match="Canvas export as the roster"):
        canvas_gradebook_csv(moodle, {}, assignment_title="VAE lab", points_possible=10)


def test_canvas_marks_for_unknown_students_or_not_numbers(canvas):
    with pytest.raises(RosterError, match="not on the roster: S999"):
        canvas_gradebook_csv(canvas, {"S999": 1.0}, assignment_title="VAE lab", points_possible=10)
    with pytest.raises(RosterError, match="S001: a mark must be a finite number"):
        canvas_gradebook_csv(canvas, {"S001": float("nan")}, assignment_title="VAE lab", points_possible=10)


def test_canvas_round_trip(canvas, tmp_path):
    """A Canvas export -> roster -> marks -> import file: the student rows and ids are the export's own."""
    marks = {student: float(number) for number, student in enumerate(canvas.student_ids(), start=6)}
    text = canvas_gradebook_csv(canvas, marks, assignment_title="VAE lab", points_possible=10)
    exported = [row for row in parse(CANVAS_EXPORT)[2:] if row[0] != "Student, Test"]
    written = parse(text)[2:]
    assert [row[:5] for row in written[:2]] == [row[:5] for row in exported[:2]]
    assert [row[0] for row in written[2:]] == ["'@Lee, Ann", "'=\"=Evil, Eve\""]  # names that start a formula
    assert [row[1:5] for row in written] == [row[1:5] for row in exported]  # ids as exported: Canvas matches by ID
    path = tmp_path / "import.csv"
    path.write_text(text, encoding="utf-8")
    again = read_roster(path)  # the file we write is itself a Canvas gradebook file
    assert again.kind == "canvas" and again.student_ids() == canvas.student_ids()
    assert [row["VAE lab (4711)"] for row in again.rows] == ["6", "7", "8", "9"]
    assert again.points_possible["VAE lab (4711)"] == "10"


def test_canvas_semicolon_export_comes_back_with_commas(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(("\ufeffStudent;ID;SIS Login ID;Section;VAE lab (4711)\r\n    Points Possible;;;;10,00\r\n"
                      '"Doe, Jane";12345;jdoe;Section 1;\r\n').encode())
    roster = read_roster(path)
    rows = parse(canvas_gradebook_csv(roster, {"12345": 8.25}, assignment_title="VAE lab", points_possible=10.5))
    assert rows == [["Student", "ID", "SIS Login ID", "Section", "VAE lab (4711)"],
                    ["    Points Possible", "", "", "", "10.5"], ["Doe, Jane", "12345", "jdoe", "Section 1", "8.25"]]


# --- Moodle: grade/import/csv/classes/load_data.php (moodle/moodle, commit 0289d8c7665458f8ffc47e34527598e15523f104):
# map_user_data_with_value: userid / useridnumber / useremail / username identify the row, "feedback_<id>"
# maps a column to an item's feedback; update_grade_item: '' or '-' is no grade, else unformat_float;
# prepare_import_grade_data skips lines with one field and keeps $this->studentid from the line before when
# the identifier is blank. docs.moodle.org (Grade import): import feedback and grades together.
def test_moodle_csv(moodle):
    text = moodle_grades_csv(moodle, {"jdoe": 8.5, "jsmith": None}, {"jdoe": "- good figures\nand prose"},
                             identifier_column="ID number", grade_title="VAE lab")
    assert parse(text) == [["ID number", "VAE lab", "VAE lab (Feedback)"],
                           ["m001", "8.5", "'- good figures\nand prose"]]


def test_moodle_identifier_columns(moodle):
    text = moodle_grades_csv(moodle, {"jdoe": 1.25, "jsmith": 3}, {}, identifier_column="Username")
    assert [row[:2] for row in parse(text)] == [["Username", "vae-lab lab"], ["jdoe", "1.25"], ["jsmith", "3"]]
    with pytest.raises(RosterError, match="maps to no Moodle user field"):
        moodle_grades_csv(moodle, {}, {}, identifier_column="Department")
    with pytest.raises(RosterError, match="not in the roster"):
        moodle_grades_csv(moodle, {}, {}, identifier_column="Matrikel")


def test_moodle_identifier_default(moodle, canvas, tmp_path):
    assert parse(moodle_grades_csv(moodle, {"jdoe": 1, "jsmith": 2}, {}))[0][0] == "Username"  # the id column
    path = tmp_path / "grades.csv"
    path.write_text(MOODLE_EXPORT.replace("+ann@", "ann@"), encoding="utf-8")  # an id can't start like a formula
    by_email = read_roster(path, id_column="Email address")
    assert parse(moodle_grades_csv(by_email, {"jane@example.edu": 1}, {}))[0][0] == "Email address"
    by_name = read_roster(path, id_column="Last name")  # not a Moodle user field: the first complete one
    assert parse(moodle_grades_csv(by_name, {"Doe": 1}, {}))[1][0] == "m001"
    with pytest.raises(RosterError, match="no roster column"):
        moodle_grades_csv(canvas, {"S001": 1}, {})


def test_moodle_refuses_rows_it_would_misfile(tmp_path):
    path = tmp_path / "grades.csv"
    path.write_text(MOODLE_EXPORT.replace("m002", "M001"), encoding="utf-8")
    roster = read_roster(path, id_column="Username")
    with pytest.raises(RosterError) as caught:
        moodle_grades_csv(roster, {"jdoe": 1, "jsmith": 2, "alee": 3}, {}, identifier_column="ID number")
    assert "alee has no ID number" in str(caught.value) and "share the ID number" in str(caught.value)
    with pytest.raises(RosterError, match="starts like a formula"):
        moodle_grades_csv(roster, {"alee": 3}, {}, identifier_column="Email address")


# --- feedback files ------------------------------------------------------------------------------------------

def canvas_infers(file_name):
    """Canvas's Assignment#infer_comment_context_from_filename, transcribed: the first two all-digit tokens."""
    tokens = file_name.split("_")
    user_id, attachment_id = [token for token in tokens if re.fullmatch(r"\d+", token)][:2]
    if tokens[-1].startswith("link") or file_name.startswith("._"):
        attachment_id = None
    return user_id, attachment_id


def moodle_finds(path):
    """Moodle's assignfeedback_file_zip_importer::is_valid_filename_for_import, transcribed."""
    if path.rsplit("/", 1)[-1].startswith((".", "~")):
        return None
    parts = path.split("/")
    while parts:
        info = parts.pop(0).split("_", 4)
        if len(info) < 4 or not info[1].isdigit():
            continue
        rest = info[4] if len(info) == 5 else ""
        return info[1], info[2], info[3], "/".join([rest] + parts)
    return None


def test_feedback_file_names_are_placed_by_the_lms(tmp_path):
    canvas_zip = tmp_path / "submissions.zip"
    with zipfile.ZipFile(canvas_zip, "w") as archive:
        for name in ("doejane_LATE_12345_67890_lab_2.ipynb", "smithjohn_12346_67891_link.ipynb"):
            archive.writestr(name, NOTEBOOK)
    moodle_zip = tmp_path / "moodle.zip"
    with zipfile.ZipFile(moodle_zip, "w") as archive:
        archive.writestr("Jane Doe_1001_assignsubmission_file/lab.ipynb", NOTEBOOK)
        archive.writestr("John Smith_1002_assignsubmission_file_lab.ipynb", NOTEBOOK)
    hand_ins, _ = collect([canvas_zip, moodle_zip])
    names = {hand_in.label: feedback_file_name(hand_in, "sid") for hand_in in hand_ins}
    assert names == {
        "submissions.zip: doejane_LATE_12345_67890_lab_2.ipynb": "doejane_LATE_12345_67890_lab_2_feedback.html",
        "submissions.zip: smithjohn_12346_67891_link.ipynb": "smithjohn_12346_67891_link_feedback.html",
        "moodle.zip: Jane Doe_1001_assignsubmission_file/lab.ipynb":
            "Jane Doe_1001_assignsubmission_file_/lab_feedback.html",
        "moodle.zip: John Smith_1002_assignsubmission_file_lab.ipynb":
            "John Smith_1002_assignsubmission_file_/lab_feedback.html"}
    assert canvas_infers(names["submissions.zip: doejane_LATE_12345_67890_lab_2.ipynb"]) == ("12345", "67890")
    assert canvas_infers(names["submissions.zip: smithjohn_12346_67891_link.ipynb"]) == ("12346", "67891")
    assert moodle_finds(names["moodle.zip: Jane Doe_1001_assignsubmission_file/lab.ipynb"]) == (
        "1001", "assignsubmission", "file", "/lab_feedback.html")
    assert moodle_finds(names["moodle.zip: John Smith_1002_assignsubmission_file_lab.ipynb"])[0] == "1002"


def test_a_long_moodle_name_keeps_the_part_moodle_reads(tmp_path):
    """The feedback path is cut to 150 bytes a part: the name is shortened, never the participant and plugin."""
    from vae_lab.course.class_report import feedback_names

    moodle_zip = tmp_path / "moodle.zip"
    long_name = "Maria " + "Ñandú" * 40 + " García"
    with zipfile.ZipFile(moodle_zip, "w") as archive:
        archive.writestr(f"{long_name}_1001_assignsubmission_file/lab.ipynb", NOTEBOOK)
        archive.writestr("anon_aB3xK_681_lab.ipynb", NOTEBOOK)
    hand_ins, _ = collect([moodle_zip])
    graded = [SimpleNamespace(student_id="s01", file_name="lab.ipynb", label=hand_in.label, hand_in=hand_in)
              for hand_in in hand_ins]
    names = feedback_names(graded)
    folder = next(name for name in names.values() if "assignsubmission" in name).split("/")[0]
    assert len(folder.encode("utf-8")) <= 150 and folder.startswith("Maria Ñandú")
    assert moodle_finds(f"{folder}/lab_feedback.html")[:3] == ("1001", "assignsubmission", "file")


def test_moodle_feedback_is_escaped_for_its_html(moodle):
    """Moodle shows the Feedback column as HTML: a quoted '<b>' of a student's must stay text."""
    text = moodle_grades_csv(moodle, {"jdoe": 7}, {"jdoe": "prose: quotes '<b>150</b>' & more"},
                             identifier_column="Username")
    assert "prose: quotes '&lt;b&gt;150&lt;/b&gt;' &amp; more" in text


def test_feedback_file_names_elsewhere(tmp_path):
    folder = tmp_path / "course" / "submitted" / "alice" / "ps1"
    folder.mkdir(parents=True)
    (folder / "lab.ipynb").write_bytes(NOTEBOOK)
    plain = tmp_path / "s01.ipynb"
    plain.write_bytes(NOTEBOOK)
    (nbgrader, other), _ = collect([tmp_path / "course", plain])
    assert feedback_file_name(nbgrader, "alice") == "alice/ps1/lab.html"  # nbgrader's feedback/<student>/<assignment>
    assert feedback_file_name(other, "s01") == "s01/s01_feedback.html"


def test_modules_load_nothing_heavy_and_run_nothing_at_import():
    code = ("import sys, vae_lab.course.roster, vae_lab.course.lms, vae_lab.course.exports; "
            "print(sorted(name for name in ('tensorflow', 'keras', 'nbformat', 'numpy') if name in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
