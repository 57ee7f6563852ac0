"""One self-contained HTML page per run: aim, configuration, metrics, figures and machine."""

import datetime
from pathlib import Path

from . import run_directory
from .data import DATASETS
from .pages import figure_cell
from .record_format import LAB_FIGURES, METRIC_LABELS


def aim(dataset="mnist"):
    """The lab's aim, as the notebook and the report state it."""
    return (f"To build a variational autoencoder with a two-dimensional latent space, train it on the "
            f"{DATASETS[dataset].title}, and use the learned latent distribution to reconstruct test images "
            f"and to generate new ones.")


def metrics_table(metrics):
    """The headline metrics as a Markdown table, in nats per test image."""
    rows = ["| metric (test set) | nats per image |", "| --- | ---: |"]
    rows += [f"| {label} | {metrics[key]:.2f} |" for key, label in METRIC_LABELS.items()]
    rows.append(f"\n{metrics['epochs']} epochs, latent dimension {metrics['latent_dim']}, seed {metrics['seed']}, "
                f"{metrics['dataset']}; NLL with {metrics['iw_samples']} importance samples per image.")
    return "\n".join(rows)


def _table(rows):
    return "\n".join(["| | |", "| --- | --- |", *(f"| {key} | {value} |" for key, value in rows)])


def build_report(run_dir):
    """The report as a notebook object: markdown for the text, display outputs for the figures."""
    import nbformat

    run_dir = Path(run_dir)
    config = run_directory.read_config(run_dir)
    metrics_path = run_dir / run_directory.METRICS
    metrics = run_directory.read_json(metrics_path) if metrics_path.exists() else None
    md = nbformat.v4.new_markdown_cell
    cells = [
        md(f"# Lab record: variational autoencoder on {DATASETS[config.dataset].title}\n\n"
           f"Run directory `{run_dir}`, report written {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}."),
        md(f"## Aim\n\n{aim(config.dataset)}"),
        md("## Configuration\n\n" + _table(config.as_dict().items())),
        md("## Result\n\n" + (metrics_table(metrics) if metrics else
                              f"Not evaluated yet: run `vae-lab evaluate {run_dir}`.")),
        md("## Figures"),
    ]
    for figure in LAB_FIGURES.values():
        path = run_dir / figure.file
        cells.append(md(f"**{figure.caption}**") if path.exists() else md(f"*{figure.file} is missing.*"))
        if path.exists():
            cells.append(figure_cell(path.read_bytes(), figure.caption))
    versions = (metrics or {}).get("versions") or run_directory.machine_and_versions()
    timing = ([("training, seconds", metrics["train_seconds"]), ("evaluation, seconds", metrics["evaluation_seconds"])]
              if metrics else [])
    cells.append(md("## Environment\n\n" + _table([*versions.items(), *timing])))
    return nbformat.v4.new_notebook(cells=cells)


def write_report(run_dir):
    """Write RUN_DIR/report.html and return its path."""
    from .pages import write_html

    run_dir = Path(run_dir)
    run_directory.read_config(run_dir)  # a clear error before any work when there is no run
    return write_html(build_report(run_dir), run_dir / run_directory.REPORT, exclude_input=True,
                      exclude_input_prompt=True, exclude_output_prompt=True)


def program_listing(exercises=False):
    """The source of `vae_lab/model.py` as Markdown: the record shows the program it ran, not a copy. With
    EXERCISES, the bodies of the functions the student writes are left out."""
    import ast
    import inspect

    from . import model

    source = inspect.getsource(model)
    if exercises:
        hidden = {"reparameterize": "the exercise: you write this one",
                  "kl_divergence": "the exercise: you write this one",
                  "reconstruction_loss_from_probabilities": "the exercise: you write this one, as "
                                                            "reconstruction_loss(x, x_decoded)",
                  "reconstruction_loss": "the package's same term from the logits, hidden: it gives the exercise "
                                         "away (yours is the one below, from probabilities)"}
        lines = source.splitlines()
        for node in sorted((node for node in ast.parse(source).body
                            if isinstance(node, ast.FunctionDef) and node.name in hidden),
                           key=lambda node: -node.lineno):
            indent = " " * (node.body[0].col_offset)
            lines[node.body[0].lineno - 1:node.end_lineno] = [f"{indent}...  # {hidden[node.name]}"]
        source = "\n".join(lines) + "\n"
    return f"`vae_lab/model.py` (vae_lab {_version()}):\n\n```python\n{source}```"


def worked_example_note(dataset, seed, reference_seed=0):
    """What the notebook's written Observation and Result describe, next to this run's parameters."""
    if dataset == "mnist" and seed == reference_seed:
        return "The Observation and Result below describe this run (the reference run: MNIST, seed 0)."
    return (f"The Observation and Result below describe the reference run (MNIST, seed {reference_seed}), not this "
            f"one ({DATASETS[dataset].title}, seed {seed}): compare with your own figures and numbers, and write "
            f"your own.")


def _version():
    from . import __version__

    return __version__
