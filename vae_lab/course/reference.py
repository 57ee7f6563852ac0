"""The grader's own run of an assignment, with the installed vae_lab, and a cache of such runs on disk.

A submission's numbers are checked against this run, never against anything the submission computed.
The cache is keyed by the configuration and the versions that produced it; each entry is written
under a unique temporary name and renamed, so graders sharing a cache never see half an entry.
"""

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from ..config import DEFAULT_EVALUATION_SEED, RECORD_IW_SAMPLES


def versions():
    """The versions a reference run depends on, from the installed packages."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    found = {"vae_lab": __version__}
    for name in ("tensorflow", "keras", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def run_configuration(assignment):
    """What determines a reference run: the assignment's numbers, the evaluation's, and the versions."""
    return {"seed": int(assignment["seed"]), "dataset": assignment["dataset"], "epochs": int(assignment["epochs"]),
            "train_images": assignment.get("train_images") or None, "iw_samples": RECORD_IW_SAMPLES,
            "evaluation_seed": DEFAULT_EVALUATION_SEED, "versions": versions()}


def cache_key(configuration):
    return hashlib.sha256(json.dumps(configuration, sort_keys=True).encode()).hexdigest()[:32]


def reference_run(configuration, data_dir=None):
    """Train and evaluate as the lab notebook does; return {history, metrics, seconds}."""
    from .. import data as datasets
    from ..config import TrainConfig
    from ..evaluation import evaluate_run
    from ..training import train

    began = time.perf_counter()
    data = datasets.first_images(datasets.load_dataset(configuration["dataset"], data_dir),
                                 configuration["train_images"])
    config = TrainConfig(dataset=configuration["dataset"], epochs=configuration["epochs"], seed=configuration["seed"])
    with tempfile.TemporaryDirectory(prefix="vae-lab-reference-") as run_dir:
        _, history = train(config, run_dir, data=data, overwrite=True, verbose=0)
        metrics = evaluate_run(run_dir, iw_samples=configuration["iw_samples"], seed=configuration["evaluation_seed"],
                               data=data)
    metrics.pop("versions", None)
    return {"configuration": configuration, "history": history, "metrics": metrics,
            "seconds": round(time.perf_counter() - began, 2)}


class ReferenceCache:
    """Reference runs on disk, one JSON file per configuration."""

    def __init__(self, directory):
        self.directory = Path(directory)

    def path(self, configuration):
        return self.directory / f"{cache_key(configuration)}.json"

    def get(self, configuration):
        try:
            entry = json.loads(self.path(configuration).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if entry.get("configuration") == configuration else None

    def put(self, configuration, entry):
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".partial-", suffix=".json")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(entry, handle)
        os.replace(temporary, self.path(configuration))
