"""The grader's pages: one class page (`--report`) and one feedback page per hand-in (`--feedback`).

Each page is built as a notebook (markdown cells for the text and tables, a display output for the
figure) and written by `pages.write_html` as one self-contained HTML page that needs no network.

Student ids, file names, reasons, prose and code come from the hand-ins, which may be hostile: every such
text goes through `_cell`, which turns every character that Markdown, HTML or the page's math could read
as markup (`<`, `>`, `&`, backticks, `|`, `$`, `[`, `*`, `\\` and the like) into a numeric character
reference, newlines into spaces, and breaks `://` so that no address a file wrote becomes a reference.
Feedback pages show the reasons meant for the student only, never the instructor's evidence or a seed.
"""

import datetime
import io
import math
import re
import unicodedata
from pathlib import Path

from ..data import DATASETS
from ..pages import figure_cell
from .checks import CHECKS, CHECK_NAMES
from .verdicts import FAIL, MISSING, PASS, REVIEW

VERDICTS = (PASS.value, REVIEW.value, FAIL.value, MISSING)
HTML_OPTIONS = {"exclude_input": True, "exclude_input_prompt": True, "exclude_output_prompt": True}
MAX_ID = 80  # characters of a student id shown
MAX_REASON = 1500  # characters of a reason shown
MAX_PROSE = 6000  # characters of a section shown as evidence
MAX_LOSS = 1e6  # a final validation loss beyond this (in nats, either sign) is not drawn
_SAFE = frozenset(" .,-:;/=%+()'?")  # besides letters and digits, the characters left as they are
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+-]")

WHAT_TO_DO = {
    PASS: "PASS: nothing for you to do.",
    REVIEW: "REVIEW means a person will look at your record; nothing for you to do unless asked.",
    FAIL: ("FAIL means your record does not meet the lab's requirements as handed in: fix what the reasons "
           "below say (most often: open the notebook you were assigned, leave its parameters as they are, "
           "Restart & Run All, write your own Observation and Result) and hand it in again, or ask your "
           "instructor if you think the verdict is wrong."),
}


def plural(count, noun):
    """'1 pair', '2 pairs': counts read as a sentence."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- text from the files, made inert ------------------------------------------------------------------------


def _cell(value, limit=MAX_REASON):
    """VALUE as inert Markdown text for a table cell or a paragraph (see the module docstring)."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + "\u2026"
    parts = []
    for char in text:
        if char.isalnum() and char.isascii() or char in _SAFE:
            parts.append(char)
        elif unicodedata.category(char)[0] in "CZ":  # controls, newlines, separators, invisible format marks
            parts.append(" ")
        elif char.isalnum():  # letters and digits of other scripts are plain text
            parts.append(char)
        else:
            parts.append(f"&#{ord(char)};")
    return "".join(parts).strip().replace("://", ":&#8203;//")


def _code_block(source, limit=20_000):
    """Source code as an inert, highlighted HTML block (pygments, whose output escapes every character)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    html = highlight(source[:limit], PythonLexer(), HtmlFormatter(nowrap=True, noclasses=True))
    html = html.replace("://", ":&#8203;//").replace("$", "&#36;").replace("`", "&#96;")
    return f'<pre style="background:#f6f8fa;padding:0.6em;overflow-x:auto">{html}</pre>'


def _side_by_side(columns):
    """[(heading, source)] as one HTML table of highlighted code, written on one line so that no blank line in
    the code ends the HTML block early (inside <pre>, &#10; is a line break)."""
    cells = "".join(f'<td style="vertical-align:top;width:50%"><strong>{heading}</strong>'
                    + _code_block(source).replace("\n", "&#10;") + "</td>" for heading, source in columns)
    return f'<table style="width:100%;table-layout:fixed"><tr>{cells}</tr></table>'


def _table(header, body, align=None):
    align = align or ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in body]
    return "\n".join(lines)


def _now():
    return datetime.datetime.now().astimezone()


