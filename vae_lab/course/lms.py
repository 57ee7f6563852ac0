"""Hand-ins as the LMS delivers them: loose notebooks, folders, and the LMS's zips, read in place and bounded.

A hand-in is found by name, never by running or unpacking anything: zips are read where they are, one
entry at a time and at most a limit's worth of bytes; symbolic links, devices and FIFOs are refused, never
followed or opened for reading. Who handed in what comes from the names the LMS gives its files, as its
own source writes them:

- Canvas "Download Submissions" (instructure/canvas-lms `lib/content_zipper.rb`): one flat zip of
  `<sortable name, downcased, non-word characters removed>[_LATE]_<user id>_<attachment id>_<file name>`;
  with anonymous grading `[LATE_]anon_<anonymous id>_<attachment id>_<file name>`. A file uploaded again
  under the same name is renamed `name-1.ipynb` ... `name-7.ipynb` (`Attachment.make_unique_filename`).
- Moodle "Download all submissions" (moodle/moodle `mod/assign/classes/downloader.php`): the prefix
  `clean_filename(<full name with '_' made ' '>_<participant id>)`, then either folders
  `<prefix>_assignsubmission_file/` (Moodle 4.1 on; `..._file_/` in 3.1 to 4.0) or flat files
  `<prefix>_assignsubmission_file_<file name>`.
- nbgrader (jupyter/nbgrader `nbgrader/coursedir.py`, `exchange/default/submit.py`):
  `submitted/<student>/<assignment>/`, with `timestamp.txt` ("%Y-%m-%d %H:%M:%S.%f %Z", UTC by default).
- Gradescope "Export Submissions": `submission_metadata.yml` beside one `submission_<id>/` folder per
  submission; the YAML (Ruby symbol keys) names the `:submitters:` (`:name:`, `:sid:`, `:email:`) and
  `:created_at:`. Gradescope does not document this file; its shape here comes from public tools that read it.
"""

import errno
import hashlib
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..errors import LabError

NOTEBOOK_SUFFIX = ".ipynb"
GRADESCOPE_METADATA = "submission_metadata.yml"
NBGRADER_TIMESTAMP = "timestamp.txt"
NBGRADER_SUBMITTED = "submitted"
_READ_CHUNK = 1 << 16
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
_LMS_FILES = {GRADESCOPE_METADATA, NBGRADER_TIMESTAMP, "submission_secret.txt"}  # read, or nbgrader's own
_OS_LITTER = {".DS_Store", "Thumbs.db", "desktop.ini", "__MACOSX"}
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Limits:
    """How much of a hand-in is read at most; past a limit the item is refused, and the batch goes on.

    The ratio: the executed lab notebook (figures as PNG) deflates 1.4:1, a notebook of 20,000 distinct
    progress lines 16:1, and only pathological output (the same line 200,000 times) reaches 500:1, next to
    deflate's ceiling of about 1,030:1. Files under `ratio_applies_above` can't be a bomb and are exempt.
    """

    notebook_bytes: int = 50 * 2**20
    zip_entries: int = 10_000
    zip_total_bytes: int = 2 * 2**30
    compression_ratio: float = 200.0
    ratio_applies_above: int = 2**20
    folder_depth: int = 16


class HandInUnreadable(LabError):
    """A hand-in that can't be read safely; `reason` says why, for the record's verdict."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Refusal:
    """Something that was not taken as a hand-in, and why (`ignored`: not a notebook, no fault)."""

    label: str
    reason: str
    ignored: bool = False
    hand_in: object = None  # a file that is no notebook, with whose the LMS says it is (HandIn, never read)


@dataclass
class HandIn:
    """One notebook as handed in, with what the LMS says about whose it is; `read()` gets its bytes."""

    label: str
    file_name: str
    lms: str | None
    identity: dict
    late: bool | None
    attempt: int
    submitted_at: datetime | None
    container: str
    sha256: str | None = None
    _reader: object = field(default=None, repr=False, compare=False)

    def read(self):
        """The notebook's bytes, at most the limit; HandInUnreadable otherwise, or when they changed since."""
        data = self._reader()
        digest = hashlib.sha256(data).hexdigest()
        if self.sha256 is None:
            self.sha256 = digest
        elif digest != self.sha256:
            raise HandInUnreadable("changed since it was first read: collect the hand-ins again")
        return data


