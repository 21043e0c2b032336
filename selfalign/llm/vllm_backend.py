"""The vllm backend: the offline `vllm.LLM` engine, for throughput on GPUs.

Deliberately thin: prompts and parsing are shared with the other backends. Chat
prompts are rendered with the model's chat template here so that every prompt of
a batch goes to one `LLM.generate` call, where the engine schedules them together
(prefix caching shares the few-shot prefix between them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from selfalign.llm.base import Generation, Prompt, SamplingParams, chat_template_text
from selfalign.llm.embedded import resolve_model

if TYPE_CHECKING:
    from selfalign.llm.config import ModelConfig

logger = logging.getLogger(__name__)


class VllmLLM:
    """`LLM` over `vllm.LLM`; `n` samples per prompt come from one request each."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.tokenizer = engine.get_tokenizer()

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> VllmLLM:
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(
                "the vllm backend needs vLLM: pip install 'selfalign[vllm]' (GPU machines only)"
            ) from exc
        dtype = "auto" if cfg.dtype == "auto" else cfg.dtype
        engine = vllm.LLM(
            model=resolve_model(cfg.model),
            tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            enable_prefix_caching=cfg.enable_prefix_caching,
            trust_remote_code=cfg.trust_remote_code,
            max_model_len=cfg.max_model_len,
            dtype=dtype,
        )
        return cls(engine)

    def render(self, prompt: Prompt) -> str | dict[str, list[int]]:
        """Text prompts as they are; chat prompts as token ids of the chat template.

        Token ids, because the template already holds BOS and the engine would add
        a second one to text.
        """
        if isinstance(prompt, str):
            return prompt
        text = chat_template_text(self.tokenizer, prompt)
        return {"prompt_token_ids": list(self.tokenizer(text, add_special_tokens=False).input_ids)}

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        import vllm

        if not prompts:
            return []
        sampling = vllm.SamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            stop=list(params.stop) or None,
            seed=params.seed,
            repetition_penalty=params.repetition_penalty,
        )
        outputs = self.engine.generate([self.render(p) for p in prompts], sampling, use_tqdm=False)
        results = []
        for output in outputs:
            results.append(
                [
                    Generation(
                        text=c.text,
                        finish_reason="length" if c.finish_reason == "length" else "stop",
                        completion_tokens=len(c.token_ids),
                    )
                    for c in sorted(output.outputs, key=lambda c: c.index)
                ]
            )
        return results
