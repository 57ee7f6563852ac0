"""One progress line for long work (evaluation, grading): count done, and an estimate of the time left."""

import sys
import time


class Progress:
    """Call with `(done, total)`; redraws one line on a terminal, prints every tenth otherwise."""

    def __init__(self, label, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.began = time.monotonic()
        self.last_tenth = -1

    def __call__(self, done, total, note=""):
        elapsed = time.monotonic() - self.began
        left = elapsed / done * (total - done) if done else float("nan")
        width = 24
        filled = int(width * done / total) if total else width
        line = (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                + (f", about {_duration(left)} left" if 0 < done < total else f", {_duration(elapsed)}")
                + (f"  {note}" if note else ""))
        if self.stream.isatty():
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        else:
            tenth = int(10 * done / total) if total else 10
            if tenth == self.last_tenth and done < total:
                return
            self.last_tenth = tenth
            self.stream.write(line + "\n")
        self.stream.flush()


def _duration(seconds):
    if seconds != seconds:  # NaN: nothing done yet
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
