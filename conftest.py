"""pytest settings shared by the unit tests and the nbval run of the notebook."""


def pytest_collectstart(collector):
    # TensorFlow logs to stderr in Jupyter but not under nbval: compare stdout and results only.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)
