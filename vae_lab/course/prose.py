"""Checks on the prose students write in their lab notebooks (the Observation and Result sections).

Each student trains with their own seed and describes their own run, so the grader flags prose that is a
near-copy (of the reference notebook or of another submission), numbers in a Result that are not the
submission's own, and sections left unanswered. Pure standard library; nothing runs at import.
"""

import bisect
import itertools
import json
import math
import os
import re

COPY_THRESHOLD = 0.25  # mid-gap between independent and copied pairs, as measured by benchmarks/bench_prose.py
# Word n-gram length of the shingles `similarity` compares: long enough that shared vocabulary ("the latent
# space", "the KL term") is rare, short enough that one swapped word spoils only a few shingles.
SHINGLE_WORDS = 3
# Texts with fewer shingles than this (about 20 words of prose) are never reported as copies: with so little
# text, a few shared phrases make a high score, as in terse lists of metrics (benchmarks/bench_prose.py).
MIN_COPY_SHINGLES = 15
# A section with fewer words than this (numbers count as words) answers none of its guiding questions; the
# grader's own section check uses the same minimum.
MIN_ANSWER_WORDS = 20
# Fewer different words than this in an answer of any length is a repeated token, not prose.
MIN_DISTINCT_WORDS = 10
NUMBER_TOKEN = "#"

_NUMBER_IN_TEXT = re.compile(r"\d+(?:[.,]\d+)*(?:e[-+\u2212]?\d+)?[\u2070\u00b9\u00b2\u00b3\u2074-\u2079\u207b]*")
# Bounded repetitions throughout: text from a hand-in is hostile, and an unbounded `[^\]]*` after each of
# 100,000 '[' would scan to the end every time (quadratic). Every pattern here is linear in its input.
_LINK = re.compile(r"!?\[([^\]\n]{0,300})\]\([^)\n]{0,300}\)")
_WORD = re.compile(r"#|[^\W\d_]+")


# Letters of other scripts that look like Latin ones: a copy with Cyrillic 'а' and 'о' in place of Latin ones
# reads the same to a person and shared no word with the original (hunt, 2026-12-06).
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁһӏԛԝвкмнтѵѡαεικνορτυχϲϳ"  # Cyrillic and Greek
    "օսոհցզ"  # Armenian
    "ᴀʙᴄᴅᴇғɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ"  # Latin small capitals
    "ɡıɑɩʋɛɔ",  # IPA and dotless i
    "aeopcyxijsdhlqwbkmhtvwaeiknoptyxcj" "ounhgq" "abcdefghijklmnoprstuvwyz" "giaiveo",
    "\u3164\u115f\u1160\uffa0\u2800")  # Hangul and Braille blanks: letters that show nothing


def plain(text):
    """TEXT as it reads: compatibility forms folded (NFKC, so full-width and ligature letters are letters),
    invisible formatting characters (zero-width spaces, joiners, bidi marks) and accents dropped, and
    look-alike letters of other scripts read as the Latin ones."""
    import unicodedata

    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    text = "".join(character for character in text if unicodedata.category(character) not in ("Cf", "Mn"))
    return text.lower().translate(_LOOKALIKES)


def normalize(text):
    """Lower-case words of `text` with markdown, punctuation and layout removed, each number as '#'.

    Numbers become one token so that a copy whose numbers were changed still reads as a copy.
    """
    text = _LINK.sub(r"\1", plain(text)).replace("#", " ")
    text = re.sub(r"['\u2019]", "", text)  # "model's" and "models" are the same word for comparing texts
    text = re.sub(r"(\d)\s*[x\u00d7]\s*(?=\d)", r"\1 ", text)  # 10x10 and 10 × 10 alike
    text = _NUMBER_IN_TEXT.sub(f" {NUMBER_TOKEN} ", text)
    return " ".join(_WORD.findall(text))


