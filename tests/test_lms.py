"""Hand-ins as Canvas, Moodle, Gradescope and nbgrader deliver them, and every way a zip or a path is refused.

Each fixture is built the way its LMS names its files, from the LMS's own source where it is public; the
comment beside it says where, and what the source leaves open. Notebooks are a few bytes of JSON: nothing
here executes or even parses one.
"""

import hashlib
import os
import stat
import struct
import zipfile
import zlib
from datetime import datetime, timezone

import pytest

from vae_lab.course.lms import (HandInUnreadable, Limits, collect, match_student, newest_per_student,
                                parse_gradescope_metadata, parse_timestamp, read_regular_file)
from vae_lab.course.roster import read_roster

NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def notebook(tag):
    return NOTEBOOK.replace(b"[]", b'[{"cell_type": "markdown", "metadata": {}, "source": "%s"}]' % tag.encode())


def make_zip(path, entries):
    """A zip through Python's zipfile (UTF-8 names get flag 0x800, as Moodle's ZipStream writer sets it)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def raw_zip(path, entries):
    """A zip written byte by byte, for what zipfile won't write: unflagged UTF-8 or CP437 names, lying sizes,
    symlink and encrypted entries. Each entry: name (bytes), data, and optionally flags, external_attr,
    create_system, declared_size, extra, deflate."""
    body, central = bytearray(), bytearray()
    for entry in entries:
        name, data, extra = entry["name"], entry["data"], entry.get("extra", b"")
        if entry.get("deflate", True):
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            packed, method = packer.compress(data) + packer.flush(), 8
        else:
            packed, method = data, 0
        crc, size, flags = zlib.crc32(data), entry.get("declared_size", len(data)), entry.get("flags", 0)
        offset = len(body)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(packed), size,
                            len(name), len(extra)) + name + extra + packed
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", (entry.get("create_system", 3) << 8) | 20, 20, flags,
                               method, 0, 0x21, crc, len(packed), size, len(name), len(extra), 0, 0, 0,
                               entry.get("external_attr", 0o100644 << 16), offset) + name + extra
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(body), 0)
    path.write_bytes(bytes(body + central + end))
    return path


def by_name(hand_ins):
    return {hand_in.file_name: hand_in for hand_in in hand_ins}


def reasons(refusals):
    return {refusal.label: refusal.reason for refusal in refusals}


# --- Canvas -------------------------------------------------------------------------------------------------

# instructure/canvas-lms lib/content_zipper.rb (commit 05e9653c12ef7afc65815ca84e5da7aa2e4c3bd3):
#   get_filename: [sortable name downcased, `_(\d+)_` collapsed, "LATE" if late, user id].join("_"), then
#   every non-word character removed; add_upload_submission: "#{filename}_#{attachment.id}_#{display_name}";
#   anonymous grading puts "anon_#{anonymous_id}" where the name and user id were.
# app/models/attachment.rb make_unique_filename: a file uploaded again under the same name is "lab-1.ipynb"
#   ... "-7", then a random UUID; the zip holds the current submission's files only, so the suffix is the only
#   trace of a resubmission. (Whether "-N" always means an upload order is not documented: Canvas adds it on a
#   name clash in the student's files; it is read as attempt N+1 and nothing more.)
# The zip's entries carry no submission time Canvas documents (rubyzip stamps them when zipping): None.
CANVAS_ENTRIES = {
    "doejane_12345_67890_s01.ipynb": notebook("jane"),
    "smithjohn_LATE_12346_67891_lab.ipynb": notebook("john first"),
    "smithjohn_LATE_12346_67892_lab-1.ipynb": notebook("john again"),
    "doejane_12345_text.html": b"<p>online text entry</p>",  # add_text_or_url: "#{called}_text.html"
    "anon_a1b2c_67894_lab.ipynb": notebook("anonymous"),
}

# A Canvas gradebook export (lib/gradebook_exporter.rb, commit 0140a2effa6366ea3b73aeefa4bbc384b943934f):
# "Student, ID, SIS User ID, SIS Login ID, Section", assignments as "title (id)", "    Points Possible".
CANVAS_EXPORT = (
    "Student,ID,SIS User ID,SIS Login ID,Section,VAE lab (4711),Current Score,Unposted Current Score,"
    "Final Score,Unposted Final Score\r\n"
    "    Points Possible,,,,,10.00,(read only),(read only),(read only),(read only)\r\n"
    '"Doe, Jane",12345,S001,jdoe,Section 1,,,,,\r\n'
    '"Smith, John",12346,S002,jsmith,Section 1,,,,,\r\n'
    '"Müller, Jürgen",12347,S003,jmueller,Section 1,,,,,\r\n'
    '"Student, Test",99999,,0123456789abcdef0123456789abcdef01234567,Section 1,,,,,\r\n')


@pytest.fixture
def canvas_roster(tmp_path):
    path = tmp_path / "canvas-export.csv"
    path.write_text(CANVAS_EXPORT, encoding="utf-8")
    return read_roster(path)


def test_canvas_zip_identity_late_and_attempt(tmp_path, canvas_roster):
    hand_ins, refusals = collect([make_zip(tmp_path / "submissions.zip", CANVAS_ENTRIES)])
    found = {hand_in.label: hand_in for hand_in in hand_ins}
    jane = found["submissions.zip: doejane_12345_67890_s01.ipynb"]
    assert (jane.lms, jane.file_name, jane.late, jane.attempt, jane.submitted_at) == ("canvas", "s01.ipynb",
                                                                                      False, 1, None)
    assert jane.identity == {"canvas_user_id": "12345", "canvas_attachment_id": "67890",
                             "canvas_sortable_name": "doejane", "canvas_file_prefix": "doejane_12345_67890"}
    john = found["submissions.zip: smithjohn_LATE_12346_67892_lab-1.ipynb"]
    assert (john.late, john.attempt, john.identity["canvas_user_id"]) == (True, 2, "12346")
    assert found["submissions.zip: anon_a1b2c_67894_lab.ipynb"].identity["canvas_anonymous_id"] == "a1b2c"
    assert [(refusal.label, refusal.ignored) for refusal in refusals] == [
        ("submissions.zip: doejane_12345_text.html", True)]
    assert match_student(jane, canvas_roster) == ("S001", "Canvas user id 12345")
    student, note = match_student(found["submissions.zip: anon_a1b2c_67894_lab.ipynb"], canvas_roster)
    assert student is None and "anonymous" in note


def test_canvas_resubmission_newest_graded_others_listed(tmp_path, canvas_roster):
    hand_ins, _ = collect([make_zip(tmp_path / "submissions.zip", CANVAS_ENTRIES)])
    matched = [(match_student(hand_in, canvas_roster)[0], hand_in) for hand_in in hand_ins]
    newest, superseded = newest_per_student(matched)
    assert newest["S002"].file_name == "lab-1.ipynb" and newest["S002"].read() == notebook("john again")
    assert [(student, hand_in.file_name) for student, hand_in, _ in superseded] == [("S002", "lab.ipynb")]
    assert "older than" in superseded[0][2]
    assert set(newest) == {"S001", "S002"}  # the anonymous hand-in matched nobody


def test_canvas_unflagged_utf8_and_cp437_names(tmp_path, canvas_roster):
    # rubyzip, which Canvas zips with, sets no UTF-8 flag by default (Zip.unicode_names = false), so a
    # sanitised name keeps its UTF-8 bytes ([[:word:]] includes letters like ü) without bit 0x800.
    canvas_name = "müllerjürgen_12347_67895_übung.ipynb"
    path = raw_zip(tmp_path / "submissions.zip", [
        {"name": canvas_name.encode("utf-8"), "data": notebook("jürgen")},
        {"name": "Übung 2.ipynb".encode("cp437"), "data": notebook("cp437")},  # DOS-era archivers: CP437
        {"name": "grüße.ipynb".encode("utf-8"), "data": notebook("flagged"), "flags": 0x800},
        {"name": b"plain.ipynb", "data": notebook("info-zip"),  # Info-ZIP Unicode Path extra field (0x7075)
         "extra": struct.pack("<HHB", 0x7075, 5 + len("çà.ipynb".encode()), 1) + struct.pack(
             "<L", zlib.crc32(b"plain.ipynb")) + "çà.ipynb".encode()}])
    hand_ins, refusals = collect([path])
    names = by_name(hand_ins)
    assert set(names) == {"übung.ipynb", "Übung 2.ipynb", "grüße.ipynb", "çà.ipynb"} and not refusals
    assert names["übung.ipynb"].identity["canvas_sortable_name"] == "müllerjürgen"
    assert match_student(names["übung.ipynb"], canvas_roster)[0] == "S003"
    assert names["Übung 2.ipynb"].read() == notebook("cp437")


# --- Moodle -------------------------------------------------------------------------------------------------

# moodle/moodle mod/assign/classes/downloader.php (commit da5455238d1a24a0246b11f4b682b73664993c0b):
#   prefix = clean_filename(str_replace('_', ' ', fullname) . '_' . participant id); folders (the default
#   since 3.1): clean_filename($prefix . '_' . subtype . '_' . type) . filepath . filename; flat:
#   clean_filename($prefix . '_' . subtype . '_' . type . '_' . filename). Moodle 3.1-4.0 wrote the folder with
#   a trailing '_' (importziplib.php, commit 0203d8f26027201de1d7d1ec8d8aa3cdcc4f5d5d, reads both forms).
#   clean_filename is PARAM_FILE (lib/moodlelib.php): control characters and &<>"`|':\/ removed, so
#   "Seán O'Brien" becomes "Seán OBrien". Blind marking writes "Participant" for every name.
MOODLE_FOLDERS = {
    "Jane Doe_1001_assignsubmission_file/s01.ipynb": notebook("jane"),             # Moodle 4.1 on
    "John Smith_1002_assignsubmission_file_/lab.ipynb": notebook("john"),          # Moodle 3.1 to 4.0
    "Jane Doe_1001_assignsubmission_onlinetext/onlinetext.html": b"<p>text</p>",
    "Seán OBrien_1003_assignsubmission_file/work/lab.ipynb": notebook("sean"),
    "Ann Lee_1004_assignsubmission_file/lab.ipynb": notebook("which ann"),
}
MOODLE_FLAT = {
    "Jane Doe_1001_assignsubmission_file_s01.ipynb": notebook("jane"),
    "John Smith_1002_assignsubmission_file_lab_final.ipynb": notebook("john"),
}

# Moodle's grade export (grade/export; default user fields "firstname,lastname,idnumber,institution,
# department,email" from admin/settings/grades.php; labels from lang/en, not re-read here).
MOODLE_EXPORT = ("First name,Last name,ID number,Institution,Department,Email address,"
                 "Assignment: VAE lab (Real),Last downloaded from this course\n"
                 "Jane,Doe,m001,Uni,Physics,jane@example.edu,-,1767225600\n"
                 "John,Smith,m002,Uni,Physics,john@example.edu,-,1767225600\n"
                 "Seán,O'Brien,m003,Uni,Physics,sean@example.edu,-,1767225600\n"
                 "Ann,Lee,m004,Uni,Physics,ann1@example.edu,-,1767225600\n"
                 "Ann,Lee,m005,Uni,Physics,ann2@example.edu,-,1767225600\n")


@pytest.fixture
def moodle_roster(tmp_path):
    path = tmp_path / "moodle-grades.csv"
    path.write_text(MOODLE_EXPORT, encoding="utf-8")
    return read_roster(path)


def test_moodle_folders_both_versions(tmp_path, moodle_roster):
    hand_ins, refusals = collect([make_zip(tmp_path / "VAE-Lab-42.zip", MOODLE_FOLDERS)])
    found = {hand_in.label: hand_in for hand_in in hand_ins}
    jane = found["VAE-Lab-42.zip: Jane Doe_1001_assignsubmission_file/s01.ipynb"]
    assert (jane.lms, jane.file_name, jane.late, jane.attempt) == ("moodle", "s01.ipynb", None, 1)
    assert jane.identity == {"moodle_full_name": "Jane Doe", "moodle_participant_id": "1001",
                             "moodle_prefix": "Jane Doe_1001", "moodle_plugin": "assignsubmission_file"}
    john = found["VAE-Lab-42.zip: John Smith_1002_assignsubmission_file_/lab.ipynb"]
    sean = found["VAE-Lab-42.zip: Seán OBrien_1003_assignsubmission_file/work/lab.ipynb"]
    assert sean.file_name == "work/lab.ipynb"
    assert [match_student(item, moodle_roster)[0] for item in (jane, john, sean)] == ["m001", "m002", "m003"]
    student, note = match_student(found["VAE-Lab-42.zip: Ann Lee_1004_assignsubmission_file/lab.ipynb"],
                                  moodle_roster)
    assert student is None and "2 students" in note and "1004" in note
    assert [refusal.ignored for refusal in refusals] == [True]  # onlinetext.html


def test_moodle_flat_layout(tmp_path, moodle_roster):
    hand_ins, _ = collect([make_zip(tmp_path / "flat.zip", MOODLE_FLAT)])
    names = by_name(hand_ins)
    assert set(names) == {"s01.ipynb", "lab_final.ipynb"}
    assert names["lab_final.ipynb"].identity["moodle_participant_id"] == "1002"
    assert match_student(names["lab_final.ipynb"], moodle_roster)[0] == "m002"


def test_moodle_hand_in_needs_a_moodle_roster(tmp_path, canvas_roster):
    hand_ins, _ = collect([make_zip(tmp_path / "flat.zip", MOODLE_FLAT)])
    student, note = match_student(hand_ins[0], canvas_roster)
    assert student is None and "Moodle grades export" in note


# --- Gradescope ---------------------------------------------------------------------------------------------

# Gradescope documents no format for "Export Submissions" (its autograder docs describe a different file,
# /autograder/submission_metadata.json). The shape below follows public tools that read the export:
# "assignment_<id>_export/submission_metadata.yml" beside "submission_<id>/" folders, Ruby symbol keys,
# ":submitters:" with ":name:", ":sid:" (quoted or not), ":email:", Ruby timestamps ("... Z" or "-07:00"),
# ":history:" of earlier submissions, and ":results:" holding autograder output as block scalars.
GRADESCOPE_METADATA = """\
submission_101:
  :submitters:
  - :name: Jane Doe
    :sid: 'S001'
    :email: jane@example.edu
  :created_at: 2026-04-26 17:34:00.861687000 Z
  :score: 2.0
  :history:
  - :created_at: 2026-04-25 10:00:00.000000000 -07:00
    :score: 1.0
  :results:
    score: 2.0
    output: |-
      :submitters:
      - :name: Mallory
        :sid: 'S002'
