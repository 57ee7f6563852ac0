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
import tempfile
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
    """What determines a reference run: the assignment's numbers, the evaluation's, and the versions."""
    return {"seed": int(assignment["seed"]), "dataset": assignment["dataset"], "epochs": int(assignment["epochs"]),
            "train_images": assignment.get("train_images") or None, "iw_samples": RECORD_IW_SAMPLES,
            "evaluation_seed": DEFAULT_EVALUATION_SEED, "versions": versions()}


def cache_key(configuration):
    return hashlib.sha256(json.dumps(configuration, sort_keys=True).encode()).hexdigest()[:32]


def reference_run(configuration, data_dir=None):
    """Train and evaluate as the lab notebook does; return {configuration, history, metrics, seconds}."""
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
