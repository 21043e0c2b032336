"""Exact and near-duplicate detection over (id, text) items; shared by seeds and selection.

Both functions return ``{dropped_id: kept_id}``: the first occurrence in input
order is kept, so the result is deterministic for a given input order.

Near-dedup follows the reference pipeline: MinHash over 5-grams, 250 permutations,
LSH at Jaccard threshold 0.7. What a gram is made of is explicit (``shingles=``):
``"words"`` (the reference settings, for natural-language text: lower-cased word
runs) or ``"code"`` (Python tokens, as clone detectors compare code: comments and
layout dropped, every identifier that is not a keyword, a builtin or an attribute name
replaced by one placeholder, so the same function with its variables renamed is a
near-duplicate; code that does not tokenize falls back to a regex tokenizer).

Signatures are computed in batches with numpy instead of one ``MinHash.update``
call per shingle: each distinct word (or token) is hashed once, a shingle's token is
a position-weighted sum of its words' hashes (so shingles never exist as strings),
and every permutation of every token of a whole batch is one array operation. The
values are equal to datasketch's (default ``affine32`` scheme, same seed) for the
same tokens, which a test checks.
LSH candidates are confirmed by the estimated Jaccard similarity, so a bucket
collision alone never drops an item.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import keyword
import re
import tokenize
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from typing import Literal

import numpy as np

ShingleMode = Literal["words", "code"]
SHINGLE_MODES: tuple[ShingleMode, ...] = ("words", "code")

_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_MAX32 = np.uint32(0xFFFFFFFF)
# Rows of the (shingles x permutations) matrix computed at once: bounds memory
# (16384 x 250 x 4 bytes = 16 MiB) whatever the batch holds.
_CHUNK_ROWS = 16384


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space and strip both ends."""
    return _WS.sub(" ", text).strip()


def exact_duplicates(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Map each item whose whitespace-normalised text was already seen to the first item's id."""
    first: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for item_id, text in items:
        key = hashlib.sha256(normalise_whitespace(text).encode("utf-8")).hexdigest()
        kept = first.setdefault(key, item_id)
        if kept != item_id:
            dropped[item_id] = kept
    return dropped


class _WordHashes(dict[str, int]):
    """Word -> 64-bit hash, computed once per distinct word (then looked up in C by ``map``)."""

    def __missing__(self, word: str) -> int:
        value = int.from_bytes(
            hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little"
        )
        self[word] = value
        return value


_VOCAB = _WordHashes()
# Odd multipliers, one per position in the n-gram: the shingle hash is
# sum(word_hash[i + k] * _POSITION[k]) mod 2**64, so word order matters.
_POSITION = np.random.RandomState(20240607).randint(0, 1 << 62, 64, dtype=np.uint64) * np.uint64(
    2
) + np.uint64(1)
_MIX64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))


IDENTIFIER = "\u27e8id\u27e9"
"""The placeholder every normalised identifier becomes (no Python token looks like it)."""
_KEEP_NAMES = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
_SKIP_TOKENS = frozenset({
    tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
    tokenize.ENDMARKER, tokenize.ENCODING,
})
_CODE_TOKEN = re.compile(
    r"""[A-Za-z_][A-Za-z0-9_]*|\d[\w.]*|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|#[^\n]*|\S"""
)


def _normalise(names: list[str]) -> list[str]:
    """Identifiers -> the placeholder, unless a keyword, a builtin or after a ``.``."""
    out: list[str] = []
    previous = ""
    for tok in names:
        if (
            (tok[0].isalpha() or tok[0] == "_")
            and tok.isidentifier()
            and tok not in _KEEP_NAMES
            and previous != "."
        ):
            out.append(IDENTIFIER)
        else:
            out.append(tok)
        previous = tok
    return out


def code_tokens(text: str) -> list[str]:
    """The token stream near-dedup compares for code (see the module docstring)."""
    try:
        raw = [
            t.string
            for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type not in _SKIP_TOKENS
        ]
    except (tokenize.TokenError, SyntaxError, ValueError):
        # Not Python (or cut short): a regex tokenizer still separates names, numbers,
        # strings and operators, without comments.
        raw = [t for t in _CODE_TOKEN.findall(text) if not t.startswith("#")]
    return _normalise(raw)


