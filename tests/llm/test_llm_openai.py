"""The openai backend against a real local HTTP server serving the real 135M model.

Two servers: one continues a final assistant message when asked (vLLM), the other
ignores the request to (llama.cpp). tests/llm/test_llm_llama_cpp.py runs llama.cpp.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from selfalign.llm.base import SamplingParams, chat_template_text
from selfalign.llm.config import ModelConfig
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


PREFILLED = [*CHAT, {"role": "assistant", "content": "```python\ndef add(a, b):\n"}]


def post(server, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        server.base_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def paths(server) -> list[str]:
    return [path for path, _ in server.requests]


def test_the_test_server_continues_only_when_asked(server, deaf_server, real_llm):
    """Like vLLM: a final assistant message is a finished turn unless the request says to
    continue it; the deaf server ignores the request, like llama.cpp."""
    body = {"model": "m", "messages": PREFILLED, "max_tokens": 12, "temperature": 0}
    continued = real_llm.generate([PREFILLED], GREEDY)[0][0].text
    new_turn_text = real_llm.tokenizer.apply_chat_template(
        PREFILLED, add_generation_prompt=True, tokenize=False
    )
    assert new_turn_text.rstrip().endswith("<|im_start|>assistant")
    new_turn = real_llm.generate([new_turn_text], GREEDY)[0][0].text
    assert new_turn != continued

    def content(srv, **extra) -> str:
        return post(srv, "/chat/completions", {**body, **extra})["choices"][0]["message"]["content"]

    asked = {"continue_final_message": True, "add_generation_prompt": False}
    assert content(server) == new_turn
    assert content(server, **asked) == continued
    assert content(deaf_server, **asked) == new_turn
    with pytest.raises(urllib.error.HTTPError, match="400"):
        post(server, "/chat/completions", {**body, "continue_final_message": True})


def test_auto_prefill_trusts_a_server_that_continues(server, real_llm):
    llm = client(server, tokenizer=real_llm.tokenizer)
    server.requests.clear()
    remote = llm.generate([PREFILLED], GREEDY)
    assert llm.prefill_strategy() == "server"
    # The probe on both endpoints, then the prompt itself as a chat.
    assert paths(server) == ["/v1/chat/completions", "/v1/completions", "/v1/chat/completions"]
    assert server.requests[-1][1]["continue_final_message"] is True
    assert remote[0][0].text == real_llm.generate([PREFILLED], GREEDY)[0][0].text
    # Continued, not answered afresh: the opening of the answer is not repeated.
    assert remote[0][0].text.strip() and "def add(a, b)" not in remote[0][0].text
    # Decided once per backend instance.
    llm.generate([PREFILLED], GREEDY)
    assert len(server.requests) == 4


def test_a_deaf_server_loses_the_prefill_unless_the_template_is_rendered_here(
    deaf_server, real_llm
):
    continued = real_llm.generate([PREFILLED], GREEDY)[0][0].text
    trusting = client(deaf_server, prefill="server").generate([PREFILLED], GREEDY)
    # What llama.cpp did to every answer prefix: a fresh answer, the prefix lost.
    assert trusting[0][0].text != continued

    llm = client(deaf_server, tokenizer=real_llm.tokenizer)
    deaf_server.requests.clear()
    remote = llm.generate([PREFILLED, CHAT], GREEDY)
    assert llm.prefill_strategy() == "template"
    assert remote[0][0].text == continued
    assert remote[1][0].text == real_llm.generate([CHAT], GREEDY)[0][0].text
    sent = deaf_server.requests[2:]
    by_path = {path: body for path, body in sent}
    assert sorted(by_path) == ["/v1/chat/completions", "/v1/completions"]  # chat stays chat
    assert by_path["/v1/completions"]["prompt"] == chat_template_text(real_llm.tokenizer, PREFILLED)


def test_template_prefill_needs_no_probe_and_auto_needs_a_tokenizer(deaf_server, real_llm):
    llm = client(deaf_server, prefill="template", tokenizer=real_llm.tokenizer)
    deaf_server.requests.clear()
    llm.generate([PREFILLED], GREEDY)
    assert paths(deaf_server) == ["/v1/completions"]
    blind = client(deaf_server)
    with pytest.raises(OpenAIError, match="--tokenizer"):
        blind.generate([PREFILLED], GREEDY)
    # Prompts without a prefill never need one.
    assert blind.generate([CHAT], SamplingParams(temperature=0, max_tokens=2))[0][0].text


def test_the_tokenizer_is_loaded_by_name_from_the_config(deaf_server):
    cfg = ModelConfig(backend="openai", base_url=deaf_server.base_url, model="embedded")
    assert cfg.chat_tokenizer() == "embedded"
    llm = OpenAILLM.from_config(cfg)
    assert llm.tokenizer is None  # loaded on first need only
    llm.generate([PREFILLED], SamplingParams(temperature=0, max_tokens=2))
    assert llm.prefill_strategy() == "template" and llm.chat_tokenizer().chat_template


def test_samples_asked_again_get_new_seeds(server):
    """A server that caps `n` (llama.cpp answers one choice) must not send one sample n times."""

    class OneChoice(OpenAILLM):
        def _request(self, prompt, params, n):
            return super()._request(prompt, params, 1)

    llm = OneChoice(server.base_url, "smollm2", backoff_s=0.01)
    server.requests.clear()
    out = llm.generate(["# one\n"], SamplingParams(temperature=1.0, max_tokens=4, n=3, seed=7))
    assert len(out[0]) == 3
    assert [body["seed"] for _, body in server.requests] == [7, 8, 9]


def test_a_gguf_file_names_its_chat_template(real_llm):
    """`--tokenizer path/to/model.gguf`: what a llama.cpp user has at hand."""
    from selfalign.llm.embedded import embedded_gguf_path
    from selfalign.llm.openai_backend import load_chat_tokenizer

    tokenizer = load_chat_tokenizer(str(embedded_gguf_path()))
    assert chat_template_text(tokenizer, PREFILLED) == chat_template_text(
        real_llm.tokenizer, PREFILLED
    )
    with pytest.raises(OpenAIError, match="--tokenizer"):
        load_chat_tokenizer("/nonexistent/model.gguf")


def test_the_repetition_penalty_is_sent_under_both_servers_names(server):
    """vLLM reads `repetition_penalty`, llama.cpp `repeat_penalty`; 1.0 sends neither."""
    llm = client(server)
    server.requests.clear()
    llm.generate(["# one\n"], SamplingParams(temperature=0.0, max_tokens=2, repetition_penalty=1.3))
    llm.generate(["# one\n"], SamplingParams(temperature=0.0, max_tokens=2))
    first, second = (body for _, body in server.requests)
    assert first["repetition_penalty"] == first["repeat_penalty"] == 1.3
    assert "repetition_penalty" not in second and "repeat_penalty" not in second