def _number(value):
    """VALUE when it is a finite, drawable number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and abs(value) <= MAX_LOSS else None


# --- the class page ---------------------------------------------------------------------------------------------

def _verified(graded):
    verdict = graded.checks.get("verified numbers")
    return graded.reference is not None and "error" not in graded.reference and verdict is not None


def final_losses(batch):
    """({dataset: [record's final validation loss]}, {dataset: [reference run's]}) over the verified records:
    a record that could not be verified has no reference run and stays off the histogram."""
    losses, references = {}, {}
    for graded in batch:
        if not _verified(graded):
            continue
        metrics = graded.record.metrics or {}
        dataset = metrics.get("dataset")
        dataset = dataset if dataset in DATASETS else "other"
        value = _number(metrics.get("final_val_loss"))
        reference = _number(graded.reference["history"]["val_loss"][-1])
        if value is not None:
            losses.setdefault(dataset, []).append(value)
        if reference is not None:
            references.setdefault(dataset, []).append(reference)
    return losses, references


def loss_histogram(losses, references=None):
    """PNG bytes: one histogram per dataset of LOSSES, REFERENCES marked as dashed lines; None if empty."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    references = references or {}
    datasets = [name for name in (*DATASETS, "other") if name in losses]
    if not datasets:
        return None
    figure = Figure(figsize=(5.0 * len(datasets), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(datasets), squeeze=False)[0]
    for axis, name in zip(axes, datasets):
        values, marks = losses[name], references.get(name, [])
        low, high = min(values + marks), max(values + marks)
        pad = max(0.5, 0.05 * (high - low))  # so that a reference line at either end stays visible
        axis.hist(values, bins=min(30, max(5, len(values))), range=(low - pad, high + pad), color="tab:blue",
                  alpha=0.8, label=f"hand-ins ({len(values)})")
        for index, mark in enumerate(marks):
            axis.axvline(mark, color="tab:red", linestyle="--", linewidth=1.2,
                         label=f"reference runs ({len(marks)})" if index == 0 else None)
        axis.set_title(name, usetex=False)
        axis.set_xlabel("final validation loss (nats per image)")
        axis.set_ylabel("hand-ins")
        axis.yaxis.get_major_locator().set_params(integer=True)
        axis.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _verdict_section(rows):
    header = rows[0]
    columns = [name for name in CHECK_NAMES if name in header]
    show = ["student_id", "file", "verdict", *columns, "total", "late", "reasons"]
    index = {name: header.index(name) for name in show}
    body = []
    for row in rows[1:]:
        cells = []
        for name in show:
            value = row[index[name]]
            if name == "file":
                value = Path(value.split(": ")[-1]).name if value else ""
            limit = MAX_ID if name in ("student_id", "file") else MAX_REASON
            text = _cell(value, limit)
            cells.append(f"**{text}**" if name == "verdict" and value in (FAIL.value, MISSING) else text)
        body.append(cells)
    titles = ["student", "file", "verdict", *columns, "marks", "late", "reasons"]
    return "## Verdicts\n\n" + _table([_cell(title) for title in titles], body)


def _pass_rates(batch):
    graded_count = len(batch)
    body = []
    for check in CHECKS:
        verdicts = [graded.checks[check.name].status for graded in batch if check.name in graded.checks]
        counts = [sum(status is verdict for status in verdicts) for verdict in (PASS, REVIEW, FAIL)]
        rate = f"{100 * counts[0] / graded_count:.0f}%" if verdicts else "not run"
        body.append([_cell(check.name), *map(str, counts), str(graded_count - len(verdicts)), rate])
    return ("## Pass rate per check\n\nOver the " + str(graded_count) + " graded hand-ins (missing students not "
            "counted); a check that was not run on a hand-in (an earlier check failed, or no assignments "
            "were given) counts as not passed.\n\n"
            + _table(["check", "PASS", "REVIEW", "FAIL", "not checked", "pass rate"], body,
                     ["---", "---:", "---:", "---:", "---:", "---:"]))


def _marked(text, other, common):
    """TEXT as inert markdown with the words of every phrase it shares with OTHER marked."""
    from . import prose

    shared = (prose.shingles(text) & prose.shingles(other)) - common
    parts = []
    for sentence in prose.sentences(text[:MAX_PROSE]):
        words = sentence.split()
        normalised = [prose.normalize(word) for word in words]
        marked = [False] * len(words)
        tokens = [(index, token) for index, norm in enumerate(normalised) for token in norm.split()]
        for start in range(len(tokens) - prose.SHINGLE_WORDS + 1):
            window = tokens[start:start + prose.SHINGLE_WORDS]
            if tuple(token for _, token in window) in shared:
                for index, _ in window:
                    marked[index] = True
        parts.append(" ".join(f"<mark>{_cell(word)}</mark>" if flag else _cell(word)
                              for word, flag in zip(words, marked)))
    return " ".join(parts)


def _numbers_evidence(graded):
    """The record's epoch-1 history and metrics beside the reference run's, as a table."""
    from ..record_format import HISTORY_KEYS, METRIC_KEYS

    reference, record = graded.reference, graded.record
    rows = [[f"epoch 1 {key}", f"{record.history[key][0]:.2f}", f"{reference['history'][key][0]:.2f}"]
            for key in HISTORY_KEYS if record.history.get(key)]
    rows += [[key, f"{record.metrics[key]:.2f}", f"{reference['metrics'][key]:.2f}"]
             for key in METRIC_KEYS if key in record.metrics and key in reference["metrics"]]
    return _table(["value", "record", "grader's run"], rows, ["---", "---:", "---:"])


def _to_decide(grading):
    """Every open REVIEW with its evidence: prose and exercise-code pairs side by side, a record's numbers against
    the grader's run."""
    lines = ["## Still to decide", ""]
    open_reviews = [(graded, name, verdict) for graded in grading.batch for name, verdict in graded.checks.items()
                    if verdict.status is REVIEW]
    if not open_reviews:
        return "## Still to decide\n\nNothing: every REVIEW is decided."
    lines.append(f"{plural(len(open_reviews), 'REVIEW')} open. Write PASS or FAIL for each in the decisions file "
                 "(`--decisions`); the next grading applies them while the hand-in is unchanged.")
    for graded, name, verdict in open_reviews:
        lines += ["", f"### {_cell(graded.who, MAX_ID)}: {_cell(name)}", "",
                  f"{_cell(verdict.reason)}" + (f" ({_cell(verdict.evidence)})" if verdict.evidence else ""),
                  f"File: {_cell(graded.label, 300)}"]
        if name == "verified numbers" and graded.reference and "error" not in graded.reference:
            lines += ["", _numbers_evidence(graded)]
    pairs = getattr(grading.course, "similar_pairs", [])
    if pairs:
        lines += ["", "### Similar prose, side by side", "",
                  "Phrases the two texts share (beyond the lab's own wording) are marked."]
        for first, second, title, score in pairs:
            one = first.record.sections.get(title, "")
            other = second.record.sections.get(title, "")
            common = grading.course.common_phrases
            lines += ["", _table([f"{_cell(first.who, MAX_ID)}: {_cell(title)}",
                                  f"{_cell(second.who, MAX_ID)} (similarity {score:.2f})"],
                                 [[_marked(one, other, common), _marked(other, one, common)]])]
    code_pairs = getattr(grading.course, "similar_code", [])
    if code_pairs:
        lines += ["", "### Similar exercise code, side by side", "",
                  "The comparison sets names, comments and layout aside and weighs the choices each function makes "
                  "(calls, arguments, numbers, operators) by how rare they are."]
        for first, second, score in code_pairs:
            sources = ["\n\n".join(dict.fromkeys(graded.record.exercises.values())) for graded in (first, second)]
            lines += ["", _side_by_side([(_cell(first.who, MAX_ID), sources[0]),
                                         (f"{_cell(second.who, MAX_ID)} (similarity {score:.2f})", sources[1])])]
    return "\n".join(lines)


def _pairs_section(grading):
    pairs = getattr(grading.course, "similar_pairs", [])
    if not pairs:
        return "## Similar prose\n\nNo pair of hand-ins was flagged for similar prose."
    body = [[_cell(a.who, MAX_ID), _cell(b.who, MAX_ID), _cell(title, 40), f"{score:.2f}"]
            for a, b, title, score in sorted(pairs, key=lambda pair: -pair[3])]
    return (f"## Similar prose\n\n{plural(len(pairs), 'pair')} flagged (both marked REVIEW under copies), most "
            "similar first.\n\n" + _table(["student", "student", "section", "similarity"], body,
                                          ["---", "---", "---", "---:"]))


def _mistakes_section(grading):
    counts = {}
    for graded in grading.batch:
        for sentence in getattr(graded, "diagnoses", {}).values():
            counts[sentence] = counts.get(sentence, 0) + 1
    if not counts:
        return None
    body = [[_cell(sentence), str(count)] for sentence, count in sorted(counts.items(), key=lambda item: -item[1])]
    return "## Mistakes in the exercises\n\n" + _table(["mistake", "hand-ins"], body, ["---", "---:"])


def _not_graded_section(grading):
    items = grading.refusals + grading.not_graded
    if not items:
        return None
    body = [[_cell(label, 300), _cell(reason)] for label, reason in items]
    return "## Files not graded\n\n" + _table(["file", "why"], body)


def build_class_report(grading, rows):
    """The class page as a notebook object."""
    import nbformat

    md = nbformat.v4.new_markdown_cell
    counts = {status.value: sum(graded.status is status for graded in grading.batch) for status in (PASS, REVIEW, FAIL)}
    counts[MISSING] = sum(row[1] == MISSING for row in rows[1:])
    verified = grading.course.assignments is not None
    mode = ("numbers verified against the grader's reference runs" if verified
            else "self-check: numbers not verified, no roster")
    rubric = (f" Marks: {_cell(grading.rubric.source)}, out of {grading.rubric.points_possible:g}; a REVIEW "
              + ("leaves the total blank until decided." if grading.rubric.review == "withhold" else
                 f"earns {grading.rubric.review:g} of its check's marks until decided.")) if grading.rubric else ""
    cells = [
        md(f"# VAE lab: class grades, {_now():%Y-%m-%d %H:%M %Z}\n\n"
           + " · ".join(f"**{counts[verdict]} {verdict}**" for verdict in VERDICTS)
           + f" ({plural(len(grading.batch), 'hand-in')} graded; {mode}).{rubric}\n\n"
           "PASS: the record meets every check. REVIEW: a person should look. FAIL: a check failed, with its "
           "reason. MISSING: a student on the roster handed nothing in."),
        md(_verdict_section(rows)),
        md(_to_decide(grading)),
        md(_pass_rates(grading.batch)),
        md("## Final validation losses"),
    ]
    losses, marks = final_losses(grading.batch)
    png = loss_histogram(losses, marks)
    if png is None:
        cells.append(md("No verified record to plot (records that could not be verified stay off this figure)."))
    else:
        caption = ("The verified records' final validation losses per dataset; dashed red lines: the grader's own "
                   "runs of the same assignments. Records that could not be verified are not drawn.")
        cells += [md(f"*{caption}*"), figure_cell(png, caption)]
    cells.append(md(_pairs_section(grading)))
    for section in (_mistakes_section(grading), _not_graded_section(grading)):
        if section:
            cells.append(md(section))
    return nbformat.v4.new_notebook(cells=cells)


def write_class_report(grading, rows, path):
    """Write the class page to PATH and return its path. ROWS are `grade.table_rows(grading)`."""
    from ..pages import write_html

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_html(build_class_report(grading, rows), path, **HTML_OPTIONS)


# --- feedback pages -----------------------------------------------------------------------------------------------

# Names Windows keeps for devices, with any extension: a page called CON.html can't be unzipped there
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"{port}{number}" for port in ("COM", "LPT") for number in range(10))}


