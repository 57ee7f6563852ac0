"""Keep XLA's compiled programs between processes, so a fresh process does not compile the lab again.

Compiling the epoch programs and the evaluation takes 1.5-2 s of every fresh process that trains: each
notebook kernel, each `vae-lab` command, each grading worker. TensorFlow can keep what XLA compiles in a
folder (the `--tf_xla_persistent_cache_directory` flag) and load it next time instead. The folder holds
machine code, so it is used only where it is safe to:

- one folder per processor, TensorFlow version and XLA flags: code compiled for one CPU never runs on
  another (a home folder shared between lab machines), and a new TensorFlow starts afresh;
- the folder must belong to this user and be writable by nobody else, or nothing is read from it;
- TensorFlow writes each entry in place, and a half-written one (a process killed while it writes) makes
  every later load fail. So each process works in a private folder of its own, holding links to the
  finished entries, and on a normal exit moves its new entries in whole (a rename), each with its SHA-256
  beside it; an entry whose digest no longer matches (a damaged disk, a hand edit) is never handed out.

`VAE_LAB_XLA_CACHE` names the folder (default: the user's cache folder, ~/.cache/vae_lab/xla); `off` turns
it off. A program loaded from it computes bit for bit what a fresh compile does (tests/test_compile_cache.py).
"""

import atexit
import hashlib
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ENVIRONMENT_VARIABLE = "VAE_LAB_XLA_CACHE"
TENSORFLOW_FLAG = "--tf_xla_persistent_cache_directory"
ENTRY_PATTERN = "xla_compile_cache__*"
PROCESS_PREFIX = ".process-"
DIGEST_SUFFIX = ".sha256"
MAXIMUM_BYTES = 256 * 2**20  # beyond this the oldest entries go (a lab's programs take about 2 MB)
ABANDONED_AFTER_SECONDS = 7 * 24 * 3600  # a private folder whose process left no trace this long ago


def default_root():
    """The user's cache folder for vae_lab's compiled programs."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vae_lab" / "xla"


def machine_key():
    """What compiled code depends on: processor, its instruction sets, TensorFlow, and any XLA flags."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    tensorflow_version = "unknown"
    # the distribution that installed the `tensorflow` package: tensorflow, or tensorflow-cpu, -macos, -intel
    for distribution in [*packages_distributions().get("tensorflow", []), "tensorflow"]:
        try:
            tensorflow_version = version(distribution)
            break
        except PackageNotFoundError:
            continue
    processor = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            processor = "".join(line for line in cpuinfo if line.startswith(("model name", "flags")))
    except OSError:
        if platform.system() == "Darwin":  # platform.processor() says only "arm" or "i386" there
            processor += _sysctl("machdep.cpu.brand_string") + _sysctl("machdep.cpu.features")
    described = "\n".join([platform.machine(), platform.system(), processor, tensorflow_version,
                           os.environ.get("XLA_FLAGS", ""), os.environ.get("TF_XLA_FLAGS", "")])
    return f"tf{tensorflow_version}-{hashlib.sha256(described.encode()).hexdigest()[:16]}"


def _sysctl(name):
    import subprocess

    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _safe_folder(path):
    """Make `path` (mode 0700) if missing; True when it is a folder this user owns that no one else can write."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = path.stat()
    except OSError:
        return False
    if not path.is_dir() or path.is_symlink():
        return False
    if hasattr(os, "getuid") and (status.st_uid != os.getuid() or status.st_mode & 0o022):
        return False
    return True


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _remove_abandoned(shared):
    """Private folders of processes that ended without tidying up (killed): gone from this host, or old."""
    host = socket.gethostname()
    for folder in shared.glob(PROCESS_PREFIX + "*"):
        parts = folder.name[len(PROCESS_PREFIX):].split("-")
        try:
            same_host = "-".join(parts[:-2]) == host
            pid = int(parts[-2])
            age = time.time() - folder.stat().st_mtime
        except (ValueError, IndexError, OSError):
            continue
        if (same_host and not _alive(pid)) or age > ABANDONED_AFTER_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _without_inherited_folder(flags):
    """TF_XLA_FLAGS less a private folder inherited from a parent vae_lab process (a notebook kernel, a
    grading worker): each process needs its own, which its parent removes when it exits."""
    kept = [flag for flag in flags.split()
            if not (flag.startswith(TENSORFLOW_FLAG + "=") and Path(flag.split("=", 1)[1]).name.startswith(PROCESS_PREFIX))]
    return " ".join(kept)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(entry):
    """True when `entry` holds what was published: its digest, written beside it, still matches."""
    try:
        return entry.with_name(entry.name + DIGEST_SUFFIX).read_text(encoding="ascii").strip() == _digest(entry)
    except OSError:
        return False


def publish(private, shared):
    """Move the entries this process compiled into the shared folder, each by one rename, its digest beside
    it first (a damaged one there is replaced); then remove the private folder."""
    for entry in private.glob(ENTRY_PATTERN):
        target = shared / entry.name
        if entry.name.endswith(DIGEST_SUFFIX) or _intact(target):  # one there already, whole
            continue
        try:
            with tempfile.NamedTemporaryFile("w", dir=shared, prefix=".digest-", delete=False) as digest:
                digest.write(_digest(entry) + "\n")
            os.replace(digest.name, target.with_name(target.name + DIGEST_SUFFIX))
            os.replace(entry, target)
        except OSError:
            pass
    shutil.rmtree(private, ignore_errors=True)
    _trim(shared)


def _trim(shared, maximum_bytes=MAXIMUM_BYTES):
    """Remove the oldest entries (and their digests) until the folder holds at most `maximum_bytes`."""
    entries = []
    for entry in shared.glob(ENTRY_PATTERN):
        if not entry.name.endswith(DIGEST_SUFFIX):
            try:
                status = entry.stat()
            except OSError:
                continue
            entries.append((status.st_mtime, status.st_size, entry))
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries, key=lambda item: item[0]):
        if total <= maximum_bytes:
            break
        for path in (entry, entry.with_name(entry.name + DIGEST_SUFFIX)):
            path.unlink(missing_ok=True)
        total -= size


def enable():
    """Point TensorFlow at this process's private cache folder; call before TensorFlow is imported.

    Returns the private folder, or None where the cache is off, already set by the user's own
    TF_XLA_FLAGS, or no safe folder can be had (then TensorFlow compiles as it always does).
    """
    if "tensorflow" in sys.modules:
        return None
    flags = _without_inherited_folder(os.environ.get("TF_XLA_FLAGS", ""))
    if flags:
        os.environ["TF_XLA_FLAGS"] = flags
    else:
        os.environ.pop("TF_XLA_FLAGS", None)
    if TENSORFLOW_FLAG in flags:  # the user's own cache folder: theirs to manage
        return None
    setting = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if setting.lower() in ("off", "0", "no", "false", "none"):
        return None
    try:
        root = Path(setting).expanduser() if setting else default_root()
        shared = root / machine_key()
        if not (_safe_folder(root) and _safe_folder(shared)):
            return None
        _remove_abandoned(shared)
        private = Path(tempfile.mkdtemp(prefix=f"{PROCESS_PREFIX}{socket.gethostname()}-{os.getpid()}-",
                                        dir=shared))
        for entry in shared.glob(ENTRY_PATTERN):
            if not entry.name.endswith(DIGEST_SUFFIX) and _intact(entry):  # a damaged entry is compiled afresh
                _link_or_copy(entry, private / entry.name)
    except OSError:
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} {TENSORFLOW_FLAG}={private}".strip()
    atexit.register(publish, private, shared)
    return private
