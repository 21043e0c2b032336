"""The one protocol every backend implements, the sampling parameters, and `load_llm`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from selfalign.llm.config import ModelConfig

logger = logging.getLogger(__name__)

Message = dict[str, str]
Prompt = str | list[Message]
"""Completion text (completion mode) or a list of chat messages (chat mode).

A chat prompt whose last message is the assistant's is a *prefill*: the backend
continues that message instead of opening a new assistant turn."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: the same meaning in every backend.

    `temperature == 0` means greedy decoding. `seed` makes sampling reproducible where
    the backend allows it (transformers and vllm do; a remote server may not).
    """

    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    repetition_penalty: float = 1.0
    """Above 1 discourages repeating tokens (tiny models loop under greedy decoding).

    transformers and vllm apply it; the openai backend sends it as `repetition_penalty`
    (a vLLM/SGLang server extension) only when it is not 1."""

    def __post_init__(self) -> None:
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be positive, got {self.repetition_penalty}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or more, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        object.__setattr__(self, "stop", tuple(self.stop))


@dataclass(frozen=True)
class Generation:
    """One sampled completion: its text (stop sequence removed), why it ended, its length."""

    text: str
    finish_reason: str = "stop"
    """`stop` (end of sequence or a stop sequence) or `length` (hit max_tokens)."""
    completion_tokens: int = 0


class LLM(Protocol):
    """A text generator. Implementations: transformers, vllm, openai."""

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        """One inner list of `params.n` generations per prompt, in input order.

        All prompts are handed to the engine together so it can batch them.
        """
        ...


@dataclass
class StopTrimmer:
    """Cuts a completion at the first stop sequence, the way servers do."""

    stop: Sequence[str] = field(default_factory=tuple)

    def __call__(self, text: str) -> tuple[str, bool]:
        """Return the text up to the earliest stop sequence and whether one was found."""
        cut = min((i for s in self.stop if s and (i := text.find(s)) >= 0), default=-1)
        if cut < 0:
            return text, False
        return text[:cut], True


def is_prefill(messages: Sequence[Message]) -> bool:
    """Whether a chat prompt ends with a partial assistant message to continue."""
    return bool(messages) and messages[-1].get("role") == "assistant"


def chat_template_text(tokenizer: Any, messages: list[Message]) -> str:
    """A chat prompt as the model's template renders it, ready for generation.

    A final assistant message is continued (no end-of-turn token after it), so a
    stage can put the first words of the answer in the model's mouth.
    """
    if is_prefill(messages):
        return tokenizer.apply_chat_template(
            messages, add_generation_prompt=False, continue_final_message=True, tokenize=False
        )
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def _load_transformers(cfg: ModelConfig) -> LLM:
    from selfalign.llm.transformers_backend import TransformersLLM

    return TransformersLLM.from_config(cfg)


def _load_vllm(cfg: ModelConfig) -> LLM:
    from selfalign.llm.vllm_backend import VllmLLM

    return VllmLLM.from_config(cfg)


def _load_openai(cfg: ModelConfig) -> LLM:
    from selfalign.llm.openai_backend import OpenAILLM

    return OpenAILLM.from_config(cfg)


BACKENDS: dict[str, Callable[[ModelConfig], LLM]] = {
    "transformers": _load_transformers,
    "vllm": _load_vllm,
    "openai": _load_openai,
}
"""Every backend by name. Each loader imports its heavy dependencies itself."""


def load_llm(cfg: ModelConfig) -> LLM:
    """Build the backend `cfg.backend` for `cfg.model`."""
    try:
        loader = BACKENDS[cfg.backend]
    except KeyError:
        raise ValueError(
            f"unknown backend {cfg.backend!r}; choose one of: {', '.join(BACKENDS)}"
        ) from None
    logger.info("loading %s backend for %s", cfg.backend, cfg.model)
    return loader(cfg)
