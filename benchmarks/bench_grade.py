"""Benchmark: the reference runs of a class's grading, per student, against their training epochs alone.

Run `python benchmarks/bench_grade.py` (needs MNIST, VAE_LAB_DATA or --data, and Dask for the 2-worker
ways: `pip install 'vae-lab[class]'`) on a quiet machine. A synthetic class of --students students (one
distinct assignment seed each, MNIST, --epochs epochs, full data) is run, each way in a fresh process:

1. `jobs 1`: `vae_lab.course.parallel.reference_runs(jobs=1)`, the grader's serial path as the course
   package runs it today (its `reference_run`, run_one, cache writes);
2. `trainer`: `vae_lab.training.reference_history_and_metrics` in a loop in one process, with the data
   loaded once and read-only: what `reference_run` gives once it calls that function (one compiled
   trainer per process, no run directory, no checkpoint, no model re-loaded);
3. `jobs N`: `reference_runs(jobs=N)`, a LocalCluster of N single-threaded worker processes (--parallel);
4. `trainer N`: the trainer way on a LocalCluster of N worker processes, 1 intra-op and 1 inter-op
   TensorFlow thread each (the grader's thread rule), data loaded once per worker (--parallel);

then (`--parallel`) the class graded again from the warm cache of way 3. For each way: seconds per
student, the training epochs' own seconds per student (the sum of the epoch seconds that the run's
metrics record as `train_seconds`), and their ratio, the overhead of everything around training:
wall x workers / sum of the runs' epoch seconds. A benchmark, never a test: nothing here asserts a time.
"""

import argparse
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))


def synthetic_class(students, epochs):
    return {f"b{index:03d}": {"student_id": f"b{index:03d}", "seed": 7001 + 37 * index, "dataset": "mnist",
                              "epochs": epochs, "train_images": None, "vae_lab_version": "0.2.0"}
            for index in range(students)}


def peak_rss_mib():
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            lines = cpuinfo.read().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in lines if line.startswith("flags"))
        return f"{name}, {'AVX-512' if 'avx512f' in flags else 'AVX2' if 'avx2' in flags else 'no AVX2'}"
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=2)
def read_only_data(dataset, data_dir, train_images):
    """The dataset once per process, its arrays read-only, so the trainer keeps their tensors between runs."""
    from vae_lab import data as datasets

    data = datasets.first_images(datasets.load_dataset(dataset, data_dir), train_images)
    for array in (data[0][0], data[1][0]):
        array.setflags(write=False)
    return data


def cap_threads_from_environment():
    """In a worker process, before its TensorFlow starts: TF_NUM_INTRAOP/INTEROP_THREADS, if set."""
    import tensorflow as tf

    for name, setter in (("TF_NUM_INTRAOP_THREADS", tf.config.threading.set_intra_op_parallelism_threads),
                         ("TF_NUM_INTEROP_THREADS", tf.config.threading.set_inter_op_parallelism_threads)):
        if os.environ.get(name):
            try:
                setter(int(os.environ[name]))
            except RuntimeError:  # already started: stays as it is
                pass
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def trainer_reference(configuration, data_dir=None):
    """One reference run as `reference_run` would do it with the reusable trainer: {history, metrics, seconds}."""
    began = time.perf_counter()
    threads = cap_threads_from_environment()
    from vae_lab.config import TrainConfig
    from vae_lab.training import reference_history_and_metrics

    data = read_only_data(configuration["dataset"], data_dir, configuration["train_images"])
    config = TrainConfig(dataset=configuration["dataset"], epochs=configuration["epochs"], seed=configuration["seed"])
    history, metrics = reference_history_and_metrics(config, data, iw_samples=configuration["iw_samples"],
                                                     evaluation_seed=configuration["evaluation_seed"])
    return {"configuration": configuration, "history": history, "metrics": metrics, "threads": threads,
            "seconds": round(time.perf_counter() - began, 2), "peak_rss_mib": peak_rss_mib()}


def trainer_on_cluster(configurations, jobs, data_dir):
    """The trainer way on a LocalCluster of `jobs` worker processes, one run at a time on each."""
    import logging

    import dask
    from distributed import Client, LocalCluster, as_completed

    import bench_grade  # by name, so the workers import this file rather than unpickle a copy of it

    os.environ["TF_NUM_INTRAOP_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), str(ROOT), os.environ.get("PYTHONPATH")]))
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}), \
            LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                         silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        client.wait_for_workers(jobs)
        began = time.perf_counter()
        futures = {client.submit(bench_grade.trainer_reference, configuration, data_dir, pure=False): student
                   for student, configuration in configurations.items()}
        entries = {futures[future]: future.result() for future in as_completed(futures)}
        return entries, time.perf_counter() - began


