"""Writes that a kill, a full disk or a second writer leaves whole or not at all.

Every file the project writes (a run's checkpoints and figures, pages, a grading's CSV and cache entries,
the handed-out notebooks) goes through `atomic_path`: the content goes to a unique temporary name in the
same folder, which is renamed over the target only once it is complete.
"""

import contextlib
import os
import secrets
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside PATH (same suffix, so writers that insist on one accept it; its folder
    created); on success rename it to PATH, on any failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".partial-{secrets.token_hex(4)}-{path.name}")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path, text):
    """TEXT as UTF-8, its line ends as given: a CSV's CRLF would become CR CR LF through Windows's text mode,
    which Canvas's importer reads as rows of their own."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(text.encode("utf-8"))
    return Path(path)


def atomic_write_bytes(path, data):
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)
