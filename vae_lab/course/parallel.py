"""Run the reference runs a grading needs: in this process, or on Dask workers (local or a cluster).

One code path: the configurations already in the cache are answered from it without any engine; each
of the others is one call of `run_one`, here in this process (`jobs == 1`, no scheduler: Dask is not
needed) or as one Dask task (`jobs > 1`: a `LocalCluster` of `jobs` single-threaded worker processes;
`scheduler=ADDRESS`: an existing cluster). The grader writes each result into the cache as it arrives,
signed with the course key (`ReferenceCache`), so an interrupted grading resumes from the cache; the
workers never see the key.

Threads: a worker host running N reference runs at once gives each run's TensorFlow
`intra_op = max(1, cores // N)` threads and `inter_op = 1`, so N workers never oversubscribe the
cores (`thread_rule`). For a `LocalCluster`, N is `jobs`; on a cluster, N is the number of worker
processes on that host when the grading starts. A process runs one reference run at a time (a lock), so
start a cluster's workers with `--nthreads 1`.

Failures never stop the class's grading; the student's hand-in then ends REVIEW:

- a run that raises: `{'error': 'reference run failed: ...'}`;
- a run that kills its worker (a crash, the out-of-memory killer) on `ALLOWED_FAILURES + 1` workers:
  `{'error': 'reference run killed its worker ...'}`;
- a run still running `timeout` seconds after it started on a worker: `{'error': 'reference run passed
  its time limit of N s'}`; its task is cancelled and its worker restarted, and the other runs go on.
  (A run in this process, `jobs == 1`, cannot be stopped safely: there the limit does not apply.)
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

from ..errors import LabError
from .reference import ReferenceCache, cache_key, reference_run, run_configuration, versions

INSTALL_HINT = "pip install 'vae-lab[class]'"
# Dask retries a run whose worker died this many times; one more death and the run is one that kills
# workers, not one whose worker died under it (dask's own default is 3; each try costs a worker restart).
ALLOWED_FAILURES = 1
STARTED_TOPIC = "vae-lab-reference-started"
_ONE_RUN_AT_A_TIME = threading.Lock()
# Test hook, honoured only when this variable is set (tests/test_parallel.py): a JSON object from a
# configuration's seed to a fault, "exit" (the worker process dies), "hang" (never returns) or "raise".
TEST_FAULTS = "VAE_LAB_TEST_FAULTS"


def available_cores():
    """Cores this process may run on (the affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_rule(cores, concurrent_runs):
    """(intra-op, inter-op) TensorFlow threads for each of `concurrent_runs` runs sharing `cores`:
    `max(1, cores // concurrent_runs)` and 1, so the runs together never use more threads than cores."""
    return max(1, int(cores) // max(1, int(concurrent_runs))), 1


def _cap_tensorflow_threads():
    """Start TensorFlow here (`backend.load`, its notices filtered), applying TF_NUM_INTRAOP_THREADS /
    TF_NUM_INTEROP_THREADS (set for a worker by `_ThreadCap`) unless it already started in this process;
    return the thread counts TensorFlow reports (0: its default)."""
    from ..backend import tf

    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def peak_rss_mib():
    """The peak resident memory of this process so far, in MiB (None where it cannot be read)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _inject_test_fault(configuration):
    """Test hook only: does nothing unless VAE_LAB_TEST_FAULTS is set."""
    faults = os.environ.get(TEST_FAULTS)
    if not faults:
        return
    fault = json.loads(faults).get(str(configuration["seed"]))
    if fault == "exit":
        os._exit(13)
    if fault == "hang":
        while True:
            time.sleep(1)
    if fault == "raise":
        raise RuntimeError("injected failure")


def _announce_start():
    """On a Dask worker: tell the grader this task started (its time limit counts from here)."""
    try:
        from distributed import get_worker
        from distributed.worker import thread_state

        worker = get_worker()
    except (ImportError, ValueError):  # not on a worker
        return
    worker.log_event(STARTED_TOPIC, {"key": thread_state.key, "worker": worker.address})


def run_one(configuration, data_dir=None):
    """One reference run, where it is called (this process or a Dask worker); return its entry, with
    `peak_rss_mib` (of the process that ran it) and the TensorFlow `threads` it used."""
    with _ONE_RUN_AT_A_TIME:
        _announce_start()
        _inject_test_fault(configuration)
        here = versions()
        if here != configuration["versions"]:
            differ = ", ".join(f"{name} {here.get(name)} (asked for {wanted})"
                               for name, wanted in configuration["versions"].items() if here.get(name) != wanted)
            raise RuntimeError(f"this machine has {differ}: install the grader's versions there")
        threads = _cap_tensorflow_threads()
        entry = reference_run(configuration, data_dir)
        entry.update(peak_rss_mib=peak_rss_mib(), threads=threads)
        return entry


def _failed(error):
    return {"error": f"reference run failed: {error.__class__.__name__}: {error}"}


def _dask_missing():
    from importlib.util import find_spec

    return find_spec("dask") is None or find_spec("distributed") is None


def reference_runs(assignments, *, key, cache_dir, data_dir=None, jobs=1, scheduler=None, timeout=1800,
                   progress=None):
    """({student_id: reference entry, or {'error': reason}}, [cache entries that failed authentication])
    for {student_id: assignment}.

    Students with the same configuration share one run. `progress(done, total)` is called as runs
    complete (those found in the cache count as done at once). See the module's docstring for where the
    runs go, the thread rule, and what happens to a run that fails, kills its worker or times out."""
    if (jobs > 1 or scheduler) and _dask_missing():
        raise LabError(f"parallel reference runs (--jobs above 1, --scheduler) need Dask: {INSTALL_HINT}")
    configurations = {student: run_configuration(assignment) for student, assignment in assignments.items()}
    unique = {cache_key(configuration): configuration for configuration in configurations.values()}
    cache = ReferenceCache(cache_dir, key)
    results = {}
    for name, configuration in unique.items():
        entry = cache.get(configuration)
        if entry is not None:
            results[name] = entry
    total = len(unique)
    if progress and results:
        progress(len(results), total, note="from the cache")
    todo = {name: configuration for name, configuration in unique.items() if name not in results}

    def finished(name, entry):
        results[name] = cache.put(unique[name], entry) if "error" not in entry else entry
        if progress:
            progress(len(results), total)

    if todo and not scheduler:  # a remote cluster's workers have their own folders
        from ..data import data_directory, data_files

        for dataset in sorted({configuration["dataset"] for configuration in todo.values()}):
            directory = data_directory(dataset, data_dir)
            if directory:  # a wrong folder is said once, now, not as every reference run's failure
                data_files(directory, dataset)
    if todo and (jobs > 1 or scheduler):
        _run_on_dask(todo, finished, data_dir=data_dir, jobs=jobs, scheduler=scheduler, timeout=timeout)
    for name, configuration in todo.items():
        if name in results:
            continue
        try:
            entry = run_one(configuration, data_dir)
        except Exception as error:  # one broken run must not stop the class's grading
            entry = _failed(error)
        finished(name, entry)
    answers = {student: results[cache_key(configuration)] for student, configuration in configurations.items()}
    return answers, list(cache.rejected)


def _private_random_for_dask():
    """Give dask's object sizing its own random generator in this worker process.

    `vae_lab/model.py` seeds every initializer from the model's own generator, so the weights no longer
    depend on Python's global `random`; but anything else in a run that draws from it (Keras, NumPy's
    legacy seeding through `set_seed`) would be shifted at random moments by a worker's event loop,
    which draws from the global generator in `dask.sizeof`. With its own generator, dask leaves it alone."""
    import random

    import dask.sizeof

    if dask.sizeof.random is random:
        dask.sizeof.random = random.Random()


def _thread_cap_plugin(**kwargs):
    from distributed.diagnostics.plugin import WorkerPlugin

    class ThreadCap(WorkerPlugin):
        """Sets the thread rule's TF_NUM_* variables in each worker process, before TensorFlow loads there."""

        name = "vae-lab-thread-cap"

        def __init__(self, runs_per_host):
            self.runs_per_host = runs_per_host

        def setup(self, worker):
            _private_random_for_dask()
            host = worker.address.rsplit(":", 1)[0]
            intra, inter = thread_rule(available_cores(), self.runs_per_host.get(host, 1))
            os.environ["TF_NUM_INTRAOP_THREADS"] = str(intra)
            os.environ["TF_NUM_INTEROP_THREADS"] = str(inter)

    return ThreadCap(**kwargs)


def _runs_per_host(client):
    """Worker processes per host: each runs one reference run at a time (`_ONE_RUN_AT_A_TIME`)."""
    counts = {}
    for address in client.scheduler_info(n_workers=-1)["workers"]:
        host = address.rsplit(":", 1)[0]
        counts[host] = counts.get(host, 0) + 1
    return counts


def _killed_reason(error):
    last = getattr(error, "last_worker", None)
    times = getattr(error, "allowed_failures", ALLOWED_FAILURES) + 1
    # which worker is evidence, not the reason: it differs at every retry, and a decided REVIEW keeps its reason
    return {"error": f"reference run killed its worker {times} times (out of memory, or a crash in TensorFlow?)",
            "evidence": f"the last was {getattr(last, 'address', last)}" if last else ""}


def _run_on_dask(todo, finished, *, data_dir, jobs, scheduler, timeout):
    """Run TODO {name: configuration} as Dask tasks; call `finished(name, entry)` as each ends."""
    import contextlib

    import dask

    data_dir = str(Path(data_dir).resolve()) if data_dir else None  # the workers' working directory need not be ours
    settings = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                # one task per worker thread: a task queued behind one that kills the worker is not blamed
                "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings), contextlib.ExitStack() as stack:
        client = _connect(stack, jobs, scheduler)
        client.register_plugin(_thread_cap_plugin(runs_per_host=_runs_per_host(client)))
        started = _listen_for_starts(client)
        futures = {client.submit(run_one, configuration, data_dir, pure=False): name
                   for name, configuration in todo.items()}
        _collect(client, futures, todo, started, finished, data_dir=data_dir, timeout=timeout)


def _connect(stack, jobs, scheduler):
    """A Dask client: of the cluster at SCHEDULER, or of a LocalCluster of JOBS single-threaded processes."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = stack.enter_context(Client(scheduler))
        except OSError as error:
            raise LabError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        return client
    cluster = stack.enter_context(LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.CRITICAL))
    client = stack.enter_context(Client(cluster))
    client.wait_for_workers(jobs)
    return client


def _listen_for_starts(client):
    """{task key: (when this process heard it started, worker address)}, filled as workers announce starts:
    a run's time limit counts from its start on a worker, not from its submission."""
    started = {}
    client.subscribe_topic(STARTED_TOPIC, lambda event: started.__setitem__(
        event[1]["key"], (time.monotonic(), event[1]["worker"])))
    return started


def _cancel_overdue(client, futures, started, timed_out, finished, timeout):
    """Cancel the runs past their time limit, restart their workers, and report them."""
    import contextlib

    now = time.monotonic()
    for future, name in futures.items():
        began = started.get(future.key)
        if future in timed_out or future.done() or began is None or now - began[0] <= timeout:
            continue
        timed_out.add(future)
        future.cancel()
        with contextlib.suppress(Exception):  # a worker without a nanny cannot be restarted
            client.restart_workers([began[1]], raise_for_error=False)
        finished(name, {"error": f"reference run passed its time limit of {timeout:g} s"})


def _outcome(future):
    """The entry of a finished future, or None when it was lost with a restarted worker (resubmit it)."""
    from distributed import KilledWorker

    if future.status == "finished":
        return future.result()
    if future.status == "cancelled":
        return {"error": "reference run was cancelled on the cluster"}
    if future.status == "error":
        error = future.exception()
        return _killed_reason(error) if isinstance(error, KilledWorker) else _failed(error)
    return None


def _collect(client, futures, todo, started, finished, *, data_dir, timeout):
    """Wait for FUTURES {future: name}, enforcing the time limit; a run lost with a worker restarted under it
    (another run's time limit) is submitted once more."""
    from distributed import as_completed

    running = as_completed(futures)
    timed_out, resubmitted = set(), set()
    while not running.is_empty():
        if not running.has_ready():
            _cancel_overdue(client, futures, started, timed_out, finished, timeout)
            time.sleep(0.2)
            continue
        future = next(running)
        if future in timed_out:
            continue
        name, entry = futures[future], _outcome(future)
        if entry is None and name not in resubmitted:
            resubmitted.add(name)
            again = client.submit(run_one, todo[name], data_dir, pure=False)
            futures[again] = name
            futures.pop(future)
            running.add(again)
            future.release()
            continue
        future.release()
        finished(name, entry or {"error": f"reference run was lost on the cluster twice (status {future.status})"})
