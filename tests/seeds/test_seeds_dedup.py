"""Exact and near-dedup, and the batched MinHash against datasketch's own result."""

from __future__ import annotations

import random

import numpy as np
from datasketch import MinHash

from selfalign.dedup import (
    exact_duplicates,
    lsh_params,
    minhash_signatures,
    near_duplicates,
    normalise_whitespace,
    shingle_hashes,
    shingles,
)

BODY = """def normalise_scores(values, floor):
    '''Scale a list of scores so that the largest becomes one and clip below floor.'''
    if not values:
        return []
    largest = max(values)
    if largest == 0:
        return [0.0 for _ in values]
    scaled = [value / largest for value in values]
    return [value if value >= floor else floor for value in scaled]
"""


def _texts() -> list[str]:
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 120))) for _ in range(25)]
    return [*texts, "", "!!!", "two words", BODY]


def test_batched_signatures_equal_datasketch() -> None:
    texts = _texts()
    sigs = minhash_signatures(texts, num_perm=250, ngram=5, seed=1)
    assert sigs.shape == (len(texts), 250)
    for text, row in zip(texts, sigs, strict=True):
        reference = MinHash(num_perm=250, seed=1, hashfunc=int)
        reference.update_batch(shingle_hashes(text, 5).tolist())
        assert np.array_equal(reference.hashvalues, row), text[:40]


def test_shingle_tokens_follow_word_ngrams() -> None:
    assert len(shingle_hashes("a b c d e f", 5)) == 2 == len(shingles("a b c d e f", 5))
    assert len(shingle_hashes("a b", 5)) == 1 and len(shingle_hashes("!!", 5)) == 0
    # Case and punctuation are normalised away; word order is not.
    assert (shingle_hashes("A, b; c d e", 5) == shingle_hashes("a b c d e", 5)).all()
    assert (shingle_hashes("b a c d e", 5) != shingle_hashes("a b c d e", 5)).all()


def test_signatures_with_workers_equal_serial() -> None:
    texts = _texts()
    serial = minhash_signatures(texts, num_perm=64, ngram=3, seed=3)
    parallel = minhash_signatures(texts, num_perm=64, ngram=3, seed=3, workers=2)
    assert np.array_equal(serial, parallel)


def test_exact_duplicates_keep_first_and_ignore_whitespace() -> None:
    items = [
        ("a", "x = 1\ny = 2"),
        ("b", "x = 1\n\n   y = 2  "),
        ("c", "x = 2"),
        ("d", "x = 1 y = 2"),
    ]
    assert exact_duplicates(items) == {"b": "a", "d": "a"}
    assert normalise_whitespace("  a \n\t b ") == "a b"


def test_near_duplicates_catch_a_rename_and_keep_first() -> None:
    renamed = BODY.replace("normalise_scores", "rescale_all_scores")
    other = "def parse_header(line):\n    '''Split an HTTP header line into name and value.'''\n"
    items = [("first", BODY), ("other", other), ("renamed", renamed), ("again", BODY + "\n")]
    assert near_duplicates(items) == {"renamed": "first", "again": "first"}
    # Reversed input order keeps the other member of the pair.
    assert near_duplicates(list(reversed(items)))["first"] == "again"
    assert near_duplicates([("e1", ""), ("e2", "")]) == {}


def test_lsh_params_match_datasketch() -> None:
    from datasketch.lsh import _optimal_param

    for threshold, num_perm in ((0.7, 250), (0.85, 128)):
        assert lsh_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


RENAMED = '''def rescale(scores, minimum):
    """Scale a list of scores so that the largest becomes one and clip below floor."""
    if not scores:
        return []
    top = max(scores)
    if top == 0:
        return [0.0 for _ in scores]
    ratios = [s / top for s in scores]
    return [s if s >= minimum else minimum for s in ratios]
'''
DIFFERENT = [
    '''def parse_header(line):
    """Split an HTTP header line into a lower-cased name and a stripped value."""
    name, sep, value = line.partition(":")
    if not sep:
        raise ValueError(f"not a header: {line!r}")
    return name.strip().lower(), value.strip()
''',
    '''def moving_average(values, window):
    """Averages of each run of `window` consecutive values."""
    if window <= 0:
        raise ValueError("window must be positive")
    out = []
    total = sum(values[:window])
    for i in range(window, len(values) + 1):
        out.append(total / window)
        if i < len(values):
            total += values[i] - values[i - window]
    return out
''',
    '''def normalise_path(parts, root):
    """Join path parts below root, dropping empty parts and resolving '..'."""
    stack = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if stack:
                stack.pop()
            continue
        stack.append(part)
    return root + "/".join(stack)
''',
]


def test_renamed_clone_is_a_code_duplicate_but_not_a_word_duplicate() -> None:
    items = [("original", BODY), ("clone", RENAMED)]
    # Every variable and parameter renamed: the word grams share little ...
    assert near_duplicates(items, shingles="words") == {}
    # ... the token stream with identifiers normalised is the same but for a docstring.
    assert near_duplicates(items, shingles="code") == {"clone": "original"}


def test_different_functions_are_not_code_duplicates() -> None:
    items = [("body", BODY), *((f"other{i}", text) for i, text in enumerate(DIFFERENT))]
    assert near_duplicates(items, shingles="code") == {}


def test_code_tokens_normalise_identifiers_only() -> None:
    from selfalign.dedup import IDENTIFIER, code_tokens

    toks = code_tokens("def f(x):  # note\n    return len(x.strip()) + 1\n")
    assert toks == ["def", IDENTIFIER, "(", IDENTIFIER, ")", ":", "return", "len", "(",
                    IDENTIFIER, ".", "strip", "(", ")", ")", "+", "1"]
    # Code that does not tokenize still gives names, strings and operators.
    assert code_tokens("def g(a:\n  'open") == ["def", IDENTIFIER, "(", IDENTIFIER, ":", "'",
                                               "open"]


def test_code_signatures_equal_datasketch_and_mode_is_checked() -> None:
    texts = [BODY, RENAMED, *DIFFERENT, "", "x = 1"]
    sigs = minhash_signatures(texts, num_perm=128, ngram=5, shingles="code")
    for text, row in zip(texts, sigs, strict=True):
        reference = MinHash(num_perm=128, seed=1, hashfunc=int)
        reference.update_batch(shingle_hashes(text, 5, shingles="code").tolist())
        assert np.array_equal(reference.hashvalues, row)
    assert shingles("a = b + c", 5, shingles="code") == shingles("x = y + z", 5, shingles="code")
    assert shingles("a = b + c", 5) != shingles("x = y + z", 5)
    import pytest

    with pytest.raises(ValueError, match="shingles must be one of"):
        minhash_signatures(["x"], num_perm=8, ngram=2, shingles="lines")  # type: ignore[arg-type]

