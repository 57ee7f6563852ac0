"""Benchmark: how small can a course's dry run be and still draw figures that show something?

`vae-lab assign --train-images 2000 --epochs 2` makes a quick dry run of a course, and its digit grid is
100 copies of the same grey oval: nothing learned yet. This trains the lab's model (batch 256, the lab's
defaults otherwise) on the first N MNIST training images for 1..E epochs, and after each epoch measures

* `variety`: `vae_lab.plots.grid_variety(model)`, the mean root-mean-square pixel difference between the
  100 tiles of the 10x10 digit grid (0: every tile the same image);
* `distinct`: how many of the 100 tiles differ from every tile kept before them by more than
  DISTINCT_RMS (a greedy count: 1 means one image repeated, about 10 or more a grid worth looking at);
* `val_loss`: the validation loss (the 10,000 test images), nats per image;
* `seconds`: wall time from calling `vae_lab.train` (model built, programs compiled) to the end of that
  epoch, measurement excluded.

A (N, epochs) row comes from the first `epochs` epochs of one run per (N, seed): the epoch order depends on
(seed, epoch) alone, so that is the same model a run of exactly `epochs` epochs ends with.

    VAE_LAB_DATA=/path/to/mnist .venv/bin/python benchmarks/bench_dry_run.py [--grids /tmp/figures/dry_run]

Prints a table, a summary over the seeds with the smallest setting whose grid passes
`vae_lab.plots.GRID_VARIETY_THRESHOLD` for every seed, and writes benchmarks/results/dry_run-<time>.json
(`--summarize FILE...` summarizes earlier results together, e.g. runs of other seeds). With --grids it
also saves each digit grid as PNG, titled with its numbers, to calibrate `variety` by eye (that is how
the threshold was chosen). A benchmark, never a test: nothing here asserts.
"""

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1000, 2000, 5000, 10_000, 20_000, 60_000)
DISTINCT_RMS = 0.1  # two tiles closer than this (RMS over the pixels, in [0, 1]) count as one image


def distinct_tiles(tiles, radius=DISTINCT_RMS):
    """Greedy count of tiles that differ from every tile kept before them by more than `radius` (RMS)."""
    import numpy as np

    kept = []
    for tile in tiles:
        if all(np.sqrt(np.mean((tile - other) ** 2)) > radius for other in kept):
            kept.append(tile)
    return len(kept)


def run_one(data, train_images, epochs, seed, grids):
    """One training run of `epochs` epochs, into a temporary run directory as the notebook's dry run
    does (a checkpoint after every epoch); a row per finished epoch."""
    import tempfile

    import matplotlib.pyplot as plt
    import numpy as np

    import vae_lab
    from vae_lab import plots, run_directory

    rows, spent = [], [0.0]  # seconds spent measuring, taken off the wall time

    def record(model, epochs_done, now):
        began = time.perf_counter()
        history = run_directory.read_json(Path(run_dir) / run_directory.HISTORY)  # written after each epoch
        tiles = np.asarray(plots._decode_points(model, plots.latent_grid(10, 3.0)))
        row = {"train_images": train_images, "epochs": epochs_done, "seed": seed,
               "val_loss": history["val_loss"][epochs_done - 1], "variety": plots.grid_variety(model),
               "distinct": distinct_tiles(tiles), "seconds": now - start - spent[0]}
        rows.append(row)
        if grids:
            figure = plots.plot_digit_grid(model)
            figure.suptitle(f"{train_images} images, {epochs_done} epochs, seed {seed}: variety "
                            f"{row['variety']:.3f}, {row['distinct']} distinct, val_loss {row['val_loss']:.1f}")
            figure.savefig(Path(grids) / f"grid-n{train_images}-e{epochs_done}-s{seed}.png", dpi=50)
            plt.close(figure)
        spent[0] += time.perf_counter() - began

    def before_epoch(epoch, model):  # called before epoch `epoch` (from 0): `epoch` epochs are done
        if epoch:
            record(model, epoch, time.perf_counter())

    config = vae_lab.TrainConfig(epochs=epochs, seed=seed, batch_size=256)
    subset = vae_lab.first_images(data, train_images)
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        model, _ = vae_lab.train(config, run_dir, data=subset, verbose=0, before_epoch=before_epoch)
        record(model, epochs, time.perf_counter())
    return rows


def summarize(rows, threshold):
    """Print one line per (images, epochs) over the seeds, and the smallest setting whose grid passes
    `threshold` for every seed (smallest in images x epochs, the training work)."""
    import statistics

    settings = sorted({(row["train_images"], row["epochs"]) for row in rows})
    print(f"\n{'images':>7} {'epochs':>6} {'seeds':>5} {'val_loss':>9} {'variety min-max':>16} "
          f"{'distinct min':>12} {'seconds':>8}  all seeds >= {threshold}")
    passing = []
    for images, epochs in settings:
        group = [row for row in rows if (row["train_images"], row["epochs"]) == (images, epochs)]
        varieties = [row["variety"] for row in group]
        ok = min(varieties) >= threshold
        if ok:
            passing.append((images * epochs, images, epochs))
        print(f"{images:>7} {epochs:>6} {len(group):>5} {statistics.median(r['val_loss'] for r in group):>9.1f} "
              f"{min(varieties):>7.3f} - {max(varieties):.3f} {min(r['distinct'] for r in group):>12} "
              f"{statistics.median(r['seconds'] for r in group):>8.1f}  {'yes' if ok else 'no'}")
    if passing:
        _, images, epochs = min(passing)
        print("smallest setting whose grid shows digits for every seed: "
              f"--train-images {images} --epochs {epochs}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="training images per run")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (a row after each)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--grids", help="folder to save each digit grid as PNG")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--summarize", nargs="+", metavar="JSON", help="only summarize earlier results")
    args = parser.parse_args(argv)

    import vae_lab
    from vae_lab import plots

    if args.summarize:
        rows = [row for name in args.summarize for row in json.loads(Path(name).read_text())["rows"]]
        summarize(rows, plots.GRID_VARIETY_THRESHOLD)
        return

    if args.grids:
        Path(args.grids).mkdir(parents=True, exist_ok=True)
    data = vae_lab.load_mnist()
    rows = []
    print(f"{'images':>7} {'epochs':>6} {'seed':>4} {'val_loss':>9} {'variety':>8} {'distinct':>8} {'seconds':>8}",
          flush=True)
    for train_images in args.sizes:
        for seed in args.seeds:
            for row in run_one(data, train_images, args.epochs, seed, args.grids):
                rows.append(row)
                print(f"{row['train_images']:>7} {row['epochs']:>6} {row['seed']:>4} {row['val_loss']:>9.2f} "
                      f"{row['variety']:>8.3f} {row['distinct']:>8} {row['seconds']:>8.1f}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"dry_run-{stamp}.json"
    path.write_text(json.dumps({
        "when": stamp, "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "python": sys.version.split()[0], "batch_size": 256, "distinct_rms": DISTINCT_RMS,
        "threshold": plots.GRID_VARIETY_THRESHOLD,
        "rows": rows}, indent=2))
    summarize(rows, plots.GRID_VARIETY_THRESHOLD)
    print("wrote", path)


if __name__ == "__main__":
    main()