def read_regular_file(path, limit):
    """At most `limit` bytes of a regular file; a link, directory, FIFO, socket or device is refused unopened."""
    path = os.fspath(path)
    try:
        before = os.lstat(path)
    except OSError as error:
        raise HandInUnreadable(f"can't be read ({error.strerror or error})") from None
    if not stat.S_ISREG(before.st_mode):
        raise HandInUnreadable(_not_regular(before.st_mode))
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:  # replaced by a link after the lstat: O_NOFOLLOW refused it
            raise HandInUnreadable(_not_regular(stat.S_IFLNK)) from None
        raise HandInUnreadable(f"can't be opened ({error.strerror or error})") from None
    try:
        after = os.fstat(descriptor)
        if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise HandInUnreadable("was replaced while being opened: collect the hand-ins again")
        return _read_bounded(lambda size: os.read(descriptor, size), limit)
    finally:
        os.close(descriptor)


def collect(paths, limits=Limits()):
    """The hand-ins in notebooks, folders and LMS zips, and a Refusal for each thing that was not taken."""
    hand_ins, refusals = [], []
    for path in paths:
        path = os.fspath(path)
        try:
            mode = os.lstat(path).st_mode
        except OSError as error:
            refusals.append(Refusal(_printable(path), f"can't be read ({error.strerror or error})"))
            continue
        if stat.S_ISDIR(mode):
            _collect_folder(path, limits, hand_ins, refusals)
        elif not stat.S_ISREG(mode):
            refusals.append(Refusal(_printable(path), _not_regular(mode)))
        elif path.lower().endswith(".zip"):
            _collect_zip(path, limits, hand_ins, refusals)
        elif path.lower().endswith(NOTEBOOK_SUFFIX):
            parts = Path(os.path.abspath(path)).parts
            identity = _identify((parts[-1],), parts[:-1], {}, _folder_timestamps(parts))
            hand_ins.append(_hand_in(_printable(path), identity, path,
                                     lambda path=path: read_regular_file(path, limits.notebook_bytes)))
        else:  # named on its own, so meant as a hand-in: said, not ignored
            refusals.append(Refusal(_printable(path), "is not a notebook (.ipynb) or a zip of them"))
    return hand_ins, refusals


def match_student(hand_in, roster):
    """(student_id or None, note): the LMS's identity of a hand-in against the roster it came with."""
    identity, lms = hand_in.identity, hand_in.lms
    if lms == "canvas":
        return _match_canvas(identity, roster)
    if lms == "moodle":
        return _match_moodle(identity, roster)
    if lms == "nbgrader":
        student = identity["nbgrader_student"]
        if student in roster.student_ids():
            return student, f"nbgrader student folder {student!r}"
        return None, f"nbgrader student {student!r} is not a student id on the roster"
    if lms == "gradescope":
        return _match_gradescope(identity, roster)
    return None, "no LMS identity in the file's name or folders: matched by file name and parameters instead"


def names_a_person(hand_in, roster):
    """Whether the hand-in's LMS names, by a user id, a person its own roster export would list: a Canvas user
    with the Canvas gradebook. Such a hand-in that matches nobody is someone missing from the roster, not
    whoever its STUDENT_ID claims."""
    return hand_in.lms == "canvas" and roster.kind == "canvas" and "canvas_user_id" in hand_in.identity


def unmatched_name(hand_in, roster):
    """The Moodle full name of a hand-in that matches no one on the Moodle roster, or None. A name is not a user
    id: a team ('Group A'), a name shown in another format, or someone not on the roster all read alike, so
    such a hand-in is graded by its file name or STUDENT_ID and questioned. A single word is blind marking
    ('Participant', 'Teilnehmerin' on a German site): no name at all."""
    if hand_in.lms != "moodle" or roster.kind != "moodle":
        return None
    name = hand_in.identity["moodle_full_name"]
    return name if len(name.split()) > 1 and not _moodle_rows(hand_in.identity, roster) else None


def newest_per_student(matched):
    """From (student_id, HandIn) pairs: ({student_id: the hand-in to grade}, [(student_id, HandIn, why not)]).

    The newest is the highest attempt, then the latest submitted_at; when the LMS can't tell two apart,
    one is graded and the other listed with a note to check by hand.
    """
    groups = {}
    for student, hand_in in matched:
        if student is not None:
            groups.setdefault(student, []).append(hand_in)
    newest, superseded = {}, []
    for student, hand_ins in groups.items():
        ordered = sorted(hand_ins, key=lambda item: (*_age(item), item.label), reverse=True)
        newest[student] = best = ordered[0]
        for other in ordered[1:]:
            if _age(other) == _age(best):
                why = f"the LMS gives it the same attempt and time as {best.label}, which is graded: check by hand"
            else:
                why = f"older than {best.label}, which is graded"
            superseded.append((student, other, why))
    return newest, superseded


