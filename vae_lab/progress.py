"""One progress line for long work (evaluation, grading): count done, and an estimate of the time left."""

import sys
import time


class Progress:
    """Call with `(done, total)`; redraws one line on a terminal, prints every tenth otherwise.

    The time left is estimated from the pace since the first report, not since the start: the first piece
    of work pays for compiling (evaluation) and work answered at once (reference runs from the cache, reported
    with note="from the cache") says nothing about the pace of the rest.
    """

    def __init__(self, label, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.began = time.monotonic()
        self.last_tenth = -1
        self.first = None  # (time, done) of the first report that counts for the pace

    def left(self, done, total, now, note):
        """Seconds left, or NaN while there is no pace yet."""
        if note == "from the cache":
            return float("nan")
        if self.first is None:
            self.first = (now, done)
            return float("nan")
        since, done_then = self.first
        return (now - since) / (done - done_then) * (total - done) if done > done_then else float("nan")

    def __call__(self, done, total, note=""):
        now = time.monotonic()
        left = self.left(done, total, now, note)
        width = 24
        filled = int(width * done / total) if total else width
        line = (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                + (f", about {_duration(left)} left" if 0 < done < total and left == left else
                   ", estimating the time left" if done < total else f", {_duration(now - self.began)}")
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
