"""Benchmark: K students' VAEs trained in one compiled program (stacked weights, batched matmuls) against
K sequential runs of the package's own trainer. Measures only; nothing here is used by vae_lab.

Run `python benchmarks/bench_batched_students.py [--ks 1 2 4] [--epochs 2]` (needs MNIST: VAE_LAB_DATA).
For each K, the K students (seeds 101, 102, ...) start from exactly the package's initial weights for
their seeds; each step gathers every student's own batch (its own shuffle, `epoch_order`), draws its
own epsilon from its own SeedGenerator as `VAE.sample` does, and applies Keras's Adam formula to the
stacked variables. Reported: per-student seconds per training epoch (median over --epochs after a
warm-up epoch), batched against the package's `Trainer` run K times, and whether each student's
weights after one epoch equal, bit for bit, (a) the package's single run of that seed and (b) the
same program with K = 1. A benchmark, never a test: nothing here asserts a time.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCH = 256


def package_epochs(seed, x_train, epochs):
    """The package's trainer, one student: `(weights after epoch 1, [seconds of each later epoch])`."""
    import vae_lab
    from vae_lab.epoch_program import in_batches
    from vae_lab.training import Trainer, build_model, epoch_order

    config = vae_lab.TrainConfig(seed=seed)
    vae_lab.set_seed(seed)
    trainer = Trainer(build_model(config))
    x = trainer.tensors(x_train, x_train[:10])[0]
    seconds, first = [], None
    for epoch in range(epochs + 1):
        began = time.perf_counter()
        trainer.model.reset_metrics()
        trainer.train_epoch(x, *in_batches(epoch_order(seed, epoch, len(x_train)), BATCH))
        seconds.append(time.perf_counter() - began)
        if epoch == 0:
            first = trainer.model.get_weights()
    return first, seconds[1:]


