"""The grader's own run of an assignment, with the installed vae_lab, and a cache of such runs on disk.

A hand-in's numbers are checked against this run, never against anything the hand-in computed. The cache
lives in the instructor's own cache folder, and each entry carries an HMAC under the course key: an entry
someone else wrote (a student with access to a shared folder) fails authentication and is recomputed.
Entries are written under a unique temporary name and renamed, so graders sharing a cache never see half
an entry.
"""

import hashlib
import hmac
import json
import os
import sys
import time
from pathlib import Path

from ..atomic import atomic_write_text
from ..config import DEFAULT_EVALUATION_SEED, RECORD_IW_SAMPLES


def default_cache_dir():
    """The per-user cache folder for reference runs (XDG on Linux, ~/Library/Caches on macOS, LOCALAPPDATA on
    Windows): outside any folder of hand-ins."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vae-lab" / "reference-runs"


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
    """What determines a reference run: the assignment's numbers, the evaluation's, the functions trained with
    (the package's own, the exercise's solution, or the solution with the catalogued mistake the assignment
    names under "mistake", for epoch 1 only), and the versions."""
    mistake = assignment.get("mistake")
    configuration = {"seed": int(assignment["seed"]), "dataset": assignment["dataset"],
                     "epochs": 1 if mistake else int(assignment["epochs"]),
                     "train_images": assignment.get("train_images") or None, "iw_samples": RECORD_IW_SAMPLES,
                     "evaluation_seed": DEFAULT_EVALUATION_SEED,
                     "functions": "exercise" if assignment.get("exercises") else "package", "versions": versions()}
    if mistake:
        configuration["mistake"] = mistake
    return configuration


def cache_key(configuration):
    return hashlib.sha256(json.dumps(configuration, sort_keys=True).encode()).hexdigest()[:32]


def run_functions(configuration):
    """The LossFunctions a configuration trains with (None: the package's own)."""
    if configuration.get("functions") != "exercise" and not configuration.get("mistake"):
        return None
    import dataclasses

    from ..exercises import MISTAKES, solutions

    functions = solutions()
    mistake = MISTAKES.get(configuration.get("mistake"))
    if mistake is not None:
        functions = dataclasses.replace(functions, **{mistake.exercise: mistake.function})
    return functions


_DATA = {}  # (dataset, data folder) -> the dataset: a worker loads each once for a class ('both' alternates two)


def _dataset(name, data_dir):
    """The dataset, loaded once per process and read-only, so the trainer also converts it to tensors once."""
    from .. import data as datasets

    if (name, data_dir) not in _DATA:
        if len(_DATA) >= 2:
            _DATA.pop(next(iter(_DATA)))
        loaded = datasets.load_dataset(name, data_dir)
        for array in (loaded[0][0], loaded[1][0]):
            array.setflags(write=False)
        _DATA[name, data_dir] = loaded
    return _DATA[name, data_dir]


def reference_run(configuration, data_dir=None):
    """Train and evaluate as the lab notebook does, with no run directory and with this process's compiled
    trainer for the shape; return {configuration, history, metrics, seconds}."""
    from .. import data as datasets
    from ..config import TrainConfig
    from ..training import reference_history_and_metrics

    began = time.perf_counter()
    data = datasets.first_images(_dataset(configuration["dataset"], data_dir), configuration["train_images"])
    config = TrainConfig(dataset=configuration["dataset"], epochs=configuration["epochs"], seed=configuration["seed"])
    history, metrics = reference_history_and_metrics(config, data, iw_samples=configuration["iw_samples"],
                                                     evaluation_seed=configuration["evaluation_seed"],
                                                     functions=run_functions(configuration))
    return {"configuration": configuration, "history": history, "metrics": metrics,
            "seconds": round(time.perf_counter() - began, 2)}


def _canonical(entry):
    return json.dumps({key: value for key, value in entry.items() if key != "mac"}, sort_keys=True).encode()


class ReferenceCache:
    """Reference runs on disk, one JSON file per configuration, each authenticated with the course key."""

    def __init__(self, directory, key):
        self.directory = Path(directory)
        self.key = key
        self.rejected = []  # paths of entries that failed authentication this session

    def path(self, configuration):
        return self.directory / f"{cache_key(configuration)}.json"

    def get(self, configuration):
        """The entry for CONFIGURATION, or None when there is none or it fails authentication."""
        path = self.path(configuration)
        try:
            if path.stat().st_size > 2**20:  # an entry is a few kB
                raise ValueError("too large")
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self.rejected.append(path)
            return None
        mac = entry.get("mac") if isinstance(entry, dict) else None
        expected = hmac.new(self.key, _canonical(entry), hashlib.sha256).hexdigest() if isinstance(entry, dict) else ""
        if not (isinstance(mac, str) and hmac.compare_digest(mac, expected)) or entry.get("configuration") != configuration:
            self.rejected.append(path)
            return None
        return entry

    def put(self, configuration, entry):
        entry = {**entry, "configuration": configuration}
        entry["mac"] = hmac.new(self.key, _canonical(entry), hashlib.sha256).hexdigest()
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path(configuration), json.dumps(entry))
        return entry