def _not_a_device(name):
    device, dot, rest = name.partition(".")
    return f"{device}_{dot}{rest}" if device.strip().upper() in _WINDOWS_DEVICES else name


def safe_name(name, fallback="hand-in"):
    """NAME made a file name on any system: letters, digits, '.', '_', '-', '@', '+'; no leading dot, no
    Windows device name; at most 100 characters."""
    name = _UNSAFE_NAME.sub("_", str(name or "")).lstrip(".")[:100]
    return _not_a_device(name) if name else fallback


def build_feedback(graded):
    """One hand-in's feedback page as a notebook object: the reasons meant for the student, no evidence."""
    import nbformat

    md = nbformat.v4.new_markdown_cell
    who = _cell(graded.who or "(no student id)", MAX_ID)  # never a claimed id the LMS contradicts
    body = [[_cell(name), f"**{verdict.status.value}**" if verdict.status is not PASS else verdict.status.value,
             _cell(verdict.reason)] for name, verdict in graded.checks.items()]
    cells = [
        md(f"# VAE lab feedback: {who}\n\n## Verdict: {graded.status.value}\n\n{WHAT_TO_DO.get(graded.status, '')}"),
        md(f"File: {_cell(graded.file_name or graded.label, 200)}, graded {_now():%Y-%m-%d %H:%M %Z}."
           + (f" Marks: {graded.marks['total']:g} of {graded.marks_possible:g}."
              if graded.marks.get("total") is not None and getattr(graded, "marks_possible", None) else "")),
        md("## Checks\n\n" + (_table(["check", "verdict", "reason"], body) if body else
                              "No check could be run on this file.")),
    ]
    exercises = getattr(graded.record, "exercises", None) or {}
    if exercises:
        cells.append(md("## Your functions"))
        diagnoses = getattr(graded, "diagnoses", {})
        for name, source in exercises.items():
            note = diagnoses.get(name, "")
            cells.append(md(f"### {_cell(name)}\n\n" + (f"{_cell(note)}\n\n" if note else "") + _code_block(source)))
    return nbformat.v4.new_notebook(cells=cells)


