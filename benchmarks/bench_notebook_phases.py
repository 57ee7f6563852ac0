"""Benchmark: where the lab notebook's wall time goes, phase by phase, in a fresh kernel.

Run `python benchmarks/bench_notebook_phases.py [--notebook NB] [--repeats 3]` (needs MNIST: VAE_LAB_DATA).
A copy of the notebook runs under a temporary folder with nbclient, `VAE_LAB_RUN_DIR` set to a
temporary run directory, one cell at a time, so each cell's wall time is its own. One probe cell is
added before the first code cell that uses vae_lab: it wraps `vae_lab.run_directory.save_epoch` (the
checkpoint after each epoch) and `load_model` (model.keras read again) with timers, and the run's
`timing.json` gives the epochs' own seconds; a last probe cell prints those accumulators. Phases are
named from the cells' source (the notebook is being edited: no cell numbers are assumed).

Prints the median over --repeats runs of each phase, and the training epochs' sum (as printed:
epoch 1 includes the XLA compile) and `steady` (the median epoch after the first, times the epochs),
and the notebook's total against both. A benchmark, never a test: nothing here asserts a time.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r'''
import time as _probe_time
import vae_lab.run_directory as _probe_rd
_PROBE = {"save_epoch": 0.0, "load_model": 0.0, "load_model_calls": 0}
def _probe_wrap(name, function, count=None):
    def wrapped(*args, **kwargs):
        began = _probe_time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _PROBE[name] += _probe_time.perf_counter() - began
            if count:
                _PROBE[count] += 1
    return wrapped
_probe_rd.save_epoch = _probe_wrap("save_epoch", _probe_rd.save_epoch)
_probe_rd.load_model = _probe_wrap("load_model", _probe_rd.load_model, "load_model_calls")
'''

REPORT = r'''
import json as _probe_json
print("PROBE" + _probe_json.dumps(_PROBE))
'''

# (phase, words the cell's source holds), first match wins; an unmatched code cell is "other cells".
PHASES = [
    ("parameters", ("STUDENT_ID =",)),
    ("imports and set_seed", ("import vae_lab",)),
    ("training (compile, epochs, checkpoints)", ("vae_lab.train(",)),
    ("save_lab_figures / lab_figure_paths", ("save_lab_figures(", "lab_figure_paths(")),
    ("evaluation (evaluate_run)", ("evaluate_run(",)),
    ("figure: latent scatter", ("plot_latent_scatter(",)),
    ("figure: digit grid", ("plot_digit_grid(",)),
    ("figure: reconstructions", ("plot_reconstructions(",)),
    ("figure: learning curves", ("plot_learning_curves(",)),
    ("figure: interpolation and prior samples", ("plot_interpolation(", "plot_prior_samples(")),
    ("program listing", ("program_listing(",)),
    ("aim", ("aim(",)),
    ("data load", ("load_dataset(",)),
    ("untrained model (Steps 2-4)", ("untrained",)),
]


def phase_of(source):
    for name, words in PHASES:
        if any(word in source for word in words):
            return name
    return "other cells"


def run_once(notebook_path, kernel_name="python3"):
    """One fresh-kernel run of a probed copy; return {phase: seconds} and the run's epoch seconds."""
    import nbformat

    from vae_lab.lab import notebook_client

    notebook = nbformat.read(notebook_path, as_version=4)
    code = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    first_lab = next(index for index in code if "import vae_lab" in notebook.cells[index].source)
    notebook.cells.insert(first_lab + 1, nbformat.v4.new_code_cell(PROBE, metadata={"probe": True}))
    notebook.cells.append(nbformat.v4.new_code_cell(REPORT, metadata={"probe": True}))
    phases = {}
    with tempfile.TemporaryDirectory(prefix="vae-lab-phases-") as scratch:
        scratch = Path(scratch)
        (scratch / "notebooks").mkdir()
        copy = scratch / "notebooks" / "vae_mnist.ipynb"
        nbformat.write(notebook, copy)
        run_dir = scratch / "run"
        os.environ["VAE_LAB_RUN_DIR"] = str(run_dir)
        began = time.perf_counter()
        with notebook_client(notebook, timeout=1800, kernel_name=kernel_name,
                             resources={"metadata": {"path": str(copy.parent)}}) as client, client.setup_kernel():
            phases["kernel start"] = time.perf_counter() - began
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code":
                    continue
                cell_began = time.perf_counter()
                client.execute_cell(cell, index)
                seconds = time.perf_counter() - cell_began
                name = "probes" if cell.metadata.get("probe") else phase_of(cell.source)
                phases[name] = phases.get(name, 0.0) + seconds
            kernel_end = time.perf_counter()
        phases["kernel shutdown"] = time.perf_counter() - kernel_end
        total = time.perf_counter() - began
        probe = next(json.loads(output["text"].split("PROBE", 1)[1]) for output in notebook.cells[-1].outputs
                     if output.get("name") == "stdout" and "PROBE" in output.get("text", ""))
        epoch_seconds = json.loads((run_dir / "timing.json").read_text())["epoch_seconds"]
    training = phases.get("training (compile, epochs, checkpoints)", 0.0)
    phases["  of which epochs (as printed)"] = sum(epoch_seconds)
    phases["  of which checkpoints (save_epoch)"] = probe["save_epoch"]
    phases["  of which the rest (build, data to tensors)"] = training - sum(epoch_seconds) - probe["save_epoch"]
    phases["model.keras loads (inside the cells above)"] = probe["load_model"]
    return {"phases": phases, "total": total, "epoch_seconds": epoch_seconds,
            "load_model_calls": probe["load_model_calls"]}


def summarize(runs):
    names = list(dict.fromkeys(name for run in runs for name in run["phases"]))
    phases = {name: statistics.median(run["phases"].get(name, 0.0) for run in runs) for name in names}
    total = statistics.median(run["total"] for run in runs)
    epochs = statistics.median(sum(run["epoch_seconds"]) for run in runs)
    steady = statistics.median(statistics.median(run["epoch_seconds"][1:] or run["epoch_seconds"])
                               * len(run["epoch_seconds"]) for run in runs)
    return {"phases": phases, "total": total, "epochs_sum": epochs, "epochs_steady": steady,
            "load_model_calls": runs[0]["load_model_calls"], "runs": runs}


def report(summary, label=""):
    print(f"\nNotebook phases{(' (' + label + ')') if label else ''}, median of {len(summary['runs'])} runs, "
          f"seconds (load average now {os.getloadavg()[0]:.2f}):")
    for name, seconds in summary["phases"].items():
        print(f"  {name:<48}{seconds:8.2f}")
    print(f"  {'TOTAL (kernel start to shutdown)':<48}{summary['total']:8.2f}")
    epochs = len(summary["runs"][0]["epoch_seconds"])
    print(f"  training epochs as printed {summary['epochs_sum']:.2f} s: total = "
          f"{summary['total'] / summary['epochs_sum']:.2f} x; steady epochs x {epochs}"
          f" = {summary['epochs_steady']:.2f} s: total = {summary['total'] / summary['epochs_steady']:.2f} x; "
          f"model.keras loaded {summary['load_model_calls']} times")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=ROOT / "notebooks" / "vae_mnist.ipynb")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    runs = []
    for repeat in range(args.repeats):
        runs.append(run_once(args.notebook))
        print(f"run {repeat + 1}: {runs[-1]['total']:.1f} s, load average {os.getloadavg()[0]:.2f}",
              file=sys.stderr, flush=True)
    summary = summarize(runs)
    summary["load_average_end"] = os.getloadavg()
    report(summary, args.label)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
