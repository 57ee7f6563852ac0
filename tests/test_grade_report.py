"""The self-check grader on good, broken and hostile notebooks built with nbformat, and the run report."""

import csv
import json

import nbformat
import pytest

from vae_lab import cli
from vae_lab.course.grade import grade_command, grade_submissions
from vae_lab.pages import external_references

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
OBSERVATION = ("My latent means form one cluster per digit: ones sit far to the left, zeros at the top, while fours "
               "and nines overlap in the middle, as do threes and fives. Walking across my grid turns one digit "
               "smoothly into the next, and my reconstructions keep the pose of each digit but blur its strokes.")
RESULT = ("I trained the two-dimensional VAE for two epochs with my own seed. On the test set it reached a "
          "negative ELBO of 160.00 nats and an importance-weighted NLL of 158.50 nats, so the bound is about "
          "one and a half nats loose, and it generates recognisable digits from the prior, which meets the aim.")
METRICS = {"test_neg_elbo": 160.0, "test_reconstruction_loss": 154.0, "test_kl_loss": 6.0, "test_nll_iw": 158.5,
           "final_val_loss": 161.2, "dataset": "mnist", "seed": 7, "epochs": 2}
HISTORY = ("Epoch 1/2  3.0 s  loss 201.07  reconstruction_loss 195.44  kl_loss 5.63  val_loss 172.79  "
           "val_reconstruction_loss 168.17  val_kl_loss 4.63\n"
           "Epoch 2/2  1.1 s  loss 167.80  reconstruction_loss 163.08  kl_loss 4.72  val_loss 161.20  "
           "val_reconstruction_loss 155.20  val_kl_loss 6.00\n")


def make_notebook(metrics=METRICS, observation=OBSERVATION, result=RESULT, counts=(1, 2, 3, 4, 5), error=False,
                  history=HISTORY):
    code = nbformat.v4.new_code_cell
    parameters = code("STUDENT_ID = 's1'\nSEED = 7\nDATASET = 'mnist'\nEPOCHS = 2\nTRAIN_IMAGES = None")
    parameters.metadata["tags"] = ["parameters"]
    training = code("model, history = vae_lab.train(config)")
    training.outputs = [nbformat.v4.new_output("stream", name="stdout", text=history)]
    cells = [parameters, training]
    for call in ("plot_latent_scatter", "plot_digit_grid"):
        cell = code(f"show(vae_lab.{call}(model))")
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


def write(tmp_path, notebook, name="s1.ipynb"):
    path = tmp_path / name
    nbformat.write(notebook, path)
    return path


def graded(path):
    submissions, _ = grade_submissions([path])
    return submissions[0]


def failed(submission):
    return {name for name, (verdict, _) in submission.checks.items() if verdict == "FAIL"}


def test_good_notebook_passes_the_self_check(tmp_path):
    submission = graded(write(tmp_path, make_notebook()))
    assert submission.verdict == "PASS", submission.checks


@pytest.mark.parametrize("changes, failing", [
    ({"counts": (1, 2, None, 4, 5)}, "executed"),
    ({"counts": (1, 2, 3, 1, 2)}, "executed"),
    ({"error": True}, "executed"),
    ({"metrics": None}, "numbers consistent"),
    ({"metrics": {**METRICS, "test_nll_iw": float("nan")}}, "numbers consistent"),
    ({"metrics": {**METRICS, "test_neg_elbo": 150.0}}, "numbers consistent"),
    ({"history": HISTORY.replace("loss 167.80", "loss 160.80")}, "numbers consistent"),
    ({"history": ""}, "numbers consistent"),
    ({"observation": "TODO"}, "prose"),
    ({"result": "Write your answer here."}, "prose"),
    ({"result": RESULT.replace("160.00", "149.37")}, "prose"),
])
def test_broken_notebooks_fail_the_right_check(tmp_path, changes, failing):
    assert failing in failed(graded(write(tmp_path, make_notebook(**changes))))


def test_quoting_the_reference_runs_numbers_is_review(tmp_path):
    submission = graded(write(tmp_path, make_notebook(result=RESULT.replace("160.00", "152.98"))))
    assert submission.verdict == "REVIEW" and "reference" in submission.checks["prose"][1]


