"""Benchmark: the matmul floor of one epoch as `bench_train.py` measures it (TensorFlow's kernels, oneDNN on
x86, one call per step) against the same products compiled by XLA, the compiler the lab's epoch program uses:
one compiled call per step, and all of the epoch's steps in one compiled loop, as the epoch program runs them.

Where the floor and the XLA loop agree, XLA's matrix multiplies are as fast as TensorFlow's, and what an epoch
spends above the floor is the step's other work (activations, the loss, the gradients' sums, Adam), not the
matrix library.
"""

import argparse
import json
import platform

from bench_train import BATCH, LAYERS, TRAIN_COUNT, median_epoch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    import tensorflow as tf

    steps = TRAIN_COUNT // BATCH  # the full batches; bench_train's floor adds the one short batch
    weights = [tf.random.normal((n_in, n_out), seed=index) for index, (n_in, n_out) in enumerate(LAYERS)]
    inputs = [tf.random.normal((BATCH, n_in)) for n_in, _ in LAYERS]
    grads = [tf.random.normal((BATCH, n_out)) for _, n_out in LAYERS]

    def products(inputs, grads):
        return [(x @ w, dy @ tf.transpose(w), tf.transpose(x) @ dy) for w, x, dy in zip(weights, inputs, grads)]

    def checksum(found):  # one scalar that needs every element of every product, so none is pruned or sliced
        return tf.add_n([tf.reduce_sum(part) for triple in found for part in triple])

    def shifted_step():  # the loop's step, with the same additions, one call at a time
        return checksum(products([x + 1e-9 for x in inputs], [dy + 1e-9 for dy in grads]))

    per_step = {"tensorflow kernels, one call a step": tf.function(shifted_step),
                "XLA, one compiled call a step": tf.function(shifted_step, jit_compile=True)}

    @tf.function(jit_compile=True)
    def xla_loop():
        def body(step, total):
            shift = tf.cast(step, tf.float32) * 1e-9  # every operand loop-dependent: no product hoisted out
            return step + 1, total + checksum(products([x + shift for x in inputs], [dy + shift for dy in grads]))
        return tf.while_loop(lambda step, _: step < steps, body, (tf.constant(0), tf.constant(0.0)))[1]

    results = {}
    for name, call in per_step.items():
        def run_epoch(call=call):
            for _ in range(steps):
                value = call()
            value.numpy()
        results[name] = median_epoch(run_epoch, args.epochs)[0]
    results["XLA, the epoch's steps in one compiled loop"] = median_epoch(lambda: xla_loop().numpy(), args.epochs)[0]
    floor = results["tensorflow kernels, one call a step"]
    print(f"{steps} steps of batch {BATCH}, {platform.processor() or platform.machine()}, median of {args.epochs}")
    for name, seconds in results.items():
        print(f"{name:<48}{seconds:7.2f} s {seconds / floor:6.2f} x")
    print(json.dumps({name: round(seconds, 3) for name, seconds in results.items()}))


if __name__ == "__main__":
    main()
