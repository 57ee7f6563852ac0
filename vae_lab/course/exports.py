"""Grades back to the LMS, in the files its own import reads, with every cell safe to open in a spreadsheet.

- Canvas gradebook import (instructure/canvas-lms `app/models/gradebook_importer.rb`): the first header
  cell holds "Student", the second "ID", and the student columns end with "Section" (SIS User ID, SIS Login
  ID, Integration ID and Root Account in between, in the exporter's order); a row whose first cell holds
  "Points Possible" sets the points of a new assignment. A column "Title (id)" updates assignment `id`; a
  bare title updates the assignment of exactly that title, or creates a new one. Columns whose title holds
  "Current Score", "Final Grade" and the like are dropped as totals. Students are found by ID first.
- Moodle grade import (moodle/moodle `grade/import/csv/classes/load_data.php`): the instructor maps one
  column to userid / username / useridnumber / useremail, each grade column to a grade item, and a
  feedback column to "comments for <item>"; '' or '-' means no grade (and clears one), numbers go through
  `unformat_float`. Moodle's docs: importing feedback overwrites the item's grades, so grade and feedback
  travel together.
- Moodle's offline grading worksheet (`mod/assign/feedback/offline/importgradeslib.php`): Identifier
  ("Participant <id>"), Grade, Last modified (grade) and Feedback comments, found by their English names;
  the grade goes into the assignment, not over it.
- Bulk feedback files: Canvas's "Upload Submissions" reads the first two all-digit '_' tokens of each
  file name as user id and attachment id (`Assignment#infer_comment_context_from_filename`); Moodle's
  "Upload multiple feedback files in a zip" finds `<full name>_<participant id>_<plugin subtype>_<plugin>[_]`
  in any folder of the path (`mod/assign/feedback/file/importziplib.php`).
"""

import csv
import html
import io
import os
import re
from decimal import Decimal

from .roster import CANVAS_IDENTITY, RosterError

CANVAS_POINTS_POSSIBLE_CELL = "    Points Possible"  # as Canvas's exporter writes it
# Titles the importer drops as totals (GradebookImporter::NON_ASSIGNMENT_COLUMN_HEADERS, matched anywhere).
CANVAS_TOTAL_COLUMNS = ("Current Score", "Current Points", "Current Grade", "Final Score", "Final Points",
                        "Final Grade", "Override Score", "Override Grade", "Override Status")
CANVAS_RESERVED_COLUMNS = ("Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID", "Section",
                           "Integration ID", "Root Account")
