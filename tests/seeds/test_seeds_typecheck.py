"""The pyright pool: per-file verdicts from one process, and split-and-retry on timeouts."""

from __future__ import annotations

from selfalign.seeds.typecheck import typecheck

GOOD = "import re\n\n\ndef words(text: str) -> list[str]:\n    return re.findall(r'\\w+', text)\n"
BAD = "def add_one(value: int) -> int:\n    return str(value + 1)\n"
UNDEFINED = "def scaled(value: float) -> float:\n    return value * FACTOR\n"
MISSING = "import not_a_module_anywhere\n\n\ndef f(x):\n    return not_a_module_anywhere.g(x)\n"


def test_each_file_gets_its_own_verdict() -> None:
    results = typecheck([GOOD, BAD, UNDEFINED, MISSING, GOOD], batch_size=3, workers=2)
    assert [r.reason for r in results] == [None, "pyright", "pyright", "pyright", None]
    assert "reportReturnType" in results[1].detail
    assert "FACTOR" in results[2].detail
    assert "reportMissingImports" in results[3].detail


def test_a_batch_that_times_out_is_split_down_to_single_files() -> None:
    # No pyright starts in a millisecond: every batch times out, is halved, and
    # each file ends with its own verdict instead of the batch vanishing.
    results = typecheck([GOOD, BAD, GOOD], batch_size=3, workers=1, timeout_s=0.001)
    assert [r.reason for r in results] == ["pyright_timeout"] * 3
