"""The model and backend the generation stages share (TOML section `[model]`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from selfalign.llm.base import BACKENDS
from selfalign.llm.embedded import EMBEDDED_ALIASES, EMBEDDED_NAME

BACKEND_NAMES = tuple(BACKENDS)
MODES = ("chat", "completion")
PREFILL_STRATEGIES = ("auto", "server", "template")
# A hub id: "org/name". A bare name is not taken for one: servers are often given any
# alias (`--served-model-name`, llama.cpp's `--model_alias`), which names no tokenizer.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ModelConfig:
    """Which model generates, through which backend, and how prompts are shaped for it."""

    backend: str = field(
        default="transformers",
        metadata={
            "help": "Inference backend: transformers (CPU or GPU), vllm (GPU, offline engine) "
            "or openai (any OpenAI-compatible server).",
            "choices": BACKEND_NAMES,
        },
    )
    model: str = field(
        default=EMBEDDED_NAME,
        metadata={
            "help": "Model: 'embedded:smollm2-135m-instruct' (shipped, no network), a local "
            "directory or a hub id; for --backend openai, the model name the server expects."
        },
    )
    mode: str = field(
        default="chat",
        metadata={
            "help": "Prompt shape: chat (chat template, instruct models) or completion "
            "(plain few-shot text with stop sequences, base models).",
            "choices": MODES,
        },
    )
    device: str = field(
        default="auto",
        metadata={
            "help": "Device for the transformers backend: auto (cuda if available), cpu or cuda.",
            "choices": ("auto", "cpu", "cuda"),
        },
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": "Weight dtype: auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16 "
            "or float16.",
            "choices": ("auto", "float32", "bfloat16", "float16"),
        },
    )
    engine_batch_size: int = field(
        default=16,
        metadata={
            "help": "Sequences the transformers backend generates in one padded batch "
            "(prompts times samples are split into chunks of this size)."
        },
    )
    threads: int = field(
        default=0,
        metadata={
            "help": "CPU threads for torch in the transformers backend "
            "(0: one per physical core, i.e. half the logical CPUs)."
        },
    )
    max_model_len: int = field(
        default=4096,
        metadata={
            "help": "Longest prompt plus completion in tokens; longer prompts are cut "
            "from the left (the few-shot examples go first)."
        },
    )
    tensor_parallel_size: int = field(
        default=1, metadata={"help": "vllm: GPUs to shard the model over."}
    )
    gpu_memory_utilization: float = field(
        default=0.9, metadata={"help": "vllm: fraction of GPU memory the engine may take."}
    )
    enable_prefix_caching: bool = field(
        default=True,
        metadata={"help": "vllm: reuse the KV cache of shared prompt prefixes (few-shot text)."},
    )
    base_url: str = field(
        default="http://127.0.0.1:8000/v1",
        metadata={"help": "openai: base URL of the OpenAI-compatible server (ends in /v1)."},
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "openai: environment variable holding the API key (unset: no key)."},
    )
    concurrency: int = field(default=8, metadata={"help": "openai: requests in flight at once."})
    request_timeout_s: float = field(
        default=300.0, metadata={"help": "openai: seconds before one request is abandoned."}
    )
    max_retries: int = field(
        default=5,
        metadata={
            "help": "openai: retries with exponential backoff on 429, 5xx and connection errors."
        },
    )
    prefill: str = field(
        default="auto",
        metadata={
            "help": "openai: how a chat prompt ending in a partial assistant message (an "
            "answer prefix) is continued. server: send it to /chat/completions with "
            "continue_final_message (vLLM, SGLang honour it); template: render the chat "
            "template locally (--tokenizer) and send the text to /completions (works on "
            "every server; llama.cpp needs it); auto: probe the server once and choose.",
            "choices": PREFILL_STRATEGIES,
        },
    )
    tokenizer: str = field(
        default="",
        metadata={
            "help": "openai: the served model's tokenizer, whose chat template renders "
            "prefilled prompts locally (a local directory, a .gguf file, a hub id or "
            "'embedded'); empty: --model when it names one (embedded, a path, a hub id)."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Allow model repositories to run their own code (transformers, vllm)."},
    )

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ValueError("model is empty: pass --model embedded, a local path or a hub id")
        for name in ("engine_batch_size", "tensor_parallel_size", "concurrency", "max_model_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (one per core) or more, got {self.threads}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be positive, got {self.request_timeout_s}")
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ValueError(
                f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}"
            )
        if self.backend == "openai" and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url {self.base_url!r} is not an http(s) URL; "
                "pass e.g. --base-url http://127.0.0.1:8000/v1"
            )
        if self.prefill not in PREFILL_STRATEGIES:
            raise ValueError(
                f"prefill must be one of {', '.join(PREFILL_STRATEGIES)}, got {self.prefill!r}"
            )
        if (
            self.backend == "openai"
            and self.mode == "chat"
            and self.prefill == "template"
            and self.chat_tokenizer() is None
        ):
            raise ValueError(
                f"prefill = template renders the chat template locally, but --model "
                f"{self.model!r} names no tokenizer: pass --tokenizer with the served model's "
                "local directory, .gguf file or hub id (or --tokenizer embedded)"
            )

    def chat_tokenizer(self) -> str | None:
        """The tokenizer that renders prefilled chat prompts locally for the openai backend:
        `tokenizer` when set, else `model` when it can name one (the embedded alias, a local
        path, a hub id), else None."""
        if self.tokenizer.strip():
            return self.tokenizer.strip()
        name = self.model.strip()
        if name in EMBEDDED_ALIASES or Path(name).expanduser().exists() or _HUB_ID.match(name):
            return name
        return None
