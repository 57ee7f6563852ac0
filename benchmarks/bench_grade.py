"""Benchmark: the reference runs of a class's grading, serially and on Dask workers.

Run `python benchmarks/bench_grade.py` (needs MNIST, VAE_LAB_DATA or --data, and Dask for --jobs above
1: `pip install 'vae-lab[class]'`) on a quiet machine. A synthetic class of --students students (one
distinct assignment seed each, MNIST, --epochs epochs, full data) is run, each way in a fresh process
and a fresh cache:

1. `loop`: `reference_run` called directly, once per student, in one process (the floor);
2. `jobs 1`: `reference_runs(jobs=1)`, the grader's serial path (run_one, cache writes);
3. `jobs N`: `reference_runs(jobs=N)`, a LocalCluster of N single-threaded worker processes;

then the same class graded again from the warm cache (a fresh process, the grader's start-up included).
Prints seconds per student, each way's ratio to the loop, the peak memory of each process that ran
reference runs, and the arithmetic for a class of 300 on 1, 8 and 32 cores. A benchmark, never a test:
nothing here asserts a time.
"""

import argparse
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
sys.path.insert(0, str(ROOT))


def synthetic_class(students, epochs):
    return {f"b{index:03d}": {"student_id": f"b{index:03d}", "seed": 7001 + 37 * index, "dataset": "mnist",
                              "epochs": epochs, "train_images": None, "vae_lab_version": "0.2.0"}
            for index in range(students)}


def peak_rss_mib():
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(args):
    """One way of running the class, in this (fresh) process; writes what it measured to --result."""
    began_process = time.perf_counter()
    from vae_lab.course.parallel import reference_runs
    from vae_lab.course.reference import reference_run, run_configuration

    class_ = synthetic_class(args.students, args.epochs)
    began = time.perf_counter()
    if args.child == "loop":
        entries = {student: reference_run(run_configuration(assignment), args.data)
                   for student, assignment in class_.items()}
        for entry in entries.values():
            entry["peak_rss_mib"] = peak_rss_mib()
    else:
        entries = reference_runs(class_, cache_dir=args.cache, data_dir=args.data, jobs=args.jobs)
    seconds = time.perf_counter() - began
    result = {"seconds": seconds, "process_seconds": time.perf_counter() - began_process,
              "this_process_peak_rss_mib": peak_rss_mib(),
              "entries": {student: {key: entry.get(key) for key in ("error", "history", "seconds", "peak_rss_mib",
                                                                    "threads")}
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
    began = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stderr=subprocess.DEVNULL if args.quiet else None)
    wall = time.perf_counter() - began
    result = json.loads(Path(result_path).read_text(encoding="utf-8"))
    os.unlink(result_path)
    result["wall_seconds"] = wall
    return result


def duration(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2, help="workers of the parallel way (default 2)")
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

    data = {"students": args.students, "epochs": args.epochs, "jobs": args.jobs, "cores": available_cores(),
            "cpu": platform.processor() or platform.machine(), "load_before": os.getloadavg()[0], "ways": {}}
    print(f"{args.students} students, MNIST, {args.epochs} epochs, full data: measuring (about "
          f"{duration(3 * args.students * 25)} on a 2-core machine)", flush=True)
    with tempfile.TemporaryDirectory(prefix="vae-lab-bench-grade-") as scratch:
        scratch = Path(scratch)
        data["ways"]["loop"] = run_child("loop", args)
        data["ways"]["jobs 1"] = run_child("runs", args, cache=scratch / "jobs1", jobs=1)
        data["ways"][f"jobs {args.jobs}"] = run_child("runs", args, cache=scratch / "jobsN", jobs=args.jobs)
        data["warm"] = run_child("runs", args, cache=scratch / "jobsN", jobs=args.jobs)
        data["cached_files"] = len(list((scratch / "jobsN").glob("*.json")))
    data["load_after"] = os.getloadavg()[0]
    report(data)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2), encoding="utf-8")