def parse_timestamp(text):
    """An aware UTC datetime from nbgrader's or Gradescope's timestamp text, or None when it is not one.

    nbgrader writes "2019-05-30 11:44:01.911849 UTC" (or an ISO form; no zone means UTC, as its
    `parse_utc` reads it); Gradescope's YAML "2026-04-26 17:34:00.861687000 Z" or "... -07:00". A zone
    abbreviation other than UTC/GMT/Z is ambiguous (CST is three zones) and gives None.
    """
    match = re.fullmatch(r"\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?"
                         r"\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?\s*", text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(value) for value in match.groups()[:6])
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    zone = match.group(8)
    offset = timedelta(0)
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        offset = -offset if zone[0] == "-" else offset
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone(offset)).astimezone(
            timezone.utc)
    except ValueError:
        return None


def parse_gradescope_metadata(text):
    """{submission folder: {"submitters": [...], "created_at": datetime|None, "history": n}} from the YAML.

    Only the subset Gradescope's export uses is read, line by line in linear time: top-level folder keys,
    `:submitters:` (a list of `:name:`/`:sid:`/`:email:`), `:created_at:` and the count of `:history:`
    items. Everything else (`:results:` with autograder output, block scalars) is skipped, so what a
    student's code printed can never pass for metadata.
    """
    submissions, current, skip_deeper_than = {}, None, None
    for line in text.splitlines():
        content = line.strip()
        if not content or content.startswith("#") or content in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if skip_deeper_than is not None:
            if indent > skip_deeper_than:
                continue
            skip_deeper_than = None
        if indent == 0:
            key = re.fullmatch(r"(['\"]?)([^'\":#\s][^'\":]*)\1:", content)
            current = None
            if key:
                current = submissions.setdefault(key.group(2), {"submitters": [], "created_at": None, "history": 0})
            mapping_indent = section = dash_indent = field_indent = item = None
            continue
        if current is None:
            continue
        parsed = _YAML_KEY_LINE.fullmatch(content)
        if parsed is None:
            if content == "-" or content.startswith("- "):  # a list item that is not a key: value line
                parsed_dash, key, value, multiline = "- ", None, None, content != "-"
            else:
                continue
        else:
            parsed_dash, key, raw = parsed.groups()
            value, multiline = _yaml_scalar(raw)
        if multiline:
            skip_deeper_than = indent + len(parsed_dash or "")
        if mapping_indent is None and not parsed_dash:
            mapping_indent = indent
        if not parsed_dash and indent == mapping_indent:
            section, dash_indent, item = key, None, None
            if key == "created_at":
                current["created_at"] = parse_timestamp(value or "")
            continue
        if parsed_dash:
            dash_indent = indent if dash_indent is None else dash_indent
            if indent != dash_indent:
                continue  # a list nested deeper (inside :results:, say)
            if section == "history":
                current["history"] += 1
            item = {} if section == "submitters" else None
            if item is not None:
                current["submitters"].append(item)
            field_indent = indent + len(parsed_dash)
        elif item is None or indent != field_indent:
            continue
        if item is not None and key in ("name", "sid", "email") and value is not None:
            item[key] = value
    return submissions


_YAML_KEY_LINE = re.compile(r"(-\s+)?:?([A-Za-z_][A-Za-z0-9_]*):(?:\s+(.*))?")


def _yaml_scalar(raw):
    """(value, continues on later lines) of one YAML scalar as Gradescope writes them."""
    if raw is None:
        return None, False
    raw = raw.strip()
    if raw in ("|", "|-", "|+", ">", ">-", ">+") or re.fullmatch(r"[|>][0-9+-]*", raw):
        return None, True
    if raw.startswith("'"):
        if len(raw) < 2 or not raw.endswith("'") or raw.endswith("''") and raw.count("'") % 2:
            return None, True
        return raw[1:-1].replace("''", "'"), False
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"') or raw.endswith('\\"'):
            return None, True
        return re.sub(r'\\(["\\/])', r"\1", raw[1:-1]), False
    if raw in ("~", "null", "[]", "{}"):
        return None, False
    return raw, False


