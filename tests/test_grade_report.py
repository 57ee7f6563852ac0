"""The grader on good and broken notebooks built with nbformat, the committed notebook, the report."""

import csv
import json
from pathlib import Path

import nbformat
import pytest

from vae_lab import cli
from vae_lab.grade import grade_command, grade_notebook

ROOT = Path(__file__).resolve().parents[1]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
PROSE = ("The latent means form one cluster per digit and the decoded grid changes smoothly from one "
         "digit to the next, so nearby latent points decode to similar images in every direction.")
METRICS = {"test_neg_elbo": 153.4, "test_reconstruction_loss": 147.8, "test_kl_loss": 5.6,
           "test_nll_iw": 151.9, "final_val_loss": 153.4, "dataset": "mnist"}


def make_notebook(metrics=METRICS, observation=PROSE, result=PROSE, counts=(1, 2, 3, 4), error=False,
                  figures=("plot_latent_scatter", "plot_digit_grid")):
    code = nbformat.v4.new_code_cell
    cells = [code("import vae_lab")]
    for call in figures:
        cell = code(f"vae_lab.{call}(model);")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]
        cells.append(cell)
    result_cell = code("display(metrics)")
    if metrics is not None:
        result_cell.outputs = [nbformat.v4.new_output("display_data", data={"application/json": metrics,
                                                                           "text/plain": "metrics"})]
    if error:
        result_cell.outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="x", traceback=[]))
    cells.append(result_cell)
    for cell, count in zip(cells, counts):
        cell.execution_count = count
    cells += [nbformat.v4.new_markdown_cell(f"## Observation\n\n{observation}"),
              nbformat.v4.new_markdown_cell(f"## Result\n\n{result}")]
    return nbformat.v4.new_notebook(cells=cells)


def write(tmp_path, notebook, name="submission.ipynb"):
    path = tmp_path / name
    nbformat.write(notebook, path)
    return path


def failed_checks(grade):
    return {name for name, passed, _ in grade.checks if not passed}


def test_good_notebook_passes(tmp_path):
    grade = grade_notebook(write(tmp_path, make_notebook()))
    assert grade.passed, grade.checks


@pytest.mark.parametrize("changes, failing", [
    ({"counts": (1, 2, None, 4)}, "all code cells executed"),
    ({"counts": (1, 2, 1, 2)}, "run in order in one kernel session"),
    ({"counts": (3, 1, 2, 4)}, "run in order in one kernel session"),
    ({"error": True}, "no error outputs"),
    ({"figures": ("plot_digit_grid",)}, "latent scatter figure"),
    ({"figures": ("plot_latent_scatter",)}, "digit grid figure"),
    ({"metrics": None}, "metrics output"),
    ({"metrics": {**METRICS, "test_nll_iw": float("nan")}}, "metrics finite"),
    ({"metrics": {**METRICS, "final_val_loss": 540.0}}, "final validation loss within bound"),
    ({"metrics": {**METRICS, "test_nll_iw": 160.0}}, "metrics consistent"),
    ({"observation": "TODO: write your observations here"}, "Observation section"),
    ({"result": "Done."}, "Result section"),
])
def test_broken_notebooks_fail_the_right_check(tmp_path, changes, failing):
    grade = grade_notebook(write(tmp_path, make_notebook(**changes)))
    assert not grade.passed
    assert failing in failed_checks(grade)


def test_bound_is_configurable(tmp_path):
    path = write(tmp_path, make_notebook())
    assert not grade_notebook(path, max_val_loss=150).passed


@pytest.mark.parametrize("content", [b"", b"\x00\xff garbage", b'{"cells": 3}', b"[]",
                                     b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"x": 1}]}'])
def test_malformed_files_fail_without_crashing(tmp_path, content):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    grade = grade_notebook(path)
    assert not grade.passed


def test_command_exit_code_table_and_csv(tmp_path, capsys):
    good = write(tmp_path, make_notebook(), "good.ipynb")
    bad = write(tmp_path, make_notebook(error=True), "bad.ipynb")
    assert grade_command([good], csv_path=tmp_path / "one.csv") == 0
    assert grade_command([good, bad], csv_path=tmp_path / "grades.csv") == 1
    output = capsys.readouterr().out
    assert "FAIL  no error outputs" in output and "1 passed, 1 failed" in output
    rows = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert [row["verdict"] for row in rows] == ["PASS", "FAIL"]
    assert rows[1]["no error outputs"] == "FAIL" and rows[0]["test_neg_elbo"] == "153.4"


def test_committed_notebook_grades_pass():
    grade = grade_notebook(ROOT / "notebooks" / "vae_mnist.ipynb")
    assert grade.passed, [check for check in grade.checks if not check[1]]


def test_rerun_compares_metrics(tmp_path):
    notebook = make_notebook()
    notebook.cells[3].source = f"display({{'application/json': {METRICS!r}}}, raw=True)"
    # a stand-in for the trained lab, so the re-run takes a second: only the comparison is under test
    notebook.cells[0].source = ("import types\nmodel = None\n"
                                "vae_lab = types.SimpleNamespace(plot_latent_scatter=print, plot_digit_grid=print)")
    same = write(tmp_path, notebook, "same.ipynb")
    assert grade_command([same], rerun=True) == 0
    notebook.cells[3].outputs[0]["data"]["application/json"] = {**METRICS, "test_neg_elbo": 140.0}
    edited = write(tmp_path, notebook, "edited.ipynb")
    grade = grade_notebook(edited)
    from vae_lab.grade import rerun_notebook
    rerun_notebook(edited, grade)
    assert "re-run reproduces metrics" in failed_checks(grade)


def test_report_is_one_page_with_embedded_figures(tmp_path, small_data, monkeypatch):
    monkeypatch.setattr(cli, "load_dataset", lambda name, data_dir=None: small_data)
    run = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--batch-size", "64", "--out", str(run),
                     "--iw-samples", "2", "--quiet"]) == 0
    assert cli.main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 4
    for text in ("Aim", "Configuration", "Importance-weighted NLL", "tensorflow", "batch_size"):
        assert text in html
    assert 'src="latent_scatter.png"' not in html  # embedded, not linked
