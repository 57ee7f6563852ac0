"""The student's self-check on good, broken and hostile notebooks, the grader's rules that are fair to honest
students, marks and decisions, and the run report."""

import csv
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import records
from vae_lab import cli
from vae_lab.course import grade
from vae_lab.course.checks import check_execution, student_file_stem
from vae_lab.course.verdicts import FAIL, PASS, REVIEW, GradedHandIn
from vae_lab.pages import external_references

ROOT = Path(__file__).resolve().parents[1]


def self_check(folder, notebook, name="s01.ipynb"):
    graded, _ = grade.self_check(records.write(folder, notebook, name))
    return graded


def failing(graded):
    return {name for name, verdict in graded.checks.items() if verdict.status is FAIL}


def test_a_good_notebook_passes_the_self_check(tmp_path):
    graded = self_check(tmp_path, records.notebook())
    assert graded.status is PASS, graded.reasons()
    assert "verified numbers" not in graded.checks and "identity" not in graded.checks


@pytest.mark.parametrize("change, failing_check", [
    (lambda nb: nb.cells.pop(-5), "numbers consistent"),  # no metrics output
    (lambda nb: setattr(nb.cells[2], "execution_count", None), "executed"),
    (lambda nb: nb.cells[3].outputs.clear(), "figures"),
    (lambda nb: setattr(nb.cells[-3], "source", "*Write your answer here, about your own run.*"), "prose"),
    (lambda nb: nb.cells[-5].outputs.append(nbformat.v4.new_output("error", ename="E", evalue="x", traceback=[])),
     "executed"),
])
def test_broken_notebooks_fail_the_right_check(tmp_path, change, failing_check):
    notebook = records.notebook()
    change(notebook)
    assert failing_check in failing(self_check(tmp_path, notebook))


@pytest.mark.parametrize("content", [b"", b"not json", b'{"cells": 3}', b"\xff\xfe\x00garbage",
                                     b"[" * 100_000 + b"]" * 100_000])
def test_hostile_files_fail_without_crashing(tmp_path, content):
    path = tmp_path / "s01.ipynb"
    path.write_bytes(content)
    graded, _ = grade.self_check(path)
    assert graded.checks["readable"].status is FAIL and graded.checks["readable"].reason


def test_a_cell_with_too_many_outputs_and_a_huge_file_are_refused(tmp_path):
    notebook = records.notebook()
    notebook.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x")] * 1001
    graded = self_check(tmp_path, notebook)
    assert graded.checks["readable"].status is FAIL and "outputs" in graded.checks["readable"].reason
    big = tmp_path / "big.ipynb"
    with open(big, "wb") as file:
        file.truncate(200 * 2**20)
    graded, _ = grade.self_check(big)
    assert graded.checks["readable"].status is FAIL


def test_the_result_may_cite_the_literature_but_not_present_foreign_numbers_as_its_own(tmp_path):
    cited = records.notebook(result=records.own_result(2, records.metrics(records.history(7), 7))
                             + "\n\nPublished VAEs reach about 100 nats on binarised MNIST (Kingma and Welling).")
    graded = self_check(tmp_path, cited)
    assert graded.checks["prose"].status is REVIEW and "cited" in graded.checks["prose"].reason
    presented = records.notebook(result=records.prose(3) + "\n\nMy test negative ELBO was 149.23 nats.")
    graded = self_check(tmp_path, presented)
    assert graded.checks["prose"].status is FAIL and "149.23" in graded.checks["prose"].reason


def test_quoting_the_reference_runs_numbers_is_review(tmp_path):
    quoted = records.notebook(result=records.prose(3) + "\n\nIt reaches a negative ELBO of about 152.98 nats, "
                                                        "as the reference run does.")
    graded = self_check(tmp_path, quoted)
    assert graded.checks["prose"].status is REVIEW and "reference run's numbers" in graded.checks["prose"].reason


def cells_with_counts(counts, times=None):
    cells = [{"type": "code", "blank": False, "execution_count": count, "outputs": [],
              "started": (times or {}).get(index)} for index, count in enumerate(counts)]
    return GradedHandIn(label="x", record=type("Record", (), {"cells": cells})())