def report(data):
    from vae_lab.course.parallel import thread_rule

    ways, students = data["ways"], data["students"]
    jobs = data.get("jobs") or max(int(name.split()[1]) for name in ways if name.startswith("jobs"))
    print(f"{students} students, MNIST, {data['epochs']} epochs, full data; {data['cores']} cores "
          f"({data.get('cpu', '?')}), load average {data.get('load_before', float('nan')):.2f} before, "
          f"{data.get('load_after', float('nan')):.2f} after")
    loop = ways["loop"]["seconds"]
    print(f"\n{'way':<8} {'total s':>8} {'s/student':>10} {'vs loop':>8} {'process s':>10}  peak RSS MiB of a process "
          "that ran runs (TF intra, inter threads; 0: TensorFlow's default)")
    for name, way in ways.items():
        entries = way["entries"].values()
        errors = [entry["error"] for entry in entries if entry.get("error")]
        peaks = [entry["peak_rss_mib"] for entry in entries if entry.get("peak_rss_mib")]
        threads = sorted({tuple(entry["threads"].values()) for entry in entries if entry.get("threads")})
        print(f"{name:<8} {way['seconds']:8.1f} {way['seconds'] / students:10.2f} {way['seconds'] / loop:8.2f} "
              f"{way['wall_seconds']:10.1f}  {max(peaks, default=float('nan')):.0f}"
              + (f" ({'; '.join(f'{a}, {b}' for a, b in threads)})" if threads else "")
              + (f"  ERRORS: {errors}" if errors else ""))
    parallel_way, warm = ways[f"jobs {jobs}"], data["warm"]
    print(f"the grader's own process in jobs {jobs} (client, no TensorFlow): "
          f"{parallel_way['this_process_peak_rss_mib']:.0f} MiB")
    same = all(ways[name]["entries"][student]["history"] == ways["loop"]["entries"][student]["history"]
               for name in ways for student in ways["loop"]["entries"])
    print(f"histories identical in all ways: {'yes' if same else 'NO'}")
    print(f"second grading from the warm cache ({data.get('cached_files', students)} entries), jobs {jobs}: "
          f"reference_runs {warm['seconds']:.2f} s, the whole process {warm['wall_seconds']:.1f} s "
          "(target: under 10 s)")

    one_thread = statistics.median(entry["seconds"] for entry in parallel_way["entries"].values())
    default_threads = ways["jobs 1"]["seconds"] / students
    overhead = max(parallel_way["seconds"] - math.ceil(students / jobs) * one_thread, 0)
    print(f"\nA class of 300, from these numbers. A run with one thread on about one core (the median run of "
          f"jobs {jobs}, {thread_rule(data['cores'], jobs)[0]} intra-op thread each): {one_thread:.1f} s. A run in "
          f"the grader's process with TensorFlow's default threads ({data['cores']} cores): {default_threads:.1f} s "
          f"a student. Cluster start and scheduling: {overhead:.0f} s.")
    print("Cores to workers: --jobs = cores, and the thread rule gives each worker max(1, cores // jobs) = 1 "
          "intra-op and 1 inter-op thread (a 1-core machine runs --jobs 1 in the grader's process, one thread).")
    for cores in (1, 8, 32):
        rounds = math.ceil(300 / cores)
        total = rounds * one_thread + (overhead if cores > 1 else 0)
        intra, inter = thread_rule(cores, cores)
        print(f"  {cores:>2} cores, --jobs {cores:<2} ({intra}+{inter} threads a run): ceil(300 / {cores}) = "
              f"{rounds:>3} rounds x {one_thread:.1f} s" + (f" + {overhead:.0f} s" if cores > 1 else "")
              + f" = {duration(total)}")
    if data["cores"] == 2:
        print(f"Fewer, wider workers, from the {default_threads:.1f} s of a 2-thread run measured here:")
        for cores in (8, 32):
            workers = cores // 2
            rounds = math.ceil(300 / workers)
            intra, inter = thread_rule(cores, workers)
            print(f"  {cores:>2} cores, --jobs {workers:<2} ({intra}+{inter} threads a run): ceil(300 / {workers}) = "
                  f"{rounds:>3} rounds x {default_threads:.1f} s + {overhead:.0f} s = "
                  f"{duration(rounds * default_threads + overhead)}")
    print("(Assumes runs scale as measured on this machine; memory bandwidth and clock speeds differ on a full "
          "32-core machine. A second grading of the class is answered from the cache in seconds.)")


if __name__ == "__main__":
    sys.exit(main())
