"""The fast path of training: a whole epoch of `VAE.train_step` as one compiled XLA program.

Keras's `fit()` calls the step once per batch from Python; here a `tf.while_loop` runs every batch of
the epoch inside one program, which is most of the speed-up measured in `benchmarks/bench_train.py`.
The step itself is the model's own `train_step`, unchanged.
"""

import math

import numpy as np

from .backend import Quiet, ops


def in_batches(order, batch_size):
    """`order` cut into equal batches of image indices `(steps, batch_size)`, the last one padded
    with index 0, and weights of the same shape: 1 for real images, 0 for padding.

    Equal batches let one compiled program run every step of an epoch; the weights keep the
    last, short batch's loss and gradient exactly those of its real images.
    """
    steps = math.ceil(len(order) / batch_size)
    padding = steps * batch_size - len(order)
    indices = np.concatenate([order, np.zeros(padding, order.dtype)]).astype(np.int32)
    weights = np.concatenate([np.ones(len(order), np.float32), np.zeros(padding, np.float32)])
    return indices.reshape(steps, batch_size), weights.reshape(steps, batch_size)


def compile_epoch_programs(model):
    """`(train_epoch, validation_epoch)`, each `(images, indices, weights) -> batches run`.

    Each runs the model's `train_step` (or `test_step`) on every batch, accumulating into the
    model's loss trackers; it stops after the first batch whose loss is not finite, so the caller
    can name that batch.
    """
    import tensorflow as tf  # the loop is TensorFlow's; the model and its step are plain Keras

    def whole_epoch(step_function):
        def run(images, indices, weights):
            batches = ops.take(images, indices, axis=0)  # (steps, batch_size, 784), gathered once
            totals = [tracker.total for tracker in model.metrics]

            def not_done(step):
                finite = tf.reduce_all([tf.math.is_finite(total) for total in totals])
                return tf.logical_and(step < tf.shape(batches)[0], finite)

            def one_step(step):
                step_function((batches[step], None, weights[step]))
                return step + 1

            return tf.while_loop(not_done, one_step, (0,))[0]
        return Quiet(tf.function(run, jit_compile=True))

    return whole_epoch(model.train_step), whole_epoch(model.test_step)


def epoch_means(model):
    """The epoch's per-image means from the model's trackers: loss, reconstruction_loss, kl_loss."""
    reconstruction, kl = (float(tracker.total.numpy()) / float(tracker.count.numpy())
                          for tracker in (model.reconstruction_tracker, model.kl_tracker))
    return {"loss": reconstruction + kl, "reconstruction_loss": reconstruction, "kl_loss": kl}
