"""Reference runs in this process and on Dask workers (vae_lab/course/parallel.py).

The Dask tests are skipped where `distributed` is not installed (`pip install 'vae-lab[class]'`), and
all that train need the real MNIST (VAE_LAB_DATA). They use tiny runs (512 images, one epoch); the
failures they need come from the module's test hook, VAE_LAB_TEST_FAULTS (seed -> fault). Numbers are
compared to the digits a record prints (a worker's thread count may change the 8th digit on some CPUs),
and no test needs a loaded machine to beat a clock: a time limit is only ever raced by a run that hangs.
"""

import contextlib
import json
import signal

import pytest

from vae_lab.course import parallel
from vae_lab.errors import LabError
from vae_lab.course.reference import ReferenceCache, run_configuration
from vae_lab.course.verification import verify

KEY = b"course key for the tests........"

TIMING_KEYS = {"train_seconds", "evaluation_seconds"}


def assignment(seed, train_images=512, epochs=1):
    return {"student_id": f"s{seed}", "seed": seed, "dataset": "mnist", "epochs": epochs,
            "train_images": train_images, "vae_lab_version": "0.2.0"}


def comparable(entry):
    """What the grader compares: the history and the metrics, without their timings."""
    return entry["history"], {key: value for key, value in entry["metrics"].items() if key not in TIMING_KEYS}


def runs(assignments, cache_dir, **options):
    found, rejected = parallel.reference_runs(assignments, key=KEY, cache_dir=cache_dir, **options)
    assert rejected == []
    return found


def same_to_printed_digits(entry, other):
    """What the grader would say of a record that printed ENTRY's numbers, against OTHER."""
    return verify(entry["history"], entry["metrics"], other).reason == "reproduced to every printed digit"


def cache_files(directory):
    return {path.name: path.stat().st_ino for path in directory.glob("*.json")}


@contextlib.contextmanager
def failing_after(seconds):
    """Fail the test (rather than hang it) if the block takes longer than `seconds` (Unix only)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def fail(signum, frame):
        pytest.fail(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def dask_workers():
    pytest.importorskip("distributed")


# --- without Dask, without training ----------------------------------------------------------------------------

@pytest.mark.parametrize("cores, runs, expected", [(2, 1, (2, 1)), (2, 2, (1, 1)), (2, 3, (1, 1)), (8, 3, (2, 1)),
                                                   (32, 8, (4, 1)), (1, 1, (1, 1))])
def test_thread_rule(cores, runs, expected):
    assert parallel.thread_rule(cores, runs) == expected


@pytest.mark.parametrize("options", [{"jobs": 2}, {"scheduler": "tcp://127.0.0.1:8786"}])
def test_parallel_runs_without_dask_say_what_to_install(monkeypatch, tmp_path, options):
    monkeypatch.setattr(parallel, "_dask_missing", lambda: True)
    with pytest.raises(LabError, match=r"pip install 'vae-lab\[class\]'") as raised:
        parallel.reference_runs({"s1": assignment(1)}, key=KEY, cache_dir=tmp_path, **options)
    assert "\n" not in str(raised.value)


def test_cached_runs_need_no_engine(monkeypatch, tmp_path):
    monkeypatch.setattr(parallel, "run_one", lambda *args: pytest.fail("a cached configuration was run"))
    entries = {}
    for seed in (5, 6):
        configuration = run_configuration(assignment(seed))
        entries[seed] = {"configuration": configuration, "history": {"loss": [float(seed)]}, "metrics": {}}
        entries[seed] = ReferenceCache(tmp_path, KEY).put(configuration, entries[seed])
    calls = []
    found = runs({"a": assignment(5), "b": assignment(6), "c": assignment(5)}, tmp_path,
                 progress=lambda done, total, note="": calls.append((done, total, note)))
    assert found == {"a": entries[5], "b": entries[6], "c": entries[5]}
    assert calls == [(2, 2, "from the cache")]


def test_a_failing_run_in_this_process_is_an_error_entry_and_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv(parallel.TEST_FAULTS, json.dumps({"7": "raise"}))
    found = runs({"s7": assignment(7)}, tmp_path)
    assert found == {"s7": {"error": "reference run failed: RuntimeError: injected failure"}}
    assert cache_files(tmp_path) == {}


def test_the_test_hook_is_off_without_its_variable(monkeypatch):
    monkeypatch.delenv(parallel.TEST_FAULTS, raising=False)
    parallel._inject_test_fault({"seed": 7})  # nothing happens


# --- real runs ----------------------------------------------------------------------------------------------------

def test_a_run_that_hangs_is_stopped_at_its_time_limit(dask_workers, tmp_path, monkeypatch):
    """Only a run that never ends races the limit, so the outcome can't depend on how loaded the machine is."""
    monkeypatch.setenv(parallel.TEST_FAULTS, json.dumps({"203": "hang", "204": "raise"}))
    class_ = {"s203": assignment(203), "s204": assignment(204)}
    with failing_after(900):  # a limit that is not enforced fails the test instead of hanging it
        found = runs(class_, tmp_path, jobs=2, timeout=5)
    assert found["s203"] == {"error": "reference run passed its time limit of 5 s"}
    assert found["s204"] == {"error": "reference run failed: RuntimeError: injected failure"}


def test_workers_reproduce_serial_runs_resume_from_the_cache_and_survive_runs_that_fail(dask_workers, mnist_dir,
                                                                                      tmp_path, monkeypatch):
    """Two workers give the serial runs to every printed digit, with the thread rule applied; a grading
    interrupted after two runs keeps them in the cache, and the next one runs only the others; a run that
    kills its worker or raises becomes an error entry, not cached, while the rest complete."""
    class_ = {"s1": assignment(301), "s2": assignment(302), "s3": assignment(303, epochs=2), "s4": assignment(301)}
    serial = runs(class_, tmp_path / "serial", data_dir=mnist_dir, jobs=1)

    def interrupt_after_two(done, total, note=""):
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runs(class_, tmp_path / "workers", data_dir=mnist_dir, jobs=2, progress=interrupt_after_two)
    kept = cache_files(tmp_path / "workers")
    assert len(kept) == 2, kept  # s1 and s4 share one run: three in all
    assert not list((tmp_path / "workers").glob(".partial-*"))
    monkeypatch.setenv(parallel.TEST_FAULTS, json.dumps({"202": "exit", "204": "raise"}))
    calls = []
    workers = runs({**class_, "s202": assignment(202), "s204": assignment(204)}, tmp_path / "workers",
                   data_dir=mnist_dir, jobs=2, progress=lambda done, total, note="": calls.append((done, total, note)))
    assert calls[0] == (2, 5, "from the cache") and [done for done, _, _ in calls[1:]] == [3, 4, 5]  # the others ran
    assert workers["s202"]["error"].startswith("reference run killed its worker 2 times")
    assert workers["s204"] == {"error": "reference run failed: RuntimeError: injected failure"}
    after = cache_files(tmp_path / "workers")
    assert len(after) == 3 and {name: after[name] for name in kept} == kept  # kept entries not written again
    intra, inter = parallel.thread_rule(parallel.available_cores(), 2)
    for student in class_:
        assert "error" not in workers[student], workers[student]
        assert same_to_printed_digits(workers[student], serial[student]), student
        assert workers[student]["threads"] == {"intra_op": intra, "inter_op": inter}
        assert 200 < workers[student]["peak_rss_mib"] < 8000
