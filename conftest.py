"""pytest settings shared by the unit tests and the nbval run of the notebooks.

The 5-epoch lab runs once per test session: nbval executes notebooks/vae_mnist.ipynb cell by cell, and the
outputs it receives are kept (`LAB_OUTPUTS`) so that the tests of the executed record (its pages, its
stderr, its verification) read that same run instead of running the lab again (tests/conftest.py,
`lab_record`; both read `config.vae_lab_session`). Those tests are ordered after the notebook's cells.
"""

import os
import tempfile
from pathlib import Path

LAB_NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "vae_mnist.ipynb"


def pytest_collectstart(collector):
    # Compare stdout and results only: a warning's wording on stderr may change with a library's version.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)


def pytest_configure(config):
    # The notebook's kernel runs in notebooks/, so a relative data path must be made absolute here.
    for name in ("VAE_LAB_DATA", "VAE_LAB_FASHION_DATA"):
        if os.environ.get(name):
            os.environ[name] = os.path.abspath(os.environ[name])
    # nbval's kernel inherits this: the lab notebook's run directory is the session's, which lab_record reads.
    run_dir = Path(tempfile.mkdtemp(prefix="vae-lab-session-lab-"))
    os.environ["VAE_LAB_RUN_DIR"] = str(run_dir)
    # outputs: code cell number -> the outputs nbval received, for the lab notebook's cells that passed
    config.vae_lab_session = {"notebook": LAB_NOTEBOOK, "run_dir": run_dir, "outputs": {}}


def pytest_runtest_makereport(item, call):
    if call.when == "call" and call.excinfo is None and getattr(item, "test_outputs", None) is not None \
            and Path(str(item.fspath)).resolve() == LAB_NOTEBOOK:
        item.config.vae_lab_session["outputs"][item.cell_num] = item.test_outputs


def pytest_collection_modifyitems(config, items):
    """Markers from the fixtures a test uses (checks as data), and the executed-record tests after nbval."""
    by_fixture = {"mnist_dir": "slow", "course": "kernel", "exercise_course": "kernel", "lab_record": "kernel",
                  "dask_workers": "dask", "chromium": "browser", "small_data": None}
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker("kernel")
        for fixture, marker in by_fixture.items():
            if marker and fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
    items.sort(key=lambda item: "lab_record" in getattr(item, "fixturenames", ()))
