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
import subprocess
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


def bench_vae_lab(data, epochs):
    import vae_lab

    with tempfile.TemporaryDirectory() as run_dir:
        config = vae_lab.TrainConfig(epochs=epochs + 1)
        began = time.perf_counter()
        _, history = vae_lab.train(config, run_dir, data=data, verbose=0)
        total = time.perf_counter() - began
        seconds = json.loads((Path(run_dir) / "timing.json").read_text())["epoch_seconds"]
    return {"median_s": statistics.median(seconds[1:]), "epochs_s": seconds,
            "val_loss_after_5": history["val_loss"][4] if len(history["val_loss"]) >= 5 else None,
            "total_s": total}


def bench_plain_fit(data, epochs):
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
            self.seed_generator = keras.random.SeedGenerator(0)

        def call(self, x):
            mean_logvar = self.encoder(x)
            z_mean, z_log_var = mean_logvar[:, :self.latent_dim], mean_logvar[:, self.latent_dim:]
            eps = keras.random.normal(tf.shape(z_mean), seed=self.seed_generator)
            x_recon = self.decoder(z_mean + tf.exp(0.5 * z_log_var) * eps)
            recon = 784 * keras.losses.binary_crossentropy(x, x_recon)  # summed, not averaged
            kl = -0.5 * tf.reduce_sum(1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=1)
            self.add_loss(tf.reduce_mean(recon + kl))
            return x_recon

    keras.utils.set_random_seed(0)
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


# Each variant runs in a fresh process, so that TensorFlow's thread and oneDNN settings are its own:
# vae_lab sets one inter-op thread and oneDNN off when it is imported; the plain fit() gets TensorFlow's
# defaults (2 inter-op threads on 2 cores, oneDNN on); the floor is measured under both and the faster kept.
TF_DEFAULTS = {"TF_NUM_INTEROP_THREADS": str(os.cpu_count()), "TF_ENABLE_ONEDNN_OPTS": "1"}
VAE_LAB_SETTINGS = {"TF_NUM_INTEROP_THREADS": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}


def in_child(variant, epochs, settings=None):
    env = {**os.environ, **(settings or {})}
    output = subprocess.run([sys.executable, __file__, "--child", variant, "--epochs", str(epochs)],
                            env=env, capture_output=True, text=True)
    if output.returncode:
        raise RuntimeError(f"{variant} failed:\n{output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def bench_floor_both_settings(epochs):
    results = {"tf_defaults": in_child("floor", epochs, TF_DEFAULTS),
               "vae_lab_settings": in_child("floor", epochs, VAE_LAB_SETTINGS)}
    best = min(results.values(), key=lambda entry: entry["median_s"])
    return {"median_s": best["median_s"], "epochs_s": best["epochs_s"], **results}


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


def bench_notebook():
    """Wall time of the notebook top to bottom in a fresh kernel, like Restart & Run All."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "notebooks" / "vae_mnist.ipynb", as_version=4)
    with tempfile.TemporaryDirectory() as run_dir:
        os.environ["VAE_LAB_RUN_DIR"] = run_dir
        began = time.perf_counter()
        NotebookClient(notebook, timeout=1200, resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
        return {"wall_s": time.perf_counter() - began}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per variant (after one warm-up)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_train.json")
    parser.add_argument("--skip-notebook", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="vae_lab plain_fit floor torch")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import vae_lab  # the environment above decides its settings (setdefault keeps ours)

        data = None if args.child == "floor" else vae_lab.load_mnist()
        run = {"floor": lambda: bench_floor(args.epochs), "vae_lab": lambda: bench_vae_lab(data, args.epochs),
               "plain_fit": lambda: bench_plain_fit(data, args.epochs),
               "torch": lambda: bench_torch(data, args.epochs)}[args.child]
        print(json.dumps(run()))
        return

    wanted = set(args.only or ["vae_lab", "plain_fit", "floor", "torch"])
    results = {}
    for name, run in (("floor", lambda: bench_floor_both_settings(args.epochs)),
                      ("vae_lab", lambda: in_child("vae_lab", args.epochs)),
                      ("plain_fit", lambda: in_child("plain_fit", args.epochs, TF_DEFAULTS)),
                      ("torch", lambda: in_child("torch", args.epochs))):
        if name in wanted:
            results[name] = run()
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
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
    if "floor" in results:
        print("floor by setting: " + ", ".join(
            f"{key} {results['floor'][key]['median_s']:.2f} s" for key in ("tf_defaults", "vae_lab_settings")))
    if "notebook" in results:
        print(f"notebook end to end (fresh kernel): {results['notebook']['wall_s']:.1f} s")
    results["machine"] = {"processor": platform.processor(), "cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