def _collect_folder(root, limits, hand_ins, refusals):
    root_path = Path(root)
    base = root_path.name or str(root_path)
    absolute = Path(os.path.abspath(root)).parts
    files, stack = [], [(str(root_path), ())]
    while stack:
        directory, relative = stack.pop()
        if len(relative) > limits.folder_depth:
            refusals.append(Refusal(_label(base, relative), f"is nested deeper than {limits.folder_depth} "
                                    f"folders: not searched"))
            continue
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as error:
            refusals.append(Refusal(_label(base, relative), f"can't be listed ({error.strerror or error})"))
            continue
        for entry in entries:
            parts = relative + (entry.name,)
            if entry.name in _OS_LITTER or entry.name.startswith("._") or entry.name == ".ipynb_checkpoints":
                continue
            if entry.is_symlink():
                refusals.append(Refusal(_label(base, parts), _not_regular(stat.S_IFLNK)))
            elif entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, parts))
            elif not entry.is_file(follow_symlinks=False):
                try:
                    reason = _not_regular(entry.stat(follow_symlinks=False).st_mode)
                except OSError as error:
                    reason = f"can't be read ({error.strerror or error})"
                refusals.append(Refusal(_label(base, parts), reason))
            else:
                files.append(parts)
    names = set(files)
    gradescope = {}
    for parts in sorted(names):
        if parts[-1] == GRADESCOPE_METADATA:
            text = _read_text(lambda parts=parts: read_regular_file(os.path.join(root, *parts),
                                                                    limits.notebook_bytes),
                              _label(base, parts), refusals)
            if text is not None:
                gradescope[parts[:-1]] = parse_gradescope_metadata(text)
    timestamps = {}
    for parts in names:
        if parts[-1] == NBGRADER_TIMESTAMP:
            text = _read_text(lambda parts=parts: read_regular_file(os.path.join(root, *parts), 4096),
                              _label(base, parts), refusals)
            timestamps[absolute + parts[:-1]] = parse_timestamp(text or "")
    for parts in sorted(names):
        _take(parts, _label(base, parts), absolute, gradescope, timestamps, root,
              lambda parts=parts: read_regular_file(os.path.join(root, *parts), limits.notebook_bytes),
              hand_ins, refusals, limits, declared=None)


def _collect_zip(path, limits, hand_ins, refusals):
    base = os.path.basename(path)
    try:
        source = _ZipSource(path, limits)
    except HandInUnreadable as error:
        refusals.append(Refusal(_printable(base), error.reason))
        return
    infos = source.archive.infolist()
    declared = sum(info.file_size for info in infos)
    if len(infos) > limits.zip_entries or declared > limits.zip_total_bytes:
        source.close()
        refusals.append(Refusal(_printable(base), f"holds {len(infos):,} entries, more than the "
                                f"{limits.zip_entries:,} a class's hand-ins need: not opened"
                                if len(infos) > limits.zip_entries else
                                f"would unpack to {_size(declared)}, more than the "
                                f"{_size(limits.zip_total_bytes)} limit: not opened"))
        return
    entries = {}
    for info in infos:
        name = _entry_name(info)
        if name.endswith(("/", "\\")):
            continue
        problem = _entry_problem(info, name, limits)
        parts = tuple(part for part in re.split(r"[\\/]", name) if part not in ("", "."))
        if not problem and parts in entries:
            problem = "has the same name as an earlier entry of the zip: only the first is read"
        if problem:
            refusals.append(Refusal(_printable(f"{base}: {name}"), problem))
            continue
        entries[parts] = info
    gradescope, timestamps = {}, {}
    for parts, info in sorted(entries.items()):
        label = _printable(f"{base}: {'/'.join(parts)}")
        if parts[-1] == GRADESCOPE_METADATA:
            text = _read_text(source.reader(info, limits.notebook_bytes), label, refusals)
            if text is not None:
                gradescope[parts[:-1]] = parse_gradescope_metadata(text)
        elif parts[-1] == NBGRADER_TIMESTAMP:
            timestamps[parts[:-1]] = parse_timestamp(_read_text(source.reader(info, 4096), label, refusals) or "")
    taken = len(hand_ins)
    for parts, info in sorted(entries.items()):
        _take(parts, f"{base}: {'/'.join(parts)}", (), gradescope, timestamps, path,
              source.reader(info, limits.notebook_bytes), hand_ins, refusals, limits,
              declared=(info.file_size, info.compress_size))
    if len(hand_ins) == taken:
        source.close()