class BatchedStudents:
    """K VAEs as stacked variables, trained together by one XLA program per epoch."""

    def __init__(self, seeds, latent_dim=2, learning_rate=1e-3):
        import keras
        import tensorflow as tf

        import vae_lab

        self.tf, self.keras = tf, keras
        self.seeds, self.latent_dim = list(seeds), latent_dim
        initial = [vae_lab.VAE(latent_dim=latent_dim, seed=seed).get_weights() for seed in self.seeds]
        self.params = [tf.Variable(np.stack([weights[i] for weights in initial])) for i in range(len(initial[0]))]
        self.momentums = [tf.Variable(tf.zeros_like(p)) for p in self.params]
        self.velocities = [tf.Variable(tf.zeros_like(p)) for p in self.params]
        self.iterations = tf.Variable(0, dtype=tf.int64)
        self.learning_rate = tf.Variable(learning_rate, dtype=tf.float32)
        self.generators = [keras.random.SeedGenerator(seed) for seed in self.seeds]
        self.train_epoch = tf.function(self._epoch, jit_compile=True)

    def _dense(self, x, index, relu):
        tf = self.tf
        y = tf.matmul(x, self.params[2 * index]) + self.params[2 * index + 1][:, None, :]
        return tf.nn.relu(y) if relu else y

    def _loss(self, x, weight):
        tf, keras = self.tf, self.keras
        h = self._dense(self._dense(x, 0, True), 1, True)
        z_mean, z_log_var = tf.split(self._dense(h, 2, False), 2, axis=-1)
        epsilon = tf.stack([keras.random.normal(tuple(z_mean.shape[1:]), seed=generator)
                            for generator in self.generators])
        z = z_mean + tf.exp(0.5 * z_log_var) * epsilon
        logits = self._dense(self._dense(self._dense(z, 3, True), 4, True), 5, False)
        reconstruction = tf.reduce_sum(tf.nn.softplus(logits) - x * logits, axis=-1)
        kl = 0.5 * tf.reduce_sum(tf.square(z_mean) + tf.exp(z_log_var) - 1.0 - z_log_var, axis=-1)
        per_student = (tf.reduce_sum(weight * reconstruction, -1) + tf.reduce_sum(weight * kl, -1)) / tf.reduce_sum(
            weight)
        return tf.reduce_sum(per_student)

    def _step(self, x, weight):
        tf = self.tf
        with tf.GradientTape() as tape:
            loss = self._loss(x, weight)
        gradients = tape.gradient(loss, self.params)
        # Keras's Adam.update_step, on the stacked variables (elementwise: the same per student)
        local_step = tf.cast(self.iterations + 1, tf.float32)
        alpha = self.learning_rate * tf.sqrt(1 - tf.pow(tf.constant(0.999, tf.float32), local_step)) / (
            1 - tf.pow(tf.constant(0.9, tf.float32), local_step))
        for variable, m, v, gradient in zip(self.params, self.momentums, self.velocities, gradients):
            m.assign_add((gradient - m) * (1 - 0.9))
            v.assign_add((tf.square(gradient) - v) * (1 - 0.999))
            variable.assign_sub((m * alpha) / (tf.sqrt(v) + 1e-7))
        self.iterations.assign_add(1)

    def _epoch(self, images, indices, weights):
        """`indices`, `weights`: (K, steps, batch) as `in_batches` gives them, one row per student."""
        tf = self.tf

        def one_step(step):
            self._step(tf.gather(images, indices[:, step]), weights[:, step])
            return step + 1

        return tf.while_loop(lambda step: step < tf.shape(indices)[1], one_step, (0,))[0]

    def run_epoch(self, x, epoch):
        from vae_lab.epoch_program import in_batches
        from vae_lab.training import epoch_order

        batches = [in_batches(epoch_order(seed, epoch, x.shape[0]), BATCH) for seed in self.seeds]
        self.train_epoch(x, np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches]))

    def weights_of(self, student):
        return [p.numpy()[student] for p in self.params]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import tensorflow as tf

    import vae_lab

    (x_train, _), _ = vae_lab.load_mnist()
    x = tf.convert_to_tensor(x_train)
    seeds = [101 + k for k in range(max(args.ks))]
    print(f"load average {os.getloadavg()[0]:.2f}; training epochs of 60,000 images, batch {BATCH}", flush=True)
    single = {seed: package_epochs(seed, x_train, args.epochs) for seed in seeds}
    single_seconds = statistics.median(s for seed in seeds for s in single[seed][1])
    print(f"package trainer, one student at a time: {single_seconds:.2f} s per student-epoch "
          f"(median of {len(seeds) * args.epochs})", flush=True)
    results, alone = {"single_seconds_per_student_epoch": single_seconds, "ks": {}}, {}
    for k in args.ks:
        students = BatchedStudents(seeds[:k])
        seconds = []
        for epoch in range(args.epochs + 1):
            began = time.perf_counter()
            students.run_epoch(x, epoch)
            students.params[0].numpy()  # wait for the program
            seconds.append(time.perf_counter() - began)
            if epoch == 0:
                after_one = [students.weights_of(i) for i in range(k)]
        if k == 1:
            alone[seeds[0]] = after_one[0]
        per_student = statistics.median(seconds[1:]) / k
        as_package = [same(after_one[i], single[seeds[i]][0]) for i in range(k)]
        if seeds[0] in alone:
            as_alone = same(after_one[0], alone[seeds[0]])
        else:
            as_alone = None
        results["ks"][k] = {"seconds_per_student_epoch": per_student, "first_epoch_with_compile_s": seconds[0],
                            "ratio_to_sequential": per_student / single_seconds,
                            "bit_identical_to_package_single_run": as_package,
                            "student_0_bit_identical_to_k1_program": as_alone,
                            "max_abs_difference_to_package": max(
                                float(np.max(np.abs(a - b))) for i in range(k)
                                for a, b in zip(after_one[i], single[seeds[i]][0]))}
        print(f"K={k}: {per_student:.2f} s per student-epoch = {per_student / single_seconds:.2f} x sequential; "
              f"bit-identical to the package's single runs: {as_package}; student 0 as with K=1: {as_alone}; "
              f"largest weight difference to the package after 1 epoch "
              f"{results['ks'][k]['max_abs_difference_to_package']:.3g}; load {os.getloadavg()[0]:.2f}", flush=True)
    results["load_average_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
