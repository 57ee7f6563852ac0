"""Benchmark: time per training epoch of the lab's model, against the matmul floor and PyTorch.

Run `python benchmarks/bench_train.py` (or `make bench`) on a quiet machine. In one process it
measures the median epoch time (one warm-up epoch, then --epochs timed) of

1. vae_lab's own training path (`vae_lab.train`, default config, validation and checkpoints included);
2. a plain Keras `fit()` written as the lab sheet writes it (`add_loss` in `call`, compile("adam"));
3. the floor: the same epoch's matrix multiplies alone (forward and both backward products per layer);
4. an equivalent PyTorch loop, when torch is importable;

and the notebook's end-to-end wall time in a fresh kernel (nbclient). Prints a table and writes JSON.
This is a benchmark, never a test: nothing here asserts a time.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [(784, 512), (512, 256), (256, 4), (2, 256), (256, 512), (512, 784)]
BATCH, TRAIN_COUNT = 256, 60_000


def median_epoch(run_epoch, epochs):
    """Median wall time of `epochs` calls after one warm-up call."""
    run_epoch()
    times = []
    for _ in range(epochs):
        began = time.perf_counter()
        run_epoch()
        times.append(time.perf_counter() - began)
    return statistics.median(times), times


def bench_vae_lab(data, epochs, seed=0):
    """`vae_lab.train` as a student runs it; an epoch is the wall time from one epoch's start to the
    next, so validation and the checkpoint written after each epoch are inside it."""
    import vae_lab

    starts = []
    with tempfile.TemporaryDirectory() as run_dir:
        config = vae_lab.TrainConfig(epochs=max(epochs + 1, 5), seed=seed)
        _, history = vae_lab.train(config, run_dir, data=data, verbose=0,
                                   before_epoch=lambda epoch, model: starts.append(time.perf_counter()))
        starts.append(time.perf_counter())
    seconds = [end - start for start, end in zip(starts, starts[1:])]
    return {"median_s": statistics.median(seconds[1:epochs + 1]), "epochs_s": seconds,
            "val_loss_after_5": history["val_loss"][4]}


def bench_plain_fit(data, epochs, seed=0):
    """The lab sheet's way, with its three bugs fixed and nothing else changed."""
    import keras
    import tensorflow as tf
    from keras import layers

    class SheetVAE(keras.Model):
        def __init__(self, latent_dim=2):
            super().__init__()
            self.latent_dim = latent_dim
            self.encoder = keras.Sequential([layers.Input((784,)), layers.Dense(512, activation="relu"),
                                             layers.Dense(256, activation="relu"), layers.Dense(2 * latent_dim)])
            self.decoder = keras.Sequential([layers.Input((latent_dim,)), layers.Dense(256, activation="relu"),
                                             layers.Dense(512, activation="relu"),
                                             layers.Dense(784, activation="sigmoid")])
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, x):
            mean_logvar = self.encoder(x)
            z_mean, z_log_var = mean_logvar[:, :self.latent_dim], mean_logvar[:, self.latent_dim:]
            eps = keras.random.normal(tf.shape(z_mean), seed=self.seed_generator)
            x_recon = self.decoder(z_mean + tf.exp(0.5 * z_log_var) * eps)
            recon = 784 * keras.losses.binary_crossentropy(x, x_recon)  # summed, not averaged
            kl = -0.5 * tf.reduce_sum(1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=1)
            self.add_loss(tf.reduce_mean(recon + kl))
            return x_recon

    keras.utils.set_random_seed(seed)
    (x_train, _), (x_test, _) = data
    model = SheetVAE()
    model.compile(optimizer="adam")
    val_losses = []

    def run_epoch():
        history = model.fit(x_train, x_train, epochs=1, batch_size=BATCH, verbose=0,
                            validation_data=(x_test, x_test))
        val_losses.append(history.history["val_loss"][-1])

    median, times = median_epoch(run_epoch, epochs)
    while len(val_losses) < 5:
        run_epoch()
    return {"median_s": median, "epochs_s": times, "val_loss_after_5": val_losses[4]}


