"""The grader's class page and feedback pages, from a class graded in a second (records built by hand, the
reference runs injected): what they show, and that nothing a hand-in holds becomes markup, a link or a seed."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import records
from vae_lab.course import grade
from vae_lab.course.checks import CHECK_NAMES
from vae_lab.course.class_report import safe_name, write_class_report, write_feedback
from vae_lab.course.rubric import load_rubric, mark
from vae_lab.pages import external_references

HOSTILE_ID = "<script>alert(1)</script>| x |`rm`$x$[a](http://evil.example)"
HOSTILE_TEXT = "line one\nline two | x | <script>alert(2)</script> <img src=x onerror=alert(3)> & `code` **b**"


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
        if self._row is not None and self._row:
            self._row[-1] += data

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row[:] = [cell.strip() for cell in self._row]
            self._row = None


def parse(html):
    parser = Elements()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    course_dir, assignments = records.course(folder, ["s01", "s02", "s03", "s04", "s05"])
    hand_ins, references = folder / "hand-ins", {}
    for number, student in enumerate(("s01", "s02", "s03"), start=1):
        notebook, references[student] = records.honest(student, assignments[student]["seed"], number * 3)
        if student == "s03":  # s03's Result is s02's, without its numbers: both REVIEW under copies
            notebook.cells[-1].source = records.prose(7) + "\n\nMy own numbers are in the table above."
        records.write(hand_ins, notebook, f"{student}.ipynb")
    hostile, references["s04"] = records.honest("s04", assignments["s04"]["seed"], 13,
                                                observation=records.prose(13) + "\n\n" + HOSTILE_TEXT)
    hostile.cells[0].source = hostile.cells[0].source.replace("'s04'", repr(HOSTILE_ID))
    records.write(hand_ins, hostile, "s04.ipynb")
    (hand_ins / "broken.ipynb").write_text("{not json")
    options = grade.GradingOptions(submissions=(hand_ins,), assignments=course_dir / "assignments.csv")
    grading = grade.grade(options, references=references)
    grading.rubric = load_rubric(None, CHECK_NAMES)
    for graded in grading.batch:
        earned, total = mark(graded.checks, grading.rubric)
        graded.marks = {**earned, "total": total}
    return grading, assignments


def test_class_page(tmp_path, graded_class):
    grading, assignments = graded_class
    rows = grade.table_rows(grading)
    path = write_class_report(grading, rows, tmp_path / "out" / "class.html")
    html = path.read_text(encoding="utf-8")
    assert external_references(html) == []
    page = parse(html)
    assert page.tags.get("script", 0) == 0 and page.handlers == []
    assert all(link.startswith(("#", "data:image/png;base64,")) for link in page.links)
    assert "1 PASS" in html and "2 REVIEW" in html and "1 MISSING" in html
    verdicts = page.tables[0]
    header, body = verdicts[0], verdicts[1:]
    assert header[:3] == ["student", "file", "verdict"] and header[-3:] == ["marks", "late", "reasons"]
    assert all(len(row) == len(header) for row in body)  # no '|' or newline broke a row
    by_student = {row[0]: row for row in body}
    assert by_student["s05"][2] == "MISSING"
    assert by_student["s01"][1] == "s01.ipynb" and by_student["s01"][2] == "PASS" and by_student["s01"][-3] == "10"
    assert by_student["s02"][2] == "REVIEW" and by_student["s02"][-3] == ""  # withheld until decided
    hostile = by_student["s04"]  # attributed by its file name; its claimed id is shown as inert text
    assert hostile[2] == "FAIL" and "<script>alert(1)</script>" in hostile[-1]
    assert "\n" not in hostile[-1]
    assert "broken.ipynb" in html and "not valid JSON" in html  # the unreadable file, listed, not graded
    assert "Still to decide" in html and "<mark>" in html  # the two Results side by side, shared phrases marked
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', html)) == 1  # the histogram of verified records


def test_feedback_pages(tmp_path, graded_class):
    grading, assignments = graded_class
    (tmp_path / "feedback").mkdir()
    (tmp_path / "feedback" / "s09.html").write_text("an earlier grading's page")
    directory, others = write_feedback(grading, tmp_path / "feedback")
    assert others == [Path("s09.html")]  # said, and left alone
    (directory / "s09.html").unlink()
    files = sorted(path.name for path in directory.iterdir())
    assert files == ["not-on-roster--broken.html", "s01.html", "s02.html", "s03.html", "s04.html"]
    for path in directory.iterdir():
        html = path.read_text(encoding="utf-8")
        page = parse(html)
        assert external_references(html) == [] and page.tags.get("script", 0) == 0 == len(page.handlers)
        assert not any(str(assignment["seed"]) in html for assignment in assignments.values())
    review = (directory / "s02.html").read_text(encoding="utf-8")
    assert "Verdict: REVIEW" in review and "nothing for you to do unless asked" in review
    assert review.index("Verdict: REVIEW") < review.index("<table")
    checks = parse(review).tables[0]
    assert [row[0] for row in checks[1:]] == [name for name in CHECK_NAMES if name != "exercises"]
    assert "Marks: 10" not in review  # withheld while a REVIEW is open
    passed = (directory / "s01.html").read_text(encoding="utf-8")
    assert "Marks: 10 of 10" in passed


@pytest.mark.parametrize("name, expected", [("s001", "s001"), ("../../etc/passwd", "_.._etc_passwd"),
                                            ("..", "hand-in"), ("", "hand-in"), ("a b/c\\d", "a_b_c_d"),
                                            ("CON", "CON_"), ("lpt1.x", "lpt1_.x"), ("CONSOLE", "CONSOLE")])
def test_safe_name(name, expected):
    assert safe_name(name) == expected


@pytest.mark.parametrize("part, expected", [("Ada Lovelace_12_assignsubmission_file_", None),
                                            ('a<b>c"d|e?f*g.html', "a_b_c_d_e_f_g.html"), ("aux.html", "aux_.html"),
                                            ("notes. ", "notes")])
def test_a_feedback_path_part_unzips_on_any_system(part, expected):
    from vae_lab.course.class_report import _safe_part

    assert _safe_part(part) == (expected or part)


def test_a_notebook_named_for_a_device_gets_a_page_windows_can_hold():
    from types import SimpleNamespace

    from vae_lab.course.class_report import feedback_names

    hand_in = SimpleNamespace(lms="nbgrader", file_name="con.ipynb", identity={"nbgrader_assignment": "lab"})
    graded = SimpleNamespace(student_id="nul", file_name="con.ipynb", label="con.ipynb", hand_in=hand_in)
    plain = SimpleNamespace(student_id="aux", file_name="aux.ipynb", label="aux.ipynb", hand_in=None)
    names = feedback_names([graded, plain])
    assert names[id(graded)] == "nul_/lab/con_.html" and names[id(plain)] == "aux_.html"
