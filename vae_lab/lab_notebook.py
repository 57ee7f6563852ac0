"""Where the lab notebook is, in any installation: inside the package (a wheel ships it as
vae_lab/lab_notebooks/), or in a source checkout's notebooks/ (an editable install)."""

from pathlib import Path

from .errors import LabError

NOTEBOOK_NAME = "vae_mnist.ipynb"


def lab_notebook_path():
    """The lab notebook's path; one sentence saying what to do when this installation has none."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "lab_notebooks" / NOTEBOOK_NAME, package.parent / "notebooks" / NOTEBOOK_NAME):
        if candidate.is_file():
            return candidate
    raise LabError(f"no lab notebook in this installation of vae_lab ({package}): reinstall vae-lab, "
                   "or pass --notebook PATH")
