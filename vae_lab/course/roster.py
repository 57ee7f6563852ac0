"""The class roster as the LMS gives it: a vae-lab CSV, a Canvas gradebook export or a Moodle grades export.

Every problem of the file is collected and raised as one `RosterError` before anyone writes anything, so
an instructor fixes the file once. Reading writes nothing. The formats, as found in the LMS sources:

- Canvas (instructure/canvas-lms `lib/gradebook_exporter.rb`): `Student`, `ID`, [`SIS User ID`],
  `SIS Login ID`, [`Integration ID`], [`Root Account`], `Section`, custom columns, then one column per
  assignment titled "Title (id)". An optional "Manual Posting" row, then a row whose first cell is
  "    Points Possible" (four leading spaces), then the students; the test student ("Student, Test", made by
  Student View) comes last, with no SIS User ID and a 40-hex-digit login. Separator ',' or ';' (a user
  setting), with or without a UTF-8 byte-order mark (another user setting).
- Moodle (moodle/moodle `grade/export`, `admin/settings/grades.php`): the user fields
  `grade_export_userprofilefields`, by default First name, Last name, ID number, Institution, Department,
  Email address (a site may add Username), then "Assignment: Title (Real)" columns.
- vae-lab: any CSV with a `student_id` column.

Accepted encodings: UTF-8 with or without a byte-order mark, and UTF-16 with a byte-order mark (Excel's
"Unicode Text"). Anything else is refused with the advice to save as "CSV UTF-8": guessing a code page
would silently misspell the names that Moodle hand-ins are matched by.
"""

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError

KINDS = ("vae-lab", "canvas", "moodle")
MAX_ID_LENGTH = 128
MAX_LISTED_PROBLEMS = 10
# Letters, digits, '.', '_', '-', '@', '+'; starting with a letter, digit or '_' ('.' hides a file, '-' reads
# as a flag, and '+', '-', '@' start a spreadsheet formula, which the CSVs would have to neutralise),
# not ending with '.' (Windows drops it).
_SAFE_ID = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._@+-]{0,126}[A-Za-z0-9_@+-])?")
# "assignments" is vae-lab's own assignments.csv; the others are device names Windows will not create.
RESERVED_IDS = frozenset({"assignments", "con", "prn", "aux", "nul",
                          *(f"com{n}" for n in range(1, 10)), *(f"lpt{n}" for n in range(1, 10))})

CANVAS_IDENTITY = ("Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID", "Integration ID",
                   "Root Account", "Section")
CANVAS_POINTS_POSSIBLE = "Points Possible"  # the exporter writes it with four leading spaces
CANVAS_TEST_STUDENT = "Student, Test"       # the sortable name of Student View's "Test Student"
_CANVAS_TEST_LOGIN = re.compile(r"[0-9a-f]{40}")  # Canvas::Security.hmac_sha1("Test Student_<id>")
_CANVAS_POSTING_ROW = re.compile(r"\s*(?:Muted|Manual Posting.*)?\s*", re.IGNORECASE)  # as the importer skips it
MOODLE_REQUIRED = ("First name", "Last name")
MOODLE_IDENTITY = ("First name", "Last name", "ID number", "Email address", "Username", "Institution",
                   "Department")


class RosterError(LabError, ValueError):
    """The roster can't be used as it is; the message lists what to fix."""


@dataclass(frozen=True)
class Roster:
    """One class as read from its roster file, with the LMS columns needed to send grades back."""

    kind: str
    id_column: str
    header: tuple
    rows: tuple
    points_possible: dict | None = None
    identity_columns: tuple = ()
    encoding: str = "utf-8"
    delimiter: str = ","

    def student_ids(self):
        """The students' ids in roster order."""
        return tuple(row["student_id"] for row in self.rows)

    def row_for(self, student_id):
        """The roster row of one student, or None."""
        return next((row for row in self.rows if row["student_id"] == student_id), None)


def check_student_id(student):
    """None when `student` is usable as an id and a file name, else a phrase saying why not."""
    if not student:
        return "is empty"
    if len(student) > MAX_ID_LENGTH:
        return f"is longer than {MAX_ID_LENGTH} characters"
    if not _SAFE_ID.fullmatch(student):
        return ("is not safe as a file name (letters, digits, '.', '_', '-', '@' and '+' only; starting with a "
                "letter, digit or '_', not ending with '.')")
    if student.lower() in RESERVED_IDS:
        return "is a reserved name"
    return None