def test_a_cell_run_again_after_a_full_run_is_review_not_fail():
    assert check_execution(cells_with_counts([1, 2, 3, 4]), None).status is PASS
    again = check_execution(cells_with_counts([1, 2, 5, 4]), None)
    assert again.status is REVIEW and "run again" in again.reason
    assert check_execution(cells_with_counts([1, 3, 2, 4]), None).status is FAIL  # out of order, not re-run


def test_start_times_are_compared_as_times_not_as_text():
    # "…:00Z" sorts after "…:00.5Z" as text, but is the earlier time.
    times = {0: "2026-12-01T10:00:00Z", 1: "2026-12-01T10:00:00.500000Z", 2: "2026-12-01T10:00:01+00:00"}
    assert check_execution(cells_with_counts([1, 2, 3], times), None).status is PASS
    edited = {0: "2026-12-01T10:00:02Z", 1: "2026-12-01T10:00:01Z", 2: "2026-12-01T10:00:03Z"}
    assert check_execution(cells_with_counts([1, 2, 3], edited), None).status is FAIL


@pytest.mark.parametrize("name", ["s01.ipynb", "s01.nbconvert.ipynb", "s01 (1).ipynb", "s01(2).ipynb",
                                  "s01-output.ipynb", "s01_executed.ipynb", "s01-1.ipynb", "s01.out.ipynb"])
def test_the_names_tools_give_a_notebook_are_recognised(name):
    assert student_file_stem(name) == "s01"


def test_command_exit_code_table_and_csv(tmp_path, capsys):
    good = records.write(tmp_path, records.notebook(), "s01.ipynb")
    bad = records.write(tmp_path, records.notebook(metrics_values={}, result=records.prose(4)), "s02.ipynb")
    assert cli.main(["grade", str(good)]) == 0
    assert cli.main(["grade", str(good), str(bad), "--csv", str(tmp_path / "grades.csv")]) == 1
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert [row["verdict"] for row in rows] == ["PASS", "FAIL"]
    assert "Numbers NOT verified" in capsys.readouterr().out


