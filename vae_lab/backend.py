"""Load TensorFlow once, keeping its C++ start-up log lines out of a student's notebook.

TensorFlow 2.21 writes a handful of lines straight to the process's standard error while it starts (absl's
"All log messages before absl::InitializeLog()", oneDNN's notice, "Could not find cuda drivers", and
"failed call to cuInit" when the first device is set up), whatever TF_CPP_MIN_LOG_LEVEL says. In Jupyter
they land in red boxes under the first cells and read like errors. Here the descriptor is redirected to a
file while TensorFlow imports and sets up its devices, and while a compiled program runs (it may be compiled
or loaded from the compile cache then); those known lines are dropped and every other line is written back
to standard error, so a message that matters still shows.
"""

import atexit
import contextlib
import gc
import os
import re
import sys
import tempfile
import threading

import numpy as np

from . import compile_cache

# Start-up notices that say nothing a student can act on (CPU-only machines have no CUDA by design).
NOISE = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
                   r"|Could not find cuda drivers|failed call to cuInit|This TensorFlow binary is optimized"
                   r"|^To enable the following instructions|TF-TRT Warning|Unable to register cu(DNN|FFT|BLAS) factory"
                   r"|computation placer already registered")


# Lines TensorFlow 2.21 writes when it loads a program from the compile cache (`compile_cache.py`): it tries
# the entry as text first, then compares the processor features the code was compiled for with the host's,
# counting two tuning hints XLA adds itself (prefer-no-scatter/gather) as missing even on the same machine.
# The cache's folders are per processor, so code never meets another CPU; any other feature still shows.
CACHE_NOISE = re.compile(r"Error parsing text-format tensorflow\.XlaSerializedCacheEntry"
                         r"|Target machine feature \+prefer-no-(scatter|gather) is not +supported on the host")

_filter_lock = threading.Lock()
_filter_state = {"depth": 0, "saved": None, "captured": None}


@contextlib.contextmanager
def notices_filtered():
    """Standard error, at the descriptor TensorFlow's C++ code writes to, with the known notices dropped
    and every other line written back when the block ends. Threads share one redirection (counted), so
    concurrent blocks never restore each other's descriptor."""
    with _filter_lock:
        state = _filter_state
        if state["depth"] == 0:
            sys.stderr.flush()
            try:
                state["saved"] = os.dup(2)
            except OSError:  # no standard error to redirect (a GUI launcher): nothing to keep clean either
                state["saved"] = None
            if state["saved"] is not None:
                state["captured"] = tempfile.TemporaryFile()
                os.dup2(state["captured"].fileno(), 2)
        state["depth"] += 1
    try:
        yield
    finally:
        with _filter_lock:
            state["depth"] -= 1
            if state["depth"] == 0 and state["saved"] is not None:
                os.dup2(state["saved"], 2)
                os.close(state["saved"])
                captured, state["saved"], state["captured"] = state["captured"], None, None
                captured.seek(0)
                kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                        if line.strip() and not NOISE.search(line) and not CACHE_NOISE.search(line)]
                captured.close()
                if kept:
                    sys.stderr.write("\n".join(kept) + "\n")
                    sys.stderr.flush()


class Quiet:
    """A compiled TensorFlow function whose calls run with `notices_filtered`: a call may compile the program
    or load it from the compile cache, which is when TensorFlow writes its notices. Attributes are the
    function's own."""

    def __init__(self, function):
        self.function = function

    def __call__(self, *args, **kwargs):
        with notices_filtered():
            return self.function(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.function, name)


def load():
    """Import TensorFlow (and set up its CPU device) with its start-up notices filtered; return the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    compile_cache.enable()  # before the import: TensorFlow reads its XLA flags once
    with notices_filtered():
        import tensorflow

        _apply_thread_counts(tensorflow)
        tensorflow.config.list_logical_devices()  # the CUDA probe happens here, not at import
    tensorflow.get_logger().addFilter(_NoRetracingAdvice())
    return tensorflow


class _NoRetracingAdvice:
    """Drops TensorFlow's "N out of the last N calls to <function ...> triggered tf.function retracing": its
    detector counts every compiled epoch program by the code they share, and a student who trains with new
    functions gets new programs on purpose (training.cached_trainer keeps one per configuration)."""

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def _apply_thread_counts(tensorflow):
    """TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS (a grader's worker sets them: course/parallel.py), applied
    while TensorFlow's runtime has not started yet, the only time its thread counts can be set."""
    threading_config = tensorflow.config.threading
    for name, setter in (("TF_NUM_INTRAOP_THREADS", threading_config.set_intra_op_parallelism_threads),
                         ("TF_NUM_INTEROP_THREADS", threading_config.set_inter_op_parallelism_threads)):
        if os.environ.get(name, "").strip().isdigit():
            setter(int(os.environ[name]))


# Importing this module is importing TensorFlow and Keras: the lab's modules that need them take them from
# here, so the start-up notices are filtered wherever the first import happens.
tf = load()
# At exit, the interpreter's last garbage collections walk every object TensorFlow made, about 0.7 s on this
# project's hosts, to free memory the system takes back anyway; frozen objects are left out of them. Every
# process that loads TensorFlow pays it: the notebook's kernel at shutdown, the command line, a grader's worker.
atexit.register(gc.freeze)
import keras  # noqa: E402  (after load: Keras imports TensorFlow)
from keras import layers, ops  # noqa: E402

# TensorFlow's CPU kernels read a tensor's memory in 64-byte blocks: a shared buffer must start on one
# (`data.py` makes its images so, without importing TensorFlow; tests/test_backend.py checks the two agree).
TENSOR_ALIGNMENT = 64


def as_tensor(array):
    """`array` as a tensor that shares its memory where TensorFlow can take it as it is (DLPack): a writeable,
    C-contiguous float32 array that starts on a TENSOR_ALIGNMENT boundary, as `load_dataset` makes its images.
    Any other array (or a tensor) goes through `ops.convert_to_tensor`, which copies it.

    Copying MNIST's training images means 188 MB of fresh memory, which cost 0.2-0.7 s on this project's
    hosts each time a model is trained. The tensor is only read; the array must not change while it is used.
    """
    shareable = (isinstance(array, np.ndarray) and array.dtype == np.float32 and array.size > 0
                 and array.flags.c_contiguous and array.flags.writeable
                 and array.ctypes.data % TENSOR_ALIGNMENT == 0)
    if shareable:
        try:
            return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
        except (BufferError, TypeError, ValueError, AttributeError, tf.errors.OpError):
            pass  # a NumPy or TensorFlow without this path: copy instead
    return ops.convert_to_tensor(array)


__all__ = ["TENSOR_ALIGNMENT", "Quiet", "as_tensor", "keras", "layers", "load", "ops", "tf"]