def child(args):
    """One way of running the class, in this (fresh) process; writes what it measured to --result."""
    began_process = time.perf_counter()
    from vae_lab.course.reference import run_configuration

    class_ = synthetic_class(args.students, args.epochs)
    configurations = {student: run_configuration(assignment) for student, assignment in class_.items()}
    note = None
    began = time.perf_counter()
    if args.child == "trainer" and args.jobs == 1:
        entries = {student: trainer_reference(configuration, args.data)
                   for student, configuration in configurations.items()}
        seconds = time.perf_counter() - began
    elif args.child == "trainer":
        entries, seconds = trainer_on_cluster(configurations, args.jobs, args.data)
    else:
        from vae_lab.course.parallel import reference_runs

        entries, _ = reference_runs(class_, key=b"bench_grade course key", cache_dir=args.cache, data_dir=args.data,
                                    jobs=args.jobs)
        seconds = time.perf_counter() - began
    result = {"seconds": seconds, "process_seconds": time.perf_counter() - began_process,
              "this_process_peak_rss_mib": peak_rss_mib(), "note": note,
              "entries": {student: {"error": entry.get("error"), "history": entry.get("history"),
                                    "seconds": entry.get("seconds"), "peak_rss_mib": entry.get("peak_rss_mib"),
                                    "threads": entry.get("threads"),
                                    "train_seconds": (entry.get("metrics") or {}).get("train_seconds"),
                                    "evaluation_seconds": (entry.get("metrics") or {}).get("evaluation_seconds"),
                                    "metrics": {key: value for key, value in (entry.get("metrics") or {}).items()
                                                if key not in ("train_seconds", "evaluation_seconds", "versions")}}
                          for student, entry in entries.items()}}
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")