_CANVAS_TITLE_WITH_ID = re.compile(r"(.*)\s\((\d+)\)")  # Assignment.title_and_id
MOODLE_IDENTIFIERS = {"id number": "useridnumber", "idnumber": "useridnumber", "email address": "useremail",
                      "email": "useremail", "username": "username"}
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def spreadsheet_safe(value):
    """A cell that a spreadsheet shows as text, never runs as a formula.

    OWASP, "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection): no cell may begin
    with =, +, -, @, tab (0x09), carriage return (0x0D) or line feed (0x0A); such a cell gets a leading
    single quote. OWASP names no full-width forms; =, +, - and @ in full width (U+FF1D, U+FF0B, U+FF0D,
    U+FF20) are treated the same here, since a Japanese or Chinese input method types them. A real number
    ("-1.5", "10", "1e-07") stays a number. NUL and the other C0 control characters are removed, except
    tab, line feed and carriage return, which a quoted cell may hold. The writers here also quote every
    cell, OWASP's answer to a separator (',' or ';') that would otherwise start a new cell mid-value.
    """
    text = _CONTROL.sub("", "" if value is None else str(value))
    # invisible formatting (right-to-left overrides, zero-width spaces) would make one id read as another
    text = _INVISIBLE.sub(lambda match: f"\\u{ord(match.group(0)):04x}", text)
    if _NUMBER.fullmatch(text):
        return text
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def format_number(value):
    """A mark as a plain number: '.' for decimals, no exponent, no thousands separator ("9.5", "10")."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"a mark must be a number, not {value!r}")
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise ValueError(f"a mark must be a finite number, not {value!r}")
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def canvas_gradebook_csv(roster, marks, *, assignment_title, points_possible):
    """The CSV Canvas's gradebook Import takes: the roster's student columns, one assignment, Points Possible.

    Students without a mark are left out, so Canvas keeps what it has for them (a grade entered by hand, its
    late policy's score for missing work): the upload page posts every cell that differs, a blank one as a
    removal (canvas-lms `process_gradebook_upload.js`, `updateWillRemoveGrade`).
    """
    if roster.kind != "canvas":
        raise RosterError("grades go back to Canvas only with a Canvas export as the roster: in Canvas, "
                          "Grades → Export → Export Entire Gradebook, and read that file as the roster")
    column = canvas_column(roster, assignment_title)
    _check_marks(roster, marks)
    try:
        points = format_number(points_possible)
    except ValueError as error:
        raise RosterError(f"points possible: {error}") from None
    if points.startswith("-"):
        raise RosterError(f"points possible must be zero or more, not {points}")
    identity = _canvas_identity_columns(roster)
    rows = [identity + [spreadsheet_safe(column)],
            [CANVAS_POINTS_POSSIBLE_CELL] + [""] * (len(identity) - 1) + [points]]
    for row in roster.rows:
        mark = marks.get(row["student_id"])
        if mark is not None:  # a blank cell would remove the grade Canvas has (its upload page posts "")
            rows.append([spreadsheet_safe(row.get(name, "")) for name in identity] + [format_number(mark)])
    return _csv_text(rows)


def moodle_grades_csv(roster, marks, feedback, *, identifier_column=None, grade_title="vae-lab lab"):
    """The CSV Moodle's "Import grades → CSV file" takes: an identifier, the grade and its feedback.

    `identifier_column` defaults to the roster's id column when it is a Moodle user field, else the first
    of ID number, Email address and Username that every marked student has. Map the identifier column to
    the user field it names (ID number → useridnumber, Email address → useremail, Username → username),
    the grade column to the lab's grade item and the feedback column to "comments for" that item.
    Students without a mark are left out: a row without a grade would clear the grade Moodle has, and a
    row without an identifier would go to the student of the row before it (load_data.php keeps the
    previous student when the identifier is blank).
    """
    if identifier_column is None:
        identifier_column = _moodle_identifier(roster, marks)
    if identifier_column not in roster.header:
        raise RosterError(f"the identifier column {identifier_column!r} is not in the roster (its columns: "
                          f"{', '.join(roster.header)})")
    if identifier_column.strip().casefold() not in MOODLE_IDENTIFIERS:
        raise RosterError(f"{identifier_column!r} maps to no Moodle user field: use 'ID number', "
                          f"'Email address' or 'Username'")
    _check_marks(roster, marks)
    unknown = sorted(set(feedback) - set(roster.student_ids()))
    if unknown:
        raise RosterError(f"feedback for students not on the roster: {', '.join(unknown[:10])}")
    header = [identifier_column, spreadsheet_safe(grade_title), spreadsheet_safe(f"{grade_title} (Feedback)")]
    rows, problems, seen = [header], [], {}
    for row in roster.rows:
        student, mark = row["student_id"], marks.get(row["student_id"])
        if mark is None:
            continue
        identifier = row[identifier_column].strip()
        folded = identifier.casefold()
        if not identifier:
            problems.append(f"{student} has no {identifier_column}")
        elif spreadsheet_safe(identifier) != identifier:
            problems.append(f"{student}'s {identifier_column} {identifier!r} starts like a formula and can't be "
                            f"written safely")
        elif folded in seen:
            problems.append(f"{student} and {seen[folded]} share the {identifier_column} {identifier!r}")
        else:
            seen[folded] = student
            # Moodle shows feedback as HTML (FORMAT_MOODLE): a '<' quoted from a student would be read as a tag
            rows.append([identifier, format_number(mark),
                         spreadsheet_safe(html.escape(feedback.get(student, ""), quote=False))])
    if problems:
        raise RosterError(f"can't write the Moodle import: {'; '.join(problems[:10])}"
                          f"{f'; and {len(problems) - 10} more' if len(problems) > 10 else ''}. Choose another "
                          f"identifier column, or fix those students' {identifier_column} in Moodle")
    return _csv_text(rows)


# The assignment's offline grading worksheet (moodle/moodle mod/assign/feedback/offline/importgradeslib.php): the
# columns are found by these English strings (get_string 'recordid', 'grade', 'lastmodifiedgrade', and the
# comments plugin's name); an id reads "Participant <the id the download's folder names carry>".
MOODLE_WORKSHEET_HEADER = ("Identifier", "Full name", "Grade", "Last modified (grade)", "Feedback comments")


def moodle_worksheet_csv(entries, graded_at):
    """The CSV the assignment's "Upload grading worksheet" takes, from ENTRIES (participant id, full name, mark,
    feedback), every mark stamped GRADED_AT (a datetime with its zone).

    The grade goes into the assignment itself, so Moodle's grading table, its feedback comments and the
    gradebook agree (the gradebook's CSV import overrides the grade instead). Moodle skips a row whose grade
    is blank, above the assignment's maximum, or older than a grade changed in Moodle since GRADED_AT.
    """
    stamp = graded_at.isoformat(timespec="seconds")  # what PHP's strtotime reads, zone included
    rows = [list(MOODLE_WORKSHEET_HEADER)]
    for participant, full_name, mark, feedback in entries:
        if mark is None or not str(participant).isdigit():
            continue
        rows.append([f"Participant {participant}", spreadsheet_safe(full_name), format_number(mark), stamp,
                     spreadsheet_safe(html.escape(feedback, quote=False))])  # stored as HTML (FORMAT_HTML)
    return _csv_text(rows)


def feedback_file_name(hand_in, student_id):
    """Where a student's feedback page goes in the zip for the LMS's bulk feedback upload.

    Canvas: `<the download's prefix>_<notebook name>_feedback.html` at the top of the zip, so its first two
    all-digit tokens are the user and attachment id of that submission (an anonymous download's
    `anon_<id>_<attachment id>` prefix is read back the same way). Canvas attaches the page under the name
    of the student's file, not this one. Moodle: inside `<full name>_<participant id>_assignsubmission_file_/`,
    the folder the download made; the trailing '_' is the pre-4.1 form, which old and new importers read.
    Other hand-ins: `<student_id>/<notebook name>_feedback.html`, nbgrader's feedback layout for nbgrader.
    """
    stem = _safe_stem(hand_in.file_name)
    if hand_in.lms == "canvas":
        return f"{hand_in.identity['canvas_file_prefix']}_{stem}_feedback.html"
    if hand_in.lms == "moodle":
        return f"{moodle_feedback_folder(hand_in)}/{stem}_feedback.html"
    if hand_in.lms == "nbgrader":
        return f"{student_id}/{_safe_stem(hand_in.identity['nbgrader_assignment'])}/{stem}.html"
    return f"{student_id}/{stem}_feedback.html"


def moodle_feedback_folder(hand_in, limit=150):
    """`<full name>_<participant id>_assignsubmission_file_`: the folder Moodle's feedback zip import matches
    (by the participant id and the plugin, never the name), within LIMIT bytes: a long name is shortened, the
    part the import reads is kept."""
    name, _, participant = hand_in.identity["moodle_prefix"].rpartition("_")
    suffix = f"_{participant}_assignsubmission_file_"
    room = max(limit - len(suffix.encode("utf-8")), 1)
    return name.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip() + suffix


def _canvas_identity_columns(roster):
    """The roster's Canvas student columns in the order the importer counts them (update_column_count).

    SIS User ID is read only when SIS Login ID follows it, and Integration ID and Root Account only after
    both; a column the importer would miscount is left out (Canvas finds students by ID first anyway).
    """
    names = [name for name in CANVAS_IDENTITY if name in roster.identity_columns]
    if "SIS User ID" in names and "SIS Login ID" not in names:
        names.remove("SIS User ID")
    if "SIS User ID" not in names:
        names = [name for name in names if name not in ("Integration ID", "Root Account")]
    named = "Student" in names or ("LastName" in names and "FirstName" in names)
    if not named or "ID" not in names or "Section" not in names:
        raise RosterError("the roster lacks Canvas's student columns (Student, ID, Section): read it from "
                          "Canvas's gradebook export")
    return [name for name in names if name not in (("LastName", "FirstName") if "Student" in names else ())]


def _moodle_identifier(roster, marks):
    marked = [row for row in roster.rows if marks.get(row["student_id"]) is not None]
    for column in (roster.id_column, "ID number", "Email address", "Username"):
        if (column in roster.header and column.strip().casefold() in MOODLE_IDENTIFIERS
                and all(row.get(column, "").strip() for row in marked)):
            return column
    raise RosterError("no roster column gives every marked student a Moodle user field (ID number, Email "
                      "address or Username): read the roster from Moodle's grade export")


def names_a_canvas_assignment(title):
    """Whether TITLE carries a Canvas assignment id, "Title (4711)", as the gradebook export writes it."""
    return bool(_CANVAS_TITLE_WITH_ID.fullmatch(title.strip()))


def canvas_column(roster, title):
    """The assignment column the export writes for TITLE (with its id where the roster names it)."""
    title = title.strip()
    if not title:
        raise RosterError("the assignment needs a title for the Canvas gradebook")
    if title in CANVAS_RESERVED_COLUMNS or any(total in title for total in CANVAS_TOTAL_COLUMNS):
        raise RosterError(f"Canvas reads a column titled {title!r} as a student or total column, not an "
                          f"assignment: choose another title")
    if _CANVAS_TITLE_WITH_ID.fullmatch(title):
        return title
    existing = [name for name in dict.fromkeys((*roster.header, *(roster.points_possible or {})))
                if (match := _CANVAS_TITLE_WITH_ID.fullmatch(name)) and match.group(1) == title]
    if len(existing) == 1:
        return existing[0]  # "Title (id)": Canvas updates that assignment rather than matching by title
    return title


def canvas_points(roster, column):
    """The points Canvas's gradebook gave COLUMN (a float), or None where the export did not say."""
    text = str((roster.points_possible or {}).get(column, "")).strip().replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None


def _check_marks(roster, marks):
    unknown = sorted(set(marks) - set(roster.student_ids()))
    if unknown:
        raise RosterError(f"marks for students not on the roster: {', '.join(unknown[:10])}"
                          f"{' ...' if len(unknown) > 10 else ''}")
    for student, mark in marks.items():
        if mark is not None:
            try:
                format_number(mark)
            except ValueError as error:
                raise RosterError(f"{student}: {error}") from None


def _csv_text(rows):
    buffer = io.StringIO(newline="")
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _safe_stem(file_name):
    stem = os.path.splitext(os.path.basename(file_name.replace("\\", "/")))[0]
    stem = re.sub(r"[\x00-\x1f\x7f/\\:*?\"<>|]+", "_", stem).strip(" .") or "notebook"
    return "feedback-" + stem if stem.startswith(("~", "-")) else stem