def _tokens(text: str, mode: ShingleMode) -> list[str]:
    if mode == "words":
        return _WORD.findall(text.lower())
    if mode == "code":
        return code_tokens(text)
    raise ValueError(f"shingles must be one of {', '.join(SHINGLE_MODES)}, got {mode!r}")


def _word_ids(text: str, mode: ShingleMode = "words") -> np.ndarray:
    if len(_VOCAB) > 2_000_000:  # bound memory on huge corpora; hashes do not change
        _VOCAB.clear()
    words = _tokens(text, mode)
    return np.fromiter(map(_VOCAB.__getitem__, words), dtype=np.uint64, count=len(words))


def _fold(acc: np.ndarray) -> np.ndarray:
    # MurmurHash3's 64-bit finaliser, then the high 32 bits: the shingle's token.
    shift, m1, m2 = _MIX64
    acc = acc ^ (acc >> shift)
    acc = acc * m1
    acc = acc ^ (acc >> shift)
    acc = acc * m2
    acc = acc ^ (acc >> shift)
    return (acc >> np.uint64(32)).astype(np.uint32)


def _gram_hashes(ids: np.ndarray, ngram: int) -> np.ndarray:
    """Hash of every window of ``ngram`` consecutive ids (one window when there are fewer)."""
    n = min(ngram, len(ids))
    if n == 0:
        return np.empty(0, dtype=np.uint32)
    if ngram > len(_POSITION):
        raise ValueError(f"ngram must be at most {len(_POSITION)}, got {ngram}")
    count = len(ids) - n + 1
    acc = np.zeros(count, dtype=np.uint64)
    for k in range(n):
        acc += ids[k : k + count] * _POSITION[k]
    return _fold(acc)


def shingle_hashes(text: str, ngram: int, shingles: ShingleMode = "words") -> np.ndarray:
    """The tokens MinHash sees for ``text``: one uint32 hash per ``ngram``-gram.

    With ``shingles="words"`` the grams are of lower-cased ``\\w+`` runs; with
    ``"code"``, of :func:`code_tokens`. A text shorter than ``ngram`` tokens is one
    shingle, a text without tokens has none. Repeated shingles repeat (the minimum
    does not care).
    """
    return _gram_hashes(_word_ids(text, shingles), ngram)


def shingles(text: str, ngram: int, shingles: ShingleMode = "words") -> list[str]:
    """The distinct n-grams of ``text`` as strings (for reading; MinHash uses their hashes)."""
    words = _tokens(text, shingles)
    if len(words) < ngram:
        return [" ".join(words)] if words else []
    return sorted({" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)})


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The permutation parameters (a, b) datasketch's ``affine32`` scheme draws for ``seed``."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(hv: np.ndarray) -> np.ndarray:
    # MurmurHash3's finaliser, as datasketch pre-mixes every input hash.
    hv = hv ^ (hv >> np.uint32(16))
    hv = hv * np.uint32(0x85EBCA6B)
    hv = hv ^ (hv >> np.uint32(13))
    hv = hv * np.uint32(0xC2B2AE35)
    return hv ^ (hv >> np.uint32(16))


def _signatures_serial(
    texts: Sequence[str], num_perm: int, ngram: int, seed: int, mode: ShingleMode = "words"
) -> np.ndarray:
    a, b = permutations(num_perm, seed)
    out = np.full((len(texts), num_perm), _MAX32, dtype=np.uint32)
    per_text = [shingle_hashes(text, ngram, mode) for text in texts]
    lengths = np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text))
    if not lengths.sum():
        return out
    mixed = _fmix32(np.concatenate(per_text))
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    for start in range(0, len(mixed), _CHUNK_ROWS):
        rows = mixed[start : start + _CHUNK_ROWS]
        who = owner[start : start + _CHUNK_ROWS]
        # uint32 arithmetic wraps: that wrap is the "mod 2**32" of the affine scheme.
        # Permutations along rows, tokens along columns: the reduction below
        # then runs over contiguous memory, about twice as fast as the transpose.
        values = np.multiply.outer(a, rows)
        np.add(values, b[:, None], out=values)
        # Tokens are grouped by owner (texts were walked in order), so a
        # segmented minimum over each owner's run is one reduceat.
        starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        mins = np.minimum.reduceat(values, starts, axis=1).T
        ids = who[starts]
        out[ids] = np.minimum(out[ids], mins)
    return out


