"""The openai backend against a real local HTTP server serving the real 135M model."""

from __future__ import annotations

import pytest

from selfalign.llm.base import SamplingParams
from selfalign.llm.openai_backend import OpenAIError, OpenAILLM

pytestmark = pytest.mark.slow

CHAT = [
    {"role": "system", "content": "You are a coding assistant."},
    {"role": "user", "content": "Write a Python function that adds two numbers."},
]
GREEDY = SamplingParams(temperature=0.0, max_tokens=12)


def client(server, **kwargs) -> OpenAILLM:
    kwargs.setdefault("backoff_s", 0.01)
    return OpenAILLM(server.base_url, "smollm2", **kwargs)


def test_chat_and_completion_match_the_local_backend(server, real_llm):
    prompts = [CHAT, "def add(a, b):\n    return"]
    remote = client(server, concurrency=2).generate(prompts, GREEDY)
    local = real_llm.generate(prompts, GREEDY)
    assert [[g.text for g in row] for row in remote] == [[g.text for g in row] for row in local]
    assert remote[0][0].text.strip() and remote[0][0].finish_reason == "length"
    assert remote[0][0].completion_tokens == 12


def test_n_samples_and_input_order_are_kept(server):
    prompts = ["# one\n", "# two\n", "# three\n"]
    out = client(server, concurrency=3).generate(
        prompts, SamplingParams(temperature=0.8, max_tokens=4, n=2, seed=1)
    )
    assert [len(row) for row in out] == [2, 2, 2]
    single = client(server).generate(["# two\n"], SamplingParams(temperature=0, max_tokens=4))
    greedy = client(server).generate(prompts, SamplingParams(temperature=0, max_tokens=4))
    assert greedy[1][0].text == single[0][0].text


def test_retries_429_and_5xx_then_succeeds(server):
    llm = client(server, max_retries=3)
    server.failures[:] = [429, 500, 503]
    out = llm.generate(["x = 1\n"], SamplingParams(temperature=0, max_tokens=2))
    assert len(out[0]) == 1 and llm.requests_sent == 4 and server.failures == []


def test_gives_up_after_max_retries_and_does_not_retry_client_errors(server):
    llm = client(server, max_retries=1)
    server.failures[:] = [500, 502, 500]
    with pytest.raises(OpenAIError, match="failed after 2 tries"):
        llm.generate(["x"], SamplingParams(max_tokens=2))
    assert llm.requests_sent == 2
    server.failures[:] = []
    bad = client(server, max_retries=3)
    server.failures[:] = [400]
    with pytest.raises(OpenAIError, match="HTTP 400"):
        bad.generate(["x"], SamplingParams(max_tokens=2))
    assert bad.requests_sent == 1


def test_unreachable_server_fails_with_a_hint():
    llm = OpenAILLM("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.01, timeout_s=2)
    with pytest.raises(OpenAIError, match="--base-url"):
        llm.generate(["x"], SamplingParams(max_tokens=2))


def test_a_prefilled_chat_continues_the_assistant_message(server, real_llm):
    prompt = [*CHAT, {"role": "assistant", "content": "```python\ndef add(a, b):\n"}]
    remote = client(server).generate([prompt], GREEDY)
    local = real_llm.generate([prompt], GREEDY)
    assert remote[0][0].text == local[0][0].text
    # Continued, not answered afresh: the opening of the answer is not repeated.
    assert remote[0][0].text.strip() and "def add(a, b)" not in remote[0][0].text
