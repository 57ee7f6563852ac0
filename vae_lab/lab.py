"""`vae-lab lab`: the whole lab in one command on any OS, what `make lab` wraps.

It executes the lab notebook top to bottom in a fresh kernel, saying which cell it is in and how training
goes, then writes the notebook's self-contained HTML page, the run's report, and the self-check's verdict
on the executed notebook, all into one run directory.
"""

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .lab_notebook import NOTEBOOK_NAME as EXECUTED_NOTEBOOK
from .lab_notebook import lab_notebook_path

SELF_CHECK = "self-check.txt"
# Why the reference notebook's own self-check is FAIL: printed wherever its verdict is.
REFERENCE_VERDICT_NOTE = ("the reference notebook's Observation and Result are the worked example, which the "
                          "grader refuses as anybody's own prose, so its self-check is FAIL on prose by design; "
                          "every other check should be PASS")


def _socket_client_class():
    from nbclient import NotebookClient

    class SocketClient(NotebookClient):
        """nbclient's client; with `socket_dir`, the kernel talks over Unix sockets in that private folder
        rather than TCP: no port open on the machine, and no kernel warning about unencrypted TCP."""

        def __init__(self, *args, socket_dir=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.socket_dir = socket_dir

        def create_kernel_manager(self):
            if self.socket_dir is None:
                return super().create_kernel_manager()
            if not self.kernel_name:  # as nbclient's own does: the notebook's kernel (an empty name finds none)
                self.kernel_name = self.nb.metadata.get("kernelspec", {}).get("name", "python3")
            self.km = self.kernel_manager_class(kernel_name=self.kernel_name, config=self.config, transport="ipc",
                                                connection_file=str(Path(self.socket_dir) / "kernel.json"))
            return self.km

    return SocketClient


@contextlib.contextmanager
def notebook_client(notebook, *, reporting=False, **kwargs):
    """A client for `notebook` whose kernel runs on private Unix sockets (TCP on Windows), removed after;
    `reporting` prints which cell runs and each epoch's line as it comes (what `vae-lab lab` shows)."""
    sockets = tempfile.TemporaryDirectory(prefix="vae-lab-kernel-") if os.name == "posix" else None
    client_class = _reporting_client_class() if reporting else _socket_client_class()
    try:
        yield client_class(notebook, socket_dir=sockets.name if sockets else None, **kwargs)
    finally:
        if sockets:
            sockets.cleanup()


def _reporting_client_class():
    class ReportingClient(_socket_client_class()):
        """The socket client, printing which cell runs and each epoch's line as it comes."""

        def __init__(self, *args, stream=sys.stdout, **kwargs):
            super().__init__(*args, **kwargs)
            self.stream = stream
            self.began = time.monotonic()
            self.heading = ""

        def describe(self, cell_index):
            code = [index for index, cell in enumerate(self.nb.cells) if cell.cell_type == "code"]
            position = code.index(cell_index) + 1 if cell_index in code else 0
            return f"[{time.monotonic() - self.began:5.0f} s] code cell {position}/{len(code)}"

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            if cell.cell_type == "markdown":
                from .course.prose import markdown_heading

                headings = [markdown_heading(line) for line in cell.source.splitlines()]
                self.heading = next((title for _, title in filter(None, headings)), self.heading)
            elif cell.cell_type == "code":
                print(f"{self.describe(cell_index)}: {self.heading}", file=self.stream, flush=True)
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)

        def output(self, outs, msg, display_id, cell_index):
            result = super().output(outs, msg, display_id, cell_index)
            content = msg.get("content", {})
            if msg.get("msg_type") == "stream" and content.get("name") == "stdout":
                from .record_format import parse_epoch_line

                for line in content.get("text", "").splitlines():
                    parsed = parse_epoch_line(line)
                    if parsed:
                        epoch, epochs, _ = parsed
                        seconds = float(line.split()[2])
                        left = f", about {round(seconds * (epochs - epoch))} s of training left" if epoch < epochs else ""
                        print(f"{' ' * 10}{line}{left}", file=self.stream, flush=True)
            return result

    return ReportingClient


