"""Benchmark: how far correct-but-different student functions, and each catalogued mistake, move a run from
the grader's reference run of the same seed — the measurement behind how exercise records are verified.

For each seed, trains 5 epochs on full MNIST (as a student's record does) with: the exercise's reference
solution (what the grader runs for an exercise record), the package's own logits form, the 12 independent
solutions written blind (benchmarks/exercise_corpus/independent), and every trainable mistake in
`vae_lab.exercises.MISTAKES`; then compares each run's history and metrics with the reference solution's,
epoch by epoch, and grades it as the grader would (values printed with 2 decimals). Writes JSON to
benchmarks/results/ and prints one table. About 15 s per run on a 2-core CPU: 69 runs for 3 seeds.
"""

import argparse
import dataclasses
import importlib.util
import json
import platform
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "exercise_corpus" / "independent"


def load_functions(path):
    from vae_lab.model import LossFunctions

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return LossFunctions(reparameterize=module.reparameterize, kl_divergence=module.kl_divergence,
                         reconstruction_loss=module.reconstruction_loss)


def printed(history):
    return {key: [round(value, 2) for value in values] for key, values in history.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="names of implementations to run (default: all)")
    parser.add_argument("--regrade", metavar="JSON", help="grade a results file again with today's bands")
    args = parser.parse_args()
    if args.regrade:
        return regrade(args.regrade)

    import vae_lab
    from vae_lab.config import DEFAULT_EVALUATION_SEED, RECORD_IW_SAMPLES
    from vae_lab.course.verification import verify
    from vae_lab.exercises import MISTAKES, solutions
    from vae_lab.record_format import HISTORY_KEYS, METRIC_KEYS
    from vae_lab.training import reference_history_and_metrics

    data = vae_lab.load_mnist()
    for array in (data[0][0], data[1][0]):
        array.setflags(write=False)
    reference_functions = solutions()
    kinds = {"package (logits)": ("correct", None)}
    kinds |= {path.stem: ("correct", load_functions(path)) for path in sorted(CORPUS.glob("*.py"))}
    kinds |= {name: ("mistake", dataclasses.replace(reference_functions, **{mistake.exercise: mistake.function}))
              for name, mistake in MISTAKES.items() if mistake.trainable}
    if args.only:
        kinds = {name: kind for name, kind in kinds.items() if name in args.only}
    runs = []
    for seed in args.seeds:
        config = vae_lab.TrainConfig(epochs=args.epochs, seed=seed)
        began = time.perf_counter()
        reference = reference_history_and_metrics(config, data, iw_samples=RECORD_IW_SAMPLES,
                                                  evaluation_seed=DEFAULT_EVALUATION_SEED,
                                                  functions=reference_functions)
        reference_entry = {"history": reference[0], "metrics": reference[1]}
        print(f"seed {seed}: reference solution {time.perf_counter() - began:.1f} s", flush=True)
        for name, (kind, functions) in kinds.items():
            began = time.perf_counter()
            try:
                history, metrics = reference_history_and_metrics(config, data, iw_samples=RECORD_IW_SAMPLES,
                                                                 evaluation_seed=DEFAULT_EVALUATION_SEED,
                                                                 functions=functions)
            except Exception as error:  # a mistake can diverge: that is a result too
                runs.append({"seed": seed, "name": name, "kind": kind, "error": f"{type(error).__name__}: {error}"})
                print(f"  {name}: {type(error).__name__}", flush=True)
                continue
            shown = printed(history)
            verdict = verify(shown, metrics, reference_entry)
            gaps = {key: [abs(a - b) for a, b in zip(history[key], reference[0][key])] for key in HISTORY_KEYS}
            metric_gaps = {key: abs(metrics[key] - reference[1][key]) for key in METRIC_KEYS}
            runs.append({"seed": seed, "name": name, "kind": kind, "verdict": verdict.status.value,
                         "reason": verdict.reason, "evidence": verdict.evidence, "history_gaps": gaps,
                         "metric_gaps": metric_gaps, "epoch1_loss": history["loss"][0],
                         "reference_epoch1_loss": reference[0]["loss"][0],
                         "seconds": round(time.perf_counter() - began, 1)})
            print(f"  {name}: {verdict.status.value} {verdict.reason} (epoch-1 loss gap {gaps['loss'][0]:.3f}, "
                  f"val gap per epoch {[round(g, 2) for g in gaps['val_loss']]}; {runs[-1]['seconds']} s)", flush=True)
    summary = {}
    for kind in ("correct", "mistake"):
        chosen = [run for run in runs if run["kind"] == kind and "error" not in run]
        if not chosen:
            continue
        summary[kind] = {
            "runs": len(chosen),
            "verdicts": {verdict: sum(run["verdict"] == verdict for run in chosen) for verdict in ("PASS", "REVIEW", "FAIL")},
            "max_epoch1_loss_gap": round(max(run["history_gaps"]["loss"][0] for run in chosen), 3),
            "max_loss_gap_per_epoch": [round(max(run["history_gaps"]["loss"][epoch] for run in chosen), 3)
                                       for epoch in range(args.epochs)],
            "max_val_loss_gap_per_epoch": [round(max(run["history_gaps"]["val_loss"][epoch] for run in chosen), 3)
                                           for epoch in range(args.epochs)],
            "max_metric_gap": round(max(max(run["metric_gaps"].values()) for run in chosen), 3),
        }
    result = {"machine": f"{platform.processor() or platform.machine()}", "seeds": args.seeds, "epochs": args.epochs,
              "summary": summary, "runs": runs}
    print(json.dumps(summary, indent=2))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    path = out / f"exercises-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


def regrade(path):
    """The verdicts of a results file's runs under the grader's bands for exercise records, from the stored gaps
    (an upper bound of what verify() computes from the printed values, so a PASS here is a PASS there)."""
    from vae_lab.course import verification

    runs = json.loads(Path(path).read_text())["runs"]
    table = {}
    for run in runs:
        if "error" in run:
            table.setdefault((run["kind"], "diverged"), []).append(run["name"])
            continue
        gaps = run["history_gaps"]
        first = max(gaps[key][0] / tolerance for key, tolerance in verification.EPOCH1_MATCH.items())
        later = max([gaps[key][epoch] / verification.later_drift(key, epoch + 1, exercise=True)
                     for key in gaps for epoch in range(1, len(gaps[key]))]
                    + [run["metric_gaps"][key] / verification.metric_drift(key, exercise=True)
                       for key in verification.METRIC_DRIFT])
        if first > verification.EPOCH1_REVIEW_FACTOR or later > verification.BAND_FACTOR:
            verdict = "FAIL"
        elif first > 1 or later > 1:
            verdict = "REVIEW"
        else:
            verdict = "PASS"
        table.setdefault((run["kind"], verdict), []).append(f"{run['name']}@{run['seed']}")
    for (kind, verdict), names in sorted(table.items()):
        print(f"{kind:<8} {verdict:<9} {len(names):>3}  {', '.join(sorted(set(n.split('@')[0] for n in names)))}")


if __name__ == "__main__":
    main()
