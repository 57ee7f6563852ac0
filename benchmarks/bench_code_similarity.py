"""Benchmark: how alike independent exercise implementations are, against disguised copies, under
`vae_lab.course.code_similarity` — the measurement behind its COPY_THRESHOLD — and the corpus file the
grader weighs choices with (`vae_lab/course/code_corpus.json`, rewritten by `--write-corpus`).

The corpus is benchmarks/exercise_corpus/: independent/ holds 12 complete solutions written blind (three
helpers, four students each, none of whom saw the package's code); edited/ holds copies of four of them
disguised the way students disguise copies (every name changed, reformatted, statements reordered).
Each pair is scored as the grader would score it in a class of those two: the choices' weights come from
the other independent solutions and the pair itself, so no solution weighs its own pair.
"""

import argparse
import itertools
import json
import statistics
from pathlib import Path

from vae_lab.course import code_similarity

CORPUS = Path(__file__).resolve().parent / "exercise_corpus"


def summary(values):
    return {"count": len(values), "min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def pair_score(first, second, independent, leave_out):
    corpus = code_similarity.corpus_frequencies([source for name, source in independent.items()
                                                 if name not in leave_out])
    found = {"a": code_similarity.features(first), "b": code_similarity.features(second)}
    weights = code_similarity.Weights(list(found.values()), corpus)
    return code_similarity.similarity(found["a"], found["b"], weights)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-corpus", action="store_true", help="rewrite vae_lab/course/code_corpus.json")
    args = parser.parse_args()
    independent = {path.stem: path.read_text() for path in sorted((CORPUS / "independent").glob("*.py"))}
    edited = {path.stem: path.read_text() for path in sorted((CORPUS / "edited").glob("*.py"))}
    threshold = code_similarity.COPY_THRESHOLD
    pairs = [(a, b, pair_score(independent[a], independent[b], independent, {a, b}))
             for a, b in itertools.combinations(independent, 2)]
    copies = [(name, name.split("_")[0], pair_score(source, independent[name.split("_")[0]], independent,
                                                    {name.split("_")[0]}))
              for name, source in edited.items()]
    copy_pairs = [(a, b, pair_score(edited[a], edited[b], independent, {a.split("_")[0]}))
                  for a, b in itertools.combinations(edited, 2) if a.split("_")[0] == b.split("_")[0]]
    disguised = copies + copy_pairs
    result = {"independent_pairs": summary([s for *_, s in pairs]), "copy_with_original": summary([s for *_, s in copies]),
              "copy_with_copy": summary([s for *_, s in copy_pairs]), "threshold": threshold,
              "independent_flagged": f"{sum(s >= threshold for *_, s in pairs)} of {len(pairs)}",
              "copies_flagged": f"{sum(s >= threshold for *_, s in disguised)} of {len(disguised)}",
              "highest_independent": sorted(((a, b, round(s, 3)) for a, b, s in pairs), key=lambda p: -p[2])[:5],
              "copies_missed": [(a, b, round(s, 3)) for a, b, s in disguised if s < threshold]}
    print(json.dumps(result, indent=2))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "code_similarity.json").write_text(json.dumps(result, indent=2))
    if args.write_corpus:
        code_similarity.CORPUS.write_text(json.dumps(code_similarity.corpus_frequencies(list(independent.values())),
                                                     indent=1) + "\n")
        print(f"wrote {code_similarity.CORPUS}")


if __name__ == "__main__":
    main()
