"""pytest settings shared by the unit tests and the nbval run of the notebook."""


def pytest_collectstart(collector):
    # TensorFlow logs to stderr in Jupyter but not under nbval: compare stdout and results only.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)


def pytest_configure(config):
    import os

    # The notebook's kernel runs in notebooks/, so a relative data path must be made absolute here.
    for name in ("VAE_LAB_DATA", "VAE_LAB_FASHION_DATA"):
        if os.environ.get(name):
            os.environ[name] = os.path.abspath(os.environ[name])
