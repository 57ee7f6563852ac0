"""Run the reference runs a grading needs: in this process, or on Dask workers (local or a cluster).

One code path: the configurations already in the cache are answered from it without any engine; each
of the others is one call of `run_one`, here in this process (`jobs == 1`, no scheduler: Dask is not
needed) or as one Dask task (`jobs > 1`: a `LocalCluster` of `jobs` single-threaded worker processes;
`scheduler=ADDRESS`: an existing cluster). `run_one` writes the cache entry itself (atomically, see
`ReferenceCache.put`), so an interrupted grading resumes from the cache and graders sharing a cache
never corrupt it.

Threads: a worker host running N reference runs at once gives each run's TensorFlow
`intra_op = max(1, cores // N)` threads and `inter_op = 1`, so N workers never oversubscribe the
cores (`thread_rule`). For a `LocalCluster`, N is `jobs`; on a cluster, N is the number of worker
processes on that host when the grading starts. A process runs one reference run at a time (a lock:
two runs in one process would share Python's global random generator, from which Keras seeds the
initial weights), so start a cluster's workers with `--nthreads 1`.

Failures never stop the class's grading; the student's submission then ends REVIEW:

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
    """Apply TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS (set for a worker by `_ThreadCap`) before
    this process's TensorFlow starts; return the thread counts TensorFlow reports (0: its default)."""
    import tensorflow as tf

    for name, setter in (("TF_NUM_INTRAOP_THREADS", tf.config.threading.set_intra_op_parallelism_threads),
                         ("TF_NUM_INTEROP_THREADS", tf.config.threading.set_inter_op_parallelism_threads)):
        if os.environ.get(name):
            try:
                setter(int(os.environ[name]))
            except RuntimeError:  # TensorFlow already started in this process: its threads stay as they are
                pass
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


def run_one(configuration, data_dir=None, cache_dir=None):
    """One reference run, where it is called (this process or a Dask worker); write its cache entry and
    return it, with `peak_rss_mib` (of the process that ran it) and the TensorFlow `threads` it used."""
    with _ONE_RUN_AT_A_TIME:
        _announce_start()
        return _run_one(configuration, data_dir, cache_dir)


def _run_one(configuration, data_dir, cache_dir):
    cache = ReferenceCache(cache_dir) if cache_dir else None
    entry = cache.get(configuration) if cache else None
    if entry is not None:  # another grader sharing the cache finished it meanwhile
        return entry
    _inject_test_fault(configuration)
    here = versions()
    if here != configuration["versions"]:
        differ = ", ".join(f"{name} {here.get(name)} (asked for {wanted})"
                           for name, wanted in configuration["versions"].items() if here.get(name) != wanted)
        raise RuntimeError(f"this machine has {differ}: install the grader's versions there")
    threads = _cap_tensorflow_threads()
    entry = reference_run(configuration, data_dir)
    entry.update(peak_rss_mib=peak_rss_mib(), threads=threads)
    if cache:
        cache.put(configuration, entry)
    return entry


def _failed(error):
    return {"error": f"reference run failed: {error.__class__.__name__}: {error}"}


def _dask_missing():
    from importlib.util import find_spec

    return find_spec("dask") is None or find_spec("distributed") is None


def reference_runs(assignments, *, cache_dir, data_dir=None, jobs=1, scheduler=None, timeout=1800, progress=None):
    """{student_id: reference entry, or {'error': reason}} for {student_id: assignment}.

    Students with the same configuration share one run. `progress(done, total)` is called as runs
    complete (those found in the cache count as done at once). See the module's docstring for where the
    runs go, the thread rule, and what happens to a run that fails, kills its worker or times out."""
    if (jobs > 1 or scheduler) and _dask_missing():
        raise ValueError(f"parallel reference runs (--jobs above 1, --scheduler) need Dask: {INSTALL_HINT}")
    configurations = {student: run_configuration(assignment) for student, assignment in assignments.items()}
    unique = {cache_key(configuration): configuration for configuration in configurations.values()}
    cache = ReferenceCache(cache_dir)
    results = {}
    for key, configuration in unique.items():
        entry = cache.get(configuration)
        if entry is not None:
            results[key] = entry
    total = len(unique)
    if progress and results:
        progress(len(results), total, note="from the cache")
    todo = {key: configuration for key, configuration in unique.items() if key not in results}

    def finished(key, entry):
        results[key] = entry
        if "error" not in entry and cache.get(unique[key]) is None:  # a worker that cannot see this cache
            cache.put(unique[key], entry)
        if progress:
            progress(len(results), total)

    if todo:
        if jobs > 1 or scheduler:
            _run_on_dask(todo, finished, cache_dir=cache_dir, data_dir=data_dir, jobs=jobs, scheduler=scheduler,
                         timeout=timeout)
        else:
            for key, configuration in todo.items():
                try:
                    entry = run_one(configuration, data_dir, cache_dir)
                except Exception as error:  # one broken run must not stop the class's grading
                    entry = _failed(error)
                finished(key, entry)
    return {student: results[cache_key(configuration)] for student, configuration in configurations.items()}


