"""Rosters straight from the LMS: recognised by their header, every problem reported at once, nothing written."""

import codecs
import os
import re

import pytest

from vae_lab.course.roster import RosterError, check_student_id, read_roster

# instructure/canvas-lms lib/gradebook_exporter.rb (commit 0140a2effa6366ea3b73aeefa4bbc384b943934f):
# header "Student", "ID", "SIS User ID" (with include_sis_id), "SIS Login ID", "Integration ID" (with the
# account setting), "Root Account" (trusted accounts), "Section", custom columns, then `title_with_id`
# ("VAE lab (4711)") and the totals. A "Manual Posting" row when an assignment posts manually, then
# ["    Points Possible", nil, ...] (four spaces), then students by sortable name; StudentViewEnrollment rows
# last. The test student is "Test Student" (sortable "Student, Test"), with a login
# Canvas::Security.hmac_sha1("Test Student_<id>") (40 hex digits) and no SIS id
# (lib/data_fixup/add_pseudonym_to_student_view_students.rb, app/models/course.rb).
CANVAS_EXPORT = (
    "Student,ID,SIS User ID,SIS Login ID,Section,VAE lab (4711),Current Score,Unposted Current Score,"
    "Final Score,Unposted Final Score\r\n"
    "    Points Possible,,,,,10.00,(read only),(read only),(read only),(read only)\r\n"
    '"Doe, Jane",12345,S001,jdoe,Section 1,8.50,85.00,85.00,85.00,85.00\r\n'
    '"Smith, John",12346,S002,jsmith,Section 1,,,,,\r\n'
    '"Student, Test",99999,,0123456789abcdef0123456789abcdef01234567,Section 1,,,,,\r\n')

# The same with the account's Integration ID column, a Manual Posting row, and the user settings "use
# semicolons" and "include byte-order mark" (lib/csv_with_i18n.rb, commit 06763dd5190da4e2db2439e1637fc8804ff34ec8);
# with semicolons Canvas also writes numbers in the locale's form ("10,00"), which its importer reads back.
CANVAS_EXPORT_SEMICOLONS = (
    "Student;ID;SIS User ID;SIS Login ID;Integration ID;Section;VAE lab (4711)\r\n"
    ";;;;;;Manual Posting\r\n"
    "    Points Possible;;;;;;10,00\r\n"
    '"Doe, Jane";12345;;jdoe;int-1;Section 1;8,50\r\n'
    '"Smith, John";12346;S002;jsmith;int-2;Section 1;\r\n')

# Moodle grade export (grade/export/lib.php; default fields from admin/settings/grades.php
# "firstname,lastname,idnumber,institution,department,email"; column "{$a->name} ({$a->extra})" from
# lang/en/grades.php gradeexportcolumntype; the last column is gradeexport_txt's timeexported string).
MOODLE_EXPORT = ("First name,Last name,ID number,Institution,Department,Email address,"
                 "Assignment: VAE lab (Real),Last downloaded from this course\n"
                 "Jane,Doe,m001,Uni,Physics,jane@example.edu,-,1767225600\n"
                 "John,Smith,,Uni,Physics,john@example.edu,-,1767225600\n")


