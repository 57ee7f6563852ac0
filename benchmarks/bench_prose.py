"""Benchmark: how well `vae_lab.course.prose.similarity` separates copied prose from independent prose.

Run `python benchmarks/bench_prose.py`. It scores

* every pair of independently written texts: the corpus in tests/data/prose/ (student_*.md, one student's
  Observation and Result each) and the reference notebook's own Observation and Result, read from
  notebooks/vae_mnist.ipynb;
* every text against copies of it made here (never stored): words swapped for synonyms, numbers changed,
  sentences reordered, one sentence dropped or added, the text or its Observation embedded in another
  student's text, and combinations;

for the chosen measure and the alternatives tried, on whole texts (Observation + Result) and on each
section alone, and prints each distribution, the scores nearest the threshold and the margin, and the
same with the lab's own phrases (`prose.lab_phrases`) as common ground. COPY_THRESHOLD in prose.py is
chosen from this output. The corpus has one author, so its independent texts are more alike than a real class's: the
independent scores here are an upper estimate. Nothing here asserts; tests/test_prose.py does.
"""

import random
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_lab.course import prose  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "prose"
NOTEBOOK = ROOT / "notebooks" / "vae_mnist.ipynb"
SECTIONS = ("Observation", "Result")

# Swaps a student makes to disguise a copy. Only words with an entry here are swapped, so the entries
# cover frequent words (function words included) to reach 20 % of a text's words.
SYNONYMS = {key.lower(): value for key, value in {
    "the": "this", "a": "one", "and": "as well as", "is": "seems", "are": "seem", "was": "came out",
    "were": "came out", "of": "from", "in": "within", "with": "using", "to": "towards", "for": "regarding",
    "on": "upon", "from": "out of", "but": "however", "also": "too", "very": "really", "because": "since",
    "which": "that", "each": "every", "every": "each", "first": "initial", "then": "afterwards",
    "after": "following", "into": "to", "some": "certain", "most": "the majority of", "many": "numerous",
    "more": "further", "shows": "displays", "show": "display", "showed": "displayed", "clear": "distinct",
    "clearly": "plainly", "clusters": "groups", "cluster": "group", "digits": "numerals", "digit": "numeral",
    "images": "pictures", "image": "picture", "blurry": "fuzzy", "blurred": "smudged", "smooth": "gradual",
    "smoothly": "gradually", "model": "network", "reached": "achieved", "reaches": "achieves",
    "achieves": "attains", "obtains": "gets", "large": "big", "big": "large", "small": "little",
    "little": "small", "quite": "fairly", "mostly": "largely", "almost": "nearly", "nearly": "almost",
    "overlap": "intersect", "overlaps": "intersects", "separate": "distinct", "hard": "difficult",
    "difficult": "hard", "looks": "appears", "look": "appear", "plot": "figure", "picture": "image",
    "test": "held-out", "final": "last", "last": "final", "about": "around", "around": "about",
    "roughly": "approximately", "value": "number", "values": "numbers", "number": "value",
    "numbers": "values", "figure": "plot", "region": "area", "regions": "areas", "shape": "form",
    "shapes": "forms", "detail": "detail work", "details": "fine details", "lost": "gone", "keep": "retain",
    "keeps": "retains", "loses": "drops", "lose": "drop", "training": "learning", "curves": "plots",
    "grid": "lattice", "generated": "sampled", "decoded": "generated", "neighbouring": "adjacent",
    "adjacent": "neighbouring", "together": "jointly", "strokes": "lines", "stroke": "line",
    "classes": "categories", "class": "category", "drop": "fall", "falls": "drops", "fell": "dropped",
    "decreases": "goes down", "decreasing": "going down", "expected": "anticipated", "works": "functions",
    "used": "employed", "uses": "employs", "recognisable": "recognizable", "organised": "arranged",
    "organises": "arranges", "new": "novel", "same": "identical", "similar": "alike", "close": "near",
    "near": "close to", "between": "amongst", "slightly": "a bit", "only": "just", "just": "only",
    "therefore": "thus", "so": "thus", "it": "this", "this": "it", "my": "the", "i": "we", "we": "I",
    "our": "my", "can": "could", "has": "had", "have": "had", "not": "never", "no": "zero",
    "latent": "hidden", "loss": "cost", "validation": "held-out", "epochs": "passes", "epoch": "pass",
    "samples": "draws", "KL": "Kullback-Leibler", "ELBO": "evidence lower bound", "NLL": "negative log-likelihood",
    "IW": "importance-weighted", "val": "validation", "recon": "reconstruction", "negative": "minus",
    "reconstructions": "reconstructed images", "reconstruction": "rebuilt image", "nats": "nat",
    "seed": "random seed", "space": "plane", "decoder": "generator", "encoder": "inference net",
}.items()}
_WORD_TOKEN = re.compile(r"[A-Za-z]+")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.(\d+))?(?![\w])")


