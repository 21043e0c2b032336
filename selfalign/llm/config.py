"""The model and backend the generation stages share (TOML section `[model]`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from selfalign.llm.base import BACKENDS
from selfalign.llm.embedded import EMBEDDED_NAME

BACKEND_NAMES = tuple(BACKENDS)
MODES = ("chat", "completion")


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
