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


class DataError(LabError, ValueError):
    """A data file is damaged, truncated or not what it claims to be; the message names the file."""
