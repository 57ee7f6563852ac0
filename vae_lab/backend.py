"""Load TensorFlow once, keeping its C++ start-up log lines out of a student's notebook.

TensorFlow 2.21 writes a handful of lines straight to the process's standard error while it starts (absl's
"All log messages before absl::InitializeLog()", oneDNN's notice, "Could not find cuda drivers", and
"failed call to cuInit" when the first device is set up), whatever TF_CPP_MIN_LOG_LEVEL says. In Jupyter
they land in red boxes under the first cells and read like errors. Here the descriptor is redirected to a
file while TensorFlow imports and sets up its devices; those known lines are dropped and every other line
is written back to standard error, so a message that matters still shows.
"""

import os
import re
import sys
import tempfile

# Start-up notices that say nothing a student can act on (CPU-only machines have no CUDA by design).
NOISE = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
                   r"|Could not find cuda drivers|failed call to cuInit|This TensorFlow binary is optimized"
                   r"|^To enable the following instructions|TF-TRT Warning|Unable to register cu(DNN|FFT|BLAS) factory"
                   r"|computation placer already registered")


def load():
    """Import TensorFlow (and set up its CPU device) with its start-up notices filtered; return the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to redirect (a GUI launcher): nothing to keep clean either
        import tensorflow

        return tensorflow
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow

            tensorflow.config.list_logical_devices()  # the CUDA probe happens here, not at import
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not NOISE.search(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()
    return tensorflow


# Importing this module is importing TensorFlow and Keras: the lab's modules that need them take them from
# here, so the start-up notices are filtered wherever the first import happens.
tf = load()
import keras  # noqa: E402  (after load: Keras imports TensorFlow)
from keras import layers, ops  # noqa: E402

__all__ = ["keras", "layers", "load", "ops", "tf"]
