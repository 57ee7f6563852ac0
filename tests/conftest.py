"""Small synthetic data for the unit tests; the full MNIST run is the notebook's (nbval)."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

import vae_lab


def synthetic_images(count, seed=0):
    """Images in [0, 1] with some structure (a bright bar whose place depends on the label)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count)
    images = rng.uniform(0.0, 0.2, size=(count, 28, 28))
    for image, label in zip(images, labels):
        image[2 * label + 4: 2 * label + 7, 4:24] = 0.9
    return images.reshape(count, 784).astype(np.float32), labels


@pytest.fixture(scope="session")
def small_data():
    return synthetic_images(512, seed=1), synthetic_images(128, seed=2)


@pytest.fixture
def small_config():
    return vae_lab.TrainConfig(epochs=2, batch_size=64, seed=3)


def idx_bytes(array):
    """Encode a uint8 array as an IDX file."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


def write_idx(path, array, compress=False):
    data = idx_bytes(array)
    Path(path).write_bytes(gzip.compress(data) if compress else data)
    return Path(path)


@pytest.fixture(scope="session")
def mnist_dir():
    """The real MNIST folder, when the environment names one (CI does)."""
    directory = os.environ.get("VAE_LAB_DATA")
    if not directory or not Path(directory).is_dir():
        pytest.skip("VAE_LAB_DATA does not name a local MNIST copy")
    return Path(directory)


@pytest.fixture(scope="session")
def chromium():
    """The chromium executable the offline-page tests open pages in (Debian's package)."""
    from browser import find_chromium

    path = find_chromium()
    if path is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    return path


@pytest.fixture(scope="session")
def lab_record(request, mnist_dir, tmp_path_factory):
    """(executed notebook, run directory) of the 5-epoch lab, run once per session: nbval's run of the lab
    notebook when it executed every cell in this session, else one run of `vae-lab lab` (this file alone)."""
    import nbformat

    session = request.config.vae_lab_session
    notebook = nbformat.read(session["notebook"], as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = session["outputs"]
    if len(outputs) == len(code):
        for number, cell in enumerate(code):
            cell.outputs = [nbformat.from_dict(dict(output)) for output in outputs[number]]
            cell.execution_count = number + 1
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    output.execution_count = number + 1
        return notebook, session["run_dir"]
    from vae_lab.lab import EXECUTED_NOTEBOOK, run_lab

    run_dir = tmp_path_factory.mktemp("lab")
    assert run_lab(run_dir) == 0
    return nbformat.read(run_dir / EXECUTED_NOTEBOOK, as_version=4), run_dir