def read_sections(path):
    """{title: text} of a corpus file, written as '## Observation' and '## Result' sections."""
    text = Path(path).read_text(encoding="utf-8")
    parts = re.split(r"^##\s*(Observation|Result)\s*$", text, flags=re.MULTILINE)
    return {title: body.strip() for title, body in zip(parts[1::2], parts[2::2])}


def join_sections(sections):
    return "\n\n".join(f"## {title}\n\n{sections[title]}" for title in SECTIONS if sections.get(title))


def load_corpus():
    """{name: {title: text}}: the students' texts and, as 'reference', the notebook's own prose."""
    corpus = {path.stem: read_sections(path) for path in sorted(CORPUS.glob("student_*.md"))}
    corpus["reference"] = prose.notebook_sections(NOTEBOOK, SECTIONS)
    return corpus


def swap_words(text, fraction, rng):
    """`text` with about `fraction` of its words swapped for a synonym; returns (text, fraction swapped)."""
    tokens = list(_WORD_TOKEN.finditer(text))
    swappable = [index for index, token in enumerate(tokens) if token.group(0).lower() in SYNONYMS]
    chosen = set(rng.sample(swappable, min(len(swappable), round(fraction * len(tokens)))))
    pieces, end = [], 0
    for index, token in enumerate(tokens):
        pieces.append(text[end:token.start()])
        word = token.group(0)
        if index in chosen:
            synonym = SYNONYMS[word.lower()]
            word = synonym[0].upper() + synonym[1:] if word[0].isupper() else synonym
        pieces.append(word)
        end = token.end()
    pieces.append(text[end:])
    return "".join(pieces), len(chosen) / max(1, len(tokens))


def change_numbers(text, rng):
    """Every number in `text` replaced by a nearby one with as many decimals."""
    def changed(match):
        decimals = len(match.group(1) or "")
        value = float(match.group(0)) + rng.choice((-1, 1)) * rng.uniform(0.3, 4.0)
        return f"{abs(value):.{decimals}f}"
    return _NUMBER.sub(changed, text)


def _map_sentences(sections, change):
    return {title: " ".join(change(prose.sentences(body))) for title, body in sections.items()}


def shuffle_sentences(sections, rng):
    return _map_sentences(sections, lambda found: rng.sample(found, len(found)))


def drop_sentence(sections, rng):
    """One sentence of the longer section dropped."""
    longest = max(sections, key=lambda title: len(prose.sentences(sections[title])))
    found = prose.sentences(sections[longest])
    del found[rng.randrange(len(found))]
    return {**sections, longest: " ".join(found)}


def add_sentence(sections, donor, rng):
    """One sentence of another text (`donor`) added to the Observation."""
    extra = rng.choice(prose.sentences(donor["Observation"]))
    return {**sections, "Observation": sections["Observation"] + " " + extra}


def embed(part, host, rng):
    """`part` (a text) inserted between two sentences of `host`'s Observation."""
    found = prose.sentences(host["Observation"])
    place = rng.randrange(len(found) + 1)
    return {**host, "Observation": " ".join(found[:place] + [part] + found[place:])}


# Edits beyond the brief's light ones: reported on their own, not counted in the gap.
HARD_KINDS = ("synonyms 30%", "its Result (numbers changed) under another's Observation")


