"""`vae-lab lab`: the whole lab in one command on any OS, what `make lab` wraps.

It executes the lab notebook top to bottom in a fresh kernel, writes its self-contained HTML page,
the run's report, and the self-check's verdict on the executed notebook, all into one run directory.
"""

import contextlib
import io
import os
import sys
from pathlib import Path

EXECUTED_NOTEBOOK = "vae_mnist.ipynb"
SELF_CHECK = "self-check.txt"


def run_lab(run_dir, *, notebook=None, timeout=1800, kernel_name="python3"):
    """Run the lab into `run_dir`; return 0, or 1 with one message when a cell fails."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from . import pages
    from .course.assign import reference_notebook_path
    from .course.grade import grade_submissions, print_table
    from .report import write_report
    from .run_directory import make_writable

    notebook_path = Path(notebook or reference_notebook_path())
    if not notebook_path.exists():
        raise FileNotFoundError(f"no lab notebook at {notebook_path}: pass --notebook PATH")
    run_dir = make_writable(run_dir).resolve()
    executed = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(executed, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(notebook_path.resolve().parent)}})
    print(f"Executing {notebook_path} in a fresh kernel; everything goes to {run_dir}", flush=True)
    previous = os.environ.get("VAE_LAB_RUN_DIR")
    os.environ["VAE_LAB_RUN_DIR"] = str(run_dir)
    failure = None
    try:
        client.execute()
    except CellExecutionError as error:
        failure = f"{error.ename}: {error.evalue}".strip()
    finally:
        if previous is None:
            os.environ.pop("VAE_LAB_RUN_DIR", None)
        else:
            os.environ["VAE_LAB_RUN_DIR"] = previous
    nbformat.write(executed, run_dir / EXECUTED_NOTEBOOK)
    if failure:
        print(f"vae-lab lab: a notebook cell failed: {failure}\n"
              f"The notebook as far as it ran: {run_dir / EXECUTED_NOTEBOOK}", file=sys.stderr)
        return 1
    print(f"notebook page: {pages.write_html(executed, run_dir / 'vae_mnist.html')}")
    print(f"report: {write_report(run_dir)}")
    submissions, _ = grade_submissions([run_dir / EXECUTED_NOTEBOOK])
    verdict = io.StringIO()
    with contextlib.redirect_stdout(verdict):
        print_table(submissions, verified=False)
    (run_dir / SELF_CHECK).write_text(verdict.getvalue(), encoding="utf-8")
    print(f"self-check ({submissions[0].verdict}): {run_dir / SELF_CHECK}")
    return 0