def _safe_part(part):
    """One folder or file name of a feedback path, as the LMS named it, with nothing that could leave the folder."""
    cleaned = "".join("_" if char in '/\\:<>"|?*' or unicodedata.category(char)[0] == "C" else char
                      for char in part)
    # 150 bytes, not characters: a file name may hold 255 bytes, and 100 CJK characters are 300 of them
    cleaned = cleaned.lstrip(". ").encode("utf-8")[:150].decode("utf-8", "ignore").rstrip(". ")
    return _not_a_device(cleaned) if cleaned else "hand-in"


def feedback_names(batch):
    """{id(graded): relative path}: named by roster student and hand-in, laid out as the LMS's bulk feedback
    upload expects where the hand-in came from an LMS; two hand-ins never share a path (compared without case)."""
    from . import exports

    per_student = {}
    for graded in batch:
        per_student[graded.student_id] = per_student.get(graded.student_id, 0) + 1
    names, taken = {}, set()
    for graded in batch:
        stem = Path(graded.file_name or graded.label).stem
        hand_in = graded.hand_in
        if hand_in is not None and getattr(hand_in, "lms", None) and graded.student_id:
            parts = [_safe_part(part) for part in Path(exports.feedback_file_name(hand_in, graded.student_id)).parts]
            name = str(Path(*parts).with_suffix(""))
        elif graded.student_id and per_student[graded.student_id] == 1:
            name = safe_name(graded.student_id)
        elif graded.student_id:
            name = f"{safe_name(graded.student_id)}--{safe_name(stem)}"
        else:
            name = f"not-on-roster--{safe_name(stem)}"
        unique, number = name, 1
        while unique.lower() in taken:
            number += 1
            unique = f"{name}-{number}"
        taken.add(unique.lower())
        names[id(graded)] = f"{unique}.html"
    return names


def write_feedback(grading, directory):
    """Write one feedback page per graded hand-in into DIRECTORY (named by `feedback_names`); return
    (DIRECTORY, the pages already there that this grading did not write: an earlier grading's, left alone)."""
    from ..pages import write_html

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    earlier = {path.relative_to(directory) for path in directory.rglob("*.html")}
    names = feedback_names(grading.batch)
    for graded in grading.batch:
        graded.marks_possible = grading.rubric.points_possible if grading.rubric else None
        path = directory / names[id(graded)]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_html(build_feedback(graded), path, **HTML_OPTIONS)
    return directory, sorted(earlier - {Path(name) for name in names.values()})