def write(tmp_path, text, name="roster.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def snapshot(folder):
    return sorted((entry.name, entry.stat().st_mtime_ns, entry.stat().st_size) for entry in os.scandir(folder))


def test_vae_lab_roster(tmp_path):
    roster = read_roster(write(tmp_path, "student_id,name\n s01 ,Ada\ns02,Alan\n"))
    assert (roster.kind, roster.id_column, roster.header) == ("vae-lab", "student_id", ("student_id", "name"))
    assert roster.rows == ({"student_id": "s01", "name": "Ada"}, {"student_id": "s02", "name": "Alan"})
    assert roster.points_possible is None and roster.identity_columns == ("student_id",)


def test_canvas_export(tmp_path):
    roster = read_roster(write(tmp_path, CANVAS_EXPORT))
    assert (roster.kind, roster.id_column, roster.student_ids()) == ("canvas", "SIS User ID", ("S001", "S002"))
    assert roster.points_possible["VAE lab (4711)"] == "10.00"
    assert roster.points_possible["Student"] == "    Points Possible"
    assert roster.identity_columns == ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
    assert roster.rows[0]["Student"] == "Doe, Jane" and roster.rows[0]["VAE lab (4711)"] == "8.50"
    assert all(row["Student"] != "Student, Test" for row in roster.rows)


def test_canvas_semicolons_bom_integration_id_and_manual_posting(tmp_path):
    roster = read_roster(write(tmp_path, CANVAS_EXPORT_SEMICOLONS, encoding="utf-8-sig"))
    assert roster.delimiter == ";" and roster.encoding == "utf-8-sig"
    assert roster.identity_columns == ("Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID", "Section")
    assert roster.id_column == "ID"  # Jane has no SIS User ID, so Canvas's own user id is the default
    assert roster.student_ids() == ("12345", "12346") and roster.points_possible["VAE lab (4711)"] == "10,00"


def test_canvas_id_column_chosen(tmp_path):
    roster = read_roster(write(tmp_path, CANVAS_EXPORT), id_column="SIS Login ID")
    assert roster.student_ids() == ("jdoe", "jsmith")


def test_a_real_student_named_test_student_is_kept(tmp_path):
    text = CANVAS_EXPORT.replace(",,0123456789abcdef0123456789abcdef01234567,", ",S099,tstudent,")
    assert read_roster(write(tmp_path, text)).student_ids() == ("S001", "S002", "S099")


def test_moodle_export(tmp_path):
    roster = read_roster(write(tmp_path, MOODLE_EXPORT))
    assert roster.kind == "moodle" and roster.id_column == "Email address"  # John has no ID number
    assert roster.student_ids() == ("jane@example.edu", "john@example.edu")
    assert roster.identity_columns == ("First name", "Last name", "ID number", "Institution", "Department",
                                       "Email address")
    full = read_roster(write(tmp_path, MOODLE_EXPORT.replace(",,Uni", ",m002,Uni")))
    assert full.id_column == "ID number" and full.student_ids() == ("m001", "m002")


def test_moodle_id_number_required_when_chosen(tmp_path):
    with pytest.raises(RosterError, match="line 3: ID number '' is empty"):
        read_roster(write(tmp_path, MOODLE_EXPORT), id_column="ID number")


def test_unknown_id_column(tmp_path):
    with pytest.raises(RosterError, match="--id-column 'Matrikel' is not a column"):
        read_roster(write(tmp_path, MOODLE_EXPORT), id_column="Matrikel")


def test_every_problem_at_once_and_nothing_written(tmp_path):
    rows = ["", "bad id", ".hidden", "-flag", "x" * 129, "assignments", "CON", "dup", "dup", "Case", "case",
            "trailing.", "ok1"]
    text = "student_id,name\n" + "".join(f"{student},n\n" for student in rows) + "ragged,a,b\nok2,fine\n"
    path = write(tmp_path, text)
    before = snapshot(tmp_path)
    with pytest.raises(RosterError) as caught:
        read_roster(path)
    message = str(caught.value)
    assert len(re.findall(r"line \d+:", message)) == 10 and "11 problems" in message and "and 1 more" in message
    assert "line 15" not in message  # in line order: the ragged row is the 11th problem
    assert "line 2: student_id '' is empty" in message and "nothing was written" in message
    assert snapshot(tmp_path) == before
    listed = [problem for problem in message.split("; ")]
    assert any("repeats line 9" in problem for problem in listed)
    assert any("only in case" in problem for problem in listed)


def test_ragged_row_names_its_line(tmp_path):
    with pytest.raises(RosterError, match=r"line 3: 3 fields where the header has 2 \(an unquoted ','"):
        read_roster(write(tmp_path, "student_id,name\ns01,Ada\ns02,Lovelace, Ada\n"))


def test_encodings(tmp_path):
    with_bom = read_roster(write(tmp_path, "student_id,name\ns01,Jürgen\n", encoding="utf-8-sig"))
    assert with_bom.rows[0]["name"] == "Jürgen" and with_bom.header == ("student_id", "name")
    utf16 = read_roster(write(tmp_path, "student_id\tname\ns01\tJürgen\n", encoding="utf-16"))  # Excel "Unicode Text"
    assert utf16.delimiter == "\t" and utf16.rows[0]["name"] == "Jürgen"
    with pytest.raises(RosterError, match="not UTF-8.*CSV UTF-8"):
        read_roster(write(tmp_path, "student_id,name\ns01,Jürgen\n", encoding="cp1252"))
    assert codecs.BOM_UTF8 not in "".join(read_roster(write(tmp_path, "\ufeffstudent_id\ns01\n")).header).encode()


def test_unrecognised_header_and_empty_file(tmp_path):
    with pytest.raises(RosterError, match="not a vae-lab roster"):
        read_roster(write(tmp_path, "name,mail\nAda,a@x\n"))
    with pytest.raises(RosterError, match="empty"):
        read_roster(write(tmp_path, ""))
    with pytest.raises(RosterError, match="no students"):
        read_roster(write(tmp_path, "student_id\n"))


def test_check_student_id():
    assert check_student_id("jane.doe+lab@example.edu") is None and check_student_id("s_01") is None
    assert "128" in check_student_id("x" * 129) and check_student_id("x" * 128) is None
    assert "reserved" in check_student_id("Assignments") and "reserved" in check_student_id("nul")
    for bad in (".x", "-x", "a/b", "a\\b", "x.", "a b", "é"):
        assert "not safe" in check_student_id(bad)


def test_header_names_with_stray_spaces_are_read(tmp_path):
    assert read_roster(write(tmp_path, "student_id ,name\ns01,Ada\n")).student_ids() == ("s01",)
    spaced = MOODLE_EXPORT.replace(",ID number,", ",ID number ,").replace(",,Uni", ",m002,Uni")
    assert read_roster(write(tmp_path, spaced)).student_ids() == ("m001", "m002")


def test_an_own_student_id_column_wins_over_moodle_like_columns(tmp_path):
    roster = read_roster(write(tmp_path, "student_id,First name,Last name,ID number,Email address\n"
                                         "s01,Ada,Lovelace,1001,ada@uni.example\n"))
    assert (roster.kind, roster.id_column, roster.student_ids()) == ("vae-lab", "student_id", ("s01",))


def test_a_moodle_course_assigned_by_another_id_column_is_graded_by_it(tmp_path, capsys):
    """assign --id-column 'Email address', then grade: the assignments file keeps the e-mail ids (before, it was
    read back by ID number and every seed looked forged)."""
    from vae_lab.cli import main
    from vae_lab.course.assign import check_seeds, load_or_create_key, read_assignments

    roster = write(tmp_path, MOODLE_EXPORT.replace(",,Uni", ",m002,Uni"))
    assert main(["assign", str(roster), "--out", str(tmp_path / "course"), "--id-column", "Email address"]) == 0
    assignments, _ = read_assignments(tmp_path / "course" / "assignments.csv")
    assert sorted(assignments) == ["jane@example.edu", "john@example.edu"]
    check_seeds(assignments, load_or_create_key(tmp_path / "course" / "course.key"))  # raises if forged


def test_assigning_again_for_a_late_student_names_the_new_notebook(tmp_path, capsys):
    # "9 notebooks … (hand these out)" left the instructor to find which one was new (a hunt, 2026-12-06)
    from vae_lab.course.assign import assign_command

    roster = tmp_path / "roster.csv"
    roster.write_text("student_id\ns01\ns02\n")
    assign_command(roster, tmp_path / "course", epochs=1)
    assert "2 notebooks in" in capsys.readouterr().out
    roster.write_text("student_id\ns01\ns02\ns03\n")
    assign_command(roster, tmp_path / "course", epochs=1)
    out = capsys.readouterr().out
    assert "new since the last assign: s03.ipynb (hand these out; the others are unchanged)" in out
    assign_command(roster, tmp_path / "course", epochs=1)
    assert "new since the last assign: none" in capsys.readouterr().out