def _private_random_for_dask():
    """Give dask's object sizing its own random generator in this worker process.

    Keras draws the seed of each unseeded initializer (`Dense`'s glorot_uniform) from Python's global
    `random`, which `vae_lab.training.set_seed` seeds just before the model is built. A worker's event
    loop thread draws from that same global generator (`dask.sizeof` samples long lists with
    `random.sample`), so at random moments it shifted the initial weights of a reference run: 0.25 nats
    at epoch 1 of a 512-image run, more than the grader's SEED_MATCH. With its own generator, dask no
    longer touches the global one. (The root fix is a seeded initializer in `vae_lab/model.py`.)"""
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
    where = f"; the last was {getattr(last, 'address', last)}" if last else ""
    times = getattr(error, "allowed_failures", ALLOWED_FAILURES) + 1
    return {"error": f"reference run killed its worker {times} times (out of memory, or a crash "
                     f"in TensorFlow?){where}"}


def _run_on_dask(todo, finished, *, cache_dir, data_dir, jobs, scheduler, timeout):
    import contextlib
    import logging

    import dask
    from distributed import Client, KilledWorker, LocalCluster, as_completed

    cache_dir = str(Path(cache_dir).resolve())  # the workers' working directory need not be ours
    data_dir = str(Path(data_dir).resolve()) if data_dir else None
    settings = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                # one task per worker thread: a task queued behind one that kills the worker is not blamed
                "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings), contextlib.ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler))
            except OSError as error:
                raise OSError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
            print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                       dashboard_address=None, silence_logs=logging.CRITICAL))
            client = stack.enter_context(Client(cluster))
            client.wait_for_workers(jobs)
        client.register_plugin(_thread_cap_plugin(runs_per_host=_runs_per_host(client)))
        started = {}  # task key -> (when this process heard it started, worker address)
        client.subscribe_topic(STARTED_TOPIC, lambda event: started.__setitem__(
            event[1]["key"], (time.monotonic(), event[1]["worker"])))
        futures = {client.submit(run_one, configuration, data_dir, cache_dir, pure=False): key
                   for key, configuration in todo.items()}
        running = as_completed(futures)
        timed_out, resubmitted = set(), set()
        while not running.is_empty():
            if not running.has_ready():
                now = time.monotonic()
                for future, key in futures.items():
                    began = started.get(future.key)
                    if future in timed_out or future.done() or began is None or now - began[0] <= timeout:
                        continue
                    timed_out.add(future)
                    future.cancel()
                    with contextlib.suppress(Exception):  # a worker without a nanny cannot be restarted
                        client.restart_workers([began[1]], raise_for_error=False)
                    finished(key, {"error": f"reference run passed its time limit of {timeout:g} s"})
                time.sleep(0.2)
                continue
            future = next(running)
            if future in timed_out:
                continue
            key = futures[future]
            if future.status == "finished":
                entry = future.result()
            elif future.status == "cancelled":
                entry = {"error": "reference run was cancelled on the cluster"}
            elif future.status == "error":
                error = future.exception()
                entry = _killed_reason(error) if isinstance(error, KilledWorker) else _failed(error)
            elif key not in resubmitted:  # lost with a worker restarted under it (another run's time limit)
                resubmitted.add(key)
                again = client.submit(run_one, todo[key], data_dir, cache_dir, pure=False)
                futures[again] = key
                futures.pop(future)
                running.add(again)
                future.release()
                continue
            else:
                entry = {"error": f"reference run was lost on the cluster twice (status {future.status})"}
            future.release()
            finished(key, entry)
