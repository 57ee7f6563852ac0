"""The instructor's decisions on REVIEWs, kept in a CSV that grading reads and rewrites.

Grading writes every open REVIEW as a row (student, file, check, reason, the hand-in's content hash, an
empty decision and note). The instructor writes PASS or FAIL and a note; the next grading applies each
decision while the hand-in's bytes and the REVIEW's reason are unchanged. A changed hand-in or reason re-opens
the decision, saying so. Where the check decides by itself later, a FAIL decided on the same bytes stands, and a
PASS yields to the FAIL the check now finds (said, not applied).
Rows of hand-ins not in this grading are kept as they are, so a partial re-grading loses nothing.
"""

import csv
import io
import re
from collections import Counter
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import LabError
from .verdicts import FAIL, PASS, REVIEW, Verdict

COLUMNS = ("student_id", "file", "check", "reason", "sha256", "decision", "note")
DECISIONS = {"PASS": PASS, "FAIL": FAIL}


class DecisionsError(LabError, ValueError):
    """A decisions file that can't be used; the message says what to change."""


def read_decisions(path):
    """The rows of PATH as dicts (every column present, names and decisions stripped); [] when the file does
    not exist yet. Commas or semicolons (a spreadsheet saved in a locale that writes decimal commas)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DecisionsError(f"cannot read the decisions file {path}: {getattr(error, 'strerror', None) or error}") \
            from None
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, restval="")
    reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
    rows = [{column: (row.get(column) or "").strip() for column in COLUMNS} for row in reader]
    if reader.fieldnames and any(column not in reader.fieldnames for column in COLUMNS):
        raise DecisionsError(f"{path} is not a decisions file written by vae-lab grade (columns: {', '.join(COLUMNS)})")
    problems = [f"line {line}: decision {row['decision']!r} (write PASS, FAIL, or leave it empty)"
                for line, row in enumerate(rows, start=2) if row["decision"].upper() not in ("", *DECISIONS)]
    if problems:
        raise DecisionsError(f"{path}: " + "; ".join(problems[:10]))
    return rows


def apply_decisions(batch, rows, cell=str):
    """Apply each decision on a REVIEW whose hand-in (its SHA-256) and reason are the ones decided; re-open
    those whose hand-in or reason changed, and leave a decision unapplied, saying so, where the check no longer
    asks for one. Returns the rows to write back: this batch's REVIEWs and decisions, then every other row as
    it was. CELL is how write_decisions will write a reason, so a reason read back compares equal."""
    by_hash, by_student = {}, {}
    for row in rows:
        by_hash.setdefault((row["sha256"], row["check"]), []).append(row)
        by_student.setdefault((row["student_id"] or row["file"], row["check"]), []).append(row)
    hand_ins = Counter(_who(graded) for graded in batch)
    written, consumed = [], set()
    for graded in batch:
        who = _who(graded)
        for check, verdict in list(graded.checks.items()):
            row = _row_of_this_hand_in(graded, who, by_hash.get((graded.content_hash, check), []), consumed)
            same_hand_in = row is not None
            if row is None:
                row = _row_of_an_earlier_hand_in(graded, by_student.get((who, check), []), hand_ins[who], consumed)
            if row is not None:
                consumed.add(id(row))
            decision = (row or {}).get("decision", "").upper()
            if verdict.status is not REVIEW:
                if same_hand_in and decision == "FAIL" and verdict.status is PASS:
                    # a FAIL stands on these bytes: a check that now finds nothing (the copied classmate's file
                    # changed, or is not in this grading) is no reason to let them pass
                    graded.checks[check] = Verdict(FAIL, "decided by the instructor",
                                                   "; ".join(filter(None, (row["note"], verdict.reason))))
                    written.append({**row, "file": graded.label})
                elif same_hand_in and decision:  # a PASS yields to a FAIL the check now finds: kept, and said
                    written.append(row)
                    graded.notes.append(f"your decision {decision} on {check} is not applied: the check now says "
                                        f"{verdict.status.value} by itself")
                continue
            if same_hand_in and decision and _plain(row["reason"]) == _plain(cell(verdict.reason)):
                # the note is the instructor's own (it may name another student): evidence, never feedback
                graded.checks[check] = Verdict(DECISIONS[decision], "decided by the instructor",
                                               "; ".join(filter(None, (row["note"], verdict.reason, verdict.evidence))))
                written.append({**row, "file": graded.label})
                continue
            if decision:
                why = (f"its reason changed since you decided {decision} (it was: {_plain(row['reason'])})"
                       if same_hand_in else f"the hand-in changed since you decided {decision}")
                graded.checks[check] = Verdict(REVIEW, f"{verdict.reason} (re-opened: {why})", verdict.evidence)
            written.append({"student_id": graded.student_id or graded.claimed_id or "", "file": graded.label,
                            "check": check, "reason": verdict.reason, "sha256": graded.content_hash,
                            "decision": "", "note": row["note"] if decision else ""})
    return written + [row for row in rows if id(row) not in consumed]


def _who(graded):
    return graded.student_id or graded.claimed_id or graded.label


def _row_of_this_hand_in(graded, who, candidates, consumed):
    """The row decided on these very bytes (by SHA-256) for this student: the same id, or the same id as a
    spreadsheet rewrites it ('0034' saved back as '34'). Never another student's row, though the bytes be
    the same (a copy)."""
    candidates = [row for row in candidates if id(row) not in consumed]
    for same in (lambda row: (row["student_id"] or row["file"]) == who,
                 lambda row: row["student_id"].lstrip("0") == who.lstrip("0") != ""):
        chosen = [row for row in candidates if same(row)]
        if chosen:
            return next((row for row in chosen if row["file"] == graded.label), chosen[0])
    return None


def _row_of_an_earlier_hand_in(graded, candidates, hand_ins, consumed):
    """The row decided on what this student handed in before: the same file, or their only hand-in's row."""
    candidates = [row for row in candidates if id(row) not in consumed and row["sha256"] != graded.content_hash]
    same_file = [row for row in candidates if row["file"] == graded.label]
    if len(same_file) == 1:
        return same_file[0]
    return candidates[0] if len(candidates) == 1 and hand_ins == 1 else None


def _plain(reason):
    """A reason as compared: without an earlier re-opening's words, spaces as one, and measured figures (a
    similarity of 0.98, which another hand-in in the class moves to 0.99) as '#'."""
    reason = re.sub(r" \(re-opened: .*\)$", "", reason or "")
    return " ".join(re.sub(r"\d+\.\d+", "#", reason).split())


def write_decisions(path, rows, cell=str):
    """Write ROWS to PATH (every cell through CELL, e.g. spreadsheet_safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows([cell(row.get(column, "")) for column in COLUMNS] for row in rows)
    return atomic_write_text(path, buffer.getvalue())
