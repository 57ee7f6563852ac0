"""TensorFlow start-up: arrays handed to TensorFlow without a copy where it can take them, and the exit."""

import subprocess
import sys
import textwrap

import numpy as np

from vae_lab.backend import TENSOR_ALIGNMENT, as_tensor
from vae_lab.data import _aligned_empty


def test_an_aligned_float32_array_is_shared_not_copied():
    images = _aligned_empty((5, 784), np.float32)
    images[...] = 0.25
    tensor = as_tensor(images)
    images[2, 3] = 0.75  # visible through the tensor: the same memory
    assert float(tensor[2, 3]) == 0.75 and float(tensor[0, 0]) == 0.25 and tuple(tensor.shape) == (5, 784)


def test_other_arrays_are_copied_with_the_same_values():
    aligned = _aligned_empty((3, 784), np.float32)
    aligned[...] = np.arange(3 * 784, dtype=np.float32).reshape(3, 784)
    read_only = aligned.copy()
    read_only.setflags(write=False)
    buffer = np.empty(2 * 784 * 4 + 2 * TENSOR_ALIGNMENT, np.uint8)
    start = -buffer.ctypes.data % TENSOR_ALIGNMENT + 4
    off_the_boundary = buffer[start:start + 2 * 784 * 4].view(np.float32).reshape(2, 784)
    off_the_boundary[...] = 0.5
    others = {
        "off the boundary": off_the_boundary,
        "float64": aligned.astype(np.float64),
        "not contiguous": aligned[:, ::2],
        "read-only": read_only,
        "empty": np.zeros((0, 784), np.float32),
    }
    for name, array in others.items():
        before = np.array(array)
        tensor = as_tensor(array)
        if array.flags.writeable and array.size:
            array[...] = -1  # a copy does not follow
        assert np.array_equal(np.asarray(tensor), before), name


def test_a_process_that_loaded_tensorflow_exits_without_walking_its_heap():
    """`gc.freeze` runs at exit (registered when TensorFlow is loaded), so the interpreter's last
    collections skip TensorFlow's objects; output written before exit is all there."""
    code = textwrap.dedent("""
        import atexit, gc
        atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))  # runs after those added later
        import vae_lab.backend
        print("loaded")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["loaded", "frozen at exit: True"]


def test_the_data_module_aligns_images_as_tensorflow_needs():
    assert _aligned_empty((1, 784), np.float32).ctypes.data % TENSOR_ALIGNMENT == 0


def test_tensorflows_retracing_advice_is_dropped_and_its_other_warnings_kept():
    """Training again with new student functions compiles new epoch programs on purpose: TensorFlow's advice
    about frequent retracing would only land in the student's notebook (and hand-in) as a red box."""
    import logging

    from vae_lab.backend import tf

    logger = tf.get_logger()
    advice = logger.makeRecord("tensorflow", logging.WARNING, __file__, 1, "5 out of the last 5 calls to <function "
                               "run> triggered tf.function retracing. Tracing is expensive", (), None)
    other = logger.makeRecord("tensorflow", logging.WARNING, __file__, 1, "something that matters", (), None)
    assert not logger.filter(advice) and logger.filter(other)
