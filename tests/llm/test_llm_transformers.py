"""The transformers backend with the real embedded 135M model on CPU."""

from __future__ import annotations

import pytest

from selfalign.llm.base import SamplingParams

pytestmark = pytest.mark.slow

CHATS = [
    [{"role": "user", "content": "Write a Python function that reverses a string."}],
    [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What does the Python keyword `yield` do? Explain in detail."},
    ],
]


def test_batched_greedy_equals_one_at_a_time(real_llm):
    """Left padding must not change what a prompt generates."""
    params = SamplingParams(temperature=0.0, max_tokens=10)
    batched = real_llm.generate(CHATS + ["def fib(n):"], params)
    alone = [real_llm.generate([p], params)[0] for p in CHATS + ["def fib(n):"]]
    assert [r[0].text for r in batched] == [r[0].text for r in alone]
    assert all(r[0].text.strip() for r in batched)


def test_n_samples_order_lengths_and_seed(real_llm):
    params = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=6, n=3, seed=7)
    first = real_llm.generate(CHATS, params)
    assert [len(row) for row in first] == [3, 3]
    for row in first:
        for g in row:
            assert g.finish_reason in ("stop", "length") and 1 <= g.completion_tokens <= 6
    assert first == real_llm.generate(CHATS, params)  # same seed, same samples
    texts = {g.text for row in first for g in row}
    assert len(texts) > 1


def test_stop_sequences_cut_the_text_and_finish_with_stop(real_llm):
    prompt = "# Python\ndef add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n"
    free = real_llm.generate([prompt], SamplingParams(temperature=0, max_tokens=40))[0][0]
    stop = "\n"
    assert stop in free.text.strip("\n")  # the unconstrained answer runs past a newline
    cut = real_llm.generate([prompt], SamplingParams(temperature=0, max_tokens=40, stop=(stop,)))
    gen = cut[0][0]
    assert stop not in gen.text and gen.finish_reason == "stop"
    assert free.text.startswith(gen.text)
    assert gen.completion_tokens < 40


def test_max_tokens_reports_length(real_llm):
    gen = real_llm.generate([CHATS[1]], SamplingParams(temperature=0, max_tokens=3))[0][0]
    assert gen.finish_reason == "length" and gen.completion_tokens == 3
