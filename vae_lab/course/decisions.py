"""The instructor's decisions on REVIEWs, kept in a CSV that grading reads and rewrites.

Grading writes every open REVIEW as a row (student, file, check, reason, the hand-in's content hash, an
empty decision and note). The instructor writes PASS or FAIL and a note; the next grading applies each
decision while the hand-in's bytes are unchanged. A changed hand-in re-opens its decisions, saying so.
Rows of hand-ins not in this grading are kept as they are, so a partial re-grading loses nothing.
"""

import csv
import io
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import LabError
from .verdicts import FAIL, PASS, REVIEW, Verdict

COLUMNS = ("student_id", "file", "check", "reason", "sha256", "decision", "note")
DECISIONS = {"PASS": PASS, "FAIL": FAIL}


class DecisionsError(LabError, ValueError):
    """A decisions file that can't be used; the message says what to change."""


def read_decisions(path):
    """{(student or file, check): row} from PATH; {} when the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DecisionsError(f"cannot read the decisions file {path}: {getattr(error, 'strerror', None) or error}") \
            from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and any(column not in rows[0] for column in COLUMNS):
        raise DecisionsError(f"{path} is not a decisions file written by vae-lab grade (columns: {', '.join(COLUMNS)})")
    problems = [f"line {line}: decision {row['decision']!r} (write PASS, FAIL, or leave it empty)"
                for line, row in enumerate(rows, start=2)
                if (row.get("decision") or "").strip().upper() not in ("", *DECISIONS)]
    if problems:
        raise DecisionsError(f"{path}: " + "; ".join(problems[:10]))
    return {(row["student_id"] or row["file"], row["check"]): row for row in rows}


def apply_decisions(batch, decisions):
    """Apply each decided REVIEW whose hand-in is unchanged; re-open those whose hand-in changed. Returns the
    rows to write back: this batch's REVIEWs and decisions, then every other row as it was."""
    rows, used = [], set()
    for graded in batch:
        who = graded.student_id or graded.claimed_id or graded.file_name
        for check, verdict in list(graded.checks.items()):
            row = decisions.get((who, check))
            if row is not None:
                used.add((who, check))
            decision = (row or {}).get("decision", "").strip().upper()
            if verdict.status is not REVIEW and not (row and decision):
                continue
            if row and decision and row.get("sha256") == graded.content_hash:
                note = (row.get("note") or "").strip()
                # the note is the instructor's own (it may name another student): evidence, never feedback
                graded.checks[check] = Verdict(DECISIONS[decision], "decided by the instructor",
                                               "; ".join(filter(None, (note, verdict.reason, verdict.evidence))))
                rows.append({**row, "file": graded.label, "reason": verdict.reason or row.get("reason", "")})
                continue
            if verdict.status is not REVIEW:
                continue
            reopened = bool(row and decision)
            if reopened:
                graded.checks[check] = Verdict(REVIEW, verdict.reason + " (re-opened: the hand-in changed since you "
                                               f"decided {decision})", verdict.evidence)
            rows.append({"student_id": graded.student_id or graded.claimed_id or "", "file": graded.label,
                         "check": check, "reason": graded.checks[check].reason, "sha256": graded.content_hash,
                         "decision": "", "note": (row or {}).get("note", "") if reopened else ""})
    rows += [row for key, row in decisions.items() if key not in used]
    return rows


def write_decisions(path, rows, cell=str):
    """Write ROWS to PATH (every cell through CELL, e.g. spreadsheet_safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows([cell(row.get(column, "")) for column in COLUMNS] for row in rows)
    return atomic_write_text(path, buffer.getvalue())
