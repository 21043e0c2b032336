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
