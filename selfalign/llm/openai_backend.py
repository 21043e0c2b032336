"""The openai backend: any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, ...).

Chat prompts go to `/chat/completions`, text prompts to `/completions`. Requests run
on a bounded thread pool; 429, 5xx and connection errors are retried with
exponential backoff (honouring `Retry-After`), other errors fail at once with the
server's message. Only the standard library is used.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from selfalign.llm.base import Generation, Prompt, SamplingParams, is_prefill

if TYPE_CHECKING:
    from selfalign.llm.config import ModelConfig

logger = logging.getLogger(__name__)

# OpenAI's API accepts at most four stop sequences.
MAX_STOP = 4


class OpenAIError(RuntimeError):
    """The server refused a request, or kept failing after every retry."""


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.requests_sent = 0
        """Every HTTP request made, retries included."""

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> OpenAILLM:
        return cls(
            cfg.base_url,
            cfg.model,
            api_key=os.environ.get(cfg.api_key_env) or None,
            concurrency=cfg.concurrency,
            timeout_s=cfg.request_timeout_s,
            max_retries=cfg.max_retries,
        )

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda p: self._generate_one(p, params), prompts))

    def _generate_one(self, prompt: Prompt, params: SamplingParams) -> list[Generation]:
        out: list[Generation] = []
        # Some servers cap or ignore `n`; ask again for what is missing.
        while len(out) < params.n:
            out.extend(self._request(prompt, params, params.n - len(out)))
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
            body["repetition_penalty"] = params.repetition_penalty
        if isinstance(prompt, str):
            path, body["prompt"] = "/completions", prompt
        else:
            path, body["messages"] = "/chat/completions", prompt
            if is_prefill(prompt):
                # vLLM's and SGLang's extension for continuing the assistant's message;
                # a server without it answers as a new turn, which the parsers survive.
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
            raise OpenAIError(f"{request.full_url} answered HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise _Retryable(f"connection error: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise _Retryable(f"invalid JSON in the answer: {exc}") from exc


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
