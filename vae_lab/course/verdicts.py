"""The grader's small vocabulary: a check's status, its verdict, and one graded hand-in.

Every check returns Verdicts; a hand-in's verdict is the worst of its checks'. The console table, the CSV,
the class page and the feedback pages all read these, so a verdict is spelled one way everywhere.
"""

import enum
from dataclasses import dataclass, field
from pathlib import Path


class Status(str, enum.Enum):
    """PASS, REVIEW (a person should look) or FAIL, in that order of severity."""

    PASS = "PASS"
    REVIEW = "REVIEW"
    FAIL = "FAIL"

    def __str__(self):
        return self.value

    @property
    def rank(self):
        return _RANK[self]


_RANK = {Status.PASS: 0, Status.REVIEW: 1, Status.FAIL: 2}
PASS, REVIEW, FAIL = Status.PASS, Status.REVIEW, Status.FAIL
MISSING = "MISSING"  # a roster student with no hand-in: a row, not a verdict of any check


@dataclass(frozen=True)
class Verdict:
    """One finding of a check. `reason` may go to the student; `evidence` is for the instructor only
    (the reference run's numbers, another student's file), never on a feedback page."""

    status: Status
    reason: str = ""
    evidence: str = ""


def passed(reason=""):
    return Verdict(PASS, reason)


def review(reason, evidence=""):
    return Verdict(REVIEW, reason, evidence)


def failed(reason, evidence=""):
    return Verdict(FAIL, reason, evidence)


def combine(verdicts):
    """The worst of VERDICTS, with the reasons of every finding of that status joined (PASS if none)."""
    verdicts = [verdict for verdict in verdicts if verdict is not None]
    if not verdicts:
        return passed()
    worst = max(verdict.status.rank for verdict in verdicts)
    chosen = [verdict for verdict in verdicts if verdict.status.rank == worst]
    join = lambda parts: "; ".join(dict.fromkeys(part for part in parts if part))  # noqa: E731
    return Verdict(chosen[0].status, join(v.reason for v in chosen), join(v.evidence for v in chosen))


@dataclass
class GradedHandIn:
    """One hand-in as graded: where it came from, whose it is, what it holds, and its checks' verdicts."""

    label: str  # where it came from, for people
    file_name: str = ""  # the name the student gave the file
    student_id: str = None  # the roster student it is attributed to (None: nobody on the roster)
    claimed_id: str = None  # the STUDENT_ID its parameters cell names
    hand_in: object = None  # the lms.HandIn it came from
    record: object = None  # the record.Record, when it could be read
    checks: dict = field(default_factory=dict)  # check name -> Verdict
    reference: dict = None  # the grader's own run of this student's assignment
    content_hash: str = ""  # sha256 of the bytes handed in
    notes: list = field(default_factory=list)  # what the instructor should know that is no check (resubmissions)
    late: bool = None
    attribution: tuple = None  # how it was attributed: ("lms", note), ("file name", name), ("claim", "")
    marks: dict = field(default_factory=dict)  # check name -> marks, and "total" (with a rubric)
    marks_possible: float = None
    diagnoses: dict = field(default_factory=dict)  # exercise name -> what its check found (exercise mode)
    lms_unmatched: str = ""  # the LMS's name for it (Moodle's full name), which matched no one on the roster

    @property
    def status(self):
        return max((verdict.status for verdict in self.checks.values()), key=lambda s: s.rank, default=FAIL)

    @property
    def who(self):
        """The name a table shows: the roster student, else the claimed id (unless an LMS said whose it is and
        that is nobody on the roster), else the file."""
        return (self.student_id or (None if self.unlisted else self.claimed_id)
                or Path((self.label or self.file_name).split(": ")[-1]).name)

    @property
    def unlisted(self):
        """The LMS names who handed this in, and that person is not on the roster."""
        return self.student_id is None and self.attribution is not None and self.attribution[0] == "lms"

    def reasons(self, for_student=False):
        """The reasons of every check that did not pass, one string."""
        parts = []
        for name, verdict in self.checks.items():
            if verdict.status is PASS:
                continue
            text = verdict.reason if for_student or not verdict.evidence else f"{verdict.reason} ({verdict.evidence})"
            parts.append(f"{name}: {text}")
        return "; ".join(parts)