submission_102:
  :submitters:
  - :name: Alice A
    :sid: '111'
    :email: alice@example.edu
  - :name: Bob B
    :sid: 222
    :email: bob@example.edu
  :created_at: 2026-04-26 18:00:00.000000000 -07:00
submission_103:
  :submitters:
  - :name: John Smith
    :email: JSmith@Example.edu
  :created_at: 2026-04-26 19:00:00.000000000 -07:00
"""


@pytest.fixture
def plain_roster(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("student_id,name,email\nS001,Jane Doe,jane@example.edu\nS002,John Smith,jsmith@example.edu\n")
    return read_roster(path)


def test_gradescope_metadata_subset_ignores_autograder_output():
    parsed = parse_gradescope_metadata(GRADESCOPE_METADATA)
    assert parsed["submission_101"] == {
        "submitters": [{"name": "Jane Doe", "sid": "S001", "email": "jane@example.edu"}],
        "created_at": datetime(2026, 4, 26, 17, 34, 0, 861687, tzinfo=timezone.utc), "history": 1}
    assert [item["sid"] for item in parsed["submission_102"]["submitters"]] == ["111", "222"]
    assert parsed["submission_103"]["created_at"] == datetime(2026, 4, 27, 2, 0, tzinfo=timezone.utc)


def test_gradescope_export_zip(tmp_path, plain_roster):
    root = "assignment_7_export/"
    path = make_zip(tmp_path / "export.zip", {
        root + "submission_metadata.yml": GRADESCOPE_METADATA,
        root + "submission_101/lab.ipynb": notebook("jane"),
        root + "submission_102/lab.ipynb": notebook("pair"),
        root + "submission_103/nested/lab.ipynb": notebook("john"),
    })
    hand_ins, refusals = collect([path])
    found = {hand_in.identity["gradescope_submission"]: hand_in for hand_in in hand_ins}
    assert not refusals and set(found) == {"submission_101", "submission_102", "submission_103"}
    jane = found["submission_101"]
    assert (jane.lms, jane.file_name, jane.attempt, jane.identity["gradescope_sid"]) == (
        "gradescope", "lab.ipynb", 2, "S001")
    assert match_student(jane, plain_roster) == ("S001", "Gradescope SID S001")
    assert match_student(found["submission_103"], plain_roster)[0] == "S002"  # by email, case folded
    student, note = match_student(found["submission_102"], plain_roster)
    assert student is None and "group submission" in note and "Bob B" in note


# --- nbgrader -----------------------------------------------------------------------------------------------

# jupyter/nbgrader (commit 207a8e544968092c93af807cce6f002552c628fa): coursedir.py directory_structure
# "{nbgrader_step}/{student_id}/{assignment_id}"; exchange/abc/exchange.py timestamp_format
# "%Y-%m-%d %H:%M:%S.%f %Z" in timezone "UTC"; tests/apps/files/timestamp.txt is
# "2019-05-30 11:44:01.911849 UTC"; tests/apps/test_api.py also writes timestamp.isoformat() (no zone: UTC,
# as utils.parse_utc reads it).
def nbgrader_tree(root):
    for student, assignment, stamp in (("alice", "ps1", "2019-05-30 11:44:01.911849 UTC"),
                                       ("bob", "ps1", "2019-05-31T09:00:00"),
                                       ("bob", "ps0", "2019-05-01 08:00:00.000000 +0200")):
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        (folder / "lab.ipynb").write_bytes(notebook(f"{student} {assignment}"))
        (folder / "timestamp.txt").write_text(stamp)
        (folder / "submission_secret.txt").write_text("f" * 128)
        (folder / ".ipynb_checkpoints").mkdir()
        (folder / ".ipynb_checkpoints" / "lab-checkpoint.ipynb").write_bytes(notebook("checkpoint"))
    return root


def test_nbgrader_tree_folder_and_zipped(tmp_path):
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text("student_id\nalice\nbob\n")
    roster = read_roster(roster_path)
    course = nbgrader_tree(tmp_path / "course")
    zipped = make_zip(tmp_path / "course.zip", {
        str(path.relative_to(tmp_path)).replace(os.sep, "/"): path.read_bytes()
        for path in sorted(course.rglob("*")) if path.is_file()})
    for source in (course, zipped, course / "submitted"):
        hand_ins, refusals = collect([source])
        assert not refusals and len(hand_ins) == 3  # checkpoints, timestamps and secrets are not hand-ins
        found = {(item.identity["nbgrader_student"], item.identity["nbgrader_assignment"]): item
                 for item in hand_ins}
        assert found["alice", "ps1"].submitted_at == datetime(2019, 5, 30, 11, 44, 1, 911849, tzinfo=timezone.utc)
        assert found["bob", "ps0"].submitted_at == datetime(2019, 5, 1, 6, 0, tzinfo=timezone.utc)
        newest, superseded = newest_per_student([(match_student(item, roster)[0], item) for item in hand_ins])
        assert newest["bob"].identity["nbgrader_assignment"] == "ps1"  # the later timestamp
        assert [item.identity["nbgrader_assignment"] for _, item, _ in superseded] == ["ps0"]
    single, _ = collect([course / "submitted" / "alice" / "ps1" / "lab.ipynb"])
    assert single[0].lms == "nbgrader" and single[0].submitted_at.year == 2019


def test_a_class_folder_under_an_unrelated_submitted_directory_is_not_nbgrader(tmp_path):
    folder = tmp_path / "submitted" / "2024" / "term" / "handins"
    folder.mkdir(parents=True)
    (folder / "s01.ipynb").write_bytes(NOTEBOOK)
    hand_ins, _ = collect([folder])
    assert hand_ins[0].lms is None and hand_ins[0].label == "handins/s01.ipynb"


def test_timestamps():
    assert parse_timestamp("2019-05-30 11:44:01.911849 UTC") == datetime(2019, 5, 30, 11, 44, 1, 911849,
                                                                         tzinfo=timezone.utc)
    assert parse_timestamp("2026-04-26 17:34:00.861687000 -07:00").hour == 0
    assert parse_timestamp("2019-05-30 11:44:01 CEST") is None  # an abbreviation: ambiguous, not guessed
    assert parse_timestamp("yesterday") is None and parse_timestamp("2019-02-30 00:00:00") is None


# --- plain files and folders --------------------------------------------------------------------------------

def test_plain_folder_has_no_lms_identity(tmp_path, plain_roster):
    folder = tmp_path / "handed-in"
    folder.mkdir()
    (folder / "S001.ipynb").write_bytes(NOTEBOOK)
    (folder / "notes.txt").write_text("not a notebook")
    hand_ins, refusals = collect([folder])
    assert [(item.label, item.lms, item.identity, item.late) for item in hand_ins] == [
        ("handed-in/S001.ipynb", None, {}, None)]
    assert match_student(hand_ins[0], plain_roster)[0] is None
    assert [(refusal.label, refusal.ignored) for refusal in refusals] == [("handed-in/notes.txt", True)]


def test_read_computes_sha256_and_notices_a_change(tmp_path):
    path = tmp_path / "s01.ipynb"
    path.write_bytes(NOTEBOOK)
    (hand_in,), _ = collect([path])
    assert hand_in.sha256 is None
    assert hand_in.read() == NOTEBOOK
    assert hand_in.sha256 == hashlib.sha256(NOTEBOOK).hexdigest()
    path.write_bytes(NOTEBOOK + b" ")
    with pytest.raises(HandInUnreadable, match="changed"):
        hand_in.read()


# --- refusals: zips -----------------------------------------------------------------------------------------

def test_zip_absolute_paths_and_drive_letters_refused(tmp_path):
    path = make_zip(tmp_path / "evil.zip", {"/tmp/evil.ipynb": NOTEBOOK, "C:/evil.ipynb": NOTEBOOK,
                                            "\\\\server\\share\\evil.ipynb": NOTEBOOK, "ok.ipynb": NOTEBOOK})
    hand_ins, refusals = collect([path])
    assert [item.file_name for item in hand_ins] == ["ok.ipynb"]
    assert sorted(reasons(refusals).values()) == ["has an absolute path"] * 3


def test_zip_dot_dot_refused(tmp_path):
    path = make_zip(tmp_path / "evil.zip", {"../evil.ipynb": NOTEBOOK, "a/../../b.ipynb": NOTEBOOK,
                                            "a\\..\\..\\c.ipynb": NOTEBOOK})
    hand_ins, refusals = collect([path])
    assert not hand_ins and len(refusals) == 3 and all("'..'" in refusal.reason for refusal in refusals)


def test_zip_symlink_entry_refused(tmp_path):
    path = raw_zip(tmp_path / "links.zip", [
        {"name": b"zero.ipynb", "data": b"/dev/zero", "external_attr": (stat.S_IFLNK | 0o777) << 16},
        {"name": b"real.ipynb", "data": NOTEBOOK}])
    hand_ins, refusals = collect([path])
    assert [item.file_name for item in hand_ins] == ["real.ipynb"]
    assert reasons(refusals) == {"links.zip: zero.ipynb": "is a symbolic link entry, never followed"}


def test_zip_encrypted_entry_refused(tmp_path):
    path = raw_zip(tmp_path / "secret.zip", [{"name": b"lab.ipynb", "data": NOTEBOOK, "flags": 0x1}])
    hand_ins, refusals = collect([path])
    assert not hand_ins and "encrypted" in refusals[0].reason


def test_zip_bomb_by_ratio_refused(tmp_path):
    zeros = b"0" * (4 * 2**20)  # 4 MiB that deflate to about 4 KiB: about 1,000:1
    path = make_zip(tmp_path / "bomb.zip", {"bomb.ipynb": zeros, "fine.ipynb": NOTEBOOK})
    hand_ins, refusals = collect([path])
    assert [item.file_name for item in hand_ins] == ["fine.ipynb"]
    assert "zip bomb" in reasons(refusals)["bomb.zip: bomb.ipynb"]


def test_zip_size_headers_are_not_trusted(tmp_path):
    # The headers claim 100 bytes; the stream holds 4 MiB. Reading stops at the declared size and the CRC
    # check fails: the hand-in is unreadable, never 4 MiB in memory.
    path = raw_zip(tmp_path / "liar.zip", [{"name": b"lab.ipynb", "data": b"{" * (4 * 2**20), "declared_size": 100}])
    (hand_in,), refusals = collect([path])
    assert not refusals
    with pytest.raises(HandInUnreadable, match="can't be unpacked"):
        hand_in.read()


def test_zip_with_too_many_entries_refused_whole(tmp_path):
    path = make_zip(tmp_path / "many.zip", {f"s{number}.ipynb": NOTEBOOK for number in range(6)})
    hand_ins, refusals = collect([path], Limits(zip_entries=5))
    assert not hand_ins and len(refusals) == 1
    assert refusals[0].label == "many.zip" and "6 entries" in refusals[0].reason


def test_zip_declaring_a_huge_directory_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "forged.zip"  # only an end record, claiming 65,000 entries in a 60 MB directory
    path.write_bytes(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 65000, 65000, 60_000_000, 0, 0))
    hand_ins, refusals = collect([path])
    assert not hand_ins and refusals[0].reason.startswith("declares 65,000 entries")


def test_zip_over_total_refused_whole(tmp_path):
    path = make_zip(tmp_path / "big.zip", {"a.ipynb": b" " * 600, "b.ipynb": b" " * 600})
    hand_ins, refusals = collect([path], Limits(zip_total_bytes=1000))
    assert not hand_ins and refusals[0].label == "big.zip" and "1000 bytes limit" in refusals[0].reason


def test_zip_entry_over_the_notebook_limit_refused(tmp_path):
    path = make_zip(tmp_path / "large.zip", {"large.ipynb": os.urandom(5000), "small.ipynb": NOTEBOOK})
    hand_ins, refusals = collect([path], Limits(notebook_bytes=4096))
    assert [item.file_name for item in hand_ins] == ["small.ipynb"]
    assert "4 KiB a notebook may have" in reasons(refusals)["large.zip: large.ipynb"]


def test_nested_zip_refused_with_a_reason(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", {"lab.ipynb": NOTEBOOK}).read_bytes()
    hand_ins, refusals = collect([make_zip(tmp_path / "outer.zip", {"doejane_12345_67890_inner.zip": inner})])
    assert not hand_ins and "zip inside the zip" in refusals[0].reason


def test_zip_names_with_control_characters_are_escaped_in_labels(tmp_path):
    path = make_zip(tmp_path / "names.zip", {"\x1b[2Jcleared.ipynb": NOTEBOOK})
    (hand_in,), _ = collect([path])
    assert "\x1b" not in hand_in.label and "\\x1b" in hand_in.label


def test_not_a_zip_refused(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 but nothing else")
    hand_ins, refusals = collect([path])
    assert not hand_ins and "not a zip" in refusals[0].reason


# --- refusals: files on disk --------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_refused_without_blocking(tmp_path):
    fifo = tmp_path / "lab.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(HandInUnreadable, match="FIFO"):
        read_regular_file(fifo, 1000)
    hand_ins, refusals = collect([tmp_path])
    assert not hand_ins and "FIFO" in refusals[0].reason


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_and_a_symlink_to_it_refused(tmp_path):
    link = tmp_path / "zero.ipynb"
    link.symlink_to("/dev/zero")
    with pytest.raises(HandInUnreadable, match="symbolic link"):
        read_regular_file(link, 1000)
    with pytest.raises(HandInUnreadable, match="device"):
        read_regular_file("/dev/zero", 1000)
    hand_ins, refusals = collect([tmp_path, link])
    assert not hand_ins and [refusal.reason for refusal in refusals] == [
        "is a symbolic link, which is never followed: hand in the file itself"] * 2


def test_symlinked_folder_and_notebook_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ipynb").write_bytes(NOTEBOOK)
    folder = tmp_path / "handed-in"
    folder.mkdir()
    (folder / "linked-folder").symlink_to(outside)
    (folder / "linked.ipynb").symlink_to(outside / "secret.ipynb")
    hand_ins, refusals = collect([folder])
    assert not hand_ins and sorted(refusal.label for refusal in refusals) == [
        "handed-in/linked-folder", "handed-in/linked.ipynb"]


def test_directory_given_as_a_file_refused(tmp_path):
    with pytest.raises(HandInUnreadable, match="folder"):
        read_regular_file(tmp_path, 1000)


def test_read_stops_at_the_limit(tmp_path):
    path = tmp_path / "s01.ipynb"
    path.write_bytes(b"x" * 1000)
    assert len(read_regular_file(path, 1000)) == 1000
    with pytest.raises(HandInUnreadable, match="larger than"):
        read_regular_file(path, 999)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="no /proc")
def test_file_size_is_not_trusted(tmp_path):
    assert os.stat("/proc/self/status").st_size == 0  # a regular file that says it is empty
    assert b"Name:" in read_regular_file("/proc/self/status", 100_000)


def test_folder_depth_limit(tmp_path):
    deep = tmp_path / "top" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "lab.ipynb").write_bytes(NOTEBOOK)
    hand_ins, refusals = collect([tmp_path / "top"], Limits(folder_depth=2))
    assert not hand_ins and "deeper than 2 folders" in refusals[0].reason


def test_missing_path_refused_and_the_batch_goes_on(tmp_path):
    (tmp_path / "s01.ipynb").write_bytes(NOTEBOOK)
    hand_ins, refusals = collect([tmp_path / "nope.zip", tmp_path / "s01.ipynb"])
    assert len(hand_ins) == 1 and "can't be read" in refusals[0].reason