def copies(corpus, seed=0):
    """([(kind, original name, original sections, copy sections)], [(swap fraction asked, achieved)])."""
    rng = random.Random(seed)
    names = sorted(corpus)
    made, swapped = [], []

    def swap_sections(sections, fraction):
        result = {}
        for title, body in sections.items():
            result[title], share = swap_words(body, fraction, rng)
            swapped.append((fraction, share))
        return result

    def numbers_changed(sections):
        return {title: change_numbers(body, rng) for title, body in sections.items()}

    for position, name in enumerate(names):
        original = corpus[name]
        other = corpus[names[(position + 1) % len(names)]]
        edits = {
            "synonyms 10%": swap_sections(original, 0.10),
            "synonyms 20%": swap_sections(original, 0.20),
            "numbers changed": numbers_changed(original),
            "sentences shuffled": shuffle_sentences(original, rng),
            "one sentence dropped": drop_sentence(original, rng),
            "one sentence added": add_sentence(original, other, rng),
            "whole text inside another": embed(original["Observation"] + " " + original["Result"], other, rng),
            "its Observation inside another": embed(original["Observation"], other, rng),
            "15% + numbers + shuffled + dropped":
                drop_sentence(shuffle_sentences(swap_sections(numbers_changed(original), 0.15), rng), rng),
            HARD_KINDS[0]: swap_sections(original, 0.30),
            HARD_KINDS[1]: {"Observation": other["Observation"], "Result": change_numbers(original["Result"], rng)},
        }
        made += [(kind, name, original, copy) for kind, copy in edits.items()]
    return made, swapped


def char_grams(text, size=5):
    text = prose.normalize(text)
    return {text[start:start + size] for start in range(max(0, len(text) - size + 1))}


def jaccard(first, second):
    return len(first & second) / len(first | second) if first and second else 0.0


def shingles_with_numbers(text, size=prose.SHINGLE_WORDS):
    """Word n-grams within sentences, numbers kept as their token: the first measure tried."""
    found = set()
    for sentence in prose.sentences(text):
        words = prose.normalize(sentence).split()
        if len(words) >= 2:
            found.update(tuple(words[start:start + size]) for start in range(max(1, len(words) - size + 1)))
    return found


CHOSEN = "word 3-gram containment (chosen)"
LAB_PHRASES = prose.lab_phrases(NOTEBOOK)  # the lab's own wording, outside its Observation and Result
MEASURES = {
    CHOSEN: (prose.shingles, prose.overlap),
    "  same, lab phrases as common": (lambda text: prose.shingles(text) - LAB_PHRASES, prose.overlap),
    "  same, number shingles kept": (shingles_with_numbers, prose.overlap),
    "word 3-gram Jaccard": (prose.shingles, jaccard),
    "word 5-gram containment": (lambda text: prose.shingles(text, 5), prose.overlap),
    "word 2-gram containment": (lambda text: prose.shingles(text, 2), prose.overlap),
    "char 5-gram Jaccard": (char_grams, jaccard),
}


def scores(measure, independent, copied):
    """Scores of the independent pairs and of the copy pairs: lists of (score, label)."""
    features, compare = measure
    cache = {}

    def feature(text):
        if text not in cache:
            cache[text] = features(text)
        return cache[text]

    inside = [(compare(feature(a), feature(b)), label) for label, a, b in independent]
    across = [(compare(feature(a), feature(b)), label) for label, a, b in copied]
    return inside, across


def pairs(corpus, made, level):
    """Independent and copied (label, text, text) pairs: of whole texts, or of one section ("Observation")."""
    names = sorted(corpus)
    if level == "whole":
        units = {name: join_sections(corpus[name]) for name in names}
        copied = [(f"{kind}: {name}", units[name], join_sections(copy)) for kind, name, _, copy in made]
    else:
        units = {name: corpus[name][level] for name in names}
        copied = [(f"{kind}: {name}", units[name], copy[level]) for kind, name, _, copy in made
                  if copy[level] != units[name] and "another" not in kind]
    independent = [(f"{a} / {b}", units[a], units[b]) for index, a in enumerate(names) for b in names[index + 1:]]
    return [pair for pair in independent if eligible(pair)], [pair for pair in copied if eligible(pair)]