def _blocks(text):
    """Paragraphs, list items, headings and table rows of markdown `text`, each joined onto one line."""
    blocks, current = [], []
    for line in text.splitlines():
        starts_block = re.match(r"\s*([-*+]\s|\d+[.)]\s|#|\|)", line)
        if not line.strip() or starts_block:
            if current:
                blocks.append(" ".join(current))
            current = []
        if line.strip():
            current.append(line.strip())
    if current:
        blocks.append(" ".join(current))
    return blocks


def sentences(text):
    """Sentences of markdown `text` (a list item or heading is a sentence of its own)."""
    found = []
    for block in _blocks(text):
        found.extend(part for part in re.split(r"(?<=[.!?])\s+", block) if part.strip())
    return found


def word_count(text):
    """Words in `text` after `normalize` (numbers count as words)."""
    return len(normalize(text).split())


def shingles(text, size=SHINGLE_WORDS):
    """The set of `size`-word sequences of `text` that hold no number, taken within sentences.

    Within sentences, so that reordering them costs nothing. Without numbers, so that changing them costs
    nothing, and because the runs of metric names and numbers every Result has ("KL # reconstruction #")
    are where independent texts coincide. A sentence shorter than `size` (two words at least) is one shingle.
    """
    found = set()
    for sentence in sentences(text):
        words = normalize(sentence).split()
        if len(words) < 2:
            continue
        if len(words) <= size:
            candidates = [tuple(words)]
        else:
            candidates = (tuple(words[start:start + size]) for start in range(len(words) - size + 1))
        found.update(shingle for shingle in candidates if NUMBER_TOKEN not in shingle)
    return found


def overlap(first, second):
    """Shared fraction of the smaller of two shingle sets: 1.0 when one text is inside the other."""
    if not first or not second:
        return 0.0
    return len(first & second) / min(len(first), len(second))


def similarity(a, b, common=frozenset()):
    """The share of the smaller of the two texts' 3-word shingles that the other text has too, in [0, 1].

    Containment rather than Jaccard, so that a copied paragraph inside a longer text of one's own still scores
    high; shingles rather than single words, so that texts about the same experiment, which share their
    vocabulary, score low. The measurement behind this choice is benchmarks/bench_prose.py. Shingles in
    `common` (the lab's own phrases, `lab_phrases`) are left out: every student may borrow them.
    """
    return overlap(shingles(a) - common, shingles(b) - common)


def similar_pairs(texts, threshold=COPY_THRESHOLD, common=frozenset()):
    """Every pair of `texts` (id -> text) scoring at least `threshold`, as (id_a, id_b, score), highest first.

    Texts with fewer than MIN_COPY_SHINGLES shingles (empty ones included) are left out: too little prose to
    call a copy; the unanswered check and the numbers check are the ones for them. `common` as in `similarity`.
    """
    sets = {key: shingles(text or "") - common for key, text in texts.items()}
    sets = {key: found for key, found in sets.items() if len(found) >= MIN_COPY_SHINGLES}
    pairs = []
    for (first_id, first), (second_id, second) in itertools.combinations(sets.items(), 2):
        score = overlap(first, second)
        if score >= threshold:
            pairs.append((first_id, second_id, score))
    pairs.sort(key=lambda pair: (-pair[2], str(pair[0]), str(pair[1])))
    return pairs


_PLACEHOLDER = re.compile(
    r"\b(?:todo|tbd|fixme|lorem\s+ipsum|to\s+be\s+(?:written|completed)"
    r"|write\s+(?:your|here)\b[^.\n]*|your\s+(?:answer|observation|result|text)\s+here)\b"
    r"|<[ \t]{0,10}(?:your|answer|insert)[^>\n]{0,100}>|\[[ \t]{0,10}(?:your|answer|insert)[^\]\n]{0,100}\]"
    r"|^[ \t]*(?:[-*+][ \t]*)?(?:\.{2,}|\u2026)[ \t]*$",
    re.IGNORECASE | re.MULTILINE)


