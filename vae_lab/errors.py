"""Errors a lab user can cause and fix, shown as one or two lines that say what to do.

In Jupyter, IPython prints `_render_traceback_()` in place of a traceback, so a student sees the
sentence, not thirty frames of the package's internals; the command line prints the same sentence.
"""


class LabError(Exception):
    """A mistake the user can fix; the message says how."""

    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}"]


class DataNotFound(LabError, FileNotFoundError):
    """The dataset is neither where the user pointed nor downloadable."""


class NoTrainedModel(LabError, FileNotFoundError):
    """A step needs the trained model, and the run directory has none yet."""


class UnfinishedRun(LabError, RuntimeError):
    """A step needs the whole run, and the run directory holds one that stopped before its last epoch."""


class DataError(LabError, ValueError):
    """A data file is damaged, truncated or not what it claims to be; the message names the file."""


class CellNotRunYet(LabError, NameError):
    """A notebook cell used a name that a cell above it makes, and that cell has not run in this kernel."""


# The names the lab notebook makes, and the cell that makes each: what to run when one is missing.
MADE_BY = {
    **dict.fromkeys(("STUDENT_ID", "SEED", "DATASET", "EPOCHS", "TRAIN_IMAGES"), "the first code cell (the parameters)"),
    **dict.fromkeys(("vae_lab", "show", "RUN_DIR", "config", "dataset", "plt", "np", "display", "Markdown", "Image"),
                    "the second code cell (the imports and the run's settings)"),
    **dict.fromkeys(("data", "x_train", "y_train", "x_test", "y_test"), "the Step 1 cell (the data)"),
    **dict.fromkeys(("reparameterize", "kl_divergence", "reconstruction_loss"), "its exercise cell (your function)"),
    "functions": "the cell that makes `functions`, just above the training (Step 5)",
    **dict.fromkeys(("model", "history"), "the training first (the Step 5 cell)"),
    "metrics": "the evaluation cell first (Result: evaluation on the test set)",
}


def name_the_missing_cell(shell=None):
    """In Jupyter, from now on: a NameError for a name the lab notebook makes in a cell not yet run says which
    cell to run (`MADE_BY`), in one line; any other NameError keeps Python's own traceback."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
    if shell is None:
        return

    def explain(shell, kind, error, traceback, tb_offset=None):
        name = getattr(error, "name", None)
        if name in MADE_BY:
            error = CellNotRunYet(f"`{name}` does not exist yet in this kernel: run {MADE_BY[name]} (or Run All Above)")
            kind, traceback = CellNotRunYet, None
        shell.showtraceback((kind, error, traceback), tb_offset=tb_offset)

    shell.set_custom_exc((NameError,), explain)