def _refuse_a_training_run(run_dir):
    """A folder holding a `vae-lab train` run (a config.json and no lab notebook) is not the lab's to replace."""
    from . import run_directory
    from .errors import LabError

    # a lab folder holds a notebook from the moment its run starts (`run_lab` writes it first)
    if (run_dir / run_directory.CONFIG).exists() and not any(run_dir.glob("*.ipynb")):
        raise LabError(f"{run_dir} holds a training run (its {run_directory.CONFIG}), not a lab run: `vae-lab lab` "
                       f"would replace it; choose another --out")


def run_lab(run_dir, *, notebook=None, timeout=1800, kernel_name="python3"):
    """Run the lab into `run_dir`; return 0, or 1 with one message when a cell fails."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from . import pages, run_directory
    from .course.grade import self_check
    from .report import write_report
    from .run_directory import make_writable

    notebook_path = Path(notebook) if notebook else lab_notebook_path()
    if not notebook_path.is_file():
        from .errors import LabError

        raise LabError(f"no lab notebook at {notebook_path}: pass --notebook PATH")
    try:
        executed = nbformat.read(notebook_path, as_version=4)
        nbformat.validate(executed)
    except (ValueError, UnicodeDecodeError, nbformat.ValidationError) as error:  # NotJSONError is a ValueError
        from .errors import LabError

        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise LabError(f"{notebook_path} is not a Jupyter notebook ({first}): pass the .ipynb file") from None
    # a student's own notebook keeps its name (the name they hand in); the lab's is vae_mnist.ipynb
    executed_name = notebook_path.name if notebook else EXECUTED_NOTEBOOK
    _refuse_a_training_run(Path(run_dir))
    run_dir = make_writable(run_dir).resolve()
    # a lab run starts afresh: an earlier run's page, report, self-check and model never pass for this one's
    run_directory.remove(run_dir, (*run_directory.TRAINING_FILES, run_directory.CONFIG, SELF_CHECK,
                                   Path(executed_name).with_suffix(".html").name))
    from .atomic import atomic_write_text

    atomic_write_text(run_dir / executed_name, nbformat.writes(executed))  # the lab's folder, before any cell runs
    print(f"Executing {notebook_path} in a fresh kernel; everything goes to {run_dir}", flush=True)
    previous = os.environ.get("VAE_LAB_RUN_DIR")
    os.environ["VAE_LAB_RUN_DIR"] = str(run_dir)
    failure = None
    try:
        with notebook_client(executed, reporting=True, timeout=timeout, kernel_name=kernel_name,
                             resources={"metadata": {"path": str(notebook_path.resolve().parent)}}) as client:
            # the kernel process's own stderr is its internals (a traceback as it is stopped after a timeout);
            # what the cells print reaches the notebook, and a failure is said below in one line
            client.execute(stderr=subprocess.DEVNULL)
    except CellExecutionError as error:
        failure = f"{error.ename}: {error.evalue}".strip()
    except (CellTimeoutError, DeadKernelError) as error:
        failure = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:200]}"
    finally:  # the notebook as far as it ran, whatever stopped it (Ctrl-C included)
        if previous is None:
            os.environ.pop("VAE_LAB_RUN_DIR", None)
        else:
            os.environ["VAE_LAB_RUN_DIR"] = previous
        atomic_write_text(run_dir / executed_name, nbformat.writes(executed))
    if failure:
        print(f"vae-lab lab: a notebook cell failed: {failure}\n"
              f"The notebook as far as it ran: {run_dir / executed_name}", file=sys.stderr)
        return 1
    print(f"notebook page: {pages.write_html(executed, run_dir / Path(executed_name).with_suffix('.html'))}")
    print(f"report: {write_report(run_dir)}")
    graded, table = self_check(run_dir / executed_name)
    reference = graded is not None and graded.claimed_id == "reference"
    note = f"Note: {REFERENCE_VERDICT_NOTE}.\n" if reference else ""
    atomic_write_text(run_dir / SELF_CHECK, table + note)
    status = graded.status.value if graded else "FAIL"
    print(f"self-check ({status}{'; ' + REFERENCE_VERDICT_NOTE if reference else ''}): {run_dir / SELF_CHECK}")
    return 0