def _take(parts, label, prefix, gradescope, timestamps, container, read, hand_ins, refusals, limits, declared):
    """Turn one file of a folder or zip into a HandIn, a Refusal, or nothing (OS litter, LMS bookkeeping)."""
    label = _printable(label)
    if any(part in _OS_LITTER or part.startswith("._") or part == ".ipynb_checkpoints" for part in parts):
        return
    if parts[-1] in _LMS_FILES:
        return
    lower = parts[-1].lower()
    if lower.endswith(".zip"):
        refusals.append(Refusal(label, "is a zip inside the zip, not opened: unpack the outer zip and pass "
                                "this one on its own" if declared is not None else
                                "is a zip inside the folder, not opened: pass it on its own (vae-lab grade "
                                "FOLDER/NAME.zip)"))
        return
    if not lower.endswith(NOTEBOOK_SUFFIX):
        identity = _identify(parts, prefix, gradescope, timestamps)
        refusals.append(Refusal(label, "not a notebook (.ipynb): ignored", ignored=True,
                                hand_in=_hand_in(label, identity, container, None) if identity[0] else None))
        return
    if declared is not None:
        size, compressed = declared
        if size > limits.notebook_bytes:
            refusals.append(Refusal(label, f"would unpack to {_size(size)}, more than the "
                                    f"{_size(limits.notebook_bytes)} a notebook may have"))
            return
        if _ratio_too_high(size, compressed, limits):
            refusals.append(Refusal(label, f"compresses {size / max(compressed, 1):,.0f}:1, more than the "
                                    f"{limits.compression_ratio:,.0f}:1 any real notebook does (a zip bomb?)"))
            return
    identity = _identify(parts, prefix, gradescope, timestamps)
    hand_ins.append(_hand_in(label, identity, container, read))


def _hand_in(label, identity, container, read):
    lms, who, file_name, late, attempt, submitted_at = identity
    who = {key: readable_name(value) if isinstance(value, str) else value for key, value in (who or {}).items()}
    return HandIn(label=label, file_name=readable_name(file_name), lms=lms, identity=who, late=late,
                  attempt=attempt,
                  submitted_at=submitted_at, container=os.fspath(container), _reader=read)


def _identify(parts, prefix, gradescope, timestamps):
    """(lms, identity, file name, late, attempt, submitted_at) from a file's path in its folder or zip."""
    everything = tuple(prefix) + tuple(parts)
    # The LMS's own folder is the outermost one: a folder a student put inside their hand-in (a nested
    # "submitted/<someone else>/…", a Moodle-looking name) never speaks for the hand-in. So every layout's marker
    # is looked for from the top, and the shallowest wins.
    found = []
    # "submitted" above the folder given counts only as that folder or up to two levels over it, so a
    # class folder that merely lives somewhere under a "submitted" directory is not taken for nbgrader's.
    for index in range(max(len(prefix) - 3, 0), len(everything) - 3):
        if everything[index] == NBGRADER_SUBMITTED:
            student, assignment = everything[index + 1], everything[index + 2]
            found.append((index, ("nbgrader", {"nbgrader_student": student, "nbgrader_assignment": assignment},
                                  "/".join(everything[index + 3:]), None, 1, timestamps.get(everything[:index + 3]))))
            break
    for index in range(len(parts) - 1):
        record = gradescope.get(parts[:index], {}).get(parts[index])
        if record is not None:
            found.append((len(prefix) + index, _gradescope_identity(parts[index], record, "/".join(parts[index + 1:]))))
            break
    for index, part in enumerate(parts):
        moodle = _MOODLE_PREFIX.fullmatch(part)
        if moodle and (index < len(parts) - 1 or moodle.group("rest")):
            name, participant, subtype, plugin, rest = moodle.groups()
            file_name = "/".join(([rest] if rest else []) + list(parts[index + 1:]))
            found.append((len(prefix) + index, ("moodle", {"moodle_full_name": name, "moodle_participant_id": participant,
                                                           "moodle_prefix": f"{name}_{participant}",
                                                           "moodle_plugin": f"{subtype}_{plugin}"},
                                                file_name, None, 1, None)))
            break
    if found:
        return min(found, key=lambda item: item[0])[1]
    # Canvas zips are flat and Canvas writes every name; one top folder is allowed inside a zip (unzipped and
    # zipped again), never deeper, where the name would be a student's own choice inside their own folder
    if len(parts) == 1 or (len(parts) == 2 and not prefix):
        canvas = _canvas_identity(parts[-1])
        if canvas is not None:
            return canvas
    return None, {}, parts[-1], None, 1, None


# Moodle's feedback importer reads a prefix as explode('_', part, 5): name, participant id, plugin subtype and
# type, then the rest (mod/assign/feedback/file/importziplib.php); the name can't hold '_' (it became ' ').
_MOODLE_PREFIX = re.compile(r"(?P<name>[^_]*)_(?P<participant>[0-9]+)_(?P<subtype>assignsubmission|assignfeedback)"
                            r"_(?P<plugin>[^_]+)(?:_(?P<rest>.*))?")
