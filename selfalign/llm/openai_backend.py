"""The openai backend: any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, ...).

Chat prompts go to `/chat/completions`, text prompts to `/completions`. Requests run
on a bounded thread pool; 429, 5xx and connection errors are retried with
exponential backoff (honouring `Retry-After`), other errors fail at once with the
server's message. Only the standard library is used, and transformers for the
tokenizer when prefilled prompts are rendered locally.

A chat prompt ending in a partial assistant message (a prefill) must be continued,
not answered afresh. vLLM and SGLang do that when asked (`continue_final_message`);
llama.cpp's server ignores the flag and opens a new assistant turn, which silently
lost every answer prefix. The `prefill` strategy decides: `server` trusts the flag,
`template` renders the served model's chat template locally and sends the text to
`/completions`, `auto` probes the server once (see `detect_prefill`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfalign.errors import UserError
from selfalign.llm.base import (
    Generation,
    Message,
    Prompt,
    SamplingParams,
    chat_template_text,
    is_prefill,
)

if TYPE_CHECKING:
    from selfalign.llm.config import ModelConfig

logger = logging.getLogger(__name__)

# OpenAI's API accepts at most four stop sequences.
MAX_STOP = 4

SERVER, TEMPLATE, AUTO = "server", "template", "auto"

# The probe of `detect_prefill`: a continuation of this message is "five, six, ..."
# while a fresh turn starts over at "One", so the two cannot be confused.
PROBE: list[Message] = [
    {"role": "user", "content": "Count from one to twenty in words, separated by commas."},
    {"role": "assistant", "content": "One, two, three, four,"},
]
PROBE_PARAMS = SamplingParams(temperature=0.0, max_tokens=8, seed=0)


class OpenAIError(UserError, RuntimeError):
    """The server refused a request, or kept failing after every retry."""


class RequestRefused(OpenAIError):
    """The server answered a 4xx status (not retried): the request itself is wrong for it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenAILLM:
    """`LLM` over an OpenAI-compatible HTTP API."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 300.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        prefill: str = AUTO,
        tokenizer: Any = None,
        tokenizer_name: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        if prefill not in (AUTO, SERVER, TEMPLATE):
            raise ValueError(f"prefill must be auto, server or template, got {prefill!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.prefill = prefill
        """The strategy asked for; `prefill_strategy()` resolves `auto` to the other two."""
        self.tokenizer = tokenizer
        """The chat template's tokenizer; loaded from `tokenizer_name` on first need."""
        self.tokenizer_name = tokenizer_name
        self.trust_remote_code = trust_remote_code
        self.requests_sent = 0
        """Every HTTP request made, retries included."""
        self._resolved: str | None = None if prefill == AUTO else prefill
        # Re-entrant: the probe renders with the tokenizer, which loads under the lock.
        self._lock = threading.RLock()

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> OpenAILLM:
        return cls(
            cfg.base_url,
            cfg.model,
            api_key=os.environ.get(cfg.api_key_env) or None,
            concurrency=cfg.concurrency,
            timeout_s=cfg.request_timeout_s,
            max_retries=cfg.max_retries,
            prefill=cfg.prefill,
            tokenizer_name=cfg.chat_tokenizer(),
            trust_remote_code=cfg.trust_remote_code,
        )

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        # Rendered here, in one thread: the tokenizer is shared and the probe runs once.
        wire = [self.wire_prompt(p) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(wire))) as pool:
            return list(pool.map(lambda p: self._generate_one(p, params), wire))

    def wire_prompt(self, prompt: Prompt) -> Prompt:
        """What is sent for ``prompt``: text goes to /completions, messages to /chat/completions.

        A prefilled chat prompt becomes its chat template's text under the `template`
        strategy, so the server continues the assistant message whatever it does with
        `continue_final_message`.
        """
        if isinstance(prompt, str) or not is_prefill(prompt):
            return prompt
        if self.prefill_strategy() == SERVER:
            return prompt
        return self.render(prompt)

    def render(self, messages: list[Message]) -> str:
        """A chat prompt as the served model's template renders it, for /completions."""
        tokenizer = self.chat_tokenizer()
        text = chat_template_text(tokenizer, messages)
        bos = getattr(tokenizer, "bos_token", None)
        if bos and text.startswith(bos) and _adds_bos(tokenizer):
            # The server tokenizes completion text with the special tokens it adds
            # itself (vLLM, llama.cpp); a template's own BOS would then come twice.
            text = text[len(bos) :]
        return text

    def chat_tokenizer(self) -> Any:
        """The tokenizer whose chat template renders prefilled prompts (loaded once)."""
        with self._lock:
            if self.tokenizer is None:
                if not self.tokenizer_name:
                    raise OpenAIError(
                        "a prefilled chat prompt (an answer prefix) needs the served model's "
                        f"chat template, and no tokenizer is known for model {self.model!r}: "
                        "pass --tokenizer with its local directory, .gguf file or hub id, or "
                        "--prefill server if the server continues assistant messages "
                        "(vLLM, SGLang)"
                    )
                self.tokenizer = load_chat_tokenizer(self.tokenizer_name, self.trust_remote_code)
            return self.tokenizer

    def prefill_strategy(self) -> str:
        """`server` or `template`: the configured one, or what `detect_prefill` found (once)."""
        with self._lock:
            if self._resolved is None:
                self._resolved = self.detect_prefill()
            return self._resolved

    def detect_prefill(self) -> str:
        """Whether the server continues a prefilled assistant message (`server`) or not
        (`template`), by one greedy probe on each endpoint.

        The chat endpoint gets `PROBE` with `continue_final_message`; /completions gets
        the same conversation as the chat template renders it. A server that continues
        the message generates exactly what the completion does (same tokens, greedy);
        one that opens a new turn does not. Any doubt picks `template`, which is right
        on every server with /completions; only a server without one keeps `server`.
        """
        url = self.base_url
        try:
            chat = self._request(PROBE, PROBE_PARAMS, 1)[0].text
        except RequestRefused as exc:
            # A server that refuses the extension's fields cannot continue a message.
            logger.warning(
                "prefill: %s refused a prefilled chat (%s): using the template", url, exc
            )
            return TEMPLATE
        try:
            completion = self._request(self.render(PROBE), PROBE_PARAMS, 1)[0].text
        except RequestRefused as exc:
            logger.warning(
                "prefill: %s has no usable /completions (%s); trusting continue_final_message, "
                "so answer prefixes may be lost (the parsers reject outputs that echo them)",
                url,
                exc,
            )
            return SERVER
        if chat.strip() and chat == completion:
            logger.info("prefill: %s continues prefilled assistant messages: using its chat", url)
            return SERVER
        logger.warning(
            "prefill: %s does not continue a prefilled assistant message (chat answered %r, "
            "the continuation is %r): rendering the chat template locally and using "
            "/completions (--prefill template skips this probe)",
            url,
            chat,
            completion,
        )
        return TEMPLATE

    def _generate_one(self, prompt: Prompt, params: SamplingParams) -> list[Generation]:
        out: list[Generation] = []
        # Some servers cap or ignore `n` (llama.cpp answers one choice); ask again for
        # what is missing, with the seed moved on, or a seeded server would send the
        # same sample every time.
        while len(out) < params.n:
            ask = params
            if out and params.seed is not None:
                ask = replace(params, seed=params.seed + len(out))
            out.extend(self._request(prompt, ask, params.n - len(out)))
        return out[: params.n]

    def _request(self, prompt: Prompt, params: SamplingParams, n: int) -> list[Generation]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "n": n,
        }
        if params.stop:
            body["stop"] = list(params.stop[:MAX_STOP])
        if params.seed is not None:
            body["seed"] = params.seed
        if params.repetition_penalty != 1.0:
            # vLLM, SGLang and TGI read `repetition_penalty`, llama.cpp's servers
            # `repeat_penalty`; each ignores the other's name.
            body["repetition_penalty"] = params.repetition_penalty
            body["repeat_penalty"] = params.repetition_penalty
        if isinstance(prompt, str):
            path, body["prompt"] = "/completions", prompt
        else:
            path, body["messages"] = "/chat/completions", prompt
            if is_prefill(prompt):
                # vLLM's and SGLang's extension for continuing the assistant's message
                # (the `server` strategy, chosen only where it is known to work).
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
        data = self._post(path, body)
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        if not choices:
            raise OpenAIError(f"{self.base_url}{path} returned no choices: {str(data)[:300]}")
        usage = (data.get("usage") or {}).get("completion_tokens")
        generations = []
        for choice in choices:
            if isinstance(prompt, str):
                text = choice.get("text") or ""
            else:
                text = (choice.get("message") or {}).get("content") or ""
            reason = "length" if choice.get("finish_reason") == "length" else "stop"
            # Usage counts all choices together; share it out when the server gives no split.
            tokens = int(usage / len(choices)) if isinstance(usage, int) else 0
            generations.append(
                Generation(text=text, finish_reason=reason, completion_tokens=tokens)
            )
        return generations

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        payload = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
            self.requests_sent += 1
            try:
                return self._send(request)
            except _Retryable as exc:
                if attempt == self.max_retries:
                    raise OpenAIError(
                        f"{url} failed after {attempt + 1} tries: {exc}; check that the server "
                        "is up (--base-url) or raise --max-retries"
                    ) from exc
                delay = exc.retry_after
                if delay is None:
                    delay = self.backoff_s * 2**attempt * (0.5 + random.random())
                logger.warning("%s: %s; retry %d in %.2fs", url, exc, attempt + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _send(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            if exc.code == 429 or exc.code >= 500:
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                raise _Retryable(f"HTTP {exc.code}: {detail}", _seconds(retry_after)) from exc
            raise RequestRefused(
                f"{request.full_url} answered HTTP {exc.code}: {detail}", exc.code
            ) from exc
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise _Retryable(f"connection error: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise _Retryable(f"invalid JSON in the answer: {exc}") from exc


def load_chat_tokenizer(name: str, trust_remote_code: bool = False) -> Any:
    """A tokenizer with a chat template: `embedded`, a local directory, a .gguf file or a
    hub id. Fails with what to pass instead."""
    from transformers import AutoTokenizer

    from selfalign.llm.embedded import EMBEDDED_ALIASES, resolve_model

    path = Path(name).expanduser()
    try:
        if name in EMBEDDED_ALIASES:
            tokenizer = AutoTokenizer.from_pretrained(resolve_model(name))
        elif path.suffix == ".gguf" and path.is_file():
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        else:
            tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise OpenAIError(
            f"cannot load tokenizer {name!r} to render prefilled chat prompts ({exc}); pass "
            "--tokenizer with the served model's local directory, .gguf file or hub id"
        ) from exc
    if not getattr(tokenizer, "chat_template", None):
        raise OpenAIError(
            f"tokenizer {name!r} has no chat template, so prefilled chat prompts cannot be "
            "rendered; pass --tokenizer with the served model's own tokenizer"
        )
    logger.info("prefill: rendering chat templates with tokenizer %s", name)
    return tokenizer


def _adds_bos(tokenizer: Any) -> bool:
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos_id


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
