"""Lab records built by hand for the grader's tests: what an executed lab notebook holds (parameters, the
printed history, two real figures, the metrics output, the student's prose), without any training.

`honest(...)` gives a record and the reference entry the grader's own run would give for it, so a test can
grade a class in a second with `grade.grade(options, references=...)`.
"""

import base64
import datetime
import functools
import io
import re
from pathlib import Path

import nbformat
import numpy as np

from vae_lab.record_format import HISTORY_KEYS, format_epoch_line

PROSE = Path(__file__).resolve().parent / "data" / "prose"
FUNCTIONS_CELL = ("functions = vae_lab.LossFunctions(reparameterize=reparameterize, kl_divergence=kl_divergence,\n"
                  "                                 reconstruction_loss=reconstruction_loss)")


@functools.lru_cache(maxsize=None)
def figure_png(seed, kind="latent_scatter", size=(6.0, 5.0)):
    """A real, non-blank PNG that differs from seed to seed, like two students' figures do."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rng = np.random.default_rng([seed, len(kind)])
    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    if kind == "digit_grid":
        axis.imshow(rng.uniform(0, 1, (10, 10)).repeat(28, 0).repeat(28, 1), cmap="gray")
        axis.set_axis_off()
    else:
        points = rng.normal(0, 1, (300, 2)) + rng.normal(0, 2, (1, 2))
        axis.scatter(points[:, 0], points[:, 1], c=rng.integers(0, 10, 300), cmap="tab10", s=6)
        axis.set_xlabel("z1")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def history(seed, epochs=2):
    """A plausible history (nats per image) whose loss is reconstruction + KL, different for every seed."""
    rng = np.random.default_rng(seed)
    values = {key: [] for key in HISTORY_KEYS}
    for epoch in range(epochs):
        for prefix, start in (("", 200.0), ("val_", 172.0)):
            reconstruction = start - 30.0 * (1 - 0.5 ** epoch) + float(rng.uniform(-2, 2))
            kl = 5.0 + 0.2 * epoch + float(rng.uniform(-0.5, 0.5))
            values[prefix + "reconstruction_loss"].append(reconstruction)
            values[prefix + "kl_loss"].append(kl)
            values[prefix + "loss"].append(reconstruction + kl)
    return values


def metrics(history_values, seed, dataset="mnist"):
    reconstruction, kl = history_values["val_reconstruction_loss"][-1] - 0.3, history_values["val_kl_loss"][-1]
    return {"test_neg_elbo": reconstruction + kl, "test_reconstruction_loss": reconstruction, "test_kl_loss": kl,
            "test_nll_iw": reconstruction + kl - 1.7, "final_val_loss": history_values["val_loss"][-1],
            "iw_samples": 20, "elbo_draws": 1, "evaluation_seed": 0, "epochs": len(history_values["loss"]),
            "latent_dim": 2, "seed": seed, "dataset": dataset, "train_seconds": 5.0, "evaluation_seconds": 1.0}


def printed_history(history_values, epochs=None):
    epochs = epochs or len(history_values["loss"])
    return "".join(format_epoch_line(epoch + 1, epochs, 2.5, {key: history_values[key][epoch] for key in HISTORY_KEYS})
                   + "\n" for epoch in range(len(history_values["loss"])))


def prose(number):
    """An independently written Observation from the prose corpus, its numbers removed."""
    from vae_lab.course.prose import notebook_sections

    number = (number - 1) % 16 + 1  # the corpus holds 16 independent texts
    text = notebook_sections({"cells": [{"cell_type": "markdown",
                                          "source": (PROSE / f"student_{number:02d}.md").read_text()}]})["Observation"]
    return re.sub(r"\d+(?:[.,]\d+)?", "", text)


# How different students quote their numbers (two placeholders: negative ELBO, importance-weighted NLL).
QUOTES = ("On the test set my model reached a negative ELBO of {} nats and an importance-weighted NLL of {} nats.",
          "Test negative ELBO: {} nats; importance-weighted estimate {} nats.",
          "It ended with {} nats for the bound and {} nats for the tighter importance-sampled estimate.",
          "My numbers: -ELBO {} and IW NLL {} (nats per image).",
          "The evaluation printed {} (negative ELBO) and {} (NLL, 20 samples).",
          "Measured on held-out digits, the loss was {} nats, with {} nats as the importance-weighted value.")


def own_result(number, metrics_values):
    """A Result in the student's words (another corpus text) that quotes the record's own metrics."""
    quote = QUOTES[number % len(QUOTES)].format(f"{metrics_values['test_neg_elbo']:.2f}",
                                                f"{metrics_values['test_nll_iw']:.2f}")
    return prose(number) + "\n\n" + quote


def notebook(student="s01", seed=7, *, dataset="mnist", epochs=2, train_images=None, history_values=None,
             metrics_values=None, observation=None, result=None, figures=None, prose_number=1, exercises=None):
    """An executed lab record as nbformat builds it; every part can be replaced to forge or break it."""
    code, markdown = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    history_values = history_values or history(seed, epochs)
    metrics_values = metrics_values if metrics_values is not None else metrics(history_values, seed, dataset)
    cells = []
    parameters = code(f"STUDENT_ID = {student!r}\nSEED = {seed}\nDATASET = {dataset!r}\nEPOCHS = {epochs}\n"
                      f"TRAIN_IMAGES = {train_images!r}")
    parameters.metadata["tags"] = ["parameters"]
    cells.append(parameters)
    cells.append(code("import vae_lab"))
    for name, source in (exercises or {}).items():
        cell = code(source)
        cell.metadata["tags"] = ["exercise"]
        cells.append(cell)
    if exercises:
        cells.append(code(FUNCTIONS_CELL))
        cells[-1].metadata["tags"] = ["functions"]
    training = code("model, history = vae_lab.train(config, RUN_DIR, data=data, overwrite=True"
                    + (", functions=functions)" if exercises else ")"))
    training.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed_history(history_values, epochs))]
    cells.append(training)
    figures = figures or {}
    for name, call in (("latent_scatter", "plot_latent_scatter"), ("digit_grid", "plot_digit_grid")):
        png = figures.get(name, figure_png(seed, name))
        cell = code(f"show(vae_lab.{call}(model))")
        if png is not None:
            encoded = png if isinstance(png, str) else base64.b64encode(png).decode("ascii")
            cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": encoded,
                                                                       "text/plain": "<Figure>"})]
        cells.append(cell)
    result_cell = code("metrics = vae_lab.evaluate_run(RUN_DIR, iw_samples=20, data=data)\ndisplay(metrics)")
    if metrics_values:
        result_cell.outputs = [nbformat.v4.new_output("display_data", data={"application/json": metrics_values,
                                                                           "text/plain": "metrics.json"})]
    cells.append(result_cell)
    start = datetime.datetime(2026, 12, 1, 10, 0, 0, tzinfo=datetime.timezone.utc)
    count = 0
    for cell in cells:
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
            moment = start + datetime.timedelta(seconds=3 * count)
            cell.metadata["execution"] = {"iopub.execute_input": moment.isoformat().replace("+00:00", "Z")}
    observation = observation if observation is not None else prose(prose_number)
    result = result if result is not None else own_result(prose_number + 1, metrics_values or {})
    for title, text in (("Observation", observation), ("Result", result)):
        cells.append(markdown(f"## {title}"))
        answer = markdown(text)
        answer.metadata["tags"] = ["answer"]
        cells.append(answer)
    return nbformat.v4.new_notebook(cells=cells)


def reference(history_values, metrics_values):
    """The reference entry a grader's run of the same assignment would give (exact values)."""
    from vae_lab.record_format import METRIC_KEYS

    return {"history": {key: list(values) for key, values in history_values.items()},
            "metrics": {key: metrics_values[key] for key in METRIC_KEYS}}


def honest(student, seed, prose_number, **options):
    """(notebook, reference entry) of an honest student."""
    values = history(seed, options.get("epochs", 2))
    measured = metrics(values, seed, options.get("dataset", "mnist"))
    return notebook(student, seed, history_values=values, metrics_values=measured, prose_number=prose_number,
                    **options), reference(values, measured)


def write(folder, notebook_node, name):
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook_node, path)
    return path


def course(folder, students, *, exercises=False, epochs=2):
    """A course folder as `vae-lab assign` writes it (key, assignments.csv, handout), for STUDENTS."""
    from vae_lab.course.assign import assign_command, read_assignments

    folder = Path(folder)
    roster = folder / "roster.csv"
    roster.parent.mkdir(parents=True, exist_ok=True)
    roster.write_text("student_id,name\n" + "".join(f"{student},Student {student}\n" for student in students))
    assign_command(roster, folder / "course", epochs=epochs, exercises=exercises)
    assignments, _ = read_assignments(folder / "course" / "assignments.csv")
    return folder / "course", assignments
