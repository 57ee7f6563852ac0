"""Code similarity needs evidence: two minimal textbook solutions that share only a common choice (axis=1) are
not copies (an instructor's hunt, 2026-12-06: they scored 1.00), while the disguised copies of the benchmark
corpus still are."""

from pathlib import Path

from vae_lab.course import code_similarity

CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "exercise_corpus"
FIRST = '''from keras import ops
def reparameterize(z_mean, z_log_var, epsilon):
    return z_mean + ops.exp(0.5 * z_log_var) * epsilon
def kl_divergence(z_mean, z_log_var):
    return -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
def reconstruction_loss(x, x_decoded):
    p = ops.clip(x_decoded, 1e-7, 1 - 1e-7)
    return -ops.sum(x * ops.log(p) + (1 - x) * ops.log(1 - p), axis=1)
'''
SECOND = '''from keras import ops
def reparameterize(mu, logvar, eps):
    sigma = ops.exp(logvar / 2)
    return mu + sigma * eps
def kl_divergence(mu, logvar):
    return 0.5 * ops.sum(ops.exp(logvar) + ops.square(mu) - 1 - logvar, axis=1)
def reconstruction_loss(x, xd):
    xd = ops.clip(xd, 1e-7, 1 - 1e-7)
    return -ops.sum(x * ops.log(xd) + (1 - x) * ops.log(1 - xd), axis=1)
'''


def test_two_minimal_textbook_solutions_are_not_flagged():
    assert code_similarity.similar_pairs({"a": FIRST, "b": SECOND}) == []


def test_disguised_copies_with_enough_choices_of_their_own_are_still_flagged():
    original = (CORPUS / "independent" / "c02.py").read_text()
    renamed = (CORPUS / "edited" / "c02_renamed.py").read_text()
    pairs = code_similarity.similar_pairs({"a": original, "b": renamed, "c": FIRST})
    assert [(first, second) for first, second, _ in pairs] == [("a", "b")] and pairs[0][2] >= 0.99


def test_a_copy_with_its_helper_renamed_is_still_a_copy():
    # the helper's name was part of every choice inside it, so renaming _safe_log removed the pair (a reviewer,
    # 2026-12-06)
    source = (CORPUS / "independent" / "c02.py").read_text()
    with_helper = source + "\n\ndef _safe_log(p):\n    return ops.log(ops.clip(p, 1e-6, 1.0 - 1e-6))\n"
    with_helper = with_helper.replace("def reconstruction_loss(x, x_decoded):",
                                      "def reconstruction_loss(x, x_decoded):\n    _unused = _safe_log(x_decoded)")
    renamed = with_helper.replace("_safe_log", "_lg")
    assert code_similarity.features(with_helper) == code_similarity.features(renamed)
