"""Marks from verdicts: how many marks each check is worth, which checks are gates, and what a REVIEW counts
for until the instructor decides it.

A rubric is a small TOML file (`--rubric`); without one the default below applies. Each check's marks are
earned on PASS and lost on FAIL; a FAIL of a gate (the hand-in isn't a readable record of this student, or
it was copied) makes the whole record 0.
"""

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabError
from .verdicts import FAIL, PASS, REVIEW


class RubricError(LabError, ValueError):
    """A rubric file that can't be used; the message says what to change."""


DEFAULT_RUBRIC_TOML = """\
# vae-lab's default rubric: a lab record out of 10.
points_possible = 10
# What a REVIEW earns until you decide it in the decisions file: "withhold" leaves the record's total
# blank (nothing goes to the gradebook), or a fraction from 0 to 1 of the check's marks (of the whole total
# for a gate's REVIEW: a gate decides between the total and 0).
review = "withhold"
# A FAIL of any of these makes the whole record 0: it is not this student's readable, own work.
gates = ["readable", "identity", "hand-ins", "copies"]

[marks]
executed = 2
figures = 2
"numbers consistent" = 1
"verified numbers" = 2
prose = 3
"""

# In exercise mode the student's code earns marks of its own.
DEFAULT_EXERCISE_RUBRIC_TOML = DEFAULT_RUBRIC_TOML.replace("""executed = 2
figures = 2
"numbers consistent" = 1
"verified numbers" = 2
prose = 3""", """exercises = 3
executed = 1
figures = 1
"numbers consistent" = 1
"verified numbers" = 2
prose = 2""").replace("default rubric:", "default rubric for exercise courses:")


SETTINGS = ("points_possible", "review", "gates", "marks")
DEFAULT_GATES = tomllib.loads(DEFAULT_RUBRIC_TOML)["gates"]


@dataclass(frozen=True)
class Rubric:
    marks: dict = field(default_factory=dict)  # check name -> marks
    gates: tuple = ()
    review: object = "withhold"  # "withhold" or a fraction in [0, 1]
    points_possible: float = 10.0
    source: str = "the default rubric"


def parse_rubric(text, source, check_names, exercises=False):
    """The Rubric TEXT gives; a setting it leaves out keeps the default rubric's (the exercise course's marks
    when EXERCISES)."""
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RubricError(f"{source} is not valid TOML: {error}") from None
    default_marks = tomllib.loads(DEFAULT_EXERCISE_RUBRIC_TOML if exercises else DEFAULT_RUBRIC_TOML)["marks"]
    marks = values.get("marks", default_marks)
    problems = [f"{key!r} is no rubric setting (settings: {', '.join(SETTINGS)})" for key in values
                if key not in SETTINGS]  # a typo such as `gate = [...]` would otherwise drop every gate
    if not isinstance(marks, dict) or not marks:
        problems.append("a [marks] table with at least one check is needed")
        marks = {}
    for name, value in marks.items():
        if name not in check_names:
            problems.append(f"[marks] names {name!r}, which is no check (checks: {', '.join(check_names)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
            problems.append(f"the marks of {name!r} must be a number from 0 to 1000")
    gates = values.get("gates", list(DEFAULT_GATES))  # a rubric of marks alone keeps the gates: `gates = []` drops them
    if not isinstance(gates, list) or any(gate not in check_names for gate in gates):
        problems.append(f"gates must be a list of check names ({', '.join(check_names)})")
    review = values.get("review", "withhold")
    if not (review == "withhold" or (isinstance(review, (int, float)) and not isinstance(review, bool)
                                     and 0 <= review <= 1)):
        problems.append('review must be "withhold" or a fraction from 0 to 1')
    total = sum(value for value in marks.values() if isinstance(value, (int, float)) and not isinstance(value, bool))
    points = values.get("points_possible", total)
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isclose(points, total):
        problems.append(f"points_possible ({points}) must equal the sum of the marks ({total:g})")
    if problems:
        raise RubricError(f"{source}: " + "; ".join(problems))
    return Rubric(marks=dict(marks), gates=tuple(gates), review=review, points_possible=float(points), source=source)


def load_rubric(path, check_names, exercises=False):
    """The rubric in PATH (TOML), or the default one (for exercise courses when EXERCISES)."""
    if path is None:
        text = DEFAULT_EXERCISE_RUBRIC_TOML if exercises else DEFAULT_RUBRIC_TOML
        return parse_rubric(text, "the default rubric for exercise courses" if exercises else "the default rubric",
                            check_names)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RubricError(f"cannot read the rubric {path}: {getattr(error, 'strerror', None) or error}") from None
    return parse_rubric(text, str(path), check_names, exercises)


def mark(checks, rubric):
    """({check name: marks earned or None while withheld}, total or None while withheld) for a hand-in's checks."""
    earned = {}
    for name, marks in rubric.marks.items():
        verdict = checks.get(name)
        status = verdict.status if verdict is not None else FAIL  # a check that did not run earns nothing
        if status is PASS:
            earned[name] = float(marks)
        elif status is REVIEW:
            earned[name] = None if rubric.review == "withhold" else float(marks) * rubric.review
        else:
            earned[name] = 0.0
    gate_failed = any(checks.get(gate) is not None and checks[gate].status is FAIL for gate in rubric.gates)
    if gate_failed or "readable" in checks and checks["readable"].status is FAIL:
        return {name: 0.0 for name in earned}, 0.0
    pending_gate = any(checks.get(gate) is not None and checks[gate].status is REVIEW for gate in rubric.gates)
    if None in earned.values() or (pending_gate and rubric.review == "withhold"):
        return earned, None
    # a gate decides between the whole total and 0, so its REVIEW earns the fraction of the whole total (with a
    # gate's own 0 marks, a fraction of them made a possible copy a full mark)
    return earned, round(sum(earned.values()) * (rubric.review if pending_gate else 1.0), 2)
