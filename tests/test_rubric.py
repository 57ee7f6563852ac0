"""The rubric: a file of marks alone keeps the default gates, and a setting it does not know is refused
(code review, 2026-12-06: a rubric without `gates`, or with `gate =`, gave an identity FAIL 8 of 10)."""

import pytest

from vae_lab.course.checks import CHECK_NAMES
from vae_lab.course.rubric import DEFAULT_GATES, RubricError, mark, parse_rubric
from vae_lab.course.verdicts import FAIL, PASS, REVIEW, Verdict

MARKS_ONLY = '[marks]\nexecuted = 2\nfigures = 2\n"numbers consistent" = 1\n"verified numbers" = 2\nprose = 3\n'


def all_pass_but(**statuses):
    checks = {name: Verdict(PASS, "") for name in CHECK_NAMES}
    checks.update({name.replace("_", " "): Verdict(status, "x") for name, status in statuses.items()})
    return checks


def test_a_rubric_of_marks_alone_keeps_the_gates():
    rubric = parse_rubric(MARKS_ONLY, "rubric.toml", CHECK_NAMES)
    assert rubric.gates == tuple(DEFAULT_GATES) and "identity" in rubric.gates
    assert mark(all_pass_but(identity=FAIL), rubric)[1] == 0.0
    assert mark(all_pass_but(), rubric)[1] == 10.0


def test_no_gates_only_when_asked():
    rubric = parse_rubric("gates = []\n" + MARKS_ONLY, "rubric.toml", CHECK_NAMES)
    assert rubric.gates == () and mark(all_pass_but(identity=FAIL), rubric)[1] == 10.0


@pytest.mark.parametrize("typo", ['gate = ["identity"]', 'points = 10', 'reveiw = "withhold"'])
def test_a_setting_the_rubric_does_not_know_is_refused(typo):
    with pytest.raises(RubricError, match="is no rubric setting"):
        parse_rubric(f"{typo}\n{MARKS_ONLY}", "rubric.toml", CHECK_NAMES)


def test_a_rubric_that_changes_one_setting_keeps_the_default_marks():
    rubric = parse_rubric("review = 0.5\n", "rubric.toml", CHECK_NAMES)
    assert rubric.review == 0.5 and rubric.points_possible == 10 and rubric.marks["prose"] == 3
    exercise = parse_rubric("review = 0.5\n", "rubric.toml", CHECK_NAMES, exercises=True)
    assert exercise.marks["exercises"] == 3 and exercise.points_possible == 10


@pytest.mark.parametrize("gate", ["identity", "hand-ins", "copies"])
def test_a_gates_review_earns_the_fraction_of_the_whole_total(gate):
    # a fraction of a gate's (zero) marks made a possible copy, or someone else's hand-in, a 10 (hunt, 2026-12-06)
    rubric = parse_rubric("review = 0.5\n", "rubric.toml", CHECK_NAMES)
    checks = all_pass_but()
    checks[gate] = Verdict(REVIEW, "x")
    assert mark(checks, rubric)[1] == 5.0
    assert mark(checks, parse_rubric("", "rubric.toml", CHECK_NAMES))[1] is None  # "withhold" withholds it
    assert mark(all_pass_but(prose=REVIEW), rubric)[1] == 8.5