def is_unanswered(text, questions=()):
    """Why `text` does not answer its section, or None when it does.

    Unanswered: empty, a template placeholder, fewer than MIN_ANSWER_WORDS words, or, once the sentences that
    are questions (ending in '?', or mostly made of the guiding `questions`' word pairs) are set aside, fewer
    than MIN_ANSWER_WORDS words left: the student notebook shows its questions above the answer area, and
    pasting them back answers nothing.
    """
    text = text or ""
    words = word_count(text)
    if not words:
        return "empty"
    placeholder = _PLACEHOLDER.search(text)
    if placeholder:
        return f"placeholder {placeholder.group(0).strip()!r}"
    if words < MIN_ANSWER_WORDS:
        return f"only {words} words (at least {MIN_ANSWER_WORDS} expected)"
    distinct = len(set(normalize(text).split()))
    if distinct < MIN_DISTINCT_WORDS:
        return f"not prose: {words} words but only {distinct} different ones"
    if isinstance(questions, str):
        questions = (questions,)
    question_pairs = set().union(*(shingles(question, 2) for question in questions))
    answer_words = 0
    for sentence in sentences(text):
        if sentence.rstrip(" *_").endswith("?"):
            continue
        pairs = shingles(sentence, 2)
        if pairs and len(pairs & question_pairs) >= 0.7 * len(pairs):
            continue
        answer_words += word_count(sentence)
    if answer_words < MIN_ANSWER_WORDS:
        return f"repeats the guiding questions ({answer_words} words besides them)"
    return None


def markdown_heading(line):
    """`(level, title)` of a markdown heading line ("## Result:" -> (2, "Result")), else None.

    String methods, not a regular expression: `^\\s*(#+)\\s*(.*?)\\s*:?\\s*$` takes cubic time on a long
    line of spaces, which a hand-in can hold.
    """
    stripped = line.strip()
    if not stripped.startswith("#"):
        return None
    title = stripped.lstrip("#")
    level = len(stripped) - len(title)
    title = title.strip()
    if title.endswith(":"):
        title = title[:-1].rstrip()
    return level, title


def _markdown_by_section(sources, titles):
    """({title: lines}, other lines) of markdown SOURCES (cell texts, in order), split at the headings named
    exactly `titles`."""
    wanted = {title.lower(): title for title in titles}
    found, other = {title: [] for title in titles}, []
    current, level = None, 0
    for source in sources:
        for line in source.splitlines():
            heading = markdown_heading(line)
            if heading and (current is None or heading[0] <= level):
                current, level = wanted.get(heading[1].lower()), heading[0]
                other.append(line)  # the heading is the lab's, not the student's
            else:
                (found[current] if current else other).append(line)
    return found, other


def _markdown_sources(notebook):
    """The markdown cells' texts of a notebook given as a path or as its JSON."""
    if isinstance(notebook, (str, os.PathLike)):
        with open(notebook, encoding="utf-8") as file:
            notebook = json.load(file)
    sources = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            sources.append("".join(source) if isinstance(source, list) else source)
    return sources


def markdown_sections(sources, titles=("Observation", "Result")):
    """{title: markdown text} under the headings named exactly `titles` in markdown SOURCES (in order)."""
    found, _ = _markdown_by_section(sources, titles)
    return {title: "\n".join(lines).strip() for title, lines in found.items()}


def notebook_sections(notebook, titles=("Observation", "Result")):
    """{title: markdown text} under the headings named exactly `titles` in a notebook (a path or its JSON).

    Exact names, because the lab notebook also has "## Result: evaluation on the test set", which describes
    a code cell and is nobody's prose. A section runs to the next heading of its level or above.
    """
    return markdown_sections(_markdown_sources(notebook), titles)


def lab_phrases(notebook, titles=("Observation", "Result")):
    """Shingles of a notebook's markdown outside the sections `titles`: the lab's own wording.

    Students describe their runs in the lab's terms ("the negative ELBO on the test set", "an estimate of
    -log p(x)"), so these phrases are common ground, not evidence of copying; pass them as `common`.
    """
    _, other = _markdown_by_section(_markdown_sources(notebook), titles)
    return frozenset(shingles("\n".join(other)))


