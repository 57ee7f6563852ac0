"""One self-contained HTML page per run (figures embedded), built as a notebook and exported by nbconvert."""

import base64
import datetime
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from .evaluation import environment, metrics_table
from .plots import FIGURE_FILES
from .training import read_json

AIM = ("To build a variational autoencoder with a two-dimensional latent space, train it on handwritten "
       "images, and use the learned latent distribution to reconstruct test images and generate new ones.")
CAPTIONS = {
    "latent_scatter": "Latent means of the test images, coloured by their true class.",
    "digit_grid": "Images decoded from a 10x10 grid over z in [-3, 3]^2 (top row: z2 = 3).",
    "reconstructions": "Test images (top) and their reconstructions (bottom).",
    "learning_curves": "Negative ELBO per epoch, and its reconstruction and KL terms.",
}


def _figure_cell(path, caption):
    cell = nbformat.v4.new_code_cell(source="")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"image/png": base64.b64encode(path.read_bytes()).decode("ascii"),
                              "text/plain": caption})]
    return cell


def _table(rows):
    return "\n".join(["| | |", "| --- | --- |", *(f"| {key} | {value} |" for key, value in rows)])


def build_report(run_dir):
    """The report as a notebook object: markdown for the text, display outputs for the figures."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    metrics_path = run_dir / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.exists() else None
    md = nbformat.v4.new_markdown_cell
    cells = [
        md(f"# Lab record: variational autoencoder on {config['dataset']}\n\n"
           f"Run directory `{run_dir}`, report written {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}."),
        md(f"## Aim\n\n{AIM}"),
        md("## Configuration\n\n" + _table(config.items())),
        md("## Result\n\n" + (metrics_table(metrics) if metrics else
                              f"Not evaluated yet: run `vae-lab evaluate {run_dir}`.")),
        md("## Figures"),
    ]
    for name, filename in FIGURE_FILES.items():
        path = run_dir / filename
        cells.append(md(f"**{CAPTIONS[name]}**") if path.exists() else md(f"*{filename} is missing.*"))
        if path.exists():
            cells.append(_figure_cell(path, CAPTIONS[name]))
    versions = (metrics or {}).get("versions") or environment()
    timing = ([("training, seconds", metrics["train_seconds"]), ("evaluation, seconds", metrics["evaluation_seconds"])]
              if metrics else [])
    cells.append(md("## Environment\n\n" + _table([*versions.items(), *timing])))
    return nbformat.v4.new_notebook(cells=cells)


def write_report(run_dir):
    """Write RUN_DIR/report.html and return its path."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise FileNotFoundError(f"{run_dir} holds no run (no config.json): train first")
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(build_report(run_dir))
    path = run_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