def test_grade_never_loads_tensorflow(tmp_path):
    path = records.write(tmp_path, records.notebook(), "s01.ipynb")
    code = ("import sys; from vae_lab import cli; cli.main(['grade', %r]); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)" % str(path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().endswith("False False"), result.stdout + result.stderr


def test_marks_decisions_and_a_changed_hand_in(tmp_path, capsys):
    course_dir, assignments = records.course(tmp_path, ["s01", "s02"])
    hand_ins = tmp_path / "hand-ins"
    references = {}
    first, references["s01"] = records.honest("s01", assignments["s01"]["seed"], 1)
    second, references["s02"] = records.honest("s02", assignments["s02"]["seed"], 5)
    records.write(hand_ins, first, "s01.ipynb")
    records.write(hand_ins, second, "renamed.ipynb")  # not named for s02: identity REVIEW
    options = grade.GradingOptions(submissions=(hand_ins,), assignments=course_dir / "assignments.csv",
                                   decisions=tmp_path / "decisions.csv", csv=tmp_path / "grades.csv")

    def run():
        original = grade.grade
        grade.grade = lambda options, **kwargs: original(options, references=references)
        try:
            grade.grade_command(options)
        finally:
            grade.grade = original
        return {row["student_id"]: row for row in csv.DictReader((tmp_path / "grades.csv").open())}

    rows = run()
    assert rows["s01"]["total"] == "10" and rows["s02"]["verdict"] == "REVIEW" and rows["s02"]["total"] == ""
    decisions = list(csv.DictReader((tmp_path / "decisions.csv").open()))
    assert [(row["student_id"], row["check"], row["decision"]) for row in decisions] == [("s02", "identity", "")]
    decisions[0]["decision"], decisions[0]["note"] = "PASS", "renamed by the student's browser"
    with open(tmp_path / "decisions.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(decisions[0]))
        writer.writeheader()
        writer.writerows(decisions)
    rows = run()
    assert rows["s02"]["verdict"] == "PASS" and rows["s02"]["total"] == "10"
    assert "decided by the instructor" in capsys.readouterr().out
    rows = run()  # a decision stays settled across gradings
    assert rows["s02"]["verdict"] == "PASS"
    second.cells[-1].source += " I added a sentence after the decision."
    records.write(hand_ins, second, "renamed.ipynb")
    rows = run()
    assert rows["s02"]["verdict"] == "REVIEW" and "re-opened" in rows["s02"]["reasons"]


def test_a_failed_reference_run_leaves_its_record_review_and_the_rest_graded(tmp_path):
    course_dir, assignments = records.course(tmp_path, ["s01", "s02"])
    hand_ins = tmp_path / "hand-ins"
    first, _ = records.honest("s01", assignments["s01"]["seed"], 1)
    second, exact = records.honest("s02", assignments["s02"]["seed"], 5)
    records.write(hand_ins, first, "s01.ipynb")
    records.write(hand_ins, second, "s02.ipynb")
    references = {"s01": {"error": "reference run killed its worker 2 times (out of memory?)"}, "s02": exact}
    grading = grade.grade(grade.GradingOptions(submissions=(hand_ins,), assignments=course_dir / "assignments.csv"),
                          references=references)
    verdicts = {graded.student_id: graded for graded in grading.batch}
    assert verdicts["s01"].status is REVIEW and "killed its worker" in verdicts["s01"].checks["verified numbers"].reason
    assert verdicts["s02"].checks["verified numbers"].status is PASS


@pytest.mark.slow
def test_report_is_one_offline_page_with_embedded_figures(tmp_path, small_data):
    import vae_lab

    run = tmp_path / "run"
    vae_lab.train(vae_lab.TrainConfig(epochs=1, batch_size=64), run, data=small_data, verbose=0)
    vae_lab.save_lab_figures(run, small_data[1][0], small_data[1][1])
    vae_lab.evaluate_run(run, iw_samples=3, data=small_data)
    assert cli.main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 4 and external_references(html) == []
    assert "Importance-weighted NLL" in html
    from bs4 import BeautifulSoup

    from vae_lab.record_format import LAB_FIGURES

    alts = [image.get("alt") for image in BeautifulSoup(html, "html.parser").select("img")]
    assert alts == [figure.caption for figure in LAB_FIGURES.values()]  # each figure described by its caption


def test_the_notebook_quotes_no_timing_the_code_can_print():
    notebook = nbformat.read(ROOT / "notebooks" / "vae_mnist.ipynb", as_version=4)
    prose = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert not re.search(r"\b\d+(\.\d+)?(\s*–\s*\d+(\.\d+)?)?\s+(s|seconds?|minutes?|min)\b", prose)
    assert re.search(r"\b\d+(\.\d+)?(\s*–\s*\d+(\.\d+)?)?\s+(s|seconds?|minutes?|min)\b", "took 15–18 s")


def test_grading_options_and_the_grade_flags_are_one_set():
    fields = {field.name for field in dataclasses.fields(grade.GradingOptions)}
    assert set(cli.GRADE_FLAGS) | {"submissions"} == fields
    json.dumps(sorted(fields))


def test_an_id_that_ends_like_a_tools_suffix_is_its_own(tmp_path):
    """'jsmith-2.ipynb' is jsmith-2's handout, not a second copy of jsmith's (code review, 2026-12-06)."""
    course_dir, assignments = records.course(tmp_path, ["jsmith", "jsmith-2", "2024-017"])
    references = {}
    for number, student in enumerate(assignments):
        notebook, references[student] = records.honest(student, assignments[student]["seed"], 1 + 4 * number)
        records.write(tmp_path / "hand-ins", notebook, f"{student}.ipynb")
    grading = grade.grade(grade.GradingOptions(submissions=(tmp_path / "hand-ins",),
                                               assignments=course_dir / "assignments.csv"), references=references)
    assert {graded.student_id: graded.status for graded in grading.batch} == {
        "jsmith": PASS, "jsmith-2": PASS, "2024-017": PASS}


def test_two_cells_with_one_count_are_a_verdict_not_a_crash():
    """A kernel restarted mid-way gives two cells the count 1; one without a start time made the check raise."""
    times = {0: "2026-12-01T10:00:00Z", 1: "2026-12-01T10:00:01Z"}  # the third cell has none
    verdict = check_execution(cells_with_counts([1, 2, 1], times), None)
    assert verdict.status is FAIL and "after a restart" in verdict.reason