# --- numbers ------------------------------------------------------------------------------------------------
#
# Which quoted numbers look like the lab's metrics. The lab's metrics are losses in nats per image: negative
# ELBO, reconstruction, importance-weighted NLL and validation loss, about 80-400 (MNIST ~150, Fashion-MNIST
# ~265), and the KL term, about 1-30. A number is metric-looking when, after the exclusions below,
#   (a) "nat"/"nats" follows it, and it lies in [1, 1000); or
#   (b) it has decimals and lies in the loss range [80, 400]; or
#   (c) it lies in [1, 1000), has decimals or lies in [80, 400], and a metric word (loss, ELBO, NLL, KL,
#       reconstruction, likelihood, bound, estimate, validation...) comes before it in the same sentence.
# Excluded: a number followed by a count or a non-nat unit (5 epochs, 20 samples, 256 units, 2-dimensional,
# 15 s, 98%), preceded by what it identifies (seed 256, batch size 256, epoch 5, TensorFlow 2.21, Figure 3),
# beside x, × or an arrow (10×10, 784 → 512), and differences (a gap of 2.2 nats, the difference between the
# ELBO and the NLL is 2.1, ELBO − NLL = 2.1, 2 nats lower, lower by 1.5).
# Small integers without "nats" (KL of 6) and numbers above 1000 (years, 60,000 images) are never metrics.
# The sign is dropped: "an ELBO of -152.9" and "a negative ELBO of 152.9" quote the same metric.

_QUOTED_NUMBER = re.compile(
    r"(?<![\w.,])"
    r"(?P<integer>\d{1,3}(?:,\d{3})+(?!\d)|\d+)"
    r"(?:\.(?P<fraction>\d+)|,(?P<comma_fraction>\d{1,2})(?!\d))?"
    r"(?:[eE](?P<exponent>[-+\u2212]?\d{1,3}))?"
    r"(?![\w]|[.,]\d)")
_METRIC_WORDS = {"loss", "losses", "elbo", "nll", "kl", "divergence", "reconstruction", "recon", "likelihood",
                 "bound", "estimate", "iw", "iwae", "bce", "entropy", "objective", "validation", "val",
                 "metric", "metrics"}
_FILLER_WORDS = {"was", "is", "were", "are", "be", "of", "about", "around", "roughly", "approximately",
                 "approx", "ca", "circa", "only", "just", "nearly", "almost", "the", "a", "an", "at", "to",
                 "equal", "equals", "reached", "gave", "got", "with", "number", "value", "my", "our"}
# Words a number identifies rather than measures when they come right before it (seed 256, batch size of 256).
_IDENTIFIER_WORDS = {"seed", "seeds", "epoch", "epochs", "batch", "size", "version", "v", "python", "tensorflow",
                     "keras", "tf", "numpy", "torch", "cuda", "figure", "fig", "table", "step", "cell", "layer",
                     "width", "dimension", "dim", "row", "column", "tile", "class", "label", "digit"}
# Words that make the number right after them a difference between two metrics (lower by 2.1, within 0.5).
_DIFFERENCE_WORDS = {"by", "within"}
# Nouns that make a number later in their clause a difference (the gap between the ELBO and the NLL is 2.1).
_DIFFERENCE_NOUNS = {"gap", "gaps", "difference", "differences", "differ", "differs", "differed", "margin",
                     "improvement"}
_COUNT_WORDS = {"epoch", "epochs", "image", "images", "sample", "samples", "draw", "draws", "digit", "digits",
                "dimension", "dimensions", "dimensional", "dim", "d", "unit", "units", "neuron", "neurons",
                "layer", "layers", "pixel", "pixels", "point", "points", "tile", "tiles", "step", "steps",
                "batch", "batches", "class", "classes", "item", "items", "example", "examples", "iteration",
                "iterations", "second", "seconds", "s", "sec", "ms", "minute", "minutes", "min", "hour", "hours",
                "h", "percent", "times", "gb", "mb", "kb", "gib", "mib", "core", "cores", "parameter",
                "parameters", "weight", "weights", "row", "rows", "column", "columns", "x", "th", "st", "nd",
                "rd", "cpu", "cpus", "gpu", "gpus", "students", "runs", "seeds", "grid"}
