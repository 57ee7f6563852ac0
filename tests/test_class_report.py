"""The grader's class page and feedback pages, from Submissions built by hand (no training, no notebooks)."""

import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from vae_lab.course.class_report import safe_name, write_class_report, write_feedback
from vae_lab.course.grade import CHECKS, FAIL, PASS, REVIEW, Submission, csv_rows
from vae_lab.pages import external_references

HOSTILE_ID = "<script>alert(1)</script>| x |`rm`$x$[a](http://evil.example)"
HOSTILE_REASON = "line one\nline two | x | <script>alert(2)</script> <img src=x onerror=alert(3)> & `code` **b**"


class Elements(HTMLParser):
    """Counts start tags and event-handler attributes, and collects the rows of every table."""

    def __init__(self):
        super().__init__()
        self.tags, self.handlers, self.links, self.tables, self._row = {}, [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.handlers += [name for name, _ in attrs if name.lower().startswith("on")]
        self.links += [value for name, value in attrs if name in ("href", "src")]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
            self.tables[-1].append(self._row)
        elif tag in ("td", "th"):
            self._row.append("")

    def handle_data(self, data):
        if self._row:
            self._row[-1] += data

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row[:] = [cell.strip() for cell in self._row]
            self._row = None


def parse(html):
    parser = Elements()
    parser.feed(html)
    return parser


def record(loss, dataset="mnist"):
    return SimpleNamespace(metrics={"final_val_loss": loss, "dataset": dataset}, history={})


def submission(name, student, checks, rec=None):
    made = Submission(Path("hand-in") / f"{name}.ipynb", student_id=student, record=rec)
    for check, (verdict, reason) in checks.items():
        made.add(check, verdict, reason)
    return made


def all_pass(**changes):
    checks = {name: (PASS, "") for name in CHECKS}
    checks.update(changes)
    return checks


@pytest.fixture
def graded():
    submissions = [
        submission("s001", "s001", all_pass(), record(153.0)),
        submission("s002", "s002", all_pass(copies=(REVIEW, "Result similar to s003's (0.91)")), record(155.5)),
        submission("s003", "s003", all_pass(copies=(REVIEW, "Result similar to s002's (0.91)")),
                   record(262.0, "fashion_mnist")),
        submission("evil", HOSTILE_ID, all_pass(prose=(FAIL, HOSTILE_REASON)), record(float("nan"))),
        submission("broken", None, {"readable": (FAIL, "not a Jupyter notebook (no list of cells)")}),
    ]
    assignments = {student: {"student_id": student, "seed": 1, "dataset": "mnist", "epochs": 5, "train_images": None}
                   for student in ("s001", "s002", "s003", "s004", "s005")}
    pairs = [("s002", "s003", "Result", 0.91), (HOSTILE_ID, "s001", "Observation\n| x", 0.5)]
    return submissions, csv_rows(submissions, assignments), pairs, assignments


def test_class_report(tmp_path, graded):
    submissions, rows, pairs, assignments = graded
    references = {"s001": {"history": {"val_loss": [170.0, 152.9]}}, "s002": {"error": "training failed"}}
    path = write_class_report(submissions, rows, pairs, assignments, tmp_path / "out" / "class.html",
                              references=references)
    assert path == tmp_path / "out" / "class.html" and path.exists()
    html = path.read_text(encoding="utf-8")
    assert external_references(html) == []
    page = parse(html)
    assert page.tags.get("script", 0) == 0 and page.handlers == []
    assert all(link.startswith(("#", "data:image/png;base64,")) for link in page.links)  # heading anchors, figure
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', html)) == 1
    assert "1 PASS" in html and "2 REVIEW" in html and "2 FAIL" in html and "2 MISSING" in html
    verdicts, rates, flagged = page.tables
    header, body = verdicts[0], verdicts[1:]
    assert header == ["student", "verdict", *CHECKS, "reasons"]
    assert all(len(row) == len(header) for row in body)  # no '|' or newline broke a row
    assert len(body) == len(rows) - 1 == 7  # five students on the roster, two unknown submissions
    by_student = {row[0]: row for row in body}
    assert by_student["s004"][1] == "MISSING" and by_student["s005"][1] == "MISSING"
    assert by_student["s001"][1] == "PASS" and by_student["s002"][1] == "REVIEW"
    shown_id = HOSTILE_ID.replace("://", ":\u200b//")  # shown as text; an address is broken by a zero-width space
    assert by_student[shown_id][1] == "FAIL"
    assert "<script>alert(2)</script>" in by_student[shown_id][-1] and "\n" not in by_student[shown_id][-1]
    assert by_student["(no id) broken.ipynb"][2] == "FAIL"
    assert [row[0] for row in rates[1:]] == list(CHECKS)
    readable = rates[1 + CHECKS.index("readable")]
    assert readable[1:] == ["4", "0", "1", "0", "80%"]
    assert len(flagged) == 3 and flagged[1][:2] == ["s002", "s003"] and flagged[1][3] == "0.91"
    assert all(len(row) == 4 for row in flagged)


def test_class_report_positional_without_references_or_losses(tmp_path):
    submissions = [submission("a", "a", {"readable": (FAIL, "unreadable")})]
    path = write_class_report(submissions, csv_rows(submissions), [], None, tmp_path / "class.html")
    html = path.read_text(encoding="utf-8")
    assert external_references(html) == [] and "<img" not in html
    assert "No submission printed a final validation loss" in html


def test_feedback_pages(tmp_path, graded):
    submissions = graded[0] + [submission("copy", "s001", all_pass(executed=(FAIL, "code cells [2] were never run")))]
    directory = write_feedback(submissions, tmp_path / "feedback")
    assert directory == tmp_path / "feedback"
    files = sorted(path.name for path in directory.iterdir())
    assert len(files) == len(submissions)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+\.html", name) and not name.startswith(".") for name in files)
    assert {"s001.html", "s001-2.html", "s002.html", "broken.html"} <= set(files)
    for path in directory.iterdir():
        html = path.read_text(encoding="utf-8")
        assert external_references(html) == [] and parse(html).tags.get("script", 0) == 0 == len(parse(html).handlers)
    review = (directory / "s002.html").read_text(encoding="utf-8")
    assert "Verdict: REVIEW" in review and "nothing for you to do unless asked" in review
    assert review.index("Verdict: REVIEW") < review.index("<table")
    failed = (directory / "s001-2.html").read_text(encoding="utf-8")
    assert "Verdict: FAIL" in failed and "code cells [2] were never run" in failed
    checks = parse(failed).tables[0]
    assert [row[0] for row in checks[1:]] == list(CHECKS)
    evil = [name for name in files if name not in {"s001.html", "s001-2.html", "s002.html", "s003.html",
                                                   "broken.html"}]
    assert len(evil) == 1
    rows = parse((directory / evil[0]).read_text(encoding="utf-8")).tables[0]
    assert all(len(row) == 3 for row in rows) and "<script>alert(2)</script>" in rows[1 + CHECKS.index("prose")][2]


@pytest.mark.parametrize("name, expected", [("s001", "s001"), ("../../etc/passwd", "_.._etc_passwd"),
                                            ("..", "submission"), ("", "submission"), ("a b/c\\d", "a_b_c_d")])
def test_safe_name(name, expected):
    assert safe_name(name) == expected
