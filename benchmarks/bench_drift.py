"""Benchmark: how far the SAME seed drifts between environments, against how far DIFFERENT seeds lie apart.

A grader re-runs a student's configuration and compares the per-epoch history and the final test
metrics the student printed (2 decimals). Its tolerance must sit above the honest drift of one seed
across machines and below the gap between seeds. This script measures both on MNIST, 5 epochs, the
default config:

  same seed (3) under: the default settings (baseline), one intra/inter-op thread, oneDNN off,
  XLA's CPU ISA capped at AVX2 and at SSE4.2, the initial kernels moved one ulp up, the first
  layer's kernel scaled by 1 + 1e-7, and Keras `fit()` without XLA;
  different seeds: 0..9 at the default settings.

Each variant trains in its own subprocess (environment variables must be set before TensorFlow is
imported), one after another. Run

    VAE_LAB_DATA=/path/to/mnist python benchmarks/bench_drift.py            # all variants, then tables
    python benchmarks/bench_drift.py --tables                               # tables from the saved JSON
    python benchmarks/bench_drift.py --epoch1-extra 12 20   # then: epoch 1 only, 12 random one-ulp moves
                                                            # and seeds 10..29, into drift.json's tables
    python benchmarks/bench_drift.py --worker baseline --seed 3 --out x.json  # one variant (internal)

Results go to benchmarks/results/drift.json (raw runs and both tables). This is a benchmark, never a
test: nothing here asserts a number.
"""

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
HISTORY_KEYS = ("loss", "reconstruction_loss", "kl_loss", "val_loss", "val_reconstruction_loss", "val_kl_loss")
METRIC_KEYS = ("test_neg_elbo", "test_reconstruction_loss", "test_kl_loss", "test_nll_iw", "final_val_loss")
TEST_METRIC_KEYS = METRIC_KEYS[:4]
BASE_SEED, EPOCHS, IW_SAMPLES, EVAL_SEED = 3, 5, 20, 0

