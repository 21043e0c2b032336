"""The transformers backend: local generation on CPU or GPU with padded batches.

Prompts and samples are flattened into sequences, sorted by length (less padding)
and generated in chunks of `engine_batch_size` with left padding and the KV cache.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfalign.llm.base import (
    Generation,
    Prompt,
    SamplingParams,
    StopTrimmer,
    chat_template_text,
)
from selfalign.llm.embedded import model_not_found, resolve_model

if TYPE_CHECKING:
    from selfalign.llm.config import ModelConfig

logger = logging.getLogger(__name__)


class TransformersLLM:
    """`LLM` over a transformers causal LM and its tokenizer (chat template for chat prompts)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        engine_batch_size: int = 16,
        max_model_len: int = 4096,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.engine_batch_size = engine_batch_size
        self.max_model_len = max_model_len
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._eos_ids = _eos_ids(model, tokenizer)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> TransformersLLM:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model(cfg.model)
        device = cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device is cuda but torch sees no GPU: pass --device cpu")
        dtype_name = cfg.dtype
        if dtype_name == "auto":
            dtype_name = "bfloat16" if device == "cuda" else "float32"
        if device == "cpu":
            # One thread per physical core: on 2 SMT vCPUs, two threads made decoding
            # 3-4x slower than one (small matmuls, thread hand-off on every step).
            torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 2) // 2))
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                path, trust_remote_code=cfg.trust_remote_code
            )
            model: Any = AutoModelForCausalLM.from_pretrained(
                path, dtype=getattr(torch, dtype_name), trust_remote_code=cfg.trust_remote_code
            )
        except OSError as exc:
            if Path(path).exists():
                raise
            raise model_not_found(cfg.model, exc) from exc
        model.to(device)
        model.eval()
        logger.info("loaded %s on %s (%s)", path, device, dtype_name)
        return cls(
            model,
            tokenizer,
            engine_batch_size=cfg.engine_batch_size,
            max_model_len=cfg.max_model_len,
        )

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of one prompt: chat messages through the chat template, text as is."""
        if isinstance(prompt, str):
            return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
        text = chat_template_text(self.tokenizer, prompt)
        # The template already holds the special tokens it wants.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        import torch

        if not prompts:
            return []
        budget = max(1, self.max_model_len - params.max_tokens)
        encoded = []
        for prompt in prompts:
            ids = self.encode(prompt)
            if len(ids) > budget:
                logger.warning("prompt of %d tokens cut to the last %d", len(ids), budget)
                ids = ids[-budget:]
            encoded.append(ids)
        # One sequence per (prompt, sample); sorting by length keeps padding small.
        sequences = [(i, k) for i in range(len(prompts)) for k in range(params.n)]
        sequences.sort(key=lambda pk: len(encoded[pk[0]]))
        results: list[list[Generation | None]] = [[None] * params.n for _ in prompts]
        if params.seed is not None:
            torch.manual_seed(params.seed)
        for start in range(0, len(sequences), self.engine_batch_size):
            chunk = sequences[start : start + self.engine_batch_size]
            outputs = self._generate_chunk([encoded[i] for i, _ in chunk], params)
            for (i, k), generation in zip(chunk, outputs, strict=True):
                results[i][k] = generation
        return [[g for g in row if g is not None] for row in results]

    def _generate_chunk(self, batch: list[list[int]], params: SamplingParams) -> list[Generation]:
        import torch

        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        device = self.model.device
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": pad,
            "eos_token_id": sorted(self._eos_ids),
            "use_cache": True,
        }
        if params.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = params.repetition_penalty
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(device), attention_mask=attention.to(device), **kwargs
            )
        new_tokens = out[:, width:].tolist()
        trim = StopTrimmer(params.stop)
        generations = []
        for tokens in new_tokens:
            end = len(tokens)
            hit_eos = False
            for pos, tok in enumerate(tokens):
                if tok in self._eos_ids:
                    end, hit_eos = pos, True
                    break
            # Trailing pads after a stop string are not part of the completion.
            while end > 0 and not hit_eos and tokens[end - 1] == pad and pad in self._eos_ids:
                end -= 1
            text = self.tokenizer.decode(tokens[:end], skip_special_tokens=True)
            text, hit_stop = trim(text)
            finished = hit_eos or hit_stop or end < params.max_tokens
            generations.append(
                Generation(
                    text=text,
                    finish_reason="stop" if finished else "length",
                    completion_tokens=end + (1 if hit_eos else 0),
                )
            )
        return generations


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif isinstance(configured, list):
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    # Chat models end their turn with an end-of-turn token that is not always the eos.
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            ids.add(tid)
    return ids