_COMPARATIVE_WORDS = {"lower", "higher", "less", "more", "smaller", "larger", "bigger", "below", "above", "apart",
                      "better", "worse", "tighter", "looser", "difference", "gap", "improvement"}
_SUBTRACTION = re.compile(r"\w\s+[-\u2212\u2013]\s+\w+\s*[=\u2248]\s*$")  # "ELBO − NLL = ", not "−ELBO: "
# Characters before a number that are read for its context (a longer sentence's start is not seen).
CONTEXT = 400
_SENTENCE_START = re.compile(r"[.!?]\s|\n[ \t]*\n|\n[ \t]*[-*+|#]")  # a table row is one sentence


def _parse(match):
    """(magnitude, decimals) of one number match; the decimals of 1.5e-3 are those of 0.0015."""
    integer = match["integer"].replace(",", "")
    fraction = match["fraction"] or match["comma_fraction"] or ""
    if match["comma_fraction"] and len(integer) < 2:
        return None  # "1,7" is more often a list of digits than a decimal comma
    exponent = int((match["exponent"] or "0").replace("\u2212", "-"))
    value = float(f"{integer}.{fraction or 0}e{exponent}")
    return value, max(0, len(fraction) - exponent)


def _is_metric_looking(text, match, value, decimals):
    """Whether the number `match` in `text` looks like one of the lab's metrics (rule above)."""
    before = text[max(0, match.start() - CONTEXT):match.start()]  # bounded: linear in the text overall
    after = text[match.end():match.end() + 60].lower()
    tail = before.rstrip().lower()
    if tail.endswith(("\u00d7", "\u2192", "->")) or re.search(r"\bx$", tail) or re.match(
            r"\s*(?:[\u00d7\u2192]|->|x\b)", after):
        return False
    preceding = re.findall(r"[^\W\d_]+|\d[\d.,]*", before[-80:].lower())
    identified = preceding[-2:-1] if preceding[-1:] == ["of"] else preceding[-1:]
    if identified and identified[0] in _IDENTIFIER_WORDS:
        return False
    while preceding and preceding[-1] in _FILLER_WORDS:
        preceding.pop()
    if preceding and preceding[-1] in _DIFFERENCE_WORDS:
        return False
    clause = re.split(r"[.!?]\s|[,;:()\n]", before)[-1].lower()
    if _DIFFERENCE_NOUNS & set(re.findall(r"[^\W\d_]+", clause)) or _SUBTRACTION.search(clause):
        return False
    next_word = re.match(r"\s*[-\u2013]?\s*(%|[^\W\d_]+)", after)
    next_word = next_word.group(1) if next_word else ""
    word_after_nats = re.match(r"\s*nats?\s+([^\W\d_]+)", after)
    if next_word == "%" or next_word in _COUNT_WORDS or next_word in _COMPARATIVE_WORDS:
        return False
    if word_after_nats and word_after_nats.group(1) in _COMPARATIVE_WORDS:
        return False
    if not 1 <= value < 1000:
        return False
    if next_word in ("nat", "nats"):
        return True
    in_loss_range = 80 <= value <= 400
    if decimals and in_loss_range:
        return True
    if not (decimals or in_loss_range):
        return False
    sentence = _SENTENCE_START.split(before)[-1].lower()
    return any(word in _METRIC_WORDS for word in re.findall(r"[^\W\d_]+", sentence))


def quoted_numbers(text):
    """The metric-looking numbers quoted in `text`, as (value, decimals): "152.90" -> (152.9, 2)."""
    return [(value, decimals) for value, decimals, _ in quoted_numbers_in_context(text)]