def read_roster(path, id_column=None):
    """Read a roster; raise one RosterError listing every problem (the first 10, then how many more)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RosterError(f"{path}: can't read the roster ({error.strerror or error})") from None
    text, encoding = _decode(path, data)
    delimiter = _sniff_delimiter(text)
    records, problems = _records(text, delimiter)
    if not records:
        raise RosterError(f"{path} is empty: it needs a header row and one row per student")
    header_line, header = records[0]
    header = [name.strip() for name in header]  # 'student_id ' typed by hand, 'ID number ' from a spreadsheet
    kind = _kind(header)
    if kind is None:
        raise RosterError(f"{path}: the header {_short(header)} is not a vae-lab roster (a student_id column), "
                          f"a Canvas gradebook export (Student, ID, ..., Section) or a Moodle grades export "
                          f"(First name, Last name, ID number, Email address)")
    problems += _header_problems(header)
    width = len(header)
    student_rows, points_possible = [], None
    for line, fields in records[1:]:
        if len(fields) != width:
            problems.append(f"line {line}: {len(fields)} fields where the header has {width} "
                            f"(an unquoted '{delimiter}' inside a value, or a missing one?)")
            continue
        row = dict(zip(header, fields))
        if kind == "canvas":
            if CANVAS_POINTS_POSSIBLE in fields[0]:
                points_possible = row
                continue
            if all(_CANVAS_POSTING_ROW.fullmatch(cell) for cell in fields):
                continue
            if _is_canvas_test_student(row):
                continue
        student_rows.append((line, row))
    chosen = _choose_id_column(kind, header, student_rows, id_column, problems)
    if chosen is not None:
        problems += _id_problems(student_rows, chosen)
    if problems:
        problems.sort(key=lambda problem: int(re.match(r"line (\d+)", problem).group(1))
                      if problem.startswith("line ") else 0)
        listed = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f"; and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
        raise RosterError(f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}, nothing was "
                          f"written: {listed}{more}. Fix the roster and run the command again.")
    if not student_rows:
        raise RosterError(f"{path} has a header but no students")
    rows = tuple({**row, "student_id": row[chosen].strip()} for _, row in student_rows)
    return Roster(kind=kind, id_column=chosen, header=tuple(header), rows=rows, points_possible=points_possible,
                  identity_columns=_identity_columns(kind, header), encoding=encoding, delimiter=delimiter)


def _decode(path, data):
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as error:
        raise RosterError(f"{path} is not UTF-8 text (byte {error.start}): in Excel, save it as "
                          f"'CSV UTF-8 (Comma delimited)'; in LibreOffice, choose the character set "
                          f"Unicode (UTF-8)") from None


def _sniff_delimiter(text):
    """',' unless the header line splits into more fields on ';' or a tab (Canvas and Excel in some locales)."""
    first_line = text.split("\n", 1)[0]
    counts = {delimiter: len(next(csv.reader([first_line], delimiter=delimiter), []))
              for delimiter in (",", ";", "\t")}
    return max(counts, key=lambda delimiter: (counts[delimiter], delimiter == ","))


def _records(text, delimiter):
    """(line number, fields) of every non-blank record; a malformed quote is a problem, not a crash."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records, problems = [], []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            problems.append(f"line {reader.line_num}: {error}")
            break
        if all(not cell.strip() for cell in fields):  # blank, or only separators: Canvas skips /^[;, ]+$/ too
            continue
        records.append((reader.line_num, fields))
    return records, problems


def _kind(header):
    names = [name.strip() for name in header]
    if len(names) > 3 and ((names[0] == "Student" and names[1] == "ID")
                           or (names[:3] == ["LastName", "FirstName", "ID"])) and "Section" in names:
        return "canvas"
    if "student_id" in names:  # the instructor's own column says which id is meant, whatever else is there
        return "vae-lab"
    if all(name in names for name in MOODLE_REQUIRED) and ("ID number" in names or "Email address" in names):
        return "moodle"
    return None


def _header_problems(header):
    problems, seen = [], {}
    for number, name in enumerate(header, start=1):
        if name in seen:
            problems.append(f"header: column {number} is named {name!r} like column {seen[name]}")
        else:
            seen[name] = number
    return problems


def _is_canvas_test_student(row):
    name = row.get("Student", f"{row.get('LastName', '')}, {row.get('FirstName', '')}").strip()
    login = row.get("SIS Login ID", "").strip()
    return (name == CANVAS_TEST_STUDENT and not row.get("SIS User ID", "").strip()
            and (not login or bool(_CANVAS_TEST_LOGIN.fullmatch(login))))


def _choose_id_column(kind, header, student_rows, id_column, problems):
    if id_column is not None:
        if id_column not in header:
            problems.append(f"--id-column {id_column!r} is not a column of this file (its columns: "
                            f"{_short(header)})")
            return None
        return id_column
    if kind == "vae-lab":
        return "student_id"
    first, fallback = ("SIS User ID", "ID") if kind == "canvas" else ("ID number", "Email address")
    if first in header and all(row[first].strip() for _, row in student_rows):
        return first
    if fallback in header:
        return fallback
    return first


def _id_problems(student_rows, column):
    problems, seen, seen_folded = [], {}, {}
    for line, row in student_rows:
        student = row[column].strip()
        why = check_student_id(student)
        if why:
            problems.append(f"line {line}: {column} {student!r} {why}")
        elif student in seen:
            problems.append(f"line {line}: {column} {student!r} repeats line {seen[student]}")
        elif student.casefold() in seen_folded:
            other_line, other = seen_folded[student.casefold()]
            problems.append(f"line {line}: {column} {student!r} differs from {other!r} (line {other_line}) only "
                            f"in case, and case-insensitive file systems would give both one file")
        else:
            seen[student] = line
            seen_folded[student.casefold()] = (line, student)
    return problems


def _identity_columns(kind, header):
    if kind == "canvas":
        return tuple(name for name in header if name in CANVAS_IDENTITY)
    if kind == "moodle":
        return tuple(name for name in header if name in MOODLE_IDENTITY)
    return ("student_id",)


def _short(header, limit=8):
    names = ", ".join(repr(name) for name in header[:limit])
    return f"[{names}{', ...' if len(header) > limit else ''}]"