def bench_floor(epochs):
    """Only the matmuls of one epoch: per layer and step, X@W, dY@W^T and X^T@dY."""
    import tensorflow as tf

    sizes = [BATCH] * (TRAIN_COUNT // BATCH) + ([TRAIN_COUNT % BATCH] if TRAIN_COUNT % BATCH else [])
    weights = [tf.random.normal((n_in, n_out)) for n_in, n_out in LAYERS]

    @tf.function
    def step(inputs, grads):  # returning the products keeps them from being pruned
        return [(x @ w, dy @ tf.transpose(w), tf.transpose(x) @ dy)
                for w, x, dy in zip(weights, inputs, grads)]

    batches = {size: ([tf.random.normal((size, n_in)) for n_in, _ in LAYERS],
                      [tf.random.normal((size, n_out)) for _, n_out in LAYERS]) for size in set(sizes)}

    def run_epoch():
        for size in sizes:
            products = step(*batches[size])
        products[0][0].numpy()  # wait for the last step

    median, times = median_epoch(run_epoch, epochs)
    return {"median_s": median, "epochs_s": times}


def bench_torch(data, epochs):
    try:
        import torch
    except ImportError:
        return None
    from torch import nn

    torch.manual_seed(0)
    (x_train, _), (x_test, _) = data
    x_train, x_test = torch.from_numpy(x_train), torch.from_numpy(x_test)
    encoder = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 4))
    decoder = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 784))
    parameters = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(parameters, lr=1e-3)

    def loss_of(x):
        z_mean, z_log_var = encoder(x).chunk(2, dim=1)
        z = z_mean + torch.exp(0.5 * z_log_var) * torch.randn_like(z_mean)
        logits = decoder(z)
        recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = 0.5 * (z_mean ** 2 + z_log_var.exp() - 1 - z_log_var).sum(1)
        return (recon + kl).mean()

    val_losses = []

    def run_epoch():
        order = torch.randperm(len(x_train))
        for start in range(0, len(x_train), BATCH):
            loss = loss_of(x_train[order[start:start + BATCH]])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val_losses.append(float(sum(loss_of(x_test[s:s + BATCH]) * len(x_test[s:s + BATCH])
                                        for s in range(0, len(x_test), BATCH)) / len(x_test)))

    median, times = median_epoch(run_epoch, epochs)
    while len(val_losses) < 5:
        run_epoch()
    return {"median_s": median, "epochs_s": times, "val_loss_after_5": val_losses[4],
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def compare_val_loss(data, results, seeds):
    """Val loss after 5 epochs of vae_lab and of the plain fit over several seeds: one seed's
    difference is mostly seed noise (about 1-1.5 nats here), so compare the means."""
    by_seed = {name: [results[name]["val_loss_after_5"]] for name in ("vae_lab", "plain_fit")}
    for seed in range(1, seeds):
        by_seed["vae_lab"].append(bench_vae_lab(data, 4, seed)["val_loss_after_5"])
        by_seed["plain_fit"].append(bench_plain_fit(data, 4, seed)["val_loss_after_5"])
        print(f"seed {seed}: " + ", ".join(f"{name} {values[-1]:.2f}" for name, values in by_seed.items()),
              file=sys.stderr, flush=True)
    by_seed["difference_of_means"] = statistics.mean(by_seed["vae_lab"]) - statistics.mean(by_seed["plain_fit"])
    return by_seed


def bench_notebook():
    """Wall time of the notebook top to bottom in a fresh kernel, like Restart & Run All, and its
    training epochs' own seconds (timing.json; epoch 1 includes the XLA compile): the rest is what
    the notebook costs around training (`bench_notebook_phases.py` splits it by phase)."""
    import nbformat

    from vae_lab.lab import notebook_client

    notebook = nbformat.read(ROOT / "notebooks" / "vae_mnist.ipynb", as_version=4)
    with tempfile.TemporaryDirectory() as run_dir:
        os.environ["VAE_LAB_RUN_DIR"] = run_dir
        began = time.perf_counter()
        with notebook_client(notebook, timeout=1200,
                             resources={"metadata": {"path": str(ROOT / "notebooks")}}) as client:
            client.execute()
        wall = time.perf_counter() - began
        epochs = json.loads((Path(run_dir) / "timing.json").read_text())["epoch_seconds"]
        return {"wall_s": wall, "epochs_s": epochs, "wall_over_epochs": wall / sum(epochs)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per variant (after one warm-up)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_train.json")
    parser.add_argument("--seeds", type=int, default=4,
                        help="seeds for the val-loss comparison of vae_lab and the plain fit (seed 0 is the timed run)")
    parser.add_argument("--skip-notebook", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="vae_lab plain_fit floor torch")
    args = parser.parse_args()
    import vae_lab  # TensorFlow's default settings: the same for every variant below

    data = vae_lab.load_mnist()
    wanted = set(args.only or ["vae_lab", "plain_fit", "floor", "torch"])
    results = {}
    for name, run in (("floor", lambda: bench_floor(args.epochs)),
                      ("vae_lab", lambda: bench_vae_lab(data, args.epochs)),
                      ("plain_fit", lambda: bench_plain_fit(data, args.epochs)),
                      ("torch", lambda: bench_torch(data, args.epochs))):
        if name in wanted:
            results[name] = run()
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    if args.seeds > 1 and {"vae_lab", "plain_fit"} <= wanted:
        results["val_loss_by_seed"] = compare_val_loss(data, results, args.seeds)
    if not args.skip_notebook:
        results["notebook"] = bench_notebook()

    floor = results.get("floor", {}).get("median_s")
    torch_time = (results.get("torch") or {}).get("median_s")
    print(f"\nMedian epoch time, batch {BATCH}, {TRAIN_COUNT} images ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs)")
    print(f"{'variant':<12}{'seconds':>9}{'x floor':>9}{'x torch':>9}{'val loss after 5':>18}")
    for name in ("vae_lab", "plain_fit", "floor", "torch"):
        entry = results.get(name)
        if not entry:
            continue
        seconds = entry["median_s"]
        ratio_floor = f"{seconds / floor:.2f}" if floor else "-"
        ratio_torch = f"{seconds / torch_time:.2f}" if torch_time else "-"
        val = entry.get("val_loss_after_5")
        print(f"{name:<12}{seconds:>9.2f}{ratio_floor:>9}{ratio_torch:>9}{(f'{val:.2f}' if val else '-'):>18}")
    if "val_loss_by_seed" in results:
        by_seed = results["val_loss_by_seed"]
        print(f"val loss after 5 epochs over seeds 0-{args.seeds - 1}: " + ", ".join(
            f"{name} {statistics.mean(by_seed[name]):.2f} (sd {statistics.stdev(by_seed[name]):.2f})"
            for name in ("vae_lab", "plain_fit")) + f"; difference of means {by_seed['difference_of_means']:+.2f} nats")
    if "notebook" in results:
        notebook = results["notebook"]
        print(f"notebook end to end (fresh kernel): {notebook['wall_s']:.1f} s = {notebook['wall_over_epochs']:.2f} x "
              f"its training epochs ({sum(notebook['epochs_s']):.1f} s as printed, epoch 1 with the compile)")
    results["machine"] = {"processor": platform.processor(), "cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