_CANVAS_ANONYMOUS = re.compile(r"(?:(LATE)_)?anon_([A-Za-z0-9]+)_([0-9]+)_(.+)")
_CANVAS_RESUBMISSION = re.compile(r"(.+)-(?:([1-7])|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                                  r"(\.[A-Za-z0-9]+)", re.IGNORECASE)


def _canvas_identity(basename):
    anonymous = _CANVAS_ANONYMOUS.fullmatch(basename)
    if anonymous:
        late, anonymous_id, attachment, file_name = anonymous.groups()
        who = {"canvas_anonymous_id": anonymous_id, "canvas_attachment_id": attachment,
               "canvas_file_prefix": basename[:len(basename) - len(file_name) - 1]}
        return "canvas", who, file_name, late is not None, _canvas_attempt(file_name), None
    tokens = basename.split("_")
    digits = [index for index, token in enumerate(tokens) if re.fullmatch(r"[0-9]+", token)]
    # Canvas reads the first two all-digit tokens as user and attachment id (Assignment#infer_comment_context...)
    if len(digits) < 2 or digits[1] != digits[0] + 1 or digits[1] == len(tokens) - 1:
        return None
    user_at = digits[0]
    name_tokens = tokens[:user_at]
    late = bool(name_tokens) and name_tokens[-1] == "LATE"
    if late:
        name_tokens = name_tokens[:-1]
    sortable = "_".join(name_tokens)
    if sortable != sortable.lower():  # Canvas downcases the name part; anything else is not its naming
        return None
    file_name = "_".join(tokens[user_at + 2:])
    who = {"canvas_user_id": tokens[user_at], "canvas_attachment_id": tokens[user_at + 1],
           "canvas_sortable_name": sortable, "canvas_file_prefix": "_".join(tokens[:user_at + 2])}
    return "canvas", who, file_name, late, _canvas_attempt(file_name), None


def _canvas_attempt(file_name):
    """2 for 'lab-1.ipynb' ... 8 for 'lab-7.ipynb', 9 for Canvas's random suffix after that, else 1."""
    match = _CANVAS_RESUBMISSION.fullmatch(file_name)
    if not match:
        return 1
    return int(match.group(2)) + 1 if match.group(2) else 9


def _gradescope_identity(folder, record, file_name):
    submitters = record["submitters"]
    first = submitters[0] if submitters else {}
    who = {"gradescope_submission": folder, "gradescope_sid": first.get("sid"),
           "gradescope_email": first.get("email"), "gradescope_name": first.get("name")}
    if len(submitters) > 1:
        who["gradescope_submitters"] = tuple(dict(submitter) for submitter in submitters)
    return "gradescope", who, file_name, None, record["history"] + 1, record["created_at"]


def _match_canvas(identity, roster):
    if "canvas_anonymous_id" in identity:
        return None, ("Canvas anonymous grading hides who handed this in: grade it in SpeedGrader, or turn "
                      "anonymity off before downloading")
    user = identity["canvas_user_id"]
    if roster.kind != "canvas":
        return None, f"Canvas user {user}: matching needs the roster read from the Canvas gradebook export"
    rows = [row for row in roster.rows if row.get("ID", "").strip() == user]
    if len(rows) == 1:
        return rows[0]["student_id"], f"Canvas user id {user}"
    return None, f"Canvas user id {user} ({identity['canvas_sortable_name']}) is not a student on the roster"


def moodle_name_key(name):
    """A full name as Moodle writes it into a download's folder name, folded for comparison.

    Moodle turns '_' into ' ' and `clean_filename` drops control characters and &<>"`|':\\/ (PARAM_FILE).
    """
    name = re.sub(r"[\x00-\x1f\x7f&<>\"`|':\\/]", "", name.replace("_", " "))
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def _match_moodle(identity, roster):
    name = identity["moodle_full_name"]
    if roster.kind != "moodle":
        return None, f"Moodle participant {name!r}: matching needs the roster read from the Moodle grades export"
    for rows in _moodle_rows(identity, roster, every_order=True):
        if len(rows) == 1:
            return rows[0]["student_id"], f"Moodle full name {name!r}"
        if len(rows) > 1:
            return None, (f"{len(rows)} students on the roster are named {name!r}: match this hand-in by hand "
                          f"(Moodle participant {identity['moodle_participant_id']})")
    return None, (f"no student named {name!r} on the roster (with blind marking Moodle writes 'Participant': "
                  f"reveal identities before downloading)")


def _moodle_rows(identity, roster, every_order=False):
    """The roster rows whose name reads as the hand-in's, first name first and then last name first: the first
    order that finds any, or with `every_order` a list per order."""
    key = moodle_name_key(identity["moodle_full_name"])
    found = [[row for row in roster.rows if moodle_name_key(f"{row.get(first, '')} {row.get(second, '')}") == key]
             for first, second in (("First name", "Last name"), ("Last name", "First name"))]
    return found if every_order else next((rows for rows in found if rows), [])


def _match_gradescope(identity, roster):
    if "gradescope_submitters" in identity:
        names = ", ".join(submitter.get("name", "?") for submitter in identity["gradescope_submitters"])
        return None, f"a Gradescope group submission ({names}): grade each member by hand"
    sid, email = identity.get("gradescope_sid"), identity.get("gradescope_email")
    if sid and sid in roster.student_ids():
        return sid, f"Gradescope SID {sid}"
    if email:
        columns = [name for name in roster.header
                   if name.casefold() in ("email address", "email", "e-mail", "sis login id")]
        rows = [row for row in roster.rows
                if any(row.get(column, "").strip().casefold() == email.casefold() for column in columns)]
        if len(rows) == 1:
            return rows[0]["student_id"], f"Gradescope email {email}"
    return None, f"Gradescope submitter {identity.get('gradescope_name')!r} (SID {sid!r}) is not on the roster"


def _age(hand_in):
    return hand_in.attempt, hand_in.submitted_at or _EARLIEST


def _folder_timestamps(parts):
    """nbgrader's timestamp.txt beside a notebook given on its own (.../submitted/<student>/<assignment>/x.ipynb)."""
    index = len(parts) - 4
    if index < 0 or parts[index] != NBGRADER_SUBMITTED:
        return {}
    folder = parts[:index + 3]
    try:
        text = read_regular_file(os.path.join(*folder, NBGRADER_TIMESTAMP), 4096).decode("utf-8")
    except (HandInUnreadable, UnicodeDecodeError):
        return {}
    return {folder: parse_timestamp(text)}


def _read_text(read, label, refusals):
    try:
        return read().decode("utf-8-sig")
    except HandInUnreadable as error:
        refusals.append(Refusal(label, error.reason))
    except UnicodeDecodeError:
        refusals.append(Refusal(label, "is not UTF-8 text: ignored"))
    return None


class _Budget:
    """What one zip may unpack to in all, counted as it is read, whatever its headers say."""

    def __init__(self, limit):
        self.limit, self.spent = limit, 0

    def spend(self, size):
        self.spent += size
        if self.spent > self.limit:
            raise HandInUnreadable(f"its zip has now unpacked more than {_size(self.limit)} in all: "
                                   f"the rest of it is not read")


class _ZipSource:
    """One zip, opened once without following links and kept open while its hand-ins live, read in place.

    Its end records are checked before zipfile parses the central directory, so a zip that declares a
    million entries costs nothing; what its entries unpack to is counted as they are read (`_Budget`).
    """

    def __init__(self, path, limits):
        self.limits, self.budget = limits, _Budget(limits.zip_total_bytes)
        self.handle = self.archive = None
        try:
            before = os.lstat(path)
            if not stat.S_ISREG(before.st_mode):
                raise HandInUnreadable(_not_regular(before.st_mode))
            self.handle = os.fdopen(os.open(path, _OPEN_FLAGS), "rb")
            after = os.fstat(self.handle.fileno())
            if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
                raise HandInUnreadable("was replaced while being opened: collect the hand-ins again")
            entries, directory_size = _declared_directory(self.handle)
            if entries > limits.zip_entries or directory_size > limits.zip_entries * 4096:
                raise HandInUnreadable(f"declares {entries:,} entries in a {_size(directory_size)} directory, "
                                       f"more than the {limits.zip_entries:,} a class's hand-ins need: not opened")
            self.archive = zipfile.ZipFile(self.handle)
        except HandInUnreadable:
            self.close()
            raise
        except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, struct.error) as error:
            self.close()
            if isinstance(error, OSError) and error.errno == errno.ELOOP:
                raise HandInUnreadable(_not_regular(stat.S_IFLNK)) from None
            raise HandInUnreadable(f"is not a readable zip ({error})") from None

    def reader(self, info, limit):
        return lambda: self.read(info, limit)

    def read(self, info, limit):
        """At most `limit` bytes of one entry, stopping early past the ratio or the zip's total."""
        if self.archive is None:
            raise HandInUnreadable("its zip was closed: collect the hand-ins again")

        def read_counted(stream, size):
            chunk = stream.read(size)
            self.budget.spend(len(chunk))
            return chunk

        try:
            with self.archive.open(info) as stream:
                return _read_bounded(lambda size: read_counted(stream, size), limit,
                                     compressed=info.compress_size, limits=self.limits)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError,
                OSError) as error:
            raise HandInUnreadable(f"can't be unpacked ({error})") from None

    def close(self):
        if self.archive is not None:
            self.archive.close()
        if self.handle is not None:
            self.handle.close()
        self.archive = self.handle = None

    def __del__(self):
        self.close()