@pytest.mark.parametrize("content", [b"", b"not json", b"{\"cells\": 3}", b"\xff\xfe\x00garbage",
                                     b"[" * 100_000 + b"]" * 100_000])
def test_hostile_files_fail_without_crashing(tmp_path, content):
    path = tmp_path / "s1.ipynb"
    path.write_bytes(content)
    submission = graded(path)
    assert submission.verdict == "FAIL" and "readable" in failed(submission)


def test_a_cell_with_a_million_outputs_and_a_huge_file_are_refused(tmp_path):
    notebook = make_notebook()
    notebook.cells[1].outputs = [{"output_type": "stream", "name": "stdout", "text": ""}] * 1_000_000
    path = tmp_path / "s1.ipynb"
    path.write_text(json.dumps(notebook, separators=(",", ":")))  # about 45 MB: under the size limit
    assert "1000000 outputs" in graded(path).checks["readable"][1]
    huge = tmp_path / "huge.ipynb"
    with huge.open("wb") as handle:
        handle.truncate(200 * 2**20)  # 200 MB, sparse: nothing is read
    assert "larger than any lab record" in graded(huge).checks["readable"][1]


def test_command_exit_code_table_and_csv(tmp_path, capsys):
    good = write(tmp_path, make_notebook(), "good.ipynb")
    bad = write(tmp_path, make_notebook(counts=(1, 2, 3, None, 5)), "bad.ipynb")
    assert grade_command([good], csv_path=tmp_path / "one.csv") == 0
    assert "NOT verified" in capsys.readouterr().out
    assert grade_command([good, bad], csv_path=tmp_path / "grades.csv") == 1
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert [row["verdict"] for row in rows] == ["PASS", "FAIL"]
    assert "never run" in rows[1]["reasons"]


def test_grade_never_loads_tensorflow(tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, make_notebook())
    code = ("import sys; from vae_lab import cli; code = cli.main(['grade', sys.argv[1]]); "
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


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


def test_a_failed_reference_run_leaves_its_record_review_and_the_rest_graded(tmp_path):
    """A reference run that killed its worker or timed out: REVIEW with the reason; the others as usual."""
    import math

    from vae_lab.course.record import read_record
    from vae_lab.run_directory import METRIC_KEYS

    (tmp_path / "s1").mkdir()
    first = write(tmp_path / "s1", make_notebook())
    second_notebook = make_notebook()
    second_notebook.cells[0].source = second_notebook.cells[0].source.replace("'s1'", "'s2'").replace("7", "8")
    second_notebook.cells[-3].outputs[0]["data"]["application/json"] = {**METRICS, "seed": 8}
    (tmp_path / "s2").mkdir()
    second = write(tmp_path / "s2", second_notebook, "s2.ipynb")
    record = read_record(second)
    assert not any(math.isnan(value) for column in record.history.values() for value in column)
    exact = {"history": record.history, "metrics": {key: record.metrics[key] for key in METRIC_KEYS}}
    assignments = {"s1": {"student_id": "s1", "seed": 7, "dataset": "mnist", "epochs": 2, "train_images": None},
                   "s2": {"student_id": "s2", "seed": 8, "dataset": "mnist", "epochs": 2, "train_images": None}}

    def verify(to_verify):
        assert set(to_verify) == {"s1", "s2"}
        return {"s1": {"error": "reference run killed its worker 2 times (out of memory?)"}, "s2": exact}

    submissions, _ = grade_submissions([first, second], assignments=assignments, verify=verify)
    verdicts = {s.student_id: s for s in submissions}
    assert verdicts["s1"].verdict == "REVIEW" and "killed its worker" in verdicts["s1"].checks["verified numbers"][1]
    assert verdicts["s2"].checks["verified numbers"] == ("PASS", "reproduced exactly")


def test_the_notebook_quotes_no_timing_the_code_can_print():
    import re
    from pathlib import Path

    notebook = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "vae_mnist.ipynb", as_version=4)
    prose = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert not re.search(r"\b\d+(\.\d+)?(\s*–\s*\d+(\.\d+)?)?\s+(s|seconds?|minutes?|min)\b", prose)
    assert re.search(r"\b\d+(\.\d+)?(\s*–\s*\d+(\.\d+)?)?\s+(s|seconds?|minutes?|min)\b", "took 15–18 s")
