"""LLM backends behind one protocol: transformers, vLLM and OpenAI-compatible servers."""

from selfalign.llm.base import LLM, Generation, Prompt, SamplingParams, load_llm
from selfalign.llm.config import ModelConfig

__all__ = ["LLM", "Generation", "ModelConfig", "Prompt", "SamplingParams", "load_llm"]