# name -> (extra environment, perturbation, description). Variants 2-7 are "hardware-like".
VARIANTS = {
    "baseline": ({}, None, "default settings"),
    "threads1": ({"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}, None,
                 "TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1"),
    "onednn_off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, None, "TF_ENABLE_ONEDNN_OPTS=0"),
    "isa_avx2": ({"XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}, None, "XLA_FLAGS=--xla_cpu_max_isa=AVX2"),
    "isa_sse42": ({"XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2"}, None, "XLA_FLAGS=--xla_cpu_max_isa=SSE4_2"),
    "ulp_up": ({}, "ulp", "every initial kernel moved one ulp up (np.nextafter)"),
    "scale_first": ({}, "scale", "first layer's initial kernel * (1 + 1e-7)"),
    "eager_fit": ({}, "fit", "Keras fit(), jit_compile=False (non-XLA kernels)"),
    # extras: a repeat of the baseline (is a run bitwise repeatable?) and a second one-ulp stand-in
    "repeat": ({}, None, "the baseline again (run-to-run repeatability)"),
    "ulp_down": ({}, "ulp_down", "every initial kernel moved one ulp down"),
}
HARDWARE_LIKE = ("threads1", "onednn_off", "isa_avx2", "isa_sse42", "ulp_up", "scale_first")  # variants 2-7
SEEDS = tuple(range(10))


# ----------------------------------------------------------------------------------------- worker

def _perturb(kind):
    """A `before_epoch` hook that changes the initial weights at epoch 0, before any step."""
    import numpy as np

    def hook(epoch, model):
        if epoch != 0:
            return
        dense = [layer for part in (model.encoder, model.decoder) for layer in part.layers
                 if hasattr(layer, "kernel")]
        if kind in ("ulp", "ulp_down"):
            target = np.float32(np.inf if kind == "ulp" else -np.inf)
            for layer in dense:
                w = np.asarray(layer.kernel.numpy())
                layer.kernel.assign(np.nextafter(w, target).astype(w.dtype))
        elif kind == "scale":
            w = np.asarray(dense[0].kernel.numpy())
            layer_w = (w.astype(np.float64) * (1.0 + 1e-7)).astype(w.dtype)
            dense[0].kernel.assign(layer_w)
            hook.changed = int(np.count_nonzero(layer_w != w))
            hook.size = int(w.size)
    hook.changed = hook.size = None
    return hook


def _fit_without_xla(config, data):
    """The same step run by Keras `fit()` with TensorFlow's non-XLA kernels, one epoch at a time on
    the lab's shuffle."""
    import keras
    import vae_lab
    from vae_lab.training import epoch_order

    (x_train, _), (x_test, _) = data
    vae_lab.set_seed(config.seed)
    model = vae_lab.build_model(config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=False)
    history = {}
    for epoch in range(config.epochs):
        order = epoch_order(config.seed, epoch, len(x_train))
        logs = model.fit(x_train[order], epochs=1, batch_size=config.batch_size, shuffle=False, verbose=0,
                         validation_data=(x_test,)).history
        for key in HISTORY_KEYS:
            history.setdefault(key, []).append(float(logs[key][-1]))
    return model, history


def worker(variant, seed, out):
    _, perturbation, _ = VARIANTS[variant]
    began_all = time.perf_counter()
    import tensorflow as tf

    # TensorFlow reads the two thread variables itself; set them through its API as well, so the
    # variant means one thread whatever the TF version does with the environment.
    if os.environ.get("TF_NUM_INTRAOP_THREADS"):
        tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))
    if os.environ.get("TF_NUM_INTEROP_THREADS"):
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TF_NUM_INTEROP_THREADS"]))
    import vae_lab
    from vae_lab.evaluation import evaluate

    data = vae_lab.load_dataset("mnist")
    config = vae_lab.TrainConfig(dataset="mnist", epochs=EPOCHS, seed=seed)
    hook = _perturb(perturbation) if perturbation in ("ulp", "ulp_down", "scale") else None
    began = time.perf_counter()
    if perturbation == "fit":
        model, history = _fit_without_xla(config, data)
    else:
        model, history = vae_lab.train(config, data=data, verbose=0, before_epoch=hook)
    train_seconds = time.perf_counter() - began
    began = time.perf_counter()
    metrics = evaluate(model, data[1][0], iw_samples=IW_SAMPLES, seed=EVAL_SEED)
    evaluate_seconds = time.perf_counter() - began
    result = {
        "variant": variant, "seed": seed,
        "env": {key: os.environ.get(key) for key in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                                     "TF_ENABLE_ONEDNN_OPTS", "XLA_FLAGS")},
        "history": {key: [float(v) for v in history[key]] for key in HISTORY_KEYS},
        "metrics": {**{f"test_{key}": float(metrics[key])
                       for key in ("neg_elbo", "reconstruction_loss", "kl_loss", "nll_iw")},
                    "final_val_loss": float(history["val_loss"][-1])},
        "train_seconds": train_seconds, "evaluate_seconds": evaluate_seconds,
        "reference_seconds": train_seconds + evaluate_seconds,
        "process_seconds": time.perf_counter() - began_all,
        "tf": tf.__version__,
    }
    if perturbation == "scale":
        result["scale_changed_elements"] = [hook.changed, hook.size]
    Path(out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


def epoch1_worker(perturbations, seeds, out):
    """Epoch 1 only, in one process: the baseline seed under `perturbations` random one-ulp moves of
    every initial kernel (each element up or down at random), and `seeds` more seeds from 10 on.
    More samples of the two numbers a seed check at epoch 1 must separate."""
    import numpy as np
    import vae_lab

    data = vae_lab.load_dataset("mnist")

    def one(seed, hook=None):
        _, history = vae_lab.train(vae_lab.TrainConfig(dataset="mnist", epochs=1, seed=seed), data=data,
                                   verbose=0, before_epoch=hook)
        return {key: float(history[key][0]) for key in HISTORY_KEYS}

    def random_ulp(k):
        def hook(epoch, model):
            rng = np.random.default_rng(1000 + k)
            for part in (model.encoder, model.decoder):
                for layer in part.layers:
                    if hasattr(layer, "kernel"):
                        w = np.asarray(layer.kernel.numpy())
                        target = np.where(rng.random(w.shape) < 0.5, np.float32(np.inf), np.float32(-np.inf))
                        layer.kernel.assign(np.nextafter(w, target.astype(w.dtype)).astype(w.dtype))
        return hook

    began = time.perf_counter()
    result = {"baseline": one(BASE_SEED), "perturbed": [], "seeds": {}}
    for k in range(perturbations):
        result["perturbed"].append(one(BASE_SEED, random_ulp(k)))
        print(f"  random one-ulp {k}: loss {result['perturbed'][-1]['loss']:.4f}", flush=True)
    for seed in range(10, 10 + seeds):
        result["seeds"][str(seed)] = one(seed)
        print(f"  seed {seed}: loss {result['seeds'][str(seed)]['loss']:.4f}", flush=True)
    result["seconds"] = time.perf_counter() - began
    Path(out).write_text(json.dumps(result, indent=1))


def epoch1_summary(extra, runs):
    """Epoch-1 drift (random one-ulp moves) against epoch-1 seed gaps (seeds 0..9 of the main run and
    the extra seeds): per value, and jointly as the largest |delta| over the 6 values."""
    base = extra["baseline"]
    seeds = [{key: run["history"][key][0] for key in HISTORY_KEYS}
             for run in runs["seeds"].values() if "error" not in run] + list(extra["seeds"].values())
    pairs = list(itertools.combinations(seeds, 2))
    drift = [{key: abs(p[key] - base[key]) for key in HISTORY_KEYS} for p in extra["perturbed"]]
    gaps = [{key: abs(a[key] - b[key]) for key in HISTORY_KEYS} for a, b in pairs]
    return {
        "perturbations": len(drift), "seeds": len(seeds), "pairs": len(pairs),
        "drift_max": {key: max(d[key] for d in drift) for key in HISTORY_KEYS} if drift else None,
        "drift_median": {key: statistics.median(d[key] for d in drift) for key in HISTORY_KEYS} if drift else None,
        "gap_min": {key: min(g[key] for g in gaps) for key in HISTORY_KEYS},
        "joint_drift_max": max(max(d.values()) for d in drift) if drift else None,
        "joint_gap_min": min(max(g.values()) for g in gaps),
        "joint_gap_quantiles": [sorted(max(g.values()) for g in gaps)[i] for i in (0, 1, 2, 4, 9)],
    }


# ----------------------------------------------------------------------------------------- driver

def run_one(variant, seed, log):
    env = dict(os.environ)
    env.update(VARIANTS[variant][0])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = RESULTS / f"drift_run_{variant}_seed{seed}.json"
    out.unlink(missing_ok=True)
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", variant, "--seed", str(seed), "--out", str(out)],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout)[-1500:]
        print(f"  {variant} seed {seed}: FAILED rc={proc.returncode} after {wall:.0f} s\n{tail}", file=log, flush=True)
        return {"variant": variant, "seed": seed, "error": tail, "returncode": proc.returncode, "wall_seconds": wall}
    result = json.loads(out.read_text())
    result["wall_seconds"] = wall
    print(f"  {variant} seed {seed}: {wall:.0f} s (train {result['train_seconds']:.0f}, eval "
          f"{result['evaluate_seconds']:.1f})  val_loss {['%.4f' % v for v in result['history']['val_loss']]}",
          file=log, flush=True)
    return result


def _diffs(run, base):
    return {
        "history": {key: [abs(a - b) for a, b in zip(run["history"][key], base["history"][key])] for key in HISTORY_KEYS},
        "metrics": {key: abs(run["metrics"][key] - base["metrics"][key]) for key in METRIC_KEYS},
    }


def _summary(values):
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def tables(runs):
    """Both tables and the headline numbers, from {"variants": {name: run}, "seeds": {seed: run}}."""
    base = runs["variants"]["baseline"]
    drift = {}
    for name, run in runs["variants"].items():
        if name == "baseline" or "error" in run:
            continue
        d = _diffs(run, base)
        d["max_test_metric"] = max(d["metrics"][key] for key in TEST_METRIC_KEYS)
        d["max_any_history"] = [max(d["history"][key][e] for key in HISTORY_KEYS) for e in range(EPOCHS)]
        drift[name] = d
    seed_runs = [runs["seeds"][str(s)] for s in SEEDS if "error" not in runs["seeds"].get(str(s), {"error": 1})]
    pairs = [_diffs(a, b) for a, b in itertools.combinations(seed_runs, 2)]
    spread = {
        "pairs": len(pairs),
        "history": {key: [_summary([p["history"][key][e] for p in pairs]) for e in range(EPOCHS)] for key in HISTORY_KEYS},
        "metrics": {key: _summary([p["metrics"][key] for p in pairs]) for key in METRIC_KEYS},
        # the smallest gap over all 6 history values at once: how well a seed check can tell seeds apart
        "min_pair_max_history": [min(max(p["history"][key][e] for key in HISTORY_KEYS) for p in pairs)
                                 for e in range(EPOCHS)],
    }
    hw = [drift[name] for name in HARDWARE_LIKE if name in drift]
    with_extras = hw + [drift[name] for name in ("ulp_down",) if name in drift]
    headline = {
        "smallest_epoch1_train_loss_gap_between_seeds": spread["history"]["loss"][0]["min"],
        "smallest_epoch1_val_loss_gap_between_seeds": spread["history"]["val_loss"][0]["min"],
        "largest_epoch1_same_seed_drift_hardware_like": {
            key: max(d["history"][key][0] for d in hw) for key in HISTORY_KEYS} if hw else None,
        "largest_same_seed_drift_hardware_like_per_epoch_any_value": [
            max(d["max_any_history"][e] for d in hw) for e in range(EPOCHS)] if hw else None,
        "largest_same_seed_drift_hardware_like_test_metrics": max(d["max_test_metric"] for d in hw) if hw else None,
        "largest_same_seed_drift_hardware_like_final_metrics": {
            key: max(d["metrics"][key] for d in hw) for key in METRIC_KEYS} if hw else None,
        "largest_same_seed_drift_incl_ulp_down_per_epoch_any_value": [
            max(d["max_any_history"][e] for d in with_extras) for e in range(EPOCHS)] if with_extras else None,
        "largest_same_seed_drift_incl_ulp_down_test_metrics":
            max(d["max_test_metric"] for d in with_extras) if with_extras else None,
    }
    return {"drift": drift, "spread": spread, "headline": headline}


def print_tables(result, log=sys.stdout):
    t = result["tables"]
    p = lambda *a: print(*a, file=log)  # noqa: E731
    p("\n(A) same-seed drift from the baseline (seed 3), |delta| in nats")
    head = ["variant"] + [f"loss e{e + 1}" for e in range(EPOCHS)] + [f"val e{e + 1}" for e in range(EPOCHS)] + ["max test"]
    p("  ".join(f"{h:>11}" for h in head))
    for name, d in t["drift"].items():
        cells = d["history"]["loss"] + d["history"]["val_loss"] + [d["max_test_metric"]]
        p(f"{name:>11}  " + "  ".join(f"{c:11.2e}" for c in cells))
    for name, run in result["runs"]["variants"].items():
        if "error" in run:
            p(f"{name:>11}  FAILED: {run['error'].strip().splitlines()[-1] if run['error'].strip() else run['returncode']}")
    s = t["spread"]
    p(f"\n(B) seed spread over {s['pairs']} pairs of seeds {SEEDS[0]}..{SEEDS[-1]}, |delta| min / median / max")
    p(f"{'epoch':>6}  {'train loss':>26}  {'val_loss':>26}  {'min pair max(6 values)':>22}")
    for e in range(EPOCHS):
        lo, vl = s["history"]["loss"][e], s["history"]["val_loss"][e]
        p(f"{e + 1:>6}  {lo['min']:8.3f} {lo['median']:8.3f} {lo['max']:8.3f}  "
          f"{vl['min']:8.3f} {vl['median']:8.3f} {vl['max']:8.3f}  {s['min_pair_max_history'][e]:22.3f}")
    for key in METRIC_KEYS:
        m = s["metrics"][key]
        p(f"{key:>26}  {m['min']:8.3f} {m['median']:8.3f} {m['max']:8.3f}")
    h = t["headline"]
    p("\nsmallest epoch-1 train-loss gap between two seeds: "
      f"{h['smallest_epoch1_train_loss_gap_between_seeds']:.4f} (val_loss {h['smallest_epoch1_val_loss_gap_between_seeds']:.4f})")
    if h["largest_epoch1_same_seed_drift_hardware_like"]:
        p("largest epoch-1 same-seed drift, variants 2-7: " + ", ".join(
            f"{k} {v:.2e}" for k, v in h["largest_epoch1_same_seed_drift_hardware_like"].items()))
        p("largest same-seed drift per epoch (any of 6 values), variants 2-7: " + ", ".join(
            f"e{e + 1} {v:.2e}" for e, v in enumerate(h["largest_same_seed_drift_hardware_like_per_epoch_any_value"])))
        p("largest same-seed drift of the final metrics, variants 2-7: " + ", ".join(
            f"{k} {v:.2e}" for k, v in h["largest_same_seed_drift_hardware_like_final_metrics"].items()))
        p("the same, with the extra ulp_down: per epoch " + ", ".join(
            f"e{e + 1} {v:.2e}" for e, v in enumerate(h["largest_same_seed_drift_incl_ulp_down_per_epoch_any_value"]))
          + f"; test metrics {h['largest_same_seed_drift_incl_ulp_down_test_metrics']:.2e}")
    ref = result["runs"]["variants"]["baseline"]
    p(f"\nreference run (seed {BASE_SEED}, {EPOCHS} epochs + evaluate, {IW_SAMPLES} IW samples): "
      f"{ref['reference_seconds']:.1f} s (train {ref['train_seconds']:.1f} s, evaluate {ref['evaluate_seconds']:.1f} s)")


def driver(args):
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "drift.json"
    if args.tables:
        result = json.loads(path.read_text())
        print_tables(result)
        return
    if args.epoch1_extra:
        perturbations, seeds = args.epoch1_extra
        out = RESULTS / "drift_epoch1.json"
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        subprocess.run([sys.executable, __file__, "--epoch1-worker", str(perturbations), str(seeds), "--out", str(out)],
                       env=env, cwd=ROOT, check=True)
        result = json.loads(path.read_text())
        summary = epoch1_summary(json.loads(out.read_text()), result["runs"])
        result["tables"]["epoch1_extra"] = summary
        path.write_text(json.dumps(result, indent=1))
        print(json.dumps(summary, indent=1))
        return
    runs = {"variants": {}, "seeds": {}}
    began = time.perf_counter()
    names = args.variants or list(VARIANTS)
    if "baseline" not in names:
        names = ["baseline"] + names
    print(f"same-seed variants (seed {BASE_SEED}):", flush=True)
    for name in names:
        runs["variants"][name] = run_one(name, BASE_SEED, sys.stdout)
    print("seeds at the default settings:", flush=True)
    for seed in args.seeds:
        runs["seeds"][str(seed)] = (runs["variants"]["baseline"] if seed == BASE_SEED
                                    else run_one("baseline", seed, sys.stdout))
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "config": {"dataset": "mnist", "epochs": EPOCHS, "base_seed": BASE_SEED, "iw_samples": IW_SAMPLES,
                   "evaluation_seed": EVAL_SEED, "variants": {k: v[2] for k, v in VARIANTS.items()}},
        "runs": runs, "total_seconds": time.perf_counter() - began,
    }
    result["tables"] = tables(runs)
    path.write_text(json.dumps(result, indent=1))
    print_tables(result)
    print(f"\nwrote {path.relative_to(ROOT)} in {result['total_seconds']:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=list(VARIANTS), help="train one variant in this process (internal)")
    parser.add_argument("--seed", type=int, default=BASE_SEED)
    parser.add_argument("--out")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), help="same-seed variants to run (default all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--tables", action="store_true", help="print the tables of the saved drift.json")
    parser.add_argument("--epoch1-extra", nargs=2, type=int, metavar=("PERTURBATIONS", "SEEDS"),
                        help="after a full run: epoch 1 only, more random one-ulp moves and more seeds (10 on)")
    parser.add_argument("--epoch1-worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epoch1_worker:
        epoch1_worker(*args.epoch1_worker, args.out)
    elif args.worker:
        worker(args.worker, args.seed, args.out)
    else:
        driver(args)


if __name__ == "__main__":
    main()