def _signatures_job(args: tuple[list[str], int, int, int, ShingleMode]) -> np.ndarray:
    return _signatures_serial(*args)


def minhash_signatures(
    texts: Sequence[str],
    num_perm: int,
    ngram: int,
    seed: int = 1,
    workers: int = 1,
    shingles: ShingleMode = "words",
) -> np.ndarray:
    """MinHash signatures of ``texts`` as a ``(len(texts), num_perm)`` uint32 array.

    Row ``i`` equals datasketch's ``MinHash(num_perm, seed=seed, hashfunc=int)`` (default
    scheme ``affine32``) updated with ``shingle_hashes(texts[i], ngram, shingles)``; a text
    without words keeps datasketch's empty value (all ``2**32 - 1``). ``workers > 1``
    splits the texts over worker processes.
    """
    if num_perm < 1:
        raise ValueError(f"num_perm must be positive, got {num_perm}")
    if ngram < 1:
        raise ValueError(f"ngram must be positive, got {ngram}")
    if shingles not in SHINGLE_MODES:
        raise ValueError(f"shingles must be one of {', '.join(SHINGLE_MODES)}, got {shingles!r}")
    texts = list(texts)
    if workers <= 1 or len(texts) < 2 * workers:
        return _signatures_serial(texts, num_perm, ngram, seed, shingles)
    step = -(-len(texts) // workers)
    jobs = [
        (texts[i : i + step], num_perm, ngram, seed, shingles)
        for i in range(0, len(texts), step)
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_signatures_job, jobs))
    return np.concatenate(parts, axis=0)


# numpy 2 renamed trapz to trapezoid; the project allows numpy >= 1.26.
_trapezoid = getattr(np, "trapezoid", None) or getattr(np, "trapz")  # noqa: B009


@lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising false positives + false negatives, as datasketch's LSH does.

    Same criterion as ``datasketch.lsh._optimal_param`` (equal weights), integrated
    with numpy instead of scipy: importing ``datasketch.lsh`` (scipy) costs seconds.
    """
    low = np.linspace(0.0, threshold, 1001)
    high = np.linspace(threshold, 1.0, 1001)
    best, best_error = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = _trapezoid(1.0 - (1.0 - low**rows) ** bands, low)
            fn = _trapezoid((1.0 - high**rows) ** bands, high)
            error = 0.5 * fp + 0.5 * fn
            if error < best_error:
                best, best_error = (bands, rows), error
    return best


def near_duplicates(
    items: Sequence[tuple[str, str]],
    *,
    num_perm: int = 250,
    threshold: float = 0.7,
    ngram: int = 5,
    workers: int = 1,
    shingles: ShingleMode = "words",
) -> dict[str, str]:
    """Map each near-duplicate item to the id of the first kept item it resembles.

    ``shingles="code"`` compares Python code as token grams with identifiers
    normalised (a renamed clone is a duplicate); ``"words"`` is for natural language.

    Items are visited in input order; an item whose estimated Jaccard similarity
    with an already kept item (found through LSH buckets) reaches ``threshold``
    is dropped and mapped to the earliest such kept item; otherwise it is kept.
    Items without any word are never matched.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not items:
        return {}
    ids = [item_id for item_id, _ in items]
    sigs = minhash_signatures(
        [text for _, text in items], num_perm, ngram, workers=workers, shingles=shingles
    )
    bands, rows = lsh_params(threshold, num_perm)
    empty = np.all(sigs == _MAX32, axis=1)
    buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
    dropped: dict[str, str] = {}
    for index in range(len(items)):
        if empty[index]:
            continue
        sig = sigs[index]
        keys = [sig[band * rows : (band + 1) * rows].tobytes() for band in range(bands)]
        candidates: set[int] = set()
        for band, key in enumerate(keys):
            candidates.update(buckets[band].get(key, ()))
        match = None
        for other in sorted(candidates):
            if float(np.mean(sigs[other] == sig)) >= threshold:
                match = other
                break
        if match is not None:
            dropped[ids[index]] = ids[match]
            continue
        for band, key in enumerate(keys):
            buckets[band].setdefault(key, []).append(index)
    return dropped