def run_child(name, args, cache=None, jobs=1):
    """Run one way in a fresh process; return what it measured and its wall time from outside."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_path = handle.name
    command = [sys.executable, __file__, "--child", name, "--result", result_path, "--students", str(args.students),
               "--epochs", str(args.epochs), "--jobs", str(jobs)]
    command += ["--cache", str(cache)] if cache else []
    command += ["--data", args.data] if args.data else []
    load = os.getloadavg()[0]
    began = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stderr=subprocess.DEVNULL if args.quiet else None)
    wall = time.perf_counter() - began
    result = json.loads(Path(result_path).read_text(encoding="utf-8"))
    os.unlink(result_path)
    result.update(wall_seconds=wall, jobs=jobs, load_before=load, load_after=os.getloadavg()[0])
    print(f"{name} (jobs {jobs}): {result['seconds']:.1f} s for {args.students} students; load average "
          f"{load:.2f} -> {result['load_after']:.2f}", flush=True)
    return result


def duration(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2, help="workers of the parallel ways (default 2)")
    parser.add_argument("--parallel", action="store_true", help="also the LocalCluster ways and the warm cache")
    parser.add_argument("--ways", nargs="*", help="only these: jobs1 trainer jobsN trainerN")
    parser.add_argument("--data", help="MNIST folder (default: VAE_LAB_DATA)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--quiet", action="store_true", help="hide the runs' TensorFlow logs")
    parser.add_argument("--report", type=Path, metavar="JSON", help="print the tables of a --json file again")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.report:
        return report(json.loads(args.report.read_text(encoding="utf-8")))

    from vae_lab.course.parallel import available_cores

    wanted = set(args.ways or (["jobs1", "trainer"] + (["jobsN", "trainerN"] if args.parallel else [])))
    data = {"students": args.students, "epochs": args.epochs, "jobs": args.jobs, "cores": available_cores(),
            "cpu": cpu_name(), "load_before": os.getloadavg()[0], "ways": {}}
    print(f"{args.students} students, MNIST, {args.epochs} epochs, full data; {data['cpu']}, {data['cores']} cores; "
          f"load average {data['load_before']:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vae-lab-bench-grade-") as scratch:
        scratch = Path(scratch)
        if "jobs1" in wanted:
            data["ways"]["jobs 1"] = run_child("runs", args, cache=scratch / "jobs1", jobs=1)
        if "trainer" in wanted:
            data["ways"]["trainer"] = run_child("trainer", args, jobs=1)
        if "jobsN" in wanted:
            data["ways"][f"jobs {args.jobs}"] = run_child("runs", args, cache=scratch / "jobsN", jobs=args.jobs)
            data["warm"] = run_child("runs", args, cache=scratch / "jobsN", jobs=args.jobs)
        if "trainerN" in wanted:
            data["ways"][f"trainer {args.jobs}"] = run_child("trainer", args, jobs=args.jobs)
    data["load_after"] = os.getloadavg()[0]
    report(data)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2), encoding="utf-8")


def report(data):
    ways, students = data["ways"], data["students"]
    print(f"\n{students} students, MNIST, {data['epochs']} epochs, full data; {data['cores']} cores "
          f"({data.get('cpu', '?')}), load average {data.get('load_before', float('nan')):.2f} before, "
          f"{data.get('load_after', float('nan')):.2f} after")
    print(f"\n{'way':<10} {'workers':>7} {'wall s':>7} {'s/student':>10} {'epochs s/student':>17} {'ratio':>6} "
          f"{'eval s':>7} {'load':>10}  peak RSS MiB (threads)")
    for name, way in ways.items():
        entries = list(way["entries"].values())
        errors = [entry["error"] for entry in entries if entry.get("error")]
        epoch_seconds = sum(entry.get("train_seconds") or 0 for entry in entries)
        evaluation = statistics.median(entry.get("evaluation_seconds") or 0 for entry in entries)
        workers = way.get("jobs", 1)
        ratio = way["seconds"] * workers / epoch_seconds if epoch_seconds else float("nan")
        peaks = [entry["peak_rss_mib"] for entry in entries if entry.get("peak_rss_mib")]
        threads = sorted({tuple(entry["threads"].values()) for entry in entries if entry.get("threads")})
        print(f"{name:<10} {workers:>7} {way['seconds']:7.1f} {way['seconds'] / students:10.2f} "
              f"{epoch_seconds / students:17.2f} {ratio:6.3f} {evaluation:7.2f} "
              f"{way.get('load_before', float('nan')):4.2f}-{way.get('load_after', float('nan')):4.2f}  "
              f"{max(peaks, default=float('nan')):.0f}"
              + (f" ({'; '.join(f'{a}, {b}' for a, b in threads)})" if threads else "")
              + (f"  ERRORS: {errors}" if errors else "") + (f"  NOTE: {way['note']}" if way.get("note") else ""))
    print("ratio = wall seconds x workers / the runs' epoch seconds (train_seconds): 1.00 would be training alone;"
          " targets 1.15 in one process, 1.25 on 2 workers")
    first = next(iter(ways.values()))
    same_history = all(way["entries"][student]["history"] == first["entries"][student]["history"]
                       for way in ways.values() for student in first["entries"])
    same_metrics = all(way["entries"][student]["metrics"] == first["entries"][student]["metrics"]
                       for way in ways.values() for student in first["entries"])
    print(f"histories identical in all ways: {'yes' if same_history else 'NO'}; metrics identical in all ways: "
          f"{'yes' if same_metrics else 'NO (ways with other thread counts may differ in the last bits)'}")
    if "warm" in data:
        warm = data["warm"]
        print(f"second grading from the warm cache: reference_runs {warm['seconds']:.2f} s, the whole process "
              f"{warm['wall_seconds']:.1f} s")
    serial = ways.get("trainer") or ways.get("jobs 1")
    parallel = next((way for name, way in ways.items() if name.startswith("trainer ")), None)
    if serial:
        per_student = serial["seconds"] / students
        print(f"\nA class of 300 in one process at {per_student:.1f} s a student: {duration(300 * per_student)}.")
        if parallel:
            one_thread = statistics.median(entry["seconds"] for entry in parallel["entries"].values())
            print(f"On N cores with --jobs N (1 thread a run), at the {one_thread:.1f} s a run measured with 1 thread "
                  f"beside another: 8 cores {duration(math.ceil(300 / 8) * one_thread)}, 32 cores "
                  f"{duration(math.ceil(300 / 32) * one_thread)} (assumes bigger machines scale like this pair).")


if __name__ == "__main__":
    sys.exit(main())