def _declared_directory(handle):
    """(entry count, central directory size) from the zip's end records, read before zipfile parses anything."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    tail_size = min(size, 22 + 65535)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise HandInUnreadable("is not a zip file (no end of central directory record)")
    _, _, _, _, entries, directory_size, _, _ = struct.unpack("<4s4H2LH", tail[at:at + 22])
    if entries == 0xFFFF or directory_size == 0xFFFFFFFF:  # zip64: the real numbers are in the zip64 record
        locator = tail[at - 20:at] if at >= 20 else b""
        if locator[:4] != b"PK\x06\x07":
            raise HandInUnreadable("is a zip64 file without its locator record")
        (record_offset,) = struct.unpack("<Q", locator[8:16])
        handle.seek(record_offset)
        record = handle.read(56)
        if record[:4] != b"PK\x06\x06" or len(record) < 56:
            raise HandInUnreadable("is a zip64 file whose end record is missing")
        entries, directory_size = struct.unpack("<QQ", record[32:48])
    return entries, directory_size


def _entry_name(info):
    """The entry's name: UTF-8 when flagged (0x800) or given in Info-ZIP's Unicode path field, else CP437.

    Unflagged names that decode as UTF-8 are taken as UTF-8: macOS and several zip libraries write UTF-8
    without the flag, and CP437 text that happens to be valid UTF-8 is vanishingly rare.
    """
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.orig_filename.encode("cp437")
    extra = info.extra
    while len(extra) >= 4:
        tag, size = struct.unpack("<HH", extra[:4])
        body = extra[4:4 + size]
        if tag == 0x7075 and len(body) > 5 and body[0] == 1 and struct.unpack("<L", body[1:5])[0] == zlib.crc32(raw):
            try:
                return body[5:].decode("utf-8")
            except UnicodeDecodeError:
                break
        extra = extra[4 + size:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return info.filename


def _entry_problem(info, name, limits):
    """Why a zip entry is refused before anything of it is read, or None."""
    if "\x00" in info.orig_filename or "\x00" in name:
        return "has a NUL character in its name"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "has an absolute path"
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        return "has '..' in its path (it would escape the folder it is unpacked in)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link entry, never followed"
    if info.flag_bits & 0x1:
        return "is encrypted: hand in the notebook without a password"
    if len(parts) - 1 > limits.folder_depth:
        return f"is nested deeper than {limits.folder_depth} folders"
    return None


def _read_bounded(read, limit, compressed=None, limits=None):
    """Read until the end or limit + 1 bytes (then refuse); a zip entry also stops past the ratio."""
    chunks, total = [], 0
    while True:
        chunk = read(min(_READ_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise HandInUnreadable(f"is larger than the {_size(limit)} a notebook may have")
        if compressed is not None and _ratio_too_high(total, compressed, limits):
            raise HandInUnreadable(f"unpacks more than {limits.compression_ratio:,.0f} times its compressed size "
                                   f"(a zip bomb?): not read further")
    return b"".join(chunks)


def _ratio_too_high(size, compressed, limits):
    return size > limits.ratio_applies_above and size > limits.compression_ratio * max(compressed, 1)


def _not_regular(mode):
    if stat.S_ISLNK(mode):
        what = "a symbolic link, which is never followed: hand in the file itself"
    elif stat.S_ISDIR(mode):
        what = "a folder where a file was expected"
    elif stat.S_ISFIFO(mode):
        what = "a FIFO (named pipe), not a regular file"
    elif stat.S_ISSOCK(mode):
        what = "a socket, not a regular file"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device, not a regular file"
    else:
        what = "not a regular file"
    return f"is {what}"


def _label(base, parts):
    return _printable("/".join((base,) + tuple(parts)))


def _printable(text):
    """Names from zips are hostile: control and format characters shown as escapes, never sent to a terminal."""
    text = readable_name(text)
    return "".join(character if character.isprintable() else ascii(character)[1:-1] for character in text)


def readable_name(name):
    """A file name as text every output can hold: a name whose bytes are not UTF-8 (a Latin-1 'été' from an old
    zip tool or file system) comes from os.listdir with surrogate escapes, which no CSV or page can encode; it
    reads as Windows-1252, the likeliest encoding of such bytes, with anything else replaced."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:  # each undecodable byte is one surrogate; the rest of the name stays as it is
        return "".join(bytes([ord(character) - 0xDC00]).decode("cp1252", "replace")
                       if 0xDC80 <= ord(character) <= 0xDCFF else
                       character if not 0xD800 <= ord(character) <= 0xDFFF else "\ufffd" for character in name)


def _size(count):
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}".replace(".0 ", " ")
    return f"{count} bytes"