def quoted_numbers_in_context(text):
    """(value, decimals, is_cited) for each metric-looking number in `text`; `is_cited` when its sentence
    presents it as someone else's (the literature, a paper, a classmate), not as the record's own."""
    found = []
    for match in _QUOTED_NUMBER.finditer(text or ""):
        parsed = _parse(match)
        if parsed and _is_metric_looking(text, match, *parsed):
            words = set(re.findall(r"[^\W\d_]+", _sentence_of(text, match)))
            found.append((*parsed, bool(_CITATION_WORDS & words)))
    return found


# Words that present a number as someone else's result rather than the record's own.
_CITATION_WORDS = {"published", "publication", "literature", "paper", "papers", "reported", "reports", "et", "al",
                   "kingma", "welling", "burda", "benchmark", "benchmarks", "typically", "typical", "usually",
                   "textbook", "classmate", "classmates", "others", "sota", "art", "compared", "comparison",
                   "whereas", "than", "cite", "cited", "according"}


def _sentence_of(text, match):
    """The sentence (within CONTEXT characters either side) that holds `match`, lower-cased."""
    before = _SENTENCE_START.split(text[max(0, match.start() - CONTEXT):match.start()])[-1]
    after = re.split(r"[.!?](?:\s|$)|\n[ \t]*\n", text[match.end():match.end() + CONTEXT], maxsplit=1)[0]
    return (before + match.group(0) + after).lower()


def number_matches(quoted, decimals, value):
    """Whether `quoted`, written with `decimals` decimals, is `value` rounded or truncated (±1 for integers)."""
    quoted, value = abs(quoted), abs(value)
    if decimals == 0:
        return abs(quoted - value) <= 1 + 1e-9
    step = 10.0 ** -decimals
    tolerance = step * 1e-6
    rounded = abs(quoted - value) <= step / 2 + tolerance
    truncated = -tolerance <= value - quoted < step - tolerance
    return rounded or truncated


def _finite_floats(values):
    """The values that are finite numbers, as floats (numpy scalars included; None, NaN and text left out)."""
    found = []
    for value in values:
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            found.append(value)
    return found


def number_matcher(values):
    """A test (quoted, decimals) -> whether the quote is one of VALUES at its precision (`number_matches`),
    comparing only the values near it (sorted, bisected) and remembering each answer: a record of 10,000
    epochs quoted 10,000 times costs milliseconds, not minutes."""
    ordered = sorted(abs(value) for value in _finite_floats(values))
    answers = {}

    def matches(quoted, decimals):
        if (quoted, decimals) not in answers:
            reach = 1.0 + 1e-6 if decimals == 0 else 10.0 ** -decimals  # number_matches never matches beyond
            low = bisect.bisect_left(ordered, abs(quoted) - reach)
            high = bisect.bisect_right(ordered, abs(quoted) + reach)
            answers[quoted, decimals] = any(number_matches(quoted, decimals, value) for value in ordered[low:high])
        return answers[quoted, decimals]

    return matches


def _numbers_by_match(text, values, wanted):
    matches = number_matcher(values)
    found, seen = [], set()
    for quoted, decimals in quoted_numbers(text):
        if matches(quoted, decimals) == wanted and (quoted, decimals) not in seen:
            seen.add((quoted, decimals))
            found.append(quoted)
    return found


def foreign_numbers(text, own_values):
    """Metric-looking numbers in `text` that are none of `own_values` at the precision quoted, once each.

    `own_values` are the submission's own metrics and history values; a number from another run (a
    classmate's, the reference's) usually differs from all of them in its last quoted digit.
    """
    return _numbers_by_match(text, own_values, wanted=False)


def matching_numbers(text, values):
    """Metric-looking numbers in `text` that equal one of `values` at the precision quoted, once each.

    With the reference run's values this finds numbers taken from the reference notebook; a coarse quote
    ("about 153") can match the reference and the submission's own run alike, so weigh it by its decimals.
    """
    return _numbers_by_match(text, values, wanted=True)