def eligible(pair):
    """Whether `similar_pairs` compares the pair at all (both texts have MIN_COPY_SHINGLES shingles)."""
    return all(len(prose.shingles(text)) >= prose.MIN_COPY_SHINGLES for text in pair[1:])


def describe(values):
    numbers = sorted(score for score, _ in values)
    return (f"n={len(numbers):4d}  min {numbers[0]:.3f}  median {statistics.median(numbers):.3f}  "
            f"max {numbers[-1]:.3f}")


def main():
    corpus = load_corpus()
    made, swapped = copies(corpus)
    words = {name: prose.word_count(join_sections(sections)) for name, sections in corpus.items()}
    print(f"corpus: {len(corpus)} independent texts ({len(corpus) - 1} students + reference), "
          f"{min(words.values())}-{max(words.values())} words; {len(made)} copies")
    for fraction in sorted({wanted for wanted, _ in swapped}):
        achieved = [share for wanted, share in swapped if wanted == fraction]
        print(f"  synonyms {fraction:.0%}: words swapped per section {min(achieved):.0%}-{max(achieved):.0%}")
    threshold = prose.COPY_THRESHOLD
    for level in ("whole", "Observation", "Result"):
        independent, copied = pairs(corpus, made, level)
        light = [pair for pair in copied if not pair[0].startswith(HARD_KINDS)]
        print(f"\n=== {level} texts" if level == "whole" else
              f"\n=== {level} sections alone (copies of that section; embeddings left out)")
        print(f"(pairs where both texts have at least MIN_COPY_SHINGLES = {prose.MIN_COPY_SHINGLES} shingles, "
              "as similar_pairs compares)")
        for label, measure in MEASURES.items():
            inside, across = scores(measure, independent, light)
            gap = min(across)[0] - max(inside)[0]
            print(f"{label:34s} independent {describe(inside)}")
            print(f"{'':34s} copies      {describe(across)}   gap {gap:+.3f}")
        inside, across = scores(MEASURES[CHOSEN], independent, copied)
        inside.sort(reverse=True)
        across.sort()
        hard = [pair for pair in across if pair[1].startswith(HARD_KINDS)]
        across = [pair for pair in across if not pair[1].startswith(HARD_KINDS)]
        print(f"\nchosen measure, COPY_THRESHOLD = {threshold}: "
              f"{sum(score >= threshold for score, _ in inside)} of {len(inside)} independent pairs at or above it, "
              f"{sum(score < threshold for score, _ in across)} of {len(across)} copies below it")
        print(f"  margin: threshold - highest independent = {threshold - inside[0][0]:+.3f}, "
              f"lowest copy - threshold = {across[0][0] - threshold:+.3f}")
        common_inside, common_across = scores(MEASURES["  same, lab phrases as common"], independent, light)
        print(f"  with lab_phrases() as common: highest independent {max(common_inside)[0]:.3f} "
              f"({sum(score >= threshold for score, _ in common_inside)} at or above the threshold), "
              f"lowest copy {min(common_across)[0]:.3f} "
              f"({sum(score < threshold for score, _ in common_across)} below it)")
        print("  highest independent:", "; ".join(f"{score:.3f} {label}" for score, label in inside[:4]))
        print("  lowest copies:      ", "; ".join(f"{score:.3f} {label}" for score, label in across[:4]))
        kinds = {}
        for score, label in across + hard:
            kinds.setdefault(label.split(": ")[0], []).append(score)
        for kind, values in kinds.items():
            caught = sum(value >= threshold for value in values)
            note = "  (beyond light edits)" if kind in HARD_KINDS else ""
            print(f"    {kind:56s} min {min(values):.3f}  median {statistics.median(values):.3f}"
                  f"  caught {caught}/{len(values)}{note}")


if __name__ == "__main__":
    main()
